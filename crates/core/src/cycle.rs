//! Assessment cycles: the official cycle of each year, and unofficial cycles beside it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The year of an assessment cycle (2000–2100). The compliance assessment started in 2013;
/// the range leaves room for imported history and for the future without accepting typos
/// such as `202` or `20233`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct CycleYear(u16);

/// A year outside the accepted range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cycle year must be between {min} and {max}, got {0}", min = CycleYear::MIN, max = CycleYear::MAX)]
pub struct InvalidCycleYear(pub i64);

impl CycleYear {
    /// The earliest accepted year.
    pub const MIN: u16 = 2000;
    /// The latest accepted year.
    pub const MAX: u16 = 2100;

    /// Parses a year, refusing values outside [`Self::MIN`]..=[`Self::MAX`].
    pub fn new(year: i64) -> Result<Self, InvalidCycleYear> {
        match u16::try_from(year) {
            Ok(y) if (Self::MIN..=Self::MAX).contains(&y) => Ok(Self(y)),
            _ => Err(InvalidCycleYear(year)),
        }
    }

    /// The year as a number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The year before this one, if still in range.
    pub fn previous(self) -> Option<Self> {
        Self::new(i64::from(self.0) - 1).ok()
    }
}

impl TryFrom<i64> for CycleYear {
    type Error = InvalidCycleYear;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<CycleYear> for i64 {
    fn from(value: CycleYear) -> Self {
        i64::from(value.0)
    }
}

impl FromStr for CycleYear {
    type Err = InvalidCycleYear;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| InvalidCycleYear(-1))
            .and_then(Self::new)
    }
}

impl fmt::Display for CycleYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_range_bounds_and_refuses_outside() {
        assert_eq!(CycleYear::new(2000).unwrap().get(), 2000);
        assert_eq!(CycleYear::new(2100).unwrap().get(), 2100);
        assert!(CycleYear::new(1999).is_err());
        assert!(CycleYear::new(2101).is_err());
        assert!(CycleYear::new(-2023).is_err());
        assert_eq!("2023".parse::<CycleYear>().unwrap().get(), 2023);
        assert!("20x3".parse::<CycleYear>().is_err());
    }

    #[test]
    fn previous_year() {
        assert_eq!(
            CycleYear::new(2023).unwrap().previous(),
            CycleYear::new(2022).ok()
        );
        assert_eq!(CycleYear::new(2000).unwrap().previous(), None);
    }

    #[test]
    fn serde_round_trip_validates() {
        let y: CycleYear = serde_json::from_str("2024").unwrap();
        assert_eq!(serde_json::to_string(&y).unwrap(), "2024");
        assert!(serde_json::from_str::<CycleYear>("1900").is_err());
    }
}

/// A cycle's identity as stored: the official cycle of a year and every unofficial cycle beside
/// it (self-assessments, pre-evaluations) each have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CycleId(pub i64);

impl CycleId {
    /// The id as a number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for CycleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which cycle a caller names: the official cycle of a year (`/cycles/{year}`), or any cycle by
/// its id (an unofficial cycle's own path, a job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CycleKey {
    /// The official assessment of a year.
    Official(CycleYear),
    /// A cycle by its id.
    Id(CycleId),
}

impl fmt::Display for CycleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CycleKey::Official(year) => write!(f, "{year}"),
            CycleKey::Id(id) => write!(f, "#{id}"),
        }
    }
}

impl From<CycleYear> for CycleKey {
    fn from(year: CycleYear) -> Self {
        CycleKey::Official(year)
    }
}

impl From<CycleId> for CycleKey {
    fn from(id: CycleId) -> Self {
        CycleKey::Id(id)
    }
}

/// What a cycle is for. Only the official cycle of a year is ranked, published, exported and
/// certified; the unofficial ones use the same instrument and scoring, seen only by the entity
/// assessed and its office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// The Ombudsman's assessment of the year.
    Official,
    /// A government assessing itself.
    SelfAssessment,
    /// An office's pre-evaluation (*pra-evaluasi*) of a government of its provinces.
    PreEvaluation,
}

impl CycleKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::Official => "official",
            CycleKind::SelfAssessment => "self_assessment",
            CycleKind::PreEvaluation => "pre_evaluation",
        }
    }

    /// Whether this is the official cycle of its year.
    pub fn is_official(self) -> bool {
        self == CycleKind::Official
    }
}

