//! Corrections of a verified unit's inputs: its indicator values, its survey responses, or both.
//! A verified unit's inputs are final; a correction is the one way to change them, always with a
//! reason that goes into the audit trail. In a published cycle it is recomputed into a new
//! results revision whose certificates are reconciled; before publication it moves the input
//! revision and schedules the unit's recompute, like a verification.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ValueInput;
use super::audit::audit;
use super::values::{validate_values, write_values};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{CODE_MAX, FieldError, Problem, text_problem};
use crate::routes::cycles;
use crate::routes::surveys::{ResponseBatch, Row, check_rows, store_rows, surveys_of};
use kepatuhan_app::cycles::{self as app_cycles, Cycle, InputChange};
use kepatuhan_app::recompute;
use kepatuhan_core::{CycleState, Methodology};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(correct))
}

/// Body of `POST /cycles/{year}/corrections`: at least one of `values`, `survey_responses` and
/// `removed_respondents` is not empty.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// The unit whose verified inputs are corrected.
    pub unit_id: i64,
    /// Why (kept in the audit trail).
    pub reason: String,
    /// Corrected indicator values.
    #[serde(default)]
    pub values: Vec<ValueInput>,
    /// Corrected survey responses: each replaces the answers of its respondent, or adds one.
    #[serde(default)]
    pub survey_responses: Vec<ResponseBatch>,
    /// Responses struck from the unit's surveys (a duplicate or an invalid interview).
    #[serde(default)]
    pub removed_respondents: Vec<RespondentRef>,
    /// The escalated integrity flag about this unit that the correction answers: it becomes
    /// `corrected`.
    pub flag_id: Option<i64>,
}

/// One respondent of one survey.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondentRef {
    /// Survey code.
    pub survey: String,
    /// Respondent identifier as uploaded.
    pub respondent: String,
}

/// Answer of a correction.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Corrected {
    /// The results revision that holds the correction: a new one in a published cycle, the
    /// current one (recomputed by `recompute_job`) before publication.
    pub revision: i32,
    /// Units scored in the new revision (published cycles).
    pub units_scored: Option<usize>,
    /// Entities scored in the new revision (published cycles).
    pub entities_scored: Option<usize>,
    /// The recompute job scheduled (cycles not yet published).
    pub recompute_job: Option<String>,
    /// Survey responses added, replaced and struck.
    pub responses_changed: usize,
}

/// Correct a verified unit's inputs: its values and survey responses change, audited with the
/// reason. In a published cycle the results are recomputed into a new revision (the published
/// one stays readable, never silently overwritten) and its certificates reconciled; in a
/// collecting or verifying cycle the unit's recompute is scheduled.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles/{year}/corrections", operation_id = "correct_verified_inputs", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Correction, content_type = "application/json"), responses((status = 200, description = "Success", body = Corrected), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn correct(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Correction>,
) -> ApiResult<Json<Corrected>> {
    let actor_id = actor.require_admin()?;
    let year = cycles::year(raw)?;
    let mut tx = state.pool.begin().await?;
    let mut cycle = app_cycles::lock(&mut tx, year).await?;
    let y = cycle.id.get();
    if cycle.imported || cycle.state == CycleState::Planning {
        return Err(ApiError::conflict(
            "no-field-data",
            format!(
                "corrections change verified field data; {year} is {}",
                if cycle.imported {
                    "imported"
                } else {
                    cycle.state.as_str()
                }
            ),
        ));
    }
    let rows = check_body(state.require_methodology(&cycle.methodology_code)?, &body)?;
    let submission = sqlx::query_scalar!("SELECT id FROM submissions WHERE cycle_id = $1 AND unit_id = $2 AND state = 'verified' FOR UPDATE", y, body.unit_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::field("unit_id", format!("unit {} has no verified submission in {year}", body.unit_id)))?;
    if let Some(flag) = body.flag_id {
        answer_flag(&mut tx, actor_id, y, flag, submission, &body.reason).await?;
    }
    let responses_changed = write_responses(&mut tx, actor_id, &cycle, &body, &rows).await?;
    audit(
        &mut tx,
        actor_id,
        submission,
        "corrected",
        None,
        None,
        Some(serde_json::json!({
            "reason": body.reason,
            "values": body.values.len(),
            "responses_changed": responses_changed,
        })),
    )
    .await?;
    write_values(&mut tx, actor_id, submission, &body.values).await?;
    sqlx::query!(
        "UPDATE submissions SET version = version + 1, updated_at = now() WHERE id = $1",
        submission
    )
    .execute(&mut *tx)
    .await?;
    let answer = record(&mut tx, &state, &mut cycle, body.unit_id, responses_changed).await?;
    crate::error::commit(tx).await?;
    Ok(Json(answer))
}

