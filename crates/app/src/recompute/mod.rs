//! Recomputing a cycle's results from its verified inputs with the core scoring engine.
//!
//! Used by the worker's recompute jobs, by publishing (which freezes results computed from
//! exactly the verified data), and by the import of past published scores. A recompute replaces
//! the rows of the cycle's current results revision in one transaction: readers see the old
//! results or the new ones, never a mix, and running it twice gives the same rows.

mod load;
mod write;

use std::collections::HashMap;

use kepatuhan_core::scoring::score_cycle;
use kepatuhan_core::{CycleYear, Methodology};
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use crate::App;
use crate::cycles::{self, Cycle, CycleKey};
use crate::error::{AppError, AppResult};
pub(crate) use load::{Loaded, VerifiedUnit, load_inputs};
pub use write::{EntityRow, clear_results, write_entity_results};
use write::{
    Scored, clear_entity_results, delete_units, entity_rows, mark_current, rerank, stored_digests,
    update_moved_ranks,
};

/// What a recompute wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecomputeSummary {
    /// Results revision written.
    pub revision: i32,
    /// Input revision the results reflect.
    pub input_revision: i64,
    /// Units with a score.
    pub units_scored: usize,
    /// Entities with a score.
    pub entities_scored: usize,
}

/// Recomputes a cycle that is not yet published, in its own transaction. Serialized per cycle by
/// the row lock on the cycle.
pub async fn recompute_cycle(app: &App, key: CycleKey) -> AppResult<RecomputeSummary> {
    let mut tx = app.pool.begin().await?;
    let cycle = cycles::lock(&mut tx, key).await?;
    if cycle.state.is_published() {
        return Err(AppError::ResultsFrozen(key));
    }
    let summary = recompute_cycle_in(&mut tx, app, &cycle).await?;
    tx.commit().await?;
    Ok(summary)
}

/// Records a correction of a published cycle's verified inputs, already written in the caller's
/// transaction (which holds the cycle's lock): moves the input revision, recomputes the whole
/// cycle into a new results revision (the published one stays readable) and publishes it, which
/// issues its certificates. Returns what was written.
pub async fn correct(
    tx: &mut Transaction<'_, Postgres>,
    app: &App,
    cycle: &mut Cycle,
) -> AppResult<RecomputeSummary> {
    cycles::bump_input_revision(tx, cycle).await?;
    cycles::new_results_revision(tx, cycle).await?;
    let summary = recompute_cycle_in(tx, app, cycle).await?;
    cycles::publish_revision(tx, cycle, summary.revision).await?;
    Ok(summary)
}

/// What a recompute job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JobOutcome {
    /// An unpublished cycle's current revision was recomputed.
    Recomputed(RecomputeSummary),
    /// A published cycle's results changed: a new revision was written and is now current.
    NewRevision(RecomputeSummary),
    /// Nothing was written: a published (or imported) cycle's results did not change, or an
    /// unpublished cycle's results already reflect its latest inputs.
    Unchanged {
        /// The current revision.
        revision: i32,
    },
}

/// Why a recompute runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An explicit or scheduled recompute: always the whole cycle.
    Full,
    /// One unit's verified data changed (a verification), bringing the cycle's inputs to
    /// `input_revision` when known.
    Unit {
        /// The unit.
        unit_id: i64,
        /// The cycle's input revision right after the change.
        input_revision: Option<i64>,
    },
}

impl Trigger {
    /// The trigger of a queued job.
    pub fn of(job: &crate::jobs::Recompute) -> Self {
        match job.unit_id {
            Some(unit_id) => Self::Unit {
                unit_id,
                input_revision: job.input_revision,
            },
            None => Self::Full,
        }
    }
}

