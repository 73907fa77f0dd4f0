//! A whole cycle at once: every unit scored, every entity aggregated, graded and ranked.

use serde::Serialize;

use super::entity::{FollowUpStatus, Grade, aggregate_entity, grade};
use super::input::UnitInput;
use super::ranking::{RankInput, Ranks, rank_entities};
use super::unit::{ScoringError, UnitScore, score_unit};
use crate::cycle::CycleYear;
use crate::entity::EntityKind;
use crate::methodology::Methodology;
use crate::score::PublishedScore;

/// One entity and its assessed units.
#[derive(Debug, Clone)]
pub struct EntityInput {
    /// Stable entity code (Kemendagri code or short code).
    pub code: String,
    /// Its kind.
    pub kind: EntityKind,
    /// Province code for local governments (the provincial government's own code for itself).
    pub province: Option<String>,
    /// Follow-up of earlier findings, where known.
    pub follow_up: Option<FollowUpStatus>,
    /// The assessed units.
    pub units: Vec<UnitInput>,
}

/// Everything scored in a cycle.
#[derive(Debug, Clone)]
pub struct CycleInput {
    /// The cycle year (the follow-up rule depends on it).
    pub year: CycleYear,
    /// The entities.
    pub entities: Vec<EntityInput>,
}

/// A unit's outcome: its score and grade, or why it cannot be scored yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitResult {
    /// The score, if the unit's input is complete.
    pub score: Option<UnitScore>,
    /// The grade of the published score.
    pub grade: Option<Grade>,
    /// Why there is no score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entity's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityResult {
    /// Entity code.
    pub code: String,
    /// Published score, if at least one unit is scored.
    pub score: Option<PublishedScore>,
    /// Grade, with the follow-up rule applied.
    pub grade: Option<Grade>,
    /// National and provincial ranks among scored entities.
    pub ranks: Option<Ranks>,
    /// Units, in input order.
    pub units: Vec<UnitResult>,
}

/// The mean of one dimension's score over an entity's scored units (and their product sheets),
/// as shown beside the entity's score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DimensionMean {
    /// Dimension code.
    pub code: String,
    /// The mean, rounded half-up to 2 decimals like a published score.
    pub score: rust_decimal::Decimal,
}

impl EntityResult {
    /// The mean of each dimension's score over the entity's scored units (every sheet of a
    /// product-scored unit counts), in the order the dimensions first appear; dimensions that
    /// applied nowhere are left out. Exact until the final rounding ([`round_published`]).
    ///
    /// [`round_published`]: crate::score::round_published
    pub fn dimension_means(&self) -> Vec<DimensionMean> {
        let mut sums: Vec<(String, rust_decimal::Decimal, u32)> = Vec::new();
        for sheet in self
            .units
            .iter()
            .filter_map(|u| u.score.as_ref())
            .flat_map(|s| &s.sheets)
        {
            for d in &sheet.dimensions {
                let Some(score) = d.score else { continue };
                match sums.iter_mut().find(|(code, ..)| *code == d.code) {
                    Some((_, sum, n)) => {
                        *sum += score.value();
                        *n += 1;
                    }
                    None => sums.push((d.code.clone(), score.value(), 1)),
                }
            }
        }
        sums.into_iter()
            .map(|(code, sum, n)| DimensionMean {
                code,
                score: crate::score::round_published(sum / rust_decimal::Decimal::from(n)),
            })
            .collect()
    }
}

/// The results of a cycle, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleResult {
    /// One result per input entity.
    pub entities: Vec<EntityResult>,
}

/// Scores, aggregates, grades and ranks a whole cycle. Units whose input is incomplete are
/// reported with their error and left out of their entity's score; an entity without any scored
/// unit has no score and no rank.
pub fn score_cycle(m: &Methodology, input: &CycleInput) -> CycleResult {
    let mut entities: Vec<EntityResult> = input
        .entities
        .iter()
        .map(|e| {
            let outcomes: Vec<Result<UnitScore, ScoringError>> =
                e.units.iter().map(|u| score_unit(m, u)).collect();
            let scored: Vec<&UnitScore> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
            let score = aggregate_entity(m, &scored).ok();
            let units = outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(s) => UnitResult {
                        grade: Some(grade(m, input.year, s.published, None)),
                        score: Some(s),
                        error: None,
                    },
                    Err(err) => UnitResult {
                        score: None,
                        grade: None,
                        error: Some(err.to_string()),
                    },
                })
                .collect();
            EntityResult {
                code: e.code.clone(),
                score,
                grade: score.map(|s| grade(m, input.year, s, e.follow_up)),
                ranks: None,
                units,
            }
        })
        .collect();

    let ranked: Vec<usize> = (0..entities.len())
        .filter(|&i| entities[i].score.is_some())
        .collect();
    let rank_inputs: Vec<RankInput<'_>> = ranked
        .iter()
        .filter_map(|&i| {
            Some(RankInput {
                kind: input.entities[i].kind,
                province: input.entities[i].province.as_deref(),
                score: entities[i].score?,
            })
        })
        .collect();
    for (&i, r) in ranked.iter().zip(rank_entities(&rank_inputs)) {
        entities[i].ranks = Some(r);
    }
    CycleResult { entities }
}
