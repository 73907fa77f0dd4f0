//! The scoring rules of `DOMAIN.md`, in exact decimal arithmetic.
//!
//! - [`score_unit`]: rules 1–4 for one unit (indicator points, not-applicable redistribution,
//!   variables, dimensions, survey variables, final-score composition, publishing rounding).
//! - [`aggregate_entity`] and [`grade`]: rule 4 (entity score) and rule 6 (bands, follow-up).
//! - [`rank`] and [`rank_entities`]: rule 7 (competition ranking per kind, national and provincial).
//! - [`year_on_year`]: rule 8.
//! - [`deficiencies`]: rule 9.
//! - [`score_cycle`]: all of the above for a whole cycle.
//! - [`plan_unit`] and [`plan_entity`]: what to fix to reach a grade, at the least effort.

mod cycle;
mod deficiency;
mod entity;
pub(crate) mod input;
mod plan;
mod ranking;
mod unit;
mod year_on_year;

use rust_decimal::Decimal;

pub use cycle::{
    CycleInput, CycleResult, DimensionMean, EntityInput, EntityResult, UnitResult, score_cycle,
};
pub use deficiency::{Deficiency, DeficiencySource, deficiencies};
pub use entity::{
    EntityScoreError, FollowUpStatus, Grade, aggregate_entity, grade, mean_published,
};
pub use input::{
    AnswerInput, InputError, Sheet, SurveyAnswer, SurveyResponse, SurveyTally, UnitInput,
};
pub use plan::{
    EntityPlan, EntityUnitPlan, Goal, PlanError, PlanOutcome, PlanStep, UnitPlan, apply_steps,
    plan_entity, plan_unit,
};
pub use ranking::{Rank, RankInput, Ranks, rank, rank_entities};
pub use unit::{
    ComponentScore, DimensionScore, ScoringError, SheetScore, UnitScore, VariableScore, score_unit,
};
pub use year_on_year::{BandMovement, YearOnYear, year_on_year};

/// Exact arithmetic mean; zero for an empty input (callers check emptiness first).
pub(crate) fn mean(values: impl Iterator<Item = Decimal>) -> Decimal {
    let (sum, n) = values.fold((Decimal::ZERO, 0u64), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        Decimal::ZERO
    } else {
        sum / Decimal::from(n)
    }
}