/// Marks the escalated flag a correction answers as `corrected`, audited with the reason. The
/// flag must be of this cycle, escalated, and about the corrected unit's submission.
async fn answer_flag(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor_id: i64,
    cycle_id: i64,
    flag: i64,
    submission: i64,
    reason: &str,
) -> ApiResult<()> {
    let row = sqlx::query!(
        "SELECT status, kind, subject, province_code FROM flags WHERE id = $1 AND cycle_id = $2 FOR UPDATE",
        flag,
        cycle_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::field("flag_id", format!("no flag {flag} in this cycle")))?;
    if row.status != "escalated" {
        return Err(ApiError::field(
            "flag_id",
            format!(
                "flag {flag} is {}: only an escalated flag is answered by a correction",
                row.status
            ),
        ));
    }
    let covered = crate::routes::flags::flagged_submissions(tx, cycle_id, &row.subject).await?;
    if !covered.iter().any(|(s, _)| *s == submission) {
        return Err(ApiError::field(
            "flag_id",
            format!("flag {flag} ({}) is not about this unit", row.kind),
        ));
    }
    sqlx::query!(
        "UPDATE flags SET status = 'corrected', decided_by = $2, decided_at = now() WHERE id = $1",
        flag,
        actor_id
    )
    .execute(&mut **tx)
    .await?;
    crate::routes::audit::write(
        tx,
        Some(actor_id),
        ("flag", flag.to_string()),
        row.province_code.as_deref(),
        "corrected",
        serde_json::json!({ "kind": row.kind, "reason": reason, "submission": submission }),
    )
    .await?;
    Ok(())
}

/// Checks everything a correction carries before anything is written; returns its survey rows.
fn check_body(m: &Methodology, body: &Correction) -> ApiResult<Vec<Row>> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::field(
            "reason",
            "say why the verified inputs change",
        ));
    }
    if body.values.is_empty()
        && body.survey_responses.is_empty()
        && body.removed_respondents.is_empty()
    {
        return Err(ApiError::field(
            "values",
            "a correction changes values, survey responses or both: nothing was given",
        ));
    }
    validate_values(m, &body.values, "values")?;
    let mut at = Vec::new();
    let mut rows = Vec::new();
    for (b, batch) in body.survey_responses.iter().enumerate() {
        for (i, r) in batch.responses.iter().enumerate() {
            at.push((b, i));
            rows.push((
                batch.survey.clone(),
                r.respondent.clone(),
                r.answers.clone(),
            ));
        }
    }
    let mut errors = check_rows(m, &rows, |k, f| {
        let (b, i) = at[k];
        if f == "survey" {
            format!("survey_responses[{b}].survey")
        } else {
            format!("survey_responses[{b}].responses[{i}].{f}")
        }
    });
    for (k, r) in body.removed_respondents.iter().enumerate() {
        if m.survey_id(&r.survey).is_none() {
            errors.push(FieldError::new(
                format!("removed_respondents[{k}].survey"),
                format!("unknown survey `{}` in methodology {}", r.survey, m.code()),
            ));
        }
        errors.extend(text_problem(
            format!("removed_respondents[{k}].respondent"),
            &r.respondent,
            CODE_MAX,
        ));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Writes the corrected and struck responses of the unit, audited on the unit's survey
/// responses with the reason. A respondent to strike that is not stored is a field error.
async fn write_responses(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor_id: i64,
    cycle: &app_cycles::Cycle,
    body: &Correction,
    rows: &[Row],
) -> ApiResult<usize> {
    let y = cycle.id.get();
    let written = store_rows(tx, y, body.unit_id, rows).await?.len();
    let mut removed = 0;
    for (k, r) in body.removed_respondents.iter().enumerate() {
        let gone = sqlx::query!(
            "DELETE FROM survey_responses WHERE cycle_id = $1 AND unit_id = $2 AND survey_code = $3 AND respondent = $4",
            y,
            body.unit_id,
            r.survey,
            r.respondent.trim()
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if gone == 0 {
            return Err(ApiError::field(
                format!("removed_respondents[{k}].respondent"),
                format!(
                    "`{}` has no response to `{}` for unit {}",
                    r.respondent.trim(),
                    r.survey,
                    body.unit_id
                ),
            ));
        }
        removed += 1;
    }
    if written + removed > 0 {
        let mut surveys = surveys_of(rows);
        surveys.extend(body.removed_respondents.iter().map(|r| r.survey.as_str()));
        let province = crate::routes::audit::unit_province(tx, body.unit_id).await?;
        crate::routes::audit::write(
            tx,
            Some(actor_id),
            (
                "survey_responses",
                format!("{}/{}", cycle.key, body.unit_id),
            ),
            province.as_deref(),
            "corrected",
            serde_json::json!({
                "reason": body.reason,
                "surveys": surveys,
                "changed": written,
                "removed": removed,
            }),
        )
        .await?;
    }
    Ok(written + removed)
}

/// Records the correction in the results: a new revision of a published cycle, or the unit's
/// scheduled recompute before publication.
async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    state: &AppState,
    cycle: &mut Cycle,
    unit_id: i64,
    responses_changed: usize,
) -> ApiResult<Corrected> {
    if cycle.state.is_published() {
        let summary = recompute::correct(tx, state, cycle).await?;
        Ok(Corrected {
            revision: summary.revision,
            units_scored: Some(summary.units_scored),
            entities_scored: Some(summary.entities_scored),
            recompute_job: None,
            responses_changed,
        })
    } else {
        let job = app_cycles::inputs_changed(tx, cycle, InputChange::Unit(unit_id)).await?;
        Ok(Corrected {
            revision: cycle.results_revision,
            units_scored: None,
            entities_scored: None,
            recompute_job: Some(job),
            responses_changed,
        })
    }
}