/// A stored cycle kind this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cycle kind {0:?}")]
pub struct UnknownCycleKind(pub String);

impl FromStr for CycleKind {
    type Err = UnknownCycleKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "official" => Ok(CycleKind::Official),
            "self_assessment" => Ok(CycleKind::SelfAssessment),
            "pre_evaluation" => Ok(CycleKind::PreEvaluation),
            other => Err(UnknownCycleKind(other.to_owned())),
        }
    }
}

/// The state of an assessment cycle: `planning → collecting ⇄ verifying → published`.
///
/// Every allowed move is one row of [`CycleState::TRANSITIONS`]; every other move is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CycleState {
    /// Sample and assignments are prepared.
    Planning,
    /// The collection window is open: assessors enter data.
    Collecting,
    /// Collection closed: offices verify.
    Verifying,
    /// Results are published and frozen.
    Published,
}

/// A move the cycle state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move a cycle from {from} to {to}")]
pub struct InvalidCycleTransition {
    /// The state the cycle is in.
    pub from: CycleState,
    /// The state asked for.
    pub to: CycleState,
}

/// A cycle state spelled in an unknown way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cycle state `{0}`")]
pub struct UnknownCycleState(pub String);

impl CycleState {
    /// Every state, in the order a cycle lives through them.
    pub const ALL: [CycleState; 4] = [
        CycleState::Planning,
        CycleState::Collecting,
        CycleState::Verifying,
        CycleState::Published,
    ];

    /// The transition table: every allowed move, `(from, to)`.
    pub const TRANSITIONS: [(CycleState, CycleState); 4] = [
        (CycleState::Planning, CycleState::Collecting),
        (CycleState::Collecting, CycleState::Verifying),
        (CycleState::Verifying, CycleState::Collecting),
        (CycleState::Verifying, CycleState::Published),
    ];

    /// The spelling stored and shown (`planning`, `collecting`, `verifying`, `published`).
    pub fn as_str(self) -> &'static str {
        match self {
            CycleState::Planning => "planning",
            CycleState::Collecting => "collecting",
            CycleState::Verifying => "verifying",
            CycleState::Published => "published",
        }
    }

    /// States reachable in one move, from the table.
    pub fn allowed_next(self) -> Vec<CycleState> {
        Self::TRANSITIONS
            .iter()
            .filter(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .collect()
    }

    /// The state after moving to `to`, if the table allows it.
    pub fn move_to(self, to: CycleState) -> Result<CycleState, InvalidCycleTransition> {
        if Self::TRANSITIONS.contains(&(self, to)) {
            Ok(to)
        } else {
            Err(InvalidCycleTransition { from: self, to })
        }
    }

    /// Whether results are published and frozen: they change only through corrections.
    pub fn is_published(self) -> bool {
        self == CycleState::Published
    }
}

impl std::fmt::Display for CycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CycleState {
    type Err = UnknownCycleState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownCycleState(s.to_owned()))
    }
}

#[cfg(test)]
mod state_tests {
    use super::CycleState;

    #[test]
    fn every_move_outside_the_table_is_refused() {
        for from in CycleState::ALL {
            for to in CycleState::ALL {
                let allowed = CycleState::TRANSITIONS.contains(&(from, to));
                assert_eq!(from.move_to(to).is_ok(), allowed, "{from} → {to}");
                assert_eq!(from.allowed_next().contains(&to), allowed, "{from} → {to}");
            }
        }
        // The forbidden moves spelled out, so a change of the table shows up here too.
        for (from, to) in [
            (CycleState::Planning, CycleState::Verifying),
            (CycleState::Planning, CycleState::Published),
            (CycleState::Collecting, CycleState::Planning),
            (CycleState::Collecting, CycleState::Published),
            (CycleState::Verifying, CycleState::Planning),
            (CycleState::Published, CycleState::Verifying),
            (CycleState::Published, CycleState::Collecting),
            (CycleState::Published, CycleState::Planning),
        ] {
            assert!(from.move_to(to).is_err(), "{from} → {to}");
        }
        assert!(CycleState::Published.allowed_next().is_empty());
        for state in CycleState::ALL {
            assert!(state.move_to(state).is_err(), "no move to the same state");
        }
    }

    #[test]
    fn spelled_as_stored() {
        for state in CycleState::ALL {
            assert_eq!(state.as_str().parse::<CycleState>(), Ok(state));
        }
        assert!("closed".parse::<CycleState>().is_err());
    }
}
