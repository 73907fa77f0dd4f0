//! Rules 1–4 of `DOMAIN.md`: indicator points, not-applicable redistribution, variable, dimension
//! and unit scores, survey variables, final-score composition and publishing rounding.

use rust_decimal::Decimal;
use serde::Serialize;

use super::input::{Answer, Sheet, UnitInput};
use crate::methodology::{Component, Indicator, Methodology, Survey, VariableMeasure};
use crate::score::{PublishedScore, Score};

/// Why a unit cannot be scored (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoringError {
    /// Some indicators have neither a value nor *not applicable*.
    #[error("{} indicator(s) not yet answered: {}", missing.len(), missing.join(", "))]
    Incomplete {
        /// Codes of the unanswered indicators.
        missing: Vec<String>,
    },
    /// A survey the methodology needs has no responses.
    #[error("survey `{0}` has no responses")]
    MissingSurvey(String),
    /// Every indicator of the sheet is not applicable: there is nothing to score.
    #[error("every indicator is marked not applicable; nothing to score")]
    NothingApplicable,
    /// The unit has no sheet, or several under a methodology that scores units.
    #[error("expected {expected}, got {got} sheet(s)")]
    SheetCount {
        /// What the methodology expects.
        expected: &'static str,
        /// Sheets given.
        got: usize,
    },
    /// The input was built for another methodology.
    #[error("input was built for another methodology")]
    WrongMethodology,
}

/// The score of one variable; `None` when none of its indicators apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableScore {
    /// Variable code.
    pub code: String,
    /// Exact score, if applicable.
    pub score: Option<Score>,
}

/// The score of one dimension with its variables; `None` when none of its variables apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DimensionScore {
    /// Dimension code.
    pub code: String,
    /// Exact score, if applicable.
    pub score: Option<Score>,
    /// Per-variable breakdown.
    pub variables: Vec<VariableScore>,
}

/// The score of one part of the final score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentScore {
    /// `dimensions`, or the survey code of a survey component.
    pub code: String,
    /// Exact score.
    pub score: Score,
}

/// The score of one sheet (the unit itself, or one of its service products).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SheetScore {
    /// Product name where the methodology scores products.
    pub label: Option<String>,
    /// Exact final score of the sheet.
    pub score: Score,
    /// Published (rounded) final score of the sheet.
    pub published: PublishedScore,
    /// Per-component breakdown of the final score.
    pub components: Vec<ComponentScore>,
    /// Per-dimension breakdown.
    pub dimensions: Vec<DimensionScore>,
}

/// A unit's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitScore {
    /// Exact score (a single sheet's, or the exact mean of the products' published scores).
    pub score: Score,
    /// The published score: 2 decimals, half-up.
    pub published: PublishedScore,
    /// Per-sheet detail: where the points went.
    pub sheets: Vec<SheetScore>,
}

/// Scores one unit.
pub fn score_unit(m: &Methodology, input: &UnitInput) -> Result<UnitScore, ScoringError> {
    let product_scored = matches!(
        m.aggregation,
        crate::methodology::Aggregation::MeanOfProducts
    );
    match (product_scored, input.sheets.len()) {
        (_, 0) => {
            return Err(ScoringError::SheetCount {
                expected: if product_scored {
                    "at least one product sheet"
                } else {
                    "one sheet"
                },
                got: 0,
            });
        }
        (false, n) if n > 1 => {
            return Err(ScoringError::SheetCount {
                expected: "one sheet",
                got: n,
            });
        }
        _ => {}
    }
    if input.surveys.len() != m.surveys.len() {
        return Err(ScoringError::WrongMethodology);
    }
    let sheets = input
        .sheets
        .iter()
        .map(|s| score_sheet(m, input, s))
        .collect::<Result<Vec<_>, _>>()?;
    if let [only] = sheets.as_slice() {
        return Ok(UnitScore {
            score: only.score,
            published: only.published,
            sheets,
        });
    }
    let mean = super::mean(sheets.iter().map(|s| s.published.value()));
    let score = Score::saturating(mean);
    Ok(UnitScore {
        score,
        published: score.published(),
        sheets,
    })
}

