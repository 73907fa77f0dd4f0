//! Recomputing a cycle's results from its verified inputs with the core scoring engine.
//!
//! Used by the worker's recompute jobs, by publishing (which freezes results computed from
//! exactly the verified data), and by the import of past published scores. A recompute replaces
//! the rows of the cycle's current results revision in one transaction: readers see the old
//! results or the new ones, never a mix, and running it twice gives the same rows.

use std::collections::{BTreeMap, HashMap};

use kepatuhan_core::methodology::SurveyMethod;
use kepatuhan_core::scoring::{
    AnswerInput, CycleInput, EntityInput, Sheet, SurveyTally, UnitInput, deficiencies, score_cycle,
};
use kepatuhan_core::scoring::{FollowUpStatus, Grade, Ranks};
use kepatuhan_core::{CycleYear, EntityKind, Methodology, PublishedScore};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// What a recompute wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
pub async fn recompute_cycle(state: &AppState, year: CycleYear) -> ApiResult<RecomputeSummary> {
    let mut tx = state.pool.begin().await?;
    let cycle_state = sqlx::query_scalar!(
        "SELECT state FROM cycles WHERE year = $1 FOR UPDATE",
        i32::from(year.get())
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    if cycle_state == "published" {
        return Err(ApiError::conflict(
            "results-frozen",
            format!("the results of {year} are published and frozen"),
        ));
    }
    let summary = recompute_cycle_in(&mut tx, state, year).await?;
    tx.commit().await?;
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
    state: &AppState,
    year: CycleYear,
    trigger: Trigger,
) -> ApiResult<JobOutcome> {
    let y = i32::from(year.get());
    let mut tx = state.pool.begin().await?;
    let cycle = sqlx::query!(
        "SELECT state, imported, results_revision, input_revision, results_input_revision FROM cycles WHERE year = $1 FOR UPDATE",
        y
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    if cycle.imported {
        return Ok(JobOutcome::Unchanged {
            revision: cycle.results_revision,
        });
    }
    if cycle.state != "published" {
        if let Trigger::Unit {
            unit_id,
            input_revision,
        } = trigger
        {
            if cycle.results_input_revision == cycle.input_revision {
                return Ok(JobOutcome::Unchanged {
                    revision: cycle.results_revision,
                });
            }
            if input_revision == Some(cycle.input_revision)
                && cycle.results_input_revision == cycle.input_revision - 1
                && let Some(summary) = recompute_entity_in(&mut tx, state, year, unit_id).await?
            {
                tx.commit().await?;
                return Ok(JobOutcome::Recomputed(summary));
            }
        }
        let summary = recompute_cycle_in(&mut tx, state, year).await?;
        tx.commit().await?;
        return Ok(JobOutcome::Recomputed(summary));
    }
    let current = cycle.results_revision;
    sqlx::query!(
        "UPDATE cycles SET results_revision = results_revision + 1 WHERE year = $1",
        y
    )
    .execute(&mut *tx)
    .await?;
    let summary = recompute_cycle_in(&mut tx, state, year).await?;
    let differs = sqlx::query_scalar!(
        r#"SELECT EXISTS (
               (SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_year = $1 AND revision = $2
                EXCEPT SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_year = $1 AND revision = $3)
               UNION ALL
               (SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_year = $1 AND revision = $3
                EXCEPT SELECT unit_id, score, grade_code FROM unit_results WHERE cycle_year = $1 AND revision = $2)
           ) OR EXISTS (
               (SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_year = $1 AND revision = $2
                EXCEPT SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_year = $1 AND revision = $3)
               UNION ALL
               (SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_year = $1 AND revision = $3
                EXCEPT SELECT entity_id, score, grade_code, grade_label, award_eligible, national_rank, provincial_rank
                  FROM entity_results WHERE cycle_year = $1 AND revision = $2)
           ) AS "differs!""#,
        y,
        current,
        current + 1
    )
    .fetch_one(&mut *tx)
    .await?;
    if differs {
        // The published certificates of changed results are reissued from the new revision.
        let job = crate::jobs::IssueCertificates {
            year: year.get(),
            revision: summary.revision,
            traceparent: crate::telemetry::current_traceparent(),
        };
        let key = format!("certificates-{}-{}", year.get(), summary.revision);
        crate::jobs::enqueue(&mut tx, &job, Some(&key)).await?;
        tx.commit().await?;
        Ok(JobOutcome::NewRevision(summary))
    } else {
        tx.rollback().await?;
        Ok(JobOutcome::Unchanged { revision: current })
    }
}

struct UnitRow {
    unit_id: i64,
    entity_index: usize,
}

/// The cycle's methodology, revisions, as a recompute reads them under the cycle's row lock.
struct CycleInfo<'m> {
    m: &'m Methodology,
    results_revision: i32,
    input_revision: i64,
}

