//! Integrity flags: what deserves a second look before HQ publishes a cycle.
//!
//! Flags never change a score. They are computed from facts the caller gathers (values, evidence,
//! survey answers, previous scores, review times) by pure rules, each with thresholds from
//! [`FlagSettings`]. A flag names its kind, its subject, its severity and the evidence that
//! triggered it; its identity ([`Flag::fingerprint`]) is the kind, the subject and that evidence,
//! so a dismissal can hold until the evidence changes.
//!
//! Rules come in two scopes:
//! - about one entity ([`entity_flags`]): contradictions between observation and survey, top marks
//!   without evidence, identical sheets among the entity's units, verifications within minutes;
//! - about the whole cycle ([`cycle_flags`]): year-on-year jumps (relative to the cycle's
//!   distribution of changes), identical sheets of one assessor, assessor outliers, offices that
//!   never return a submission, and bunching just above a grade boundary.

mod rules;
mod stats;

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::methodology::{Methodology, QuestionRef};
use crate::scoring::Sheet;

pub use rules::{
    assessor_outliers, bunching, contradictions, fast_reviews, identical_sheets, jumps,
    never_returned, top_marks_without_evidence,
};

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A unit's or entity's score moved far more than the cycle's other changes.
    YearOnYearJump,
    /// Two units of one entity, or of one assessor in one province, with the same values on
    /// almost every indicator.
    IdenticalSheets,
    /// Top marks on an indicator while the unit's service users report the matching
    /// maladministration.
    SurveyContradiction,
    /// The highest level where evidence is expected, with no evidence note or attachment.
    TopMarksWithoutEvidence,
    /// A submission verified within minutes of being submitted.
    FastReview,
    /// An office that verified many submissions and returned none, when others return a share.
    NeverReturned,
    /// An assessor whose values sit far from the other assessors' in the same province.
    AssessorOutlier,
    /// An unusual number of units just above a grade boundary, in an office or a province.
    CutoffBunching,
}

impl FlagKind {
    /// Every kind, in a stable order.
    pub const ALL: [FlagKind; 8] = [
        FlagKind::YearOnYearJump,
        FlagKind::IdenticalSheets,
        FlagKind::SurveyContradiction,
        FlagKind::TopMarksWithoutEvidence,
        FlagKind::FastReview,
        FlagKind::NeverReturned,
        FlagKind::AssessorOutlier,
        FlagKind::CutoffBunching,
    ];

    /// The stable code of the kind (as in the API and the database).
    pub fn code(self) -> &'static str {
        match self {
            FlagKind::YearOnYearJump => "year_on_year_jump",
            FlagKind::IdenticalSheets => "identical_sheets",
            FlagKind::SurveyContradiction => "survey_contradiction",
            FlagKind::TopMarksWithoutEvidence => "top_marks_without_evidence",
            FlagKind::FastReview => "fast_review",
            FlagKind::NeverReturned => "never_returned",
            FlagKind::AssessorOutlier => "assessor_outlier",
            FlagKind::CutoffBunching => "cutoff_bunching",
        }
    }

    /// The kind with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether the kind is about one entity (refreshed by the incremental recompute) rather than
    /// the whole cycle (refreshed by the full recompute and before publication).
    pub fn is_entity_scoped(self) -> bool {
        matches!(
            self,
            FlagKind::SurveyContradiction
                | FlagKind::TopMarksWithoutEvidence
                | FlagKind::FastReview
        )
    }
}

impl fmt::Display for FlagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How much a flag deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look when there is time.
    Low,
    /// Look before publication.
    Medium,
    /// Look first.
    High,
}

impl Severity {
    /// The stable code of the severity.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// The severity with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        [Severity::Low, Severity::Medium, Severity::High]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// What a flag is about: a unit (possibly with a second one), an entity, an assessor, an office
/// or a province. Ids are the caller's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    /// One unit.
    Unit {
        /// The unit.
        unit: i64,
    },
    /// Two units (identical sheets), the lower id first.
    UnitPair {
        /// The first unit.
        unit: i64,
        /// The other unit.
        other: i64,
    },
    /// An entity.
    Entity {
        /// The entity.
        entity: i64,
    },
    /// An assessor, in a province.
    Assessor {
        /// The assessor.
        assessor: i64,
        /// The province compared with.
        province: String,
    },
    /// A regional office.
    Office {
        /// The office's code.
        office: String,
    },
    /// A province.
    Province {
        /// The province's code.
        province: String,
    },
}