/// The recompute a background job runs. Before publication it replaces the current revision.
/// After publication it computes a candidate revision and keeps it only if any published score,
/// grade or rank changed, so published results are never overwritten silently. Serialized per
/// cycle by the cycle's row lock; running it twice gives the same rows.
///
/// For the job of one verification ([`Trigger::Unit`]) on an unpublished cycle:
/// - results that already reflect the cycle's latest inputs are left alone: a burst of
///   verifications queues one job each, the first to run covers all of them, and the rest
///   return at the cost of one read;
/// - when the stored results reflect everything but this verification, only the unit's entity
///   is scored again and the ranks re-derived ([`recompute_entity_in`]), with the same rows a
///   full recompute would write (tested);
/// - otherwise the whole cycle is recomputed.
pub async fn recompute_for_job(
    app: &App,
    key: CycleKey,
    trigger: Trigger,
) -> AppResult<JobOutcome> {
    let mut tx = app.pool.begin().await?;
    let mut cycle = cycles::lock(&mut tx, key).await?;
    if cycle.imported {
        return Ok(JobOutcome::Unchanged {
            revision: cycle.results_revision,
        });
    }
    if !cycle.state.is_published() {
        if let Trigger::Unit {
            unit_id,
            input_revision,
        } = trigger
        {
            if cycle.results_are_current() {
                return Ok(JobOutcome::Unchanged {
                    revision: cycle.results_revision,
                });
            }
            if input_revision == Some(cycle.input_revision)
                && cycle.results_input_revision == cycle.input_revision - 1
                && let Some(summary) = recompute_entity_in(&mut tx, app, &cycle, unit_id).await?
            {
                tx.commit().await?;
                return Ok(JobOutcome::Recomputed(summary));
            }
        }
        let summary = recompute_cycle_in(&mut tx, app, &cycle).await?;
        tx.commit().await?;
        return Ok(JobOutcome::Recomputed(summary));
    }
    let current = cycle.results_revision;
    cycles::new_results_revision(&mut tx, &mut cycle).await?;
    let summary = recompute_cycle_in(&mut tx, app, &cycle).await?;
    let differs = sqlx::query_scalar!(
        r#"SELECT EXISTS (
               (SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_id = $1 AND revision = $2
                EXCEPT SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_id = $1 AND revision = $3)
               UNION ALL
               (SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_id = $1 AND revision = $3
                EXCEPT SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_id = $1 AND revision = $2)
           ) OR EXISTS (
               (SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_id = $1 AND revision = $2
                EXCEPT SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_id = $1 AND revision = $3)
               UNION ALL
               (SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_id = $1 AND revision = $3
                EXCEPT SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_id = $1 AND revision = $2)
           ) AS "differs!""#,
        cycle.id.get(),
        current,
        current + 1
    )
    .fetch_one(&mut *tx)
    .await?;
    if differs {
        // The published certificates of changed results are reissued from the new revision.
        cycles::publish_revision(&mut tx, &cycle, summary.revision).await?;
        tx.commit().await?;
        Ok(JobOutcome::NewRevision(summary))
    } else {
        tx.rollback().await?;
        Ok(JobOutcome::Unchanged { revision: current })
    }
}

/// One entity's verified inputs in a cycle, with its units' ids in the order of its inputs;
/// `None` when no unit of the entity has verified values (for plans and simulations).
pub async fn entity_inputs(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle: &Cycle,
    entity_id: i64,
) -> AppResult<Option<(kepatuhan_core::scoring::EntityInput, Vec<i64>)>> {
    let (input, _, unit_rows, _) = load_inputs(tx, m, cycle, Some(entity_id)).await?;
    Ok(input.entities.into_iter().next().map(|entity| {
        let ids = unit_rows.iter().map(|u| u.unit_id).collect();
        (entity, ids)
    }))
}

/// The methodology a locked cycle is scored with.
fn methodology<'a>(app: &'a App, cycle: &Cycle) -> AppResult<&'a Methodology> {
    app.require_methodology(&cycle.methodology_code)
}

