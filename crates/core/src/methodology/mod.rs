//! A year's methodology as data: what is assessed, how it is weighted, and how scores become
//! grades.
//!
//! A [`Methodology`] is built only by [`Methodology::from_toml`] / [`Methodology::from_json`]
//! (or one of the [`builtin`] files), which validate everything and report every problem with its
//! path. Once built it is immutable and internally consistent: weights are positive, dimension
//! weights sum to 100, codes are unique, scales are ordered, bands cover 0–100.

pub mod builtin;
mod file;
mod validate;

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::cycle::CycleYear;
use crate::score::{PublishedScore, Weight};

pub use validate::{LoadError, Problem, ValidationErrors};

/// A complete, validated methodology. Serializes to its full tree (without internal indexes).
#[derive(Debug, Clone, Serialize)]
pub struct Methodology {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) first_year: CycleYear,
    pub(crate) last_year: Option<CycleYear>,
    pub(crate) dimensions: Vec<Dimension>,
    pub(crate) composition: Vec<Component>,
    pub(crate) aggregation: Aggregation,
    pub(crate) bands: BandTable,
    /// The lowest band that earns an award (a *piagam penghargaan*); `None`: every band.
    pub(crate) award_minimum_band: Option<String>,
    pub(crate) follow_up: Option<FollowUpRule>,
    /// Flat list of all assessed indicators, in tree order; [`IndicatorId`] indexes it.
    #[serde(skip)]
    pub(crate) indicators: Vec<IndicatorSlot>,
    /// Flat list of all surveys (survey variables, then survey components); [`SurveyId`] indexes it.
    #[serde(skip)]
    pub(crate) surveys: Vec<SurveySlot>,
    #[serde(skip)]
    pub(crate) indicator_index: HashMap<String, IndicatorId>,
    #[serde(skip)]
    pub(crate) survey_index: HashMap<String, SurveyId>,
}

/// Dense index of an assessed indicator inside its methodology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndicatorId(pub(crate) u32);

/// Dense index of a survey (a survey variable or a survey component) inside its methodology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SurveyId(pub(crate) u32);

/// Where an indicator sits in the tree.
#[derive(Debug, Clone)]
pub(crate) struct IndicatorSlot {
    pub(crate) dimension: usize,
    pub(crate) variable: usize,
    pub(crate) indicator: usize,
}

/// Where a survey sits: in a variable of a dimension, or as a score component.
#[derive(Debug, Clone)]
pub(crate) enum SurveySlot {
    Variable { dimension: usize, variable: usize },
    Component { component: usize },
}

/// A weighted group of variables (e.g. *Input*, *Proses*, *Output*, *Pengaduan*).
#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    /// Stable English code, e.g. `process`.
    pub code: String,
    /// Indonesian name, e.g. `Proses`.
    pub name: String,
    /// Weight in percent; the dimensions of a methodology sum to 100.
    pub weight: Weight,
    /// The variables of the dimension.
    pub variables: Vec<Variable>,
}

/// A weighted group of indicators, or a survey-based measure.
#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    /// Stable English code, e.g. `service_standards`.
    pub code: String,
    /// Indonesian name, e.g. `Standar Pelayanan`.
    pub name: String,
    /// Weight inside its dimension (relative).
    pub weight: Weight,
    /// What the variable is measured from.
    pub measure: VariableMeasure,
}

/// How a variable is measured.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VariableMeasure {
    /// Assessors' values for indicators.
    Indicators {
        /// The indicators, each with its weight and scale.
        indicators: Vec<Indicator>,
        /// Least common multiple of the indicators' maximum levels (see scoring).
        #[serde(skip)]
        lcm: Decimal,
    },
    /// Aggregated service-user survey responses.
    Survey(Survey),
}

/// One assessed indicator with its ordinal scale.
#[derive(Debug, Clone, Serialize)]
pub struct Indicator {
    /// Stable English code, unique in the methodology, e.g. `complaint_channel_available`.
    pub code: String,
    /// Indonesian name as shown to assessors.
    pub name: String,
    /// Weight inside its variable (relative).
    pub weight: Weight,
    /// Where the evidence comes from.
    pub source: EvidenceSource,
    /// The ordinal scale.
    pub scale: Scale,
    /// What raising the indicator by one level costs the unit, relative to the other
    /// indicators (1 unless the methodology says otherwise: printing a service standard is
    /// cheaper than building a ramp). Improvement plans minimise the total effort.
    pub effort: u32,
    /// Whether an assessor may mark the indicator not applicable to a unit (`not_applicable` in
    /// the file, default true).
    pub not_applicable_allowed: bool,
    /// Whether a value needs an evidence note or attachment (`evidence = "expected"`; the
    /// default for document evidence). Integrity flags look for top marks without it.
    pub evidence_expected: bool,
    /// The yes/no (maladministration) survey questions about the same matter as the indicator:
    /// a unit with top marks here whose users report that maladministration is flagged.
    pub survey_questions: Vec<QuestionRef>,
    /// Precomputed `weight × level × (lcm / max)` per level position (see scoring).
    #[serde(skip)]
    pub(crate) numerators: Vec<Decimal>,
}