impl Subject {
    /// A stable text key of the subject, part of a flag's identity.
    pub fn key(&self) -> String {
        match self {
            Subject::Unit { unit } => format!("unit:{unit}"),
            Subject::UnitPair { unit, other } => format!("units:{unit},{other}"),
            Subject::Entity { entity } => format!("entity:{entity}"),
            Subject::Assessor { assessor, province } => format!("assessor:{assessor}@{province}"),
            Subject::Office { office } => format!("office:{office}"),
            Subject::Province { province } => format!("province:{province}"),
        }
    }
}

/// One flag: its kind, subject, severity and the evidence (the numbers that triggered it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// What it is about.
    pub kind: FlagKind,
    /// Who or what it is about.
    pub subject: Subject,
    /// How much it deserves attention.
    pub severity: Severity,
    /// The unit the flag names first (units, unit pairs), for filters and links.
    pub unit: Option<i64>,
    /// The entity it belongs to, where there is one.
    pub entity: Option<i64>,
    /// The subject's own numbers that triggered it, as JSON (decimals as text); part of the
    /// flag's identity.
    pub evidence: serde_json::Value,
    /// What they were compared with (the cycle's median change, the other assessors' levels…);
    /// not part of the identity, so a dismissal holds while only the others' numbers move.
    pub context: serde_json::Value,
}

impl Flag {
    /// The flag's identity: its kind, subject and evidence. A dismissed flag whose fingerprint
    /// comes back is still dismissed; one whose evidence changed is a new flag.
    pub fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.kind, self.subject.key(), self.evidence)
    }

    /// The identity of the flag's subject regardless of the evidence: the same kind and subject
    /// with new numbers replace the old flag.
    pub fn key(&self) -> String {
        format!("{}|{}", self.kind, self.subject.key())
    }
}

/// The thresholds of the rules, with their documented defaults (`docs/integrity-flags.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlagSettings {
    /// A change is a jump when it is this many robust standard deviations (1.4826 × the median
    /// absolute deviation) away from the cycle's median change.
    pub jump_spread_factor: Decimal,
    /// …and at least this many points.
    pub jump_min_points: Decimal,
    /// Two sheets are identical when they agree on this share of the indicators answered in
    /// both…
    pub identical_share: Decimal,
    /// …and at least this many indicators are answered in both.
    pub identical_min_indicators: usize,
    /// A contradiction needs this share of a unit's respondents reporting the maladministration…
    pub contradiction_share: Decimal,
    /// …out of at least this many respondents.
    pub contradiction_min_respondents: u64,
    /// A review quicker than this many minutes is flagged.
    pub fast_review_minutes: i64,
    /// An office is flagged when it verified at least this many submissions and returned none…
    pub never_returned_min_verified: u64,
    /// …while the other offices returned at least this share of theirs.
    pub never_returned_others_share: Decimal,
    /// A unit is "at the top almost everywhere" when this share of its answered indicators is
    /// at the top level…
    pub outlier_top_share: Decimal,
    /// …and an assessor is an outlier when the share of their units that are is this many
    /// standard errors above the other assessors' units in the province (averaged per entity)…
    pub outlier_spread_factor: Decimal,
    /// …and at least this far above it (a share, 0–1)…
    pub outlier_min_gap: Decimal,
    /// …with at least this many units of their own.
    pub outlier_min_units: usize,
    /// The window above a grade boundary where bunching is looked for, in points.
    pub bunching_width: Decimal,
    /// Bunching needs at least this many units just above the boundary…
    pub bunching_min_units: usize,
    /// …and this many times the units expected there (plus one): the mean of the two windows
    /// below the boundary and the two after the one above.
    pub bunching_ratio: Decimal,
}

impl Default for FlagSettings {
    fn default() -> Self {
        Self {
            jump_spread_factor: Decimal::new(35, 1),
            jump_min_points: Decimal::TEN,
            identical_share: Decimal::new(95, 2),
            identical_min_indicators: 10,
            contradiction_share: Decimal::new(20, 2),
            contradiction_min_respondents: 10,
            fast_review_minutes: 5,
            never_returned_min_verified: 20,
            never_returned_others_share: Decimal::new(5, 2),
            outlier_top_share: Decimal::new(80, 2),
            outlier_spread_factor: Decimal::new(4, 0),
            outlier_min_gap: Decimal::new(50, 2),
            outlier_min_units: 5,
            bunching_width: Decimal::new(50, 2),
            bunching_min_units: 7,
            bunching_ratio: Decimal::new(2, 0),
        }
    }
}