async fn cycle_info<'s>(
    tx: &mut Transaction<'_, Postgres>,
    state: &'s AppState,
    y: i32,
) -> ApiResult<CycleInfo<'s>> {
    let cycle = sqlx::query!(
        "SELECT methodology_code, results_revision, input_revision FROM cycles WHERE year = $1",
        y
    )
    .fetch_one(&mut **tx)
    .await?;
    let m = state.methodology(&cycle.methodology_code).ok_or_else(|| {
        ApiError::conflict(
            "unknown-methodology",
            format!(
                "methodology `{}` is not shipped in this build",
                cycle.methodology_code
            ),
        )
    })?;
    Ok(CycleInfo {
        m,
        results_revision: cycle.results_revision,
        input_revision: cycle.input_revision,
    })
}

/// Unit rows written per statement: bounds the memory taken by their JSON (≈ 5 KB a unit).
const UNIT_ROWS_PER_INSERT: usize = 500;

/// A scored cycle (or entity) with where each of its units sits.
struct Scored<'a> {
    m: &'a Methodology,
    input: &'a CycleInput,
    result: &'a kepatuhan_core::scoring::CycleResult,
    unit_rows: &'a [UnitRow],
}

impl Scored<'_> {
    /// Inserts the scored units' result rows, [`UNIT_ROWS_PER_INSERT`] at a time, with their
    /// breakdown and deficiency lists serialized straight to JSON text; returns how many.
    async fn write_units(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        y: i32,
        revision: i32,
        input_revision: i64,
    ) -> ApiResult<usize> {
        let mut written = 0;
        let mut chunk = UnitColumns::default();
        let mut position_in_entity: HashMap<usize, usize> = HashMap::new();
        for row in self.unit_rows {
            let k = position_in_entity.entry(row.entity_index).or_insert(0);
            let unit_result = &self.result.entities[row.entity_index].units[*k];
            let unit_input = &self.input.entities[row.entity_index].units[*k];
            *k += 1;
            let (Some(score), Some(grade)) = (&unit_result.score, &unit_result.grade) else {
                continue;
            };
            chunk.ids.push(row.unit_id);
            chunk.scores.push(score.published.value());
            chunk.exact.push(score.score.value());
            chunk.grades.push(grade.code.clone());
            chunk.breakdown.push(json_text(&score.sheets));
            chunk
                .deficiencies
                .push(json_text(&deficiencies(self.m, unit_input, score)));
            if chunk.ids.len() == UNIT_ROWS_PER_INSERT {
                written += chunk.ids.len();
                std::mem::take(&mut chunk)
                    .insert(tx, y, revision, input_revision)
                    .await?;
            }
        }
        if !chunk.ids.is_empty() {
            written += chunk.ids.len();
            chunk.insert(tx, y, revision, input_revision).await?;
        }
        Ok(written)
    }
}

/// A value as JSON text (`null` if it cannot be serialized, which our result types always can).
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Unit result rows, column by column.
#[derive(Default)]
struct UnitColumns {
    ids: Vec<i64>,
    scores: Vec<Decimal>,
    exact: Vec<Decimal>,
    grades: Vec<String>,
    breakdown: Vec<String>,
    deficiencies: Vec<String>,
}

