//! Scoring inputs: assessors' indicator values and tallied survey responses, checked against the
//! methodology when they are built.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::methodology::{IndicatorId, Methodology, Survey, SurveyId, SurveyMethod};

/// What an assessor enters for one indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerInput {
    /// A level of the indicator's scale.
    Value(u8),
    /// The indicator does not apply to this unit; its weight goes to the other indicators of
    /// its variable.
    NotApplicable,
}

/// A checked answer: a position in the indicator's scale, or not applicable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Level(u8),
    NotApplicable,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The code names no indicator of the methodology.
    #[error("unknown indicator `{0}`")]
    UnknownIndicator(String),
    /// The value is not a level of the indicator's scale.
    #[error("indicator `{indicator}`: value {value} is not on its scale (allowed: {allowed:?})")]
    OutOfScale {
        /// The indicator code.
        indicator: String,
        /// The refused value.
        value: u8,
        /// The scale's levels.
        allowed: Vec<u8>,
    },
    /// The indicator may not be marked not applicable.
    #[error("indicator `{0}` applies to every unit: it cannot be marked not applicable")]
    NotApplicableRefused(String),
    /// The code names no survey of the methodology.
    #[error("unknown survey `{0}`")]
    UnknownSurvey(String),
    /// A survey response is inconsistent with its survey.
    #[error("survey `{survey}`, response {response}: {message}")]
    BadResponse {
        /// The survey code.
        survey: String,
        /// The response's position in the batch.
        response: usize,
        /// What is wrong.
        message: String,
    },
    /// Tally counts of the wrong shape.
    #[error("survey `{survey}`: expected {expected} counts, got {got}")]
    TallyShape {
        /// The survey code.
        survey: String,
        /// Outcomes the survey has.
        expected: usize,
        /// Counts given.
        got: usize,
    },
}

/// One sheet of indicator values: the whole unit, or one service product where the methodology
/// scores products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// The product's name, for product-scored methodologies.
    pub label: Option<String>,
    pub(crate) answers: Vec<Option<Answer>>,
}

impl Sheet {
    /// An empty sheet for a methodology: every indicator still to be answered.
    pub fn new(methodology: &Methodology) -> Self {
        Self {
            label: None,
            answers: vec![None; methodology.indicator_count()],
        }
    }

    /// An empty sheet for one service product.
    pub fn for_product(methodology: &Methodology, label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
            ..Self::new(methodology)
        }
    }

    /// Sets an indicator by code, checking the value against its scale.
    pub fn set(
        &mut self,
        methodology: &Methodology,
        code: &str,
        answer: AnswerInput,
    ) -> Result<(), InputError> {
        let id = methodology
            .indicator_id(code)
            .ok_or_else(|| InputError::UnknownIndicator(code.to_owned()))?;
        self.set_by_id(methodology, id, answer)
    }

    /// Sets an indicator by id, checking the value against its scale.
    pub fn set_by_id(
        &mut self,
        methodology: &Methodology,
        id: IndicatorId,
        answer: AnswerInput,
    ) -> Result<(), InputError> {
        let indicator = methodology.indicator(id);
        let checked = match answer {
            AnswerInput::NotApplicable if !indicator.not_applicable_allowed => {
                return Err(InputError::NotApplicableRefused(indicator.code.clone()));
            }
            AnswerInput::NotApplicable => Answer::NotApplicable,
            AnswerInput::Value(v) => {
                let pos = indicator
                    .scale
                    .position(v)
                    .ok_or_else(|| InputError::OutOfScale {
                        indicator: indicator.code.clone(),
                        value: v,
                        allowed: indicator.scale.levels.iter().map(|l| l.value).collect(),
                    })?;
                Answer::Level(u8::try_from(pos).unwrap_or(u8::MAX))
            }
        };
        self.answers[id.index()] = Some(checked);
        Ok(())
    }

    /// Fills a sheet from `code → answer` pairs, reporting every refused entry.
    pub fn from_answers<'a>(
        methodology: &Methodology,
        answers: impl IntoIterator<Item = (&'a str, AnswerInput)>,
    ) -> Result<Self, Vec<InputError>> {
        let mut sheet = Self::new(methodology);
        let errors: Vec<InputError> = answers
            .into_iter()
            .filter_map(|(code, a)| sheet.set(methodology, code, a).err())
            .collect();
        if errors.is_empty() {
            Ok(sheet)
        } else {
            Err(errors)
        }
    }

    /// The answer entered for an indicator, if any.
    pub fn answer(&self, methodology: &Methodology, id: IndicatorId) -> Option<AnswerInput> {
        self.answers
            .get(id.index())
            .copied()
            .flatten()
            .map(|a| match a {
                Answer::NotApplicable => AnswerInput::NotApplicable,
                Answer::Level(pos) => AnswerInput::Value(
                    methodology.indicator(id).scale.levels[usize::from(pos)].value,
                ),
            })
    }

    /// Codes of the indicators not yet answered.
    pub fn missing<'m>(&self, methodology: &'m Methodology) -> Vec<&'m str> {
        methodology
            .indicator_ids()
            .filter(|id| self.answers.get(id.index()).copied().flatten().is_none())
            .map(|id| methodology.indicator(id).code.as_str())
            .collect()
    }
}

