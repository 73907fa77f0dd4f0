//! The on-disk shape of a methodology file (TOML or JSON), before validation.
//!
//! Everything that can be wrong in a way worth reporting with its path is kept loose here
//! (numbers of any kind, optional fields) and checked in `validate`, so that one load reports
//! every problem at once. Unknown keys are refused by serde (typos must not be ignored).

use std::collections::BTreeMap;

use serde::Deserialize;

/// A number as written in a file. Decimals must be written as text (`"21.85"`) so they stay
/// exact; integers may be bare. Floats are accepted by the parser only to be refused with a
/// clear message by validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawNumber {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMethodology {
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub first_year: Option<i64>,
    pub last_year: Option<i64>,
    pub aggregation: Option<String>,
    #[serde(default)]
    pub scales: BTreeMap<String, RawScale>,
    #[serde(default)]
    pub dimensions: Vec<RawDimension>,
    #[serde(default)]
    pub composition: Vec<RawComponent>,
    #[serde(default)]
    pub bands: Vec<RawBand>,
    pub award_minimum_band: Option<String>,
    pub follow_up: Option<RawFollowUp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScale {
    #[serde(default)]
    pub levels: Vec<RawLevel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLevel {
    pub value: Option<i64>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDimension {
    pub code: Option<String>,
    pub name: Option<String>,
    pub weight: Option<RawNumber>,
    #[serde(default)]
    pub variables: Vec<RawVariable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariable {
    pub code: Option<String>,
    pub name: Option<String>,
    pub weight: Option<RawNumber>,
    pub indicators: Option<Vec<RawIndicator>>,
    pub survey: Option<RawSurvey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIndicator {
    pub code: Option<String>,
    pub name: Option<String>,
    pub weight: Option<RawNumber>,
    pub source: Option<String>,
    /// A named scale from `[scales]`.
    pub scale: Option<String>,
    /// Or levels written inline.
    pub levels: Option<Vec<RawLevel>>,
    /// Effort of raising the indicator by one level, relative to other indicators (default 1).
    pub effort: Option<i64>,
    /// Whether an assessor may mark the indicator not applicable (default true).
    pub not_applicable: Option<bool>,
    /// `expected` or `optional`: whether a value needs an evidence note or attachment (default:
    /// expected for document evidence, optional otherwise).
    pub evidence: Option<String>,
    /// The yes/no survey questions about the same matter, as `survey.question` codes.
    #[serde(default)]
    pub survey_questions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSurvey {
    /// Only for survey components; a survey variable takes its variable's code.
    pub code: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub questions: Vec<RawQuestion>,
    pub likert: Option<Vec<RawLikertLevel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuestion {
    pub code: Option<String>,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLikertLevel {
    pub value: Option<i64>,
    #[serde(default)]
    pub label: String,
    pub points: Option<RawNumber>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub weight: Option<RawNumber>,
    pub survey: Option<RawSurvey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBand {
    pub code: Option<String>,
    pub label: Option<String>,
    pub zone: Option<String>,
    pub category: Option<String>,
    pub lower: Option<RawNumber>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFollowUp {
    pub applies_from: Option<i64>,
    #[serde(default)]
    pub award_requires_complete: bool,
    pub complete_suffix: Option<String>,
}
