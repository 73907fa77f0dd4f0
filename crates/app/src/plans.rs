//! Improvement plans and simulations over a cycle's stored inputs: the verified values and survey
//! tallies of an entity's units, read once in a snapshot and handed to the core
//! (`kepatuhan_core::scoring::plan_unit`, `plan_entity`), which decides everything.

use kepatuhan_core::scoring::{
    AnswerInput, CycleInput, EntityInput, EntityPlan, EntityResult, Goal, Grade, InputError,
    PlanError, RankInput, Ranks, UnitInput, UnitPlan, grade, mean_published, plan_entity,
    plan_unit, rank_entities, score_cycle, score_unit,
};
use kepatuhan_core::{CycleYear, EntityKind, PublishedScore};
use rust_decimal::Decimal;
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
    /// The official results to compare with are not published yet.
    #[error("the official results of {0} are not published yet")]
    NotPublished(kepatuhan_core::CycleYear),
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

/// An entity's stored inputs with the position of one of its units among them
/// ([`PlanFailure::NoInputs`] when the unit has no values in the cycle).
async fn load_unit(
    app: &App,
    key: CycleKey,
    entity_id: i64,
    unit_id: i64,
) -> Result<(Loaded, usize), PlanFailure> {
    let loaded = load(app, key, entity_id)
        .await?
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    let at = loaded
        .unit_ids
        .iter()
        .position(|u| *u == unit_id)
        .ok_or(PlanFailure::NoInputs(unit_id))?;
    Ok((loaded, at))
}

/// The least-effort plan that brings a unit of an entity to `goal` in a cycle.
pub async fn unit_plan(
    app: &App,
    key: CycleKey,
    entity_id: i64,
    unit_id: i64,
    goal: &Goal,
) -> Result<UnitPlan, PlanFailure> {
    let (loaded, at) = load_unit(app, key, entity_id, unit_id).await?;
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
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
    let (loaded, at) = load_unit(app, key, entity_id, unit_id).await?;
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
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

/// An entity's results in a cycle, computed now from its stored inputs by the core (for an
/// unofficial cycle every submission counts, reviewed or not): always current.
#[derive(Debug, Clone)]
pub struct EntityScores {
    /// The cycle.
    pub cycle: Cycle,
    /// The units with values, in the order of `result.units`.
    pub unit_ids: Vec<i64>,
    /// The entity's score and grade (ranks: among itself only), and its units'.
    pub result: EntityResult,
}

/// Scores an entity's stored inputs in a cycle; `None` when none of its units has values.
pub async fn entity_scores(
    app: &App,
    key: CycleKey,
    entity_id: i64,
) -> AppResult<Option<EntityScores>> {
    let Some(loaded) = load(app, key, entity_id).await? else {
        return Ok(None);
    };
    let m = app.require_methodology(&loaded.cycle.methodology_code)?;
    let input = CycleInput {
        year: loaded.cycle.year,
        entities: vec![loaded.entity],
    };
    let result = score_cycle(m, &input).entities.into_iter().next();
    Ok(result.map(|result| EntityScores {
        cycle: loaded.cycle,
        unit_ids: loaded.unit_ids,
        result,
    }))
}

/// One indicator on which a self-assessment and the official assessment disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndicatorGap {
    /// Indicator code.
    pub indicator: String,
    /// Indicator name (Indonesian).
    pub name: String,
    /// The level the entity gave itself (`None`: not applicable, or not answered).
    pub self_value: Option<AnswerInput>,
    /// The level the official assessment gave.
    pub official_value: Option<AnswerInput>,
    /// Points of the unit's official score the entity's own value would have moved it: positive
    /// where it was optimistic.
    pub points: Decimal,
}

/// One unit in a calibration report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitCalibration {
    /// The unit.
    pub unit_id: i64,
    /// Its self-assessed published score, when its sheet is complete.
    pub self_score: Option<PublishedScore>,
    /// Its official published score.
    pub official_score: PublishedScore,
    /// Self minus official, in points of the published score.
    pub difference: Option<Decimal>,
    /// The indicators on which the two disagree, the most optimistic first.
    pub gaps: Vec<IndicatorGap>,
}