/// One service user's survey answers, by question code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResponse {
    /// Answers by question code.
    pub answers: BTreeMap<String, SurveyAnswer>,
}

/// One answer to a survey question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SurveyAnswer {
    /// Yes/no: for maladministration questions, `true` means the respondent experienced it.
    YesNo(bool),
    /// A Likert level.
    Likert(u8),
}

/// Aggregated survey responses of one unit: a count per outcome.
///
/// For a no-maladministration survey the outcomes are *reported none* and *reported some*;
/// for a Likert survey they are the levels (one count per answered question).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyTally {
    counts: Vec<u64>,
}

impl SurveyTally {
    /// Builds a tally from counts, checking their number against the survey's outcomes.
    pub fn from_counts(survey: &Survey, counts: Vec<u64>) -> Result<Self, InputError> {
        let expected = outcome_points(survey).len();
        if counts.len() == expected {
            Ok(Self { counts })
        } else {
            Err(InputError::TallyShape {
                survey: survey.code.clone(),
                expected,
                got: counts.len(),
            })
        }
    }

    /// Tallies individual responses, refusing unknown questions, answers of the wrong type,
    /// Likert values off the scale and empty responses. Unanswered questions are skipped.
    pub fn from_responses(
        survey: &Survey,
        responses: &[SurveyResponse],
    ) -> Result<Self, InputError> {
        let mut counts = vec![0u64; outcome_points(survey).len()];
        for (r, response) in responses.iter().enumerate() {
            let bad = |message: String| InputError::BadResponse {
                survey: survey.code.clone(),
                response: r,
                message,
            };
            if response.answers.is_empty() {
                return Err(bad("a response must answer at least one question".into()));
            }
            let mut reported = false;
            for (question, answer) in &response.answers {
                if !survey.questions.iter().any(|q| &q.code == question) {
                    return Err(bad(format!("unknown question `{question}`")));
                }
                match (&survey.method, answer) {
                    (SurveyMethod::NoMaladministrationShare, SurveyAnswer::YesNo(yes)) => {
                        reported |= *yes;
                    }
                    (SurveyMethod::Likert { levels }, SurveyAnswer::Likert(v)) => {
                        let pos = levels.iter().position(|l| l.value == *v).ok_or_else(|| {
                            bad(format!(
                                "question `{question}`: {v} is not a level of the scale"
                            ))
                        })?;
                        counts[pos] += 1;
                    }
                    (SurveyMethod::NoMaladministrationShare, SurveyAnswer::Likert(_)) => {
                        return Err(bad(format!("question `{question}` takes a yes/no answer")));
                    }
                    (SurveyMethod::Likert { .. }, SurveyAnswer::YesNo(_)) => {
                        return Err(bad(format!("question `{question}` takes a Likert level")));
                    }
                }
            }
            if matches!(survey.method, SurveyMethod::NoMaladministrationShare) {
                counts[usize::from(reported)] += 1;
            }
        }
        Ok(Self { counts })
    }

    /// Counts per outcome.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Total counted (responses, or answers for Likert surveys).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another tally of the same survey (e.g. a second upload batch).
    pub fn merge(&mut self, other: &SurveyTally) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The 0–100 score: Σ count × points / Σ count, or `None` without any response.
    pub(crate) fn score(&self, survey: &Survey) -> Option<Decimal> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let points = outcome_points(survey);
        let weighted: Decimal = self
            .counts
            .iter()
            .zip(points)
            .map(|(c, p)| Decimal::from(*c) * p)
            .sum();
        Some(weighted / Decimal::from(total))
    }
}

/// Points of each outcome of a survey.
fn outcome_points(survey: &Survey) -> Vec<Decimal> {
    match &survey.method {
        SurveyMethod::NoMaladministrationShare => vec![Decimal::ONE_HUNDRED, Decimal::ZERO],
        SurveyMethod::Likert { levels } => levels.iter().map(|l| l.points).collect(),
    }
}

/// Everything scored for one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitInput {
    /// One sheet (unit-scored methodologies) or one per assessed service product.
    pub sheets: Vec<Sheet>,
    pub(crate) surveys: Vec<Option<SurveyTally>>,
}

impl UnitInput {
    /// A unit assessed on one sheet.
    pub fn new(methodology: &Methodology, sheet: Sheet) -> Self {
        Self::with_sheets(methodology, vec![sheet])
    }

    /// A unit assessed on several sheets (one per service product).
    pub fn with_sheets(methodology: &Methodology, sheets: Vec<Sheet>) -> Self {
        Self {
            sheets,
            surveys: vec![None; methodology.survey_count()],
        }
    }

    /// Attaches a survey tally.
    pub fn set_survey(&mut self, id: SurveyId, tally: SurveyTally) {
        self.surveys[id.index()] = Some(tally);
    }

    /// The tally of a survey, if any.
    pub fn survey(&self, id: SurveyId) -> Option<&SurveyTally> {
        self.surveys.get(id.index()).and_then(Option::as_ref)
    }
}
