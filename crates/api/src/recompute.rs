//! Recomputing a cycle's results from its verified inputs with the core scoring engine.
//!
//! Used by the worker's recompute jobs, by publishing (which freezes results computed from
//! exactly the verified data), and by the import of past published scores. A recompute replaces
//! the rows of the cycle's current results revision in one transaction: readers see the old
//! results or the new ones, never a mix, and running it twice gives the same rows.

use std::collections::{BTreeMap, HashMap};

use kepatuhan_core::scoring::{
    AnswerInput, CycleInput, EntityInput, Sheet, SurveyResponse, SurveyTally, UnitInput,
    deficiencies, score_cycle,
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

/// The recompute a background job runs. Before publication it replaces the current revision.
/// After publication it computes a candidate revision and keeps it only if any published score,
/// grade or rank changed, so published results are never overwritten silently. Serialized per
/// cycle by the cycle's row lock; running it twice gives the same rows.
///
/// With `skip_if_current` (the job of one verification), an unpublished cycle whose stored
/// results already reflect its latest inputs is left alone: a burst of verifications queues one
/// job each, and the first to run covers all of them, so the rest return at the cost of one read.
pub async fn recompute_for_job(
    state: &AppState,
    year: CycleYear,
    skip_if_current: bool,
) -> ApiResult<JobOutcome> {
    let y = i32::from(year.get());
    let mut tx = state.pool.begin().await?;
    let cycle = sqlx::query!(
        "SELECT state, imported, results_revision FROM cycles WHERE year = $1 FOR UPDATE",
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
        if skip_if_current {
            let current = sqlx::query_scalar!(
                r#"SELECT c.input_revision = r.input_revision AS "current!"
                   FROM cycles c JOIN entity_results r ON r.cycle_year = c.year AND r.revision = c.results_revision
                   WHERE c.year = $1 LIMIT 1"#,
                y
            )
            .fetch_optional(&mut *tx)
            .await?;
            if current == Some(true) {
                return Ok(JobOutcome::Unchanged {
                    revision: cycle.results_revision,
                });
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

/// Recomputes inside the caller's transaction (the caller holds the cycle's row lock).
pub async fn recompute_cycle_in(
    tx: &mut Transaction<'_, Postgres>,
    state: &AppState,
    year: CycleYear,
) -> ApiResult<RecomputeSummary> {
    let y = i32::from(year.get());
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

    let (input, entity_ids, unit_rows) = load_inputs(tx, m, year).await?;
    let result = score_cycle(m, &input);

    // Unit rows.
    let mut u_ids = Vec::new();
    let mut u_scores = Vec::new();
    let mut u_exact = Vec::new();
    let mut u_grades = Vec::new();
    let mut u_breakdown = Vec::new();
    let mut u_deficiencies = Vec::new();
    let mut position_in_entity: HashMap<usize, usize> = HashMap::new();
    for row in &unit_rows {
        let k = position_in_entity.entry(row.entity_index).or_insert(0);
        let unit_result = &result.entities[row.entity_index].units[*k];
        let unit_input = &input.entities[row.entity_index].units[*k];
        *k += 1;
        let (Some(score), Some(grade)) = (&unit_result.score, &unit_result.grade) else {
            continue;
        };
        u_ids.push(row.unit_id);
        u_scores.push(score.published.value());
        u_exact.push(score.score.value());
        u_grades.push(grade.code.clone());
        u_breakdown.push(serde_json::to_value(&score.sheets).unwrap_or_default());
        u_deficiencies
            .push(serde_json::to_value(deficiencies(m, unit_input, score)).unwrap_or_default());
    }
    let revision = cycle.results_revision;
    clear_results(tx, y, revision).await?;
    sqlx::query!(
        "INSERT INTO unit_results (cycle_year, revision, unit_id, score, exact_score, grade_code, breakdown, deficiencies, input_revision)
         SELECT $1, $2, * , $8 FROM UNNEST($3::bigint[], $4::numeric[], $5::numeric[], $6::text[], $7::jsonb[], $9::jsonb[])",
        y,
        revision,
        &u_ids,
        &u_scores as &[Decimal],
        &u_exact as &[Decimal],
        &u_grades,
        &u_breakdown,
        cycle.input_revision,
        &u_deficiencies
    )
    .execute(&mut **tx)
    .await?;
    let entities_scored = write_entity_results(
        tx,
        y,
        revision,
        cycle.input_revision,
        &entity_rows(&entity_ids, &result),
    )
    .await?;
    Ok(RecomputeSummary {
        revision,
        input_revision: cycle.input_revision,
        units_scored: u_ids.len(),
        entities_scored,
    })
}

/// Loads a cycle's verified values and survey responses as core inputs: entities (in code
/// order) with their units, the entities' ids, and where each unit sits.
async fn load_inputs(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    year: CycleYear,
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
    // Units with a verified submission, grouped by entity.
    let units = sqlx::query!(
        r#"SELECT s.id AS submission_id, u.id AS unit_id, e.id AS entity_id, e.code, e.kind, e.province_code
           FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE s.cycle_year = $1 AND s.state = 'verified'
           ORDER BY e.code, u.id"#,
        y
    )
    .fetch_all(&mut **tx)
    .await?;
    let values = sqlx::query!(
        r#"SELECT v.submission_id, v.indicator_code, v.value, v.not_applicable
           FROM submission_values v JOIN submissions s ON s.id = v.submission_id
           WHERE s.cycle_year = $1 AND s.state = 'verified'"#,
        y
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
    let tallies = survey_tallies(tx, m, y).await?;

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

/// Tallies every unit's stored survey responses, per (unit, survey code).
async fn survey_tallies(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    year: i32,
) -> ApiResult<HashMap<(i64, String), SurveyTally>> {
    let rows = sqlx::query!(
        "SELECT unit_id, survey_code, answers FROM survey_responses WHERE cycle_year = $1 ORDER BY unit_id, survey_code, respondent",
        year
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut grouped: BTreeMap<(i64, String), Vec<SurveyResponse>> = BTreeMap::new();
    for r in rows {
        let response = SurveyResponse {
            answers: serde_json::from_value(r.answers).unwrap_or_default(),
        };
        grouped
            .entry((r.unit_id, r.survey_code))
            .or_default()
            .push(response);
    }
    let mut out = HashMap::new();
    for ((unit, code), responses) in grouped {
        let Some(id) = m.survey_id(&code) else {
            continue;
        };
        if let Ok(t) = SurveyTally::from_responses(m.survey(id), &responses) {
            out.insert((unit, code), t);
        }
    }
    Ok(out)
}