impl UnitColumns {
    async fn insert(
        self,
        tx: &mut Transaction<'_, Postgres>,
        y: i32,
        revision: i32,
        input_revision: i64,
    ) -> ApiResult<()> {
        sqlx::query!(
            "INSERT INTO unit_results (cycle_year, revision, unit_id, score, exact_score, grade_code, breakdown, deficiencies, input_revision)
             SELECT $1, $2, t.unit_id, t.score, t.exact_score, t.grade_code, t.breakdown::jsonb, t.deficiencies::jsonb, $8
             FROM UNNEST($3::bigint[], $4::numeric[], $5::numeric[], $6::text[], $7::text[], $9::text[])
                  AS t(unit_id, score, exact_score, grade_code, breakdown, deficiencies)",
            y,
            revision,
            &self.ids,
            &self.scores as &[Decimal],
            &self.exact as &[Decimal],
            &self.grades,
            &self.breakdown,
            input_revision,
            &self.deficiencies
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Records that the cycle's current results reflect `input_revision`.
async fn mark_current(
    tx: &mut Transaction<'_, Postgres>,
    y: i32,
    input_revision: i64,
) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE cycles SET results_input_revision = $2 WHERE year = $1",
        y,
        input_revision
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored results of a cycle when they reflect its latest inputs (the caller holds the
/// cycle's row lock, so none can change meanwhile); `None` when they must be recomputed. Every
/// change of a cycle's inputs moves its `input_revision` (verifications, corrections, survey
/// responses, follow-ups); its sample and methodology are fixed once collection is closed.
pub async fn current_results_in(
    tx: &mut Transaction<'_, Postgres>,
    year: CycleYear,
) -> ApiResult<Option<RecomputeSummary>> {
    let current = sqlx::query!(
        r#"SELECT c.results_revision, c.input_revision,
                  (SELECT count(*) FROM unit_results r WHERE r.cycle_year = c.year AND r.revision = c.results_revision) AS "units!",
                  (SELECT count(*) FROM entity_results r WHERE r.cycle_year = c.year AND r.revision = c.results_revision) AS "entities!"
           FROM cycles c WHERE c.year = $1 AND c.results_input_revision = c.input_revision"#,
        i32::from(year.get())
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

/// Recomputes inside the caller's transaction (the caller holds the cycle's row lock).
pub async fn recompute_cycle_in(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    year: CycleYear,
) -> ApiResult<RecomputeSummary> {
    let y = i32::from(year.get());
    let CycleInfo {
        m,
        results_revision: revision,
        input_revision,
    } = cycle_info(tx, state, y).await?;
    let started = std::time::Instant::now();
    let (input, entity_ids, unit_rows) = load_inputs(tx, m, year, None).await?;
    let loaded = started.elapsed();
    let result = score_cycle(m, &input);
    let scored = started.elapsed();
    clear_results(tx, y, revision).await?;
    let units_scored = Scored {
        m,
        input: &input,
        result: &result,
        unit_rows: &unit_rows,
    }
    .write_units(tx, y, revision, input_revision)
    .await?;
    let entities_scored = write_entity_results(
        tx,
        y,
        revision,
        input_revision,
        &entity_rows(&entity_ids, &result),
    )
    .await?;
    mark_current(tx, y, input_revision).await?;
    tracing::info!(
        year = y,
        revision,
        units = units_scored,
        load_ms = loaded.as_millis(),
        score_ms = between(loaded, scored),
        write_ms = between(scored, started.elapsed()),
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
    state: &AppState,
    year: CycleYear,
    unit_id: i64,
) -> ApiResult<Option<RecomputeSummary>> {
    let y = i32::from(year.get());
    let CycleInfo {
        m,
        results_revision: revision,
        input_revision,
    } = cycle_info(tx, state, y).await?;
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
    let (input, entity_ids, unit_rows) = load_inputs(tx, m, year, Some(entity_id)).await?;
    let loaded = started.elapsed();
    let result = score_cycle(m, &input);
    let score_done = started.elapsed();
    sqlx::query!(
        "DELETE FROM unit_results WHERE cycle_year = $1 AND revision = $2 AND unit_id = ANY(ARRAY(SELECT id FROM units WHERE entity_id = $3))",
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
    .write_units(tx, y, revision, input_revision)
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
        "DELETE FROM entity_results WHERE cycle_year = $1 AND revision = $2 AND entity_id = $3",
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
    tracing::info!(
        year = y,
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

/// Milliseconds from one point of a timed run to a later one (for phase logs).
fn between(from: std::time::Duration, to: std::time::Duration) -> u128 {
    to.saturating_sub(from).as_millis()
}

/// Ranks every entity again from the stored scores of all but `entity_id` and, last, `mine`
/// (that entity's kind, province and new score, if it is scored). Returns the others' stored
/// ranks and the new ranks, in the same order.
async fn rerank(
    tx: &mut Transaction<'_, Postgres>,
    y: i32,
    revision: i32,
    entity_id: i64,
    mine: Option<(EntityKind, Option<&str>, PublishedScore)>,
) -> ApiResult<(Vec<StoredRanks>, Vec<Ranks>)> {
    let others = sqlx::query!(
        r#"SELECT r.entity_id, e.kind, e.province_code, r.score, r.national_rank, r.national_of, r.provincial_rank, r.provincial_of
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           WHERE r.cycle_year = $1 AND r.revision = $2 AND r.entity_id <> $3"#,
        y,
        revision,
        entity_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut inputs = Vec::with_capacity(others.len() + 1);
    for o in &others {
        inputs.push(kepatuhan_core::scoring::RankInput {
            kind: o.kind.parse().unwrap_or(EntityKind::Regency),
            province: o.province_code.as_deref(),
            score: PublishedScore::new(o.score)
                .map_err(|e| ApiError::Internal(crate::error::InternalError(Box::new(e))))?,
        });
    }
    if let Some((kind, province, score)) = mine {
        inputs.push(kepatuhan_core::scoring::RankInput {
            kind,
            province,
            score,
        });
    }
    let ranks = kepatuhan_core::scoring::rank_entities(&inputs);
    let stored = others
        .iter()
        .map(|o| StoredRanks {
            entity_id: o.entity_id,
            national: (o.national_rank, o.national_of),
            provincial: o.provincial_rank.zip(o.provincial_of),
        })
        .collect();
    Ok((stored, ranks))
}

/// An entity's ranks as stored.
struct StoredRanks {
    entity_id: i64,
    national: (i32, i32),
    provincial: Option<(i32, i32)>,
}

/// Writes the ranks of the entities (in `stored` order, matching `ranks`) whose rank moved, and
/// returns how many.
async fn update_moved_ranks(
    tx: &mut Transaction<'_, Postgres>,
    y: i32,
    revision: i32,
    stored: &[StoredRanks],
    ranks: &[kepatuhan_core::scoring::Ranks],
) -> ApiResult<usize> {
    let (mut ids, mut n_rank, mut n_of, mut p_rank, mut p_of) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    for (o, r) in stored.iter().zip(ranks) {
        let national = (as_i32(r.national.rank), as_i32(r.national.of));
        let provincial = r.provincial.map(|p| (as_i32(p.rank), as_i32(p.of)));
        if o.national != national || o.provincial != provincial {
            ids.push(o.entity_id);
            n_rank.push(national.0);
            n_of.push(national.1);
            p_rank.push(provincial.map(|p| p.0));
            p_of.push(provincial.map(|p| p.1));
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        "UPDATE entity_results r
            SET national_rank = t.national_rank, national_of = t.national_of,
                provincial_rank = t.provincial_rank, provincial_of = t.provincial_of
           FROM UNNEST($3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[])
                AS t(entity_id, national_rank, national_of, provincial_rank, provincial_of)
          WHERE r.cycle_year = $1 AND r.revision = $2 AND r.entity_id = t.entity_id",
        y,
        revision,
        &ids,
        &n_rank,
        &n_of,
        &p_rank as &[Option<i32>],
        &p_of as &[Option<i32>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(ids.len())
}

/// The units with a verified submission in cycle `y` (of one entity, or all), grouped by entity
/// in code order.
async fn verified_units(
    tx: &mut Transaction<'_, Postgres>,
    y: i32,
    entity: Option<i64>,
) -> ApiResult<Vec<VerifiedUnit>> {
    // Units with a verified submission, grouped by entity. One entity's are looked up from the
    // entity's unit ids, so the plan stays a few index probes even when the planner's statistics
    // are stale (as after a national upload, before autovacuum has analyzed the tables).
    Ok(match entity {
        None => {
            sqlx::query_as!(
                VerifiedUnit,
                r#"SELECT s.id AS submission_id, u.id AS unit_id, e.id AS entity_id, e.code, e.kind, e.province_code
                   FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
                   WHERE s.cycle_year = $1 AND s.state = 'verified'
                   ORDER BY e.code, u.id"#,
                y
            )
            .fetch_all(&mut **tx)
            .await?
        }
        Some(entity) => {
            sqlx::query_as!(
                VerifiedUnit,
                r#"SELECT s.id AS submission_id, u.id AS unit_id, e.id AS entity_id, e.code, e.kind, e.province_code
                   FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
                   WHERE s.cycle_year = $1 AND s.unit_id = ANY(ARRAY(SELECT id FROM units WHERE entity_id = $2))
                     AND s.state = 'verified'
                   ORDER BY u.id"#,
                y,
                entity
            )
            .fetch_all(&mut **tx)
            .await?
        }
    })
}

/// A unit with a verified submission, and its entity.
struct VerifiedUnit {
    submission_id: i64,
    unit_id: i64,
    entity_id: i64,
    code: String,
    kind: String,
    province_code: Option<String>,
}

/// Loads a cycle's verified values and survey responses as core inputs: entities (in code
/// order) with their units, the entities' ids, and where each unit sits.
async fn load_inputs(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    year: CycleYear,
    entity: Option<i64>,
) -> ApiResult<(CycleInput, Vec<i64>, Vec<UnitRow>)> {
    let y = i32::from(year.get());
    let follow_ups: HashMap<i64, FollowUpStatus> = sqlx::query!(
        "SELECT entity_id, findings, followed_up FROM entity_follow_up WHERE cycle_year = $1",
        y
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| {
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        (
            r.entity_id,
            FollowUpStatus {
                findings: count(r.findings),
                followed_up: count(r.followed_up),
            },
        )
    })
    .collect();
    let units = verified_units(tx, y, entity).await?;
    // The verified submissions' values and the units' survey tallies, looked up by the ids just
    // read: one plan serves the whole cycle and one entity alike.
    let submission_ids: Vec<i64> = units.iter().map(|u| u.submission_id).collect();
    let unit_ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let values = sqlx::query!(
        r#"SELECT submission_id, indicator_code, value, not_applicable
           FROM submission_values WHERE submission_id = ANY($1)"#,
        &submission_ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut answers: HashMap<i64, Vec<(String, AnswerInput)>> = HashMap::new();
    for v in values {
        let a = match (v.not_applicable, v.value) {
            (true, _) | (false, None) => AnswerInput::NotApplicable,
            (false, Some(x)) => AnswerInput::Value(u8::try_from(x).unwrap_or(u8::MAX)),
        };
        answers
            .entry(v.submission_id)
            .or_default()
            .push((v.indicator_code, a));
    }
    let tallies = survey_tallies(tx, m, y, &unit_ids).await?;

    let mut entities: Vec<EntityInput> = Vec::new();
    let mut entity_ids: Vec<i64> = Vec::new();
    let mut unit_rows: Vec<UnitRow> = Vec::new();
    for u in &units {
        if entity_ids.last() != Some(&u.entity_id) {
            entity_ids.push(u.entity_id);
            entities.push(EntityInput {
                code: u.code.clone(),
                kind: u.kind.parse().unwrap_or(EntityKind::Regency),
                province: u.province_code.clone(),
                follow_up: follow_ups.get(&u.entity_id).copied(),
                units: Vec::new(),
            });
        }
        let sheet = Sheet::from_answers(
            m,
            answers
                .get(&u.submission_id)
                .into_iter()
                .flatten()
                .map(|(c, a)| (c.as_str(), *a)),
        )
        .unwrap_or_else(|_| Sheet::new(m));
        let mut input = UnitInput::new(m, sheet);
        for id in m.survey_ids() {
            if let Some(t) = tallies.get(&(u.unit_id, m.survey(id).code.clone())) {
                input.set_survey(id, t.clone());
            }
        }
        let entity_index = entities.len() - 1;
        entities[entity_index].units.push(input);
        unit_rows.push(UnitRow {
            unit_id: u.unit_id,
            entity_index,
        });
    }
    Ok((CycleInput { year, entities }, entity_ids, unit_rows))
}

/// Deletes the result rows of one revision of a cycle (before they are written again).
pub(crate) async fn clear_results(
    tx: &mut Transaction<'_, Postgres>,
    year: i32,
    revision: i32,
) -> ApiResult<()> {
    sqlx::query!(
        "DELETE FROM unit_results WHERE cycle_year = $1 AND revision = $2",
        year,
        revision
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "DELETE FROM entity_results WHERE cycle_year = $1 AND revision = $2",
        year,
        revision
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A scored entity, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct EntityRow {
    pub entity_id: i64,
    /// Per-dimension means of the units' scores: `[{ "code": "input", "score": "81.25" }]`.
    pub breakdown: serde_json::Value,
    pub score: PublishedScore,
    pub grade: Grade,
    pub ranks: Ranks,
    pub units_scored: i32,
}

/// The scored entities of a cycle result, with their database ids.
fn entity_rows(
    entity_ids: &[i64],
    result: &kepatuhan_core::scoring::CycleResult,
) -> Vec<EntityRow> {
    entity_ids
        .iter()
        .zip(&result.entities)
        .filter_map(|(id, e)| {
            Some(EntityRow {
                entity_id: *id,
                breakdown: dimension_means(e),
                score: e.score?,
                grade: e.grade.clone()?,
                ranks: e.ranks?,
                units_scored: i32::try_from(e.units.iter().filter(|u| u.score.is_some()).count())
                    .unwrap_or(i32::MAX),
            })
        })
        .collect()
}

/// The mean of each dimension's score over an entity's scored units (and their product sheets),
/// rounded half-up to 2 decimals for display; dimensions that applied nowhere are left out.
fn dimension_means(e: &kepatuhan_core::scoring::EntityResult) -> serde_json::Value {
    let mut sums: Vec<(String, Decimal, u32)> = Vec::new();
    for sheet in e
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
    serde_json::Value::Array(
        sums.into_iter()
            .map(|(code, sum, n)| serde_json::json!({ "code": code, "score": kepatuhan_core::score::round_published(sum / Decimal::from(n)) }))
            .collect(),
    )
}

/// Writes entity result rows (scored entities only) and returns how many.
pub(crate) async fn write_entity_results(
    tx: &mut Transaction<'_, Postgres>,
    year: i32,
    revision: i32,
    input_revision: i64,
    rows: &[EntityRow],
) -> ApiResult<usize> {
    let mut ids = Vec::new();
    let mut scores = Vec::new();
    let mut codes = Vec::new();
    let mut labels = Vec::new();
    let mut zones: Vec<Option<String>> = Vec::new();
    let mut eligible = Vec::new();
    let mut n_rank = Vec::new();
    let mut n_of = Vec::new();
    let mut p_rank: Vec<Option<i32>> = Vec::new();
    let mut p_of: Vec<Option<i32>> = Vec::new();
    let mut units_scored = Vec::new();
    let mut breakdowns = Vec::new();
    for EntityRow {
        entity_id,
        breakdown,
        score,
        grade,
        ranks,
        units_scored: n,
    } in rows
    {
        ids.push(*entity_id);
        scores.push(score.value());
        codes.push(grade.code.clone());
        labels.push(grade.label.clone());
        zones.push(grade.zone.map(|z| z.to_string()));
        eligible.push(grade.award_eligible);
        n_rank.push(i32::try_from(ranks.national.rank).unwrap_or(i32::MAX));
        n_of.push(i32::try_from(ranks.national.of).unwrap_or(i32::MAX));
        p_rank.push(
            ranks
                .provincial
                .map(|r| i32::try_from(r.rank).unwrap_or(i32::MAX)),
        );
        p_of.push(
            ranks
                .provincial
                .map(|r| i32::try_from(r.of).unwrap_or(i32::MAX)),
        );
        units_scored.push(*n);
        breakdowns.push(breakdown.clone());
    }
    sqlx::query!(
        "INSERT INTO entity_results (cycle_year, revision, entity_id, score, grade_code, grade_label, zone, award_eligible,
                                     national_rank, national_of, provincial_rank, provincial_of, units_scored, breakdown, input_revision)
         SELECT $1, $2, *, $14 FROM UNNEST($3::bigint[], $4::numeric[], $5::text[], $6::text[], $7::text[], $8::bool[],
                                            $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $15::jsonb[])",
        year,
        revision,
        &ids,
        &scores as &[Decimal],
        &codes,
        &labels,
        &zones as &[Option<String>],
        &eligible,
        &n_rank,
        &n_of,
        &p_rank as &[Option<i32>],
        &p_of as &[Option<i32>],
        &units_scored,
        input_revision,
        &breakdowns
    )
    .execute(&mut **tx)
    .await?;
    Ok(ids.len())
}

/// Tallies the stored survey responses of `units`, per (unit, survey code), in the database:
/// for a yes/no (maladministration) survey, the respondents who reported none and those who
/// reported some; for a Likert survey, the answers at each level. Only counts leave the
/// database, not the ≈ 100,000 responses of a national cycle. Responses were checked against
/// the cycle's methodology when they were stored (`surveys::upload`), so counting is all that is
/// left; answers that are not a level of the scale are not counted.
async fn survey_tallies(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    year: i32,
    units: &[i64],
) -> ApiResult<HashMap<(i64, String), SurveyTally>> {
    let (mut yes_no, mut likert) = (Vec::new(), Vec::new());
    for id in m.survey_ids() {
        let survey = m.survey(id);
        match survey.method {
            SurveyMethod::NoMaladministrationShare => yes_no.push(survey.code.clone()),
            SurveyMethod::Likert { .. } => likert.push(survey.code.clone()),
        }
    }
    let mut out = HashMap::new();
    if !yes_no.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT unit_id, survey_code,
                      count(*) FILTER (WHERE NOT answers @? '$.* ? (@ == true)') AS "clean!",
                      count(*) FILTER (WHERE answers @? '$.* ? (@ == true)') AS "reported!"
               FROM survey_responses
               WHERE cycle_year = $1 AND unit_id = ANY($2) AND survey_code = ANY($3)
               GROUP BY unit_id, survey_code"#,
            year,
            units,
            &yes_no
        )
        .fetch_all(&mut **tx)
        .await?;
        for r in rows {
            let Some(id) = m.survey_id(&r.survey_code) else {
                continue;
            };
            let counts = [r.clean, r.reported].map(|n| u64::try_from(n).unwrap_or(0));
            if let Ok(t) = SurveyTally::from_counts(m.survey(id), counts.to_vec()) {
                out.insert((r.unit_id, r.survey_code), t);
            }
        }
    }
    if !likert.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT r.unit_id, r.survey_code, a.value::text AS "level!", count(*) AS "answers!"
               FROM survey_responses r CROSS JOIN LATERAL jsonb_each(r.answers) AS a
               WHERE r.cycle_year = $1 AND r.unit_id = ANY($2) AND r.survey_code = ANY($3)
               GROUP BY 1, 2, 3"#,
            year,
            units,
            &likert
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut counts: BTreeMap<(i64, String), Vec<u64>> = BTreeMap::new();
        for r in rows {
            let Some(id) = m.survey_id(&r.survey_code) else {
                continue;
            };
            let SurveyMethod::Likert { levels } = &m.survey(id).method else {
                continue;
            };
            let position = r
                .level
                .parse::<u8>()
                .ok()
                .and_then(|v| levels.iter().position(|l| l.value == v));
            let Some(position) = position else {
                continue;
            };
            let tally = counts
                .entry((r.unit_id, r.survey_code))
                .or_insert_with(|| vec![0; levels.len()]);
            tally[position] += u64::try_from(r.answers).unwrap_or(0);
        }
        for ((unit, code), tally) in counts {
            if let Some(id) = m.survey_id(&code)
                && let Ok(t) = SurveyTally::from_counts(m.survey(id), tally)
            {
                out.insert((unit, code), t);
            }
        }
    }
    Ok(out)
}
