//! Assessment cycles: one per year.

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