/// Scores one sheet: dimensions from indicators and survey variables, then the composition.
pub(crate) fn score_sheet(
    m: &Methodology,
    input: &UnitInput,
    sheet: &Sheet,
) -> Result<SheetScore, ScoringError> {
    if sheet.answers.len() != m.indicators.len() {
        return Err(ScoringError::WrongMethodology);
    }
    let mut missing = Vec::new();
    let mut next = 0usize;
    let mut dims_num = Decimal::ZERO;
    let mut dims_den = Decimal::ZERO;
    let mut dimensions = Vec::with_capacity(m.dimensions.len());
    for dim in &m.dimensions {
        let mut num = Decimal::ZERO;
        let mut den = Decimal::ZERO;
        let mut variables = Vec::with_capacity(dim.variables.len());
        for var in &dim.variables {
            let score = match &var.measure {
                VariableMeasure::Indicators { indicators, lcm } => {
                    let answers = &sheet.answers[next..next + indicators.len()];
                    next += indicators.len();
                    indicators_score(indicators, *lcm, answers, &mut missing)
                }
                VariableMeasure::Survey(survey) => Some(survey_score(m, input, survey)?),
            };
            if let Some(s) = score {
                num += var.weight.value() * s;
                den += var.weight.value();
            }
            variables.push(VariableScore {
                code: var.code.clone(),
                score: score.map(Score::saturating),
            });
        }
        // Rule 3: weighted mean of the applicable variables.
        let score = (!den.is_zero()).then(|| num / den);
        if let Some(s) = score {
            dims_num += dim.weight.value() * s;
            dims_den += dim.weight.value();
        }
        dimensions.push(DimensionScore {
            code: dim.code.clone(),
            score: score.map(Score::saturating),
            variables,
        });
    }
    if !missing.is_empty() {
        return Err(ScoringError::Incomplete { missing });
    }
    if dims_den.is_zero() {
        return Err(ScoringError::NothingApplicable);
    }
    // Rule 3: Σ dimension weight × dimension score / 100 (dimension weights sum to 100; where a
    // whole dimension does not apply, the applicable weights are the divisor).
    let dims_score = if dims_den == Decimal::ONE_HUNDRED {
        dims_num / Decimal::ONE_HUNDRED
    } else {
        dims_num / dims_den
    };

    let mut components = Vec::with_capacity(m.composition.len());
    let mut total = Decimal::ZERO;
    for comp in &m.composition {
        let (code, s) = match comp {
            Component::Dimensions { .. } => ("dimensions".to_owned(), dims_score),
            Component::Survey { survey, .. } => {
                (survey.code.clone(), survey_score(m, input, survey)?)
            }
        };
        total += comp.weight().value() * s;
        components.push(ComponentScore {
            code,
            score: Score::saturating(s),
        });
    }
    let score = if components.len() == 1 {
        Score::saturating(dims_score)
    } else {
        Score::saturating(total / Decimal::ONE_HUNDRED)
    };
    Ok(SheetScore {
        label: sheet.label.clone(),
        score,
        published: score.published(),
        components,
        dimensions,
    })
}

/// Rules 1–2 for one variable: Σ wᵢ·vᵢ/maxᵢ / Σ wᵢ × 100 over the applicable indicators, or
/// `None` when none applies. Unanswered indicators are added to `missing`.
///
/// The numerators are pre-multiplied by `lcm / maxᵢ` (see `Indicator::numerators`), so the sum is
/// exact and the whole variable costs a single division.
fn indicators_score(
    indicators: &[Indicator],
    lcm: Decimal,
    answers: &[Option<Answer>],
    missing: &mut Vec<String>,
) -> Option<Decimal> {
    let mut sum = Decimal::ZERO;
    let mut weights = Decimal::ZERO;
    for (ind, answer) in indicators.iter().zip(answers) {
        match answer {
            Some(Answer::Level(pos)) => {
                sum += ind.numerators[usize::from(*pos)];
                weights += ind.weight.value();
            }
            Some(Answer::NotApplicable) => {}
            None => missing.push(ind.code.clone()),
        }
    }
    (!weights.is_zero()).then(|| Decimal::ONE_HUNDRED * sum / (weights * lcm))
}

/// Rule 3 for survey-based measures: the unit's tally scored by the survey's method.
fn survey_score(
    m: &Methodology,
    input: &UnitInput,
    survey: &Survey,
) -> Result<Decimal, ScoringError> {
    m.survey_id(&survey.code)
        .and_then(|id| input.survey(id))
        .and_then(|tally| tally.score(survey))
        .ok_or_else(|| ScoringError::MissingSurvey(survey.code.clone()))
}
