//! Rule 9: the indicators that lost a unit the most points, so it knows what to fix.

use rust_decimal::Decimal;
use serde::Serialize;

use super::input::{Answer, UnitInput};
use super::unit::UnitScore;
use crate::methodology::{Component, IndicatorId, Methodology, SurveyId, VariableMeasure};

/// What lost the points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeficiencySource {
    /// An assessed indicator below its maximum level.
    Indicator {
        /// Indicator code.
        code: String,
        /// Indicator name (Indonesian).
        name: String,
        /// Dimension code.
        dimension: String,
        /// Variable code.
        variable: String,
    },
    /// A survey-based variable or component below 100.
    Survey {
        /// Survey code.
        code: String,
    },
}

impl DeficiencySource {
    /// The indicator or survey code.
    pub fn code(&self) -> &str {
        match self {
            DeficiencySource::Indicator { code, .. } | DeficiencySource::Survey { code } => code,
        }
    }
}

/// Points of the final score (0–100 scale) lost by one indicator or survey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deficiency {
    /// What lost them.
    pub source: DeficiencySource,
    /// Points lost: the item's effective weight in the final score × (max − value) / max,
    /// averaged over the unit's sheets. Exact; the lost points of all items and the unit's
    /// exact score add up to 100.
    pub lost_points: Decimal,
}

/// The unit's deficiencies, largest loss first (ties in methodology order); items that lost
/// nothing are left out. `score` must be the result of scoring `input`.
pub fn deficiencies(m: &Methodology, input: &UnitInput, score: &UnitScore) -> Vec<Deficiency> {
    let mut lost = vec![Decimal::ZERO; m.indicators.len() + m.surveys.len()];
    let sheets = Decimal::from(score.sheets.len().max(1));
    let hundred = Decimal::ONE_HUNDRED;
    let dims_share = m
        .dimensions_weight()
        .map_or(Decimal::ZERO, |w| w.value() / hundred);
    for (sheet, result) in input.sheets.iter().zip(&score.sheets) {
        let dims_den: Decimal = m
            .dimensions
            .iter()
            .zip(&result.dimensions)
            .filter(|(_, r)| r.score.is_some())
            .map(|(d, _)| d.weight.value())
            .sum();
        let mut next = 0usize;
        for (dim, dres) in m.dimensions.iter().zip(&result.dimensions) {
            let var_den: Decimal = dim
                .variables
                .iter()
                .zip(&dres.variables)
                .filter(|(_, r)| r.score.is_some())
                .map(|(v, _)| v.weight.value())
                .sum();
            for (var, vres) in dim.variables.iter().zip(&dres.variables) {
                let first = next;
                if let VariableMeasure::Indicators { indicators, .. } = &var.measure {
                    next += indicators.len();
                }
                let Some(var_score) = vres.score else {
                    continue;
                };
                // Share of the final score that this variable carries, in points.
                let share = hundred * dims_share * dim.weight.value() / dims_den
                    * var.weight.value()
                    / var_den;
                match &var.measure {
                    VariableMeasure::Indicators { indicators, .. } => {
                        let answers = &sheet.answers[first..next];
                        let weights: Decimal = indicators
                            .iter()
                            .zip(answers)
                            .filter(|(_, a)| matches!(a, Some(Answer::Level(_))))
                            .map(|(i, _)| i.weight.value())
                            .sum();
                        for (k, (ind, answer)) in indicators.iter().zip(answers).enumerate() {
                            if let Some(Answer::Level(pos)) = answer {
                                let max = Decimal::from(ind.scale.max());
                                let value =
                                    Decimal::from(ind.scale.levels[usize::from(*pos)].value);
                                lost[first + k] +=
                                    share * ind.weight.value() / weights * (max - value) / max;
                            }
                        }
                    }
                    VariableMeasure::Survey(survey) => {
                        let id = m.survey_index[&survey.code];
                        lost[m.indicators.len() + id.index()] +=
                            share * (hundred - var_score.value()) / hundred;
                    }
                }
            }
        }
        for (comp, cres) in m.composition.iter().zip(&result.components) {
            if let Component::Survey { survey, weight, .. } = comp {
                let id = m.survey_index[&survey.code];
                lost[m.indicators.len() + id.index()] +=
                    weight.value() * (hundred - cres.score.value()) / hundred;
            }
        }
    }
    let mut out: Vec<(usize, Deficiency)> = lost
        .into_iter()
        .enumerate()
        .filter(|(_, l)| *l > Decimal::ZERO)
        .map(|(i, l)| {
            (
                i,
                Deficiency {
                    source: source_of(m, i),
                    lost_points: l / sheets,
                },
            )
        })
        .collect();
    out.sort_by(|(ia, a), (ib, b)| b.lost_points.cmp(&a.lost_points).then(ia.cmp(ib)));
    out.into_iter().map(|(_, d)| d).collect()
}

/// Names slot `i` of the loss table: indicators first (by [`IndicatorId`]), then surveys.
fn source_of(m: &Methodology, i: usize) -> DeficiencySource {
    let Some(slot) = m.indicators.get(i) else {
        let id = SurveyId(u32::try_from(i - m.indicators.len()).unwrap_or(u32::MAX));
        return DeficiencySource::Survey {
            code: m.survey(id).code.clone(),
        };
    };
    let dim = &m.dimensions[slot.dimension];
    let var = &dim.variables[slot.variable];
    let ind = m.indicator(IndicatorId(u32::try_from(i).unwrap_or(u32::MAX)));
    DeficiencySource::Indicator {
        code: ind.code.clone(),
        name: ind.name.clone(),
        dimension: dim.code.clone(),
        variable: var.code.clone(),
    }
}