/// What the rules know of one scored unit.
#[derive(Debug, Clone)]
pub struct UnitFacts {
    /// The unit.
    pub unit: i64,
    /// Its entity.
    pub entity: i64,
    /// The code of the regional office responsible for it.
    pub office: Option<String>,
    /// Its province.
    pub province: Option<String>,
    /// The assessor who entered its values.
    pub assessor: Option<i64>,
    /// Its verified values.
    pub sheet: Sheet,
    /// Per indicator (by [`crate::methodology::IndicatorId`] index): whether the value has an
    /// evidence note or an attachment.
    pub evidence: Vec<bool>,
    /// Per linked yes/no survey question: how many respondents reported that maladministration.
    pub reports: HashMap<QuestionRef, u64>,
    /// Per yes/no survey: how many respondents answered it.
    pub respondents: HashMap<String, u64>,
    /// Its published score this cycle.
    pub score: Option<Decimal>,
    /// Its published score in the previous official cycle.
    pub previous: Option<Decimal>,
}

/// An entity's score this cycle and the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityFacts {
    /// The entity.
    pub entity: i64,
    /// Its published score this cycle.
    pub score: Option<Decimal>,
    /// Its published score in the previous official cycle.
    pub previous: Option<Decimal>,
}

/// One verified submission's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewFacts {
    /// The unit.
    pub unit: i64,
    /// Its entity.
    pub entity: i64,
    /// Seconds from its (last) submission to its verification.
    pub seconds_to_verify: i64,
}

/// An office's reviews in the cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeReviews {
    /// The office's code.
    pub office: String,
    /// Submissions it verified.
    pub verified: u64,
    /// Times it returned a submission.
    pub returned: u64,
}

/// The flags about one entity: contradictions and top marks without evidence on each of its
/// units, identical sheets among its units, and its quick verifications.
pub fn entity_flags(
    m: &Methodology,
    settings: &FlagSettings,
    units: &[&UnitFacts],
    reviews: &[ReviewFacts],
) -> Vec<Flag> {
    let mut out = Vec::new();
    for u in units {
        out.extend(contradictions(m, settings, u));
        out.extend(top_marks_without_evidence(m, u));
    }
    out.extend(fast_reviews(settings, reviews));
    sort(&mut out);
    out
}

/// The flags about the whole cycle: jumps of units and entities, identical sheets within
/// entities and within each assessor's units of a province, assessor outliers, offices that never return, and bunching at the
/// methodology's grade boundaries in offices and provinces.
pub fn cycle_flags(
    m: &Methodology,
    settings: &FlagSettings,
    units: &[UnitFacts],
    entities: &[EntityFacts],
    offices: &[OfficeReviews],
) -> Vec<Flag> {
    let mut out = jumps(settings, units, entities);
    out.extend(cycle_identical_sheets(settings, units));
    out.extend(assessor_outliers(m, settings, units));
    out.extend(never_returned(settings, offices));
    out.extend(bunching(m, settings, units));
    sort(&mut out);
    out
}

/// Identical sheets across the cycle: among each entity's units, and among each assessor's units
/// in each province they assessed in; a pair found in both groups is flagged once.
pub fn cycle_identical_sheets(settings: &FlagSettings, units: &[UnitFacts]) -> Vec<Flag> {
    let mut by_entity: HashMap<i64, Vec<&UnitFacts>> = HashMap::new();
    let mut by_assessor: HashMap<(i64, Option<&str>), Vec<&UnitFacts>> = HashMap::new();
    for u in units {
        by_entity.entry(u.entity).or_default().push(u);
        if let Some(a) = u.assessor {
            by_assessor
                .entry((a, u.province.as_deref()))
                .or_default()
                .push(u);
        }
    }
    let mut seen = std::collections::HashSet::new();
    by_entity
        .values()
        .chain(by_assessor.values())
        .flat_map(|group| identical_sheets(settings, group))
        .filter(|f| seen.insert(f.subject.clone()))
        .collect()
}

/// Flags in a stable order: by kind, then subject.
fn sort(flags: &mut [Flag]) {
    flags.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
}