/// The stored results of a cycle when they reflect its latest inputs (the caller holds the
/// cycle's row lock, so none can change meanwhile); `None` when they must be recomputed. Every
/// change of a cycle's inputs moves its `input_revision` (verifications, corrections, survey
/// responses, follow-ups); its sample and methodology are fixed once collection is closed.
pub async fn current_results_in(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &Cycle,
) -> AppResult<Option<RecomputeSummary>> {
    let current = sqlx::query!(
        r#"SELECT c.results_revision, c.input_revision,
                  (SELECT count(*) FROM unit_results r WHERE r.cycle_id = c.id AND r.revision = c.results_revision) AS "units!",
                  (SELECT count(*) FROM entity_results r WHERE r.cycle_id = c.id AND r.revision = c.results_revision) AS "entities!"
           FROM cycles c WHERE c.id = $1 AND c.results_input_revision = c.input_revision"#,
        cycle.id.get()
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(current
        .filter(|c| c.entities > 0)
        .map(|c| RecomputeSummary {
            revision: c.results_revision,
            input_revision: c.input_revision,
            units_scored: usize::try_from(c.units).unwrap_or(0),
            entities_scored: usize::try_from(c.entities).unwrap_or(0),
        }))
}

/// The working memory of a whole cycle's recompute, for its transaction only.
const RECOMPUTE_WORK_MEM: &str = "SET LOCAL work_mem = '64MB'";

/// Recomputes inside the caller's transaction (the caller holds the cycle's row lock).
pub async fn recompute_cycle_in(
    tx: &mut Transaction<'_, Postgres>,
    app: &App,
    cycle: &Cycle,
) -> AppResult<RecomputeSummary> {
    let y = cycle.id.get();
    let m = methodology(app, cycle)?;
    let (revision, input_revision) = (cycle.results_revision, cycle.input_revision);
    let started = std::time::Instant::now();
    // The whole cycle's sorts and aggregates (units in code order, survey answers grouped by
    // unit) outgrow Postgres's default 4 MB of working memory from about 10,000 units and
    // would spill to disk; this transaction gets enough to keep them in memory.
    sqlx::query(RECOMPUTE_WORK_MEM).execute(&mut **tx).await?;
    let (input, entity_ids, unit_rows, facts) = load_inputs(tx, m, cycle, None).await?;
    let loaded = started.elapsed();
    let result = score_cycle(m, &input);
    let scored = started.elapsed();
    // Unit rows whose result did not change are left alone, the others upserted, then the rows
    // of units no longer scored removed; entity rows are few and written afresh.
    let mut digests = stored_digests(tx, y, revision).await?;
    let units_scored = Scored {
        m,
        input: &input,
        result: &result,
        unit_rows: &unit_rows,
    }
    .write_units(tx, y, revision, input_revision, &mut digests)
    .await?;
    let gone: Vec<i64> = digests.into_keys().collect();
    delete_units(tx, y, revision, &gone).await?;
    clear_entity_results(tx, y, revision).await?;
    let entities = entity_rows(&entity_ids, &result);
    let entities_scored = write_entity_results(tx, y, revision, input_revision, &entities).await?;
    mark_current(tx, y, input_revision).await?;
    let written = started.elapsed();
    // The flags read what was just loaded and scored.
    let computed = (
        unit_scores(&result, &unit_rows),
        entities
            .iter()
            .map(|e| (e.entity_id, e.score.value()))
            .collect(),
    );
    let flags = crate::flags::refresh_loaded(
        tx,
        m,
        &app.flag_settings,
        cycle,
        crate::flags::Scope::Cycle,
        Some(facts),
        Some(computed),
    )
    .await?
    .unwrap_or_default();
    tracing::info!(
        cycle_id = y,
        revision,
        units = units_scored,
        flags = flags.current,
        open_flags = flags.open,
        flags_ms = between(written, started.elapsed()),
        load_ms = loaded.as_millis(),
        score_ms = between(loaded, scored),
        write_ms = between(scored, written),
        "cycle recomputed"
    );
    Ok(RecomputeSummary {
        revision,
        input_revision,
        units_scored,
        entities_scored,
    })
}

/// The incremental recompute after one unit's verified data changed, inside the caller's
/// transaction (which holds the cycle's row lock and has checked that the stored results reflect
/// every other input): scores that unit's entity again from its inputs, replaces its unit and
/// entity rows, and re-ranks from the stored scores of every other entity, updating only the
/// rows whose rank moved. The rows are those a full recompute would write. Returns `None` (the
/// caller recomputes in full) for product-scored methodologies or an unknown unit.
pub async fn recompute_entity_in(
    tx: &mut Transaction<'_, Postgres>,
    app: &App,
    cycle: &Cycle,
    unit_id: i64,
) -> AppResult<Option<RecomputeSummary>> {
    let y = cycle.id.get();
    let m = methodology(app, cycle)?;
    let (revision, input_revision) = (cycle.results_revision, cycle.input_revision);
    if m.aggregation() != kepatuhan_core::methodology::Aggregation::MeanOfUnits {
        return Ok(None);
    }
    let Some(entity_id) = sqlx::query_scalar!("SELECT entity_id FROM units WHERE id = $1", unit_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let (input, entity_ids, unit_rows, facts) = load_inputs(tx, m, cycle, Some(entity_id)).await?;
    let loaded = started.elapsed();
    let result = score_cycle(m, &input);
    let score_done = started.elapsed();
    sqlx::query!(
        "DELETE FROM unit_results WHERE cycle_id = $1 AND revision = $2 AND unit_id = ANY(ARRAY(SELECT id FROM units WHERE entity_id = $3))",
        y,
        revision,
        entity_id
    )
    .execute(&mut **tx)
    .await?;
    let deleted = started.elapsed();
    let units_scored = Scored {
        m,
        input: &input,
        result: &result,
        unit_rows: &unit_rows,
    }
    .write_units(tx, y, revision, input_revision, &mut HashMap::new())
    .await?;

    let units_written = started.elapsed();
    let mine = entity_rows(&entity_ids, &result).into_iter().next();
    let my_rank_input = match (&mine, input.entities.first()) {
        (Some(row), Some(e)) => Some((e.kind, e.province.as_deref(), row.score)),
        _ => None,
    };
    let (stored, ranks) = rerank(tx, y, revision, entity_id, my_rank_input).await?;
    let ranked = started.elapsed();

    sqlx::query!(
        "DELETE FROM entity_results WHERE cycle_id = $1 AND revision = $2 AND entity_id = $3",
        y,
        revision,
        entity_id
    )
    .execute(&mut **tx)
    .await?;
    let entities_scored = match mine {
        Some(mut row) if my_rank_input.is_some() => {
            if let Some(r) = ranks.last() {
                row.ranks = *r;
            }
            write_entity_results(tx, y, revision, input_revision, &[row]).await?
        }
        _ => 0,
    };
    let moved = update_moved_ranks(tx, y, revision, &stored, &ranks).await?;
    mark_current(tx, y, input_revision).await?;
    crate::flags::refresh_loaded(
        tx,
        m,
        &app.flag_settings,
        cycle,
        crate::flags::Scope::Entity(entity_id),
        Some(facts),
        None,
    )
    .await?;
    tracing::info!(
        cycle_id = y,
        revision,
        entity = entity_id,
        ranks_moved = moved,
        load_ms = loaded.as_millis(),
        score_ms = between(loaded, score_done),
        delete_ms = between(score_done, deleted),
        units_ms = between(deleted, units_written),
        rank_ms = between(units_written, ranked),
        write_ms = between(ranked, started.elapsed()),
        total_ms = started.elapsed().as_millis(),
        "entity recomputed"
    );
    Ok(Some(RecomputeSummary {
        revision,
        input_revision,
        units_scored,
        entities_scored,
    }))
}

/// The published score of each scored unit of a result, by unit id.
fn unit_scores(
    result: &kepatuhan_core::scoring::CycleResult,
    unit_rows: &[load::UnitRow],
) -> HashMap<i64, rust_decimal::Decimal> {
    let mut position_in_entity: HashMap<usize, usize> = HashMap::new();
    unit_rows
        .iter()
        .filter_map(|row| {
            let k = position_in_entity.entry(row.entity_index).or_insert(0);
            let unit = &result.entities[row.entity_index].units[*k];
            *k += 1;
            Some((row.unit_id, unit.score.as_ref()?.published.value()))
        })
        .collect()
}

/// Milliseconds from one point of a timed run to a later one (for phase logs).
fn between(from: std::time::Duration, to: std::time::Duration) -> u128 {
    to.saturating_sub(from).as_millis()
}

/// One results revision of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleRevision {
    /// The cycle.
    pub id: cycles::CycleId,
    /// Its year.
    pub year: CycleYear,
    /// The results revision.
    pub revision: i32,
}

/// Published cycles with field data whose current results call an entity award-eligible below
/// its methodology's award minimum: results written before the award rule was data of the
/// methodology. Each needs one full recompute; its new revision (eligibility differs) withdraws
/// the certificates the rule excludes, with their reason.
pub async fn outdated_award_eligibility(app: &App) -> AppResult<Vec<CycleRevision>> {
    let rows = sqlx::query!(
        r#"SELECT c.id, c.year, c.methodology_code, c.results_revision,
                  array_agg(DISTINCT r.grade_code) AS "grades!"
           FROM cycles c
           JOIN entity_results r ON r.cycle_id = c.id AND r.revision = c.results_revision
           WHERE c.state = 'published' AND NOT c.imported AND r.award_eligible
           GROUP BY c.id, c.year, c.methodology_code, c.results_revision
           ORDER BY c.year, c.id"#
    )
    .fetch_all(&app.pool)
    .await?;
    let mut outdated = Vec::new();
    for r in rows {
        let Some(m) = app.methodology(&r.methodology_code) else {
            continue;
        };
        let minimum = m.award_minimum_band();
        if r.grades.iter().any(|g| !m.bands().at_least(g, minimum))
            && let Ok(year) = CycleYear::new(i64::from(r.year))
        {
            outdated.push(CycleRevision {
                id: cycles::CycleId(r.id),
                year,
                revision: r.results_revision,
            });
        }
    }
    Ok(outdated)
}