impl Indicator {
    /// The largest effort a methodology may give one level of an indicator.
    pub const MAX_EFFORT: u32 = 100;
}

/// The kind of evidence an indicator is assessed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// Interview of the unit's officers.
    Interview,
    /// Observation on site.
    Observation,
    /// Document evidence (SOPs, decrees, records).
    Document,
    /// Service-user survey.
    Survey,
}

/// An ordinal scale: strictly increasing levels starting at 0, each described in words.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    /// The levels, lowest first; the first is always 0.
    pub levels: Vec<Level>,
}

/// One level of a scale.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// The value an assessor enters.
    pub value: u8,
    /// What the level means, in Indonesian, for the assessor.
    pub description: String,
}

impl Scale {
    /// The highest level value.
    pub fn max(&self) -> u8 {
        self.levels.last().map_or(0, |l| l.value)
    }

    /// The position of a value in the scale, if it is one of its levels.
    pub fn position(&self, value: u8) -> Option<usize> {
        self.levels.iter().position(|l| l.value == value)
    }
}

/// A survey of service users and how its responses become a 0–100 score.
#[derive(Debug, Clone, Serialize)]
pub struct Survey {
    /// Stable English code, unique among surveys and indicators.
    pub code: String,
    /// The questions asked.
    pub questions: Vec<SurveyQuestion>,
    /// How answers map to points.
    pub method: SurveyMethod,
}

/// One survey question.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyQuestion {
    /// Stable English code, unique within the survey.
    pub code: String,
    /// The question in Indonesian.
    pub text: String,
}

/// A survey question named from outside its survey: `survey.question` in methodology files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct QuestionRef {
    /// The survey's code.
    pub survey: String,
    /// The question's code in that survey.
    pub question: String,
}

impl fmt::Display for QuestionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.survey, self.question)
    }
}

/// How survey answers become points.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SurveyMethod {
    /// Each question asks whether the respondent experienced a form of maladministration
    /// (yes/no). Score = share of responses that report none × 100.
    NoMaladministrationShare,
    /// Each question is answered on a Likert scale; each level maps to points (0–100).
    /// Score = mean of the points of all answers.
    Likert {
        /// Points per level, lowest level first.
        levels: Vec<LikertLevel>,
    },
}

/// One Likert level and its points.
#[derive(Debug, Clone, Serialize)]
pub struct LikertLevel {
    /// The answer value (e.g. 1–4).
    pub value: u8,
    /// Indonesian label, e.g. `Sangat percaya`.
    pub label: String,
    /// Points, 0–100.
    pub points: Decimal,
}

/// One part of the final score.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Component {
    /// The weighted dimensions.
    Dimensions {
        /// Weight in percent of the final score.
        weight: Weight,
    },
    /// A survey-based component such as public trust (kepercayaan masyarakat).
    Survey {
        /// Indonesian name.
        name: String,
        /// Weight in percent of the final score.
        weight: Weight,
        /// The survey.
        survey: Survey,
    },
}

impl Component {
    /// The component's weight in percent.
    pub fn weight(&self) -> Weight {
        match self {
            Component::Dimensions { weight } | Component::Survey { weight, .. } => *weight,
        }
    }
}

/// How unit results become an entity's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Mean of the units' published scores (2022 onwards).
    MeanOfUnits,
    /// Each unit is assessed on several service products; the entity score is the mean of all
    /// products' published scores (up to 2021).
    MeanOfProducts,
}

/// The colour zone of a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// Zona merah.
    Red,
    /// Zona kuning.
    Yellow,
    /// Zona hijau.
    Green,
}

impl Zone {
    /// Indonesian label: `Hijau`, `Kuning`, `Merah`.
    pub fn label_id(self) -> &'static str {
        match self {
            Zone::Green => "Hijau",
            Zone::Yellow => "Kuning",
            Zone::Red => "Merah",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Zone::Green => "green",
            Zone::Yellow => "yellow",
            Zone::Red => "red",
        })
    }
}

/// One grade band: scores at or above `lower` (and below the next band) get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Band {
    /// Grade code, e.g. `A`, or `hijau` in zone-only schemes.
    pub code: String,
    /// Indonesian label, e.g. `Kualitas Tertinggi`.
    pub label: String,
    /// Colour zone, where the methodology has zones.
    pub zone: Option<Zone>,
    /// Optional summary category, e.g. `Baik` (2025 onwards).
    pub category: Option<String>,
    /// Inclusive lower bound, two decimals.
    pub lower: Decimal,
}

/// A validated band table covering 0–100, highest band first.
#[derive(Debug, Clone, Serialize)]
pub struct BandTable {
    pub(crate) bands: Vec<Band>,
}

impl BandTable {
    /// The bands, highest first.
    pub fn bands(&self) -> &[Band] {
        &self.bands
    }

