//! Improvement plans and simulations over a cycle's stored inputs: the verified values and survey
//! tallies of an entity's units, read once in a snapshot and handed to the core
//! (`kepatuhan_core::scoring::plan_unit`, `plan_entity`), which decides everything.

use kepatuhan_core::scoring::{
    AnswerInput, EntityInput, EntityPlan, Goal, Grade, InputError, PlanError, RankInput, Ranks,
    UnitInput, UnitPlan, grade, mean_published, plan_entity, plan_unit, rank_entities, score_unit,
};
use kepatuhan_core::{EntityKind, PublishedScore};
use serde::Serialize;

use crate::App;
use crate::cycles::{self, Cycle, CycleKey};
use crate::error::{AppError, AppResult};

/// Why a plan or a simulation cannot be made, in the application's terms.
#[derive(Debug, thiserror::Error)]
pub enum PlanFailure {
    /// The application failed (the database…).
    #[error(transparent)]
    App(#[from] AppError),
    /// The unit has no verified values in the cycle (not sampled, excluded, or imported).
    #[error("unit {0} has no verified values in this cycle")]
    NoInputs(i64),
    /// The core refused the plan (unknown grade, already at the top…).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Hypothetical values that are not on the methodology's scales.
    #[error("{} value(s) refused", .0.len())]
    Values(Vec<(usize, InputError)>),
}

/// An entity's stored inputs in a cycle: its units (ids and inputs, in the same order).
struct Loaded {
    cycle: Cycle,
    entity: EntityInput,
    unit_ids: Vec<i64>,
}

/// Reads an entity's verified inputs in one snapshot.
async fn load(app: &App, key: CycleKey, entity_id: i64) -> AppResult<Option<Loaded>> {
    let mut tx = app.pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let cycle = cycles::read(&mut tx, key).await?;
    let m = app.require_methodology(&cycle.methodology_code)?;
    let loaded = crate::recompute::entity_inputs(&mut tx, m, &cycle, entity_id).await?;
    tx.commit().await?;
    Ok(loaded.map(|(entity, unit_ids)| Loaded {
        cycle,
        entity,
        unit_ids,
    }))
}

/// The least-effort plan that brings a unit of an entity to `goal` in a cycle.
pub async fn unit_plan(
    app: &App,
    key: CycleKey,
    entity_id: i64,
    unit_id: i64,
    goal: &Goal,
) -> Result<UnitPlan, PlanFailure> {
    let loaded = load(app, key, entity_id)
        .await?
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
    let at = loaded
        .unit_ids
        .iter()
        .position(|u| *u == unit_id)
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    Ok(plan_unit(m, &loaded.entity.units[at], goal)?)
}

/// The least-effort plan that brings an entity to `goal` in a cycle: which of its units to
/// improve (keyed by unit id), and how.
pub async fn entity_plan(
    app: &App,
    key: CycleKey,
    entity_id: i64,
    goal: &Goal,
) -> Result<EntityPlan<i64>, PlanFailure> {
    let loaded = load(app, key, entity_id)
        .await?
        .ok_or(PlanFailure::Plan(PlanError::NoUnits))?;
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
    // Only the units that are scored count in the entity's mean.
    let units: Vec<(i64, &UnitInput)> = loaded
        .unit_ids
        .iter()
        .copied()
        .zip(&loaded.entity.units)
        .filter(|(_, input)| score_unit(m, input).is_ok())
        .collect();
    Ok(plan_entity(m, &units, goal)?)
}

/// A unit's result under hypothetical values, with its entity's as they would have been.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    /// The unit's published score with the hypothetical values.
    pub unit_score: PublishedScore,
    /// Its grade.
    pub unit_grade: Grade,
    /// The unit's published score as stored inputs give it.
    pub unit_score_before: PublishedScore,
    /// The entity's published score with the unit's new score.
    pub entity_score: PublishedScore,
    /// Its grade (with the follow-up rule applied).
    pub entity_grade: Grade,
    /// Its national and provincial ranks among the cycle's current results.
    pub ranks: Ranks,
    /// The entity's published score in the cycle's current results.
    pub entity_score_before: PublishedScore,
}

/// Scores a unit of an entity with some of its values replaced (`changes`: indicator code →
/// answer), and its entity with the unit's new score, ranked among every other entity's stored
/// result of the cycle's current revision.
pub async fn simulate(
    app: &App,
    key: CycleKey,
    entity_id: i64,
    unit_id: i64,
    changes: &[(String, AnswerInput)],
) -> Result<Simulation, PlanFailure> {
    let loaded = load(app, key, entity_id)
        .await?
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
    let at = loaded
        .unit_ids
        .iter()
        .position(|u| *u == unit_id)
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    let mut units = loaded.entity.units.clone();
    let before = score_unit(m, &units[at]).map_err(PlanError::from)?;
    let mut refused = Vec::new();
    for (i, (code, answer)) in changes.iter().enumerate() {
        if let Err(e) = units[at].sheets[0].set(m, code, *answer) {
            refused.push((i, e));
        }
    }
    if !refused.is_empty() {
        return Err(PlanFailure::Values(refused));
    }
    let after = score_unit(m, &units[at]).map_err(PlanError::from)?;
    let year = loaded.cycle.year;
    let scores: Vec<PublishedScore> = units
        .iter()
        .filter_map(|u| score_unit(m, u).ok().map(|s| s.published))
        .collect();
    let entity_score =
        mean_published(&scores).map_err(|_| PlanFailure::Plan(PlanError::NoUnits))?;
    let entity_grade = grade(m, year, entity_score, loaded.entity.follow_up);

    // Every other entity's stored result of the current revision, and this one's new score.
    let stored = sqlx::query!(
        r#"SELECT r.entity_id, e.kind, e.province_code, r.score
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           WHERE r.cycle_id = $1 AND r.revision = $2"#,
        loaded.cycle.id.get(),
        loaded.cycle.results_revision
    )
    .fetch_all(&app.pool)
    .await
    .map_err(AppError::from)?;
    let mut inputs = Vec::with_capacity(stored.len() + 1);
    let mut entity_before = None;
    for r in &stored {
        let score =
            PublishedScore::new(r.score).map_err(|e| AppError::Inconsistent(e.to_string()))?;
        if r.entity_id == entity_id {
            entity_before = Some(score);
            continue;
        }
        inputs.push(RankInput {
            kind: r.kind.parse().unwrap_or(EntityKind::Regency),
            province: r.province_code.as_deref(),
            score,
        });
    }
    inputs.push(RankInput {
        kind: loaded.entity.kind,
        province: loaded.entity.province.as_deref(),
        score: entity_score,
    });
    let ranks = *rank_entities(&inputs)
        .last()
        .ok_or(PlanFailure::Plan(PlanError::NoUnits))?;
    Ok(Simulation {
        unit_score: after.published,
        unit_grade: grade(m, year, after.published, None),
        unit_score_before: before.published,
        entity_score,
        entity_grade,
        ranks,
        entity_score_before: entity_before.unwrap_or(entity_score),
    })
}