/// A self-assessment compared with the official result of the same year, indicator by
/// indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Calibration {
    /// The year compared.
    pub year: CycleYear,
    /// The units assessed in both, in unit order.
    pub units: Vec<UnitCalibration>,
    /// Units scored higher by the entity than by the Ombudsman.
    pub optimistic_units: usize,
    /// The mean of (self − official) over the units scored in both, 2 decimals half-up.
    pub mean_difference: Option<Decimal>,
}

/// Compares an unofficial cycle's values of an entity with the official published ones of the
/// same year, unit by unit and indicator by indicator: where the entity was optimistic, and by
/// how many points of the official score.
pub async fn calibration(
    app: &App,
    key: CycleKey,
    entity_id: i64,
) -> Result<Calibration, PlanFailure> {
    let year = cycle_year(app, key).await?;
    let official_key = CycleKey::Official(year);
    let official_cycle = {
        let mut tx = app.pool.begin().await.map_err(AppError::from)?;
        let c = cycles::read(&mut tx, official_key).await;
        tx.commit().await.map_err(AppError::from)?;
        c
    };
    match official_cycle {
        Ok(c) if c.state.is_published() => {}
        Ok(_) | Err(AppError::CycleNotFound(_)) => return Err(PlanFailure::NotPublished(year)),
        Err(e) => return Err(e.into()),
    }
    let Some(own) = load(app, key, entity_id).await? else {
        return Ok(Calibration {
            year,
            units: Vec::new(),
            optimistic_units: 0,
            mean_difference: None,
        });
    };
    let official = load(app, official_key, entity_id).await?;
    let m = app.require_methodology(&own.cycle.methodology_code)?;
    let mut units = Vec::new();
    if let Some(official) = official {
        if official.cycle.methodology_code != own.cycle.methodology_code {
            return Err(PlanFailure::Plan(PlanError::ProductScored));
        }
        for (unit_id, theirs) in official.unit_ids.iter().zip(&official.entity.units) {
            let Some(at) = own.unit_ids.iter().position(|u| u == unit_id) else {
                continue;
            };
            let mine = &own.entity.units[at];
            let Ok(official_score) = score_unit(m, theirs) else {
                continue;
            };
            let self_score = score_unit(m, mine).ok().map(|s| s.published);
            let mut gaps = Vec::new();
            for id in m.indicator_ids() {
                let (a, b) = (mine.sheets[0].answer(m, id), theirs.sheets[0].answer(m, id));
                if a == b {
                    continue;
                }
                let indicator = m.indicator(id);
                let points = match a {
                    Some(answer) => {
                        let mut moved = theirs.clone();
                        moved.sheets[0]
                            .set_by_id(m, id, answer)
                            .map_err(|e| AppError::Inconsistent(e.to_string()))?;
                        score_unit(m, &moved).map_or(Decimal::ZERO, |s| {
                            s.score.value() - official_score.score.value()
                        })
                    }
                    None => Decimal::ZERO,
                };
                gaps.push(IndicatorGap {
                    indicator: indicator.code.clone(),
                    name: indicator.name.clone(),
                    self_value: a,
                    official_value: b,
                    points,
                });
            }
            gaps.sort_by_key(|g| std::cmp::Reverse(g.points));
            units.push(UnitCalibration {
                unit_id: *unit_id,
                difference: self_score.map(|s| s.value() - official_score.published.value()),
                self_score,
                official_score: official_score.published,
                gaps,
            });
        }
    }
    let differences: Vec<Decimal> = units.iter().filter_map(|u| u.difference).collect();
    let mean_difference = (!differences.is_empty()).then(|| {
        kepatuhan_core::score::round_published(
            differences.iter().sum::<Decimal>() / Decimal::from(differences.len()),
        )
    });
    Ok(Calibration {
        year,
        optimistic_units: differences.iter().filter(|d| **d > Decimal::ZERO).count(),
        mean_difference,
        units,
    })
}

/// The year of a cycle.
async fn cycle_year(app: &App, key: CycleKey) -> AppResult<CycleYear> {
    let mut tx = app.pool.begin().await?;
    let cycle = cycles::read(&mut tx, key).await?;
    tx.commit().await?;
    Ok(cycle.year)
}