    /// The band of a published score (compared after rounding, inclusive lower bounds).
    pub fn band_of(&self, score: PublishedScore) -> &Band {
        let value = score.value();
        self.bands
            .iter()
            .find(|b| value >= b.lower)
            .unwrap_or_else(|| {
                self.bands
                    .last()
                    .expect("validated band table is non-empty")
            })
    }

    /// Whether `band` is at or above `minimum` (`None`: every band is).
    pub fn at_least(&self, band: &str, minimum: Option<&str>) -> bool {
        match (self.position(band), minimum.and_then(|m| self.position(m))) {
            (Some(b), Some(m)) => b <= m,
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }

    /// The position of a band in the table (0 = highest), for comparing bands of one table.
    pub fn position(&self, code: &str) -> Option<usize> {
        self.bands.iter().position(|b| b.code == code)
    }
}

/// How follow-up of the Ombudsman's earlier findings affects the result (2023 onwards).
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpRule {
    /// First cycle year the rule applies to.
    pub applies_from: CycleYear,
    /// Awards (and so certificates) are withheld unless all findings were followed up.
    pub award_requires_complete: bool,
    /// Text appended to the grade label when all findings were followed up, e.g.
    /// `Tanpa Maladministrasi`.
    pub complete_suffix: Option<String>,
}

impl Methodology {
    /// Stable code, e.g. `ori-2022`.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// Human name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Free-text description.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// First cycle year the methodology is meant for.
    pub fn first_year(&self) -> CycleYear {
        self.first_year
    }
    /// Last cycle year, if closed.
    pub fn last_year(&self) -> Option<CycleYear> {
        self.last_year
    }
    /// Whether the methodology is meant for a given year.
    pub fn covers(&self, year: CycleYear) -> bool {
        year >= self.first_year && self.last_year.is_none_or(|last| year <= last)
    }
    /// The dimensions.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }
    /// The final-score composition.
    pub fn composition(&self) -> &[Component] {
        &self.composition
    }
    /// The unit → entity aggregation rule.
    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }
    /// The band table.
    pub fn bands(&self) -> &BandTable {
        &self.bands
    }
    /// The lowest band that earns an award (and so a certificate); `None`: every band.
    pub fn award_minimum_band(&self) -> Option<&str> {
        self.award_minimum_band.as_deref()
    }

    /// The follow-up rule, if this methodology has one.
    pub fn follow_up(&self) -> Option<&FollowUpRule> {
        self.follow_up.as_ref()
    }
    /// Number of assessed indicators.
    pub fn indicator_count(&self) -> usize {
        self.indicators.len()
    }
    /// Number of surveys.
    pub fn survey_count(&self) -> usize {
        self.surveys.len()
    }
    /// Looks an indicator up by code.
    pub fn indicator_id(&self, code: &str) -> Option<IndicatorId> {
        self.indicator_index.get(code).copied()
    }
    /// Looks a survey up by code.
    pub fn survey_id(&self, code: &str) -> Option<SurveyId> {
        self.survey_index.get(code).copied()
    }
    /// All indicator ids, in tree order.
    pub fn indicator_ids(&self) -> impl Iterator<Item = IndicatorId> + '_ {
        (0..self.indicators.len()).map(|i| IndicatorId(u32::try_from(i).unwrap_or(u32::MAX)))
    }
    /// All survey ids, in order.
    pub fn survey_ids(&self) -> impl Iterator<Item = SurveyId> + '_ {
        (0..self.surveys.len()).map(|i| SurveyId(u32::try_from(i).unwrap_or(u32::MAX)))
    }
    /// The indicator behind an id.
    pub fn indicator(&self, id: IndicatorId) -> &Indicator {
        let slot = &self.indicators[id.0 as usize];
        match &self.dimensions[slot.dimension].variables[slot.variable].measure {
            VariableMeasure::Indicators { indicators, .. } => &indicators[slot.indicator],
            VariableMeasure::Survey(_) => unreachable!("indicator slots point at indicators"),
        }
    }
    /// The survey behind an id.
    pub fn survey(&self, id: SurveyId) -> &Survey {
        match &self.surveys[id.0 as usize] {
            SurveySlot::Variable {
                dimension,
                variable,
            } => match &self.dimensions[*dimension].variables[*variable].measure {
                VariableMeasure::Survey(s) => s,
                VariableMeasure::Indicators { .. } => unreachable!("survey slots point at surveys"),
            },
            SurveySlot::Component { component } => match &self.composition[*component] {
                Component::Survey { survey, .. } => survey,
                Component::Dimensions { .. } => unreachable!("survey slots point at surveys"),
            },
        }
    }
    /// Whether the final score contains the dimensions component (every shipped methodology
    /// does; a survey-only methodology would not).
    pub(crate) fn dimensions_weight(&self) -> Option<Weight> {
        self.composition.iter().find_map(|c| match c {
            Component::Dimensions { weight } => Some(*weight),
            Component::Survey { .. } => None,
        })
    }
}

impl IndicatorId {
    /// Position in [`Methodology::indicator_ids`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl SurveyId {
    /// Position in [`Methodology::survey_ids`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
