//! The review: editing, submitting, returning and verifying a submission, each move checked
//! against core's transition table (`kepatuhan_core::SubmissionState::TRANSITIONS`).

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kepatuhan_app::cycles as app_cycles;
use kepatuhan_core::{SubmissionAction, SubmissionState};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::audit::audit;
use super::values::{validate_values, write_values};
use super::{
    Loaded, ReturnRequest, Submission, ValuesUpdate, check_if_match, etag, lock, may_edit, read,
    with_etag,
};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, parse_json};
use crate::problem::{FieldError, Problem};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update))
        .routes(routes!(submit))
        .routes(routes!(return_))
        .routes(routes!(verify))
}

/// Opens a transaction, locks the submission's cycle and then the submission (always in this
/// order, as every writer does, so the state checks hold until commit and no two writers wait
/// for each other), checks `If-Match` and that the transition table allows `action`.
async fn begin_change(
    state: &AppState,
    actor: &Actor,
    id: i64,
    headers: &HeaderMap,
    action: SubmissionAction,
) -> ApiResult<(Transaction<'static, Postgres>, Loaded, app_cycles::Cycle)> {
    let mut tx = state.pool.begin().await?;
    let key = sqlx::query_scalar!("SELECT cycle_id FROM submissions WHERE id = $1", id)
        .fetch_optional(&mut *tx)
        .await?
        .map(app_cycles::CycleId)
        .ok_or_else(|| ApiError::NotFound(format!("no submission {id}")))?;
    // A verification moves the cycle's input revision: it takes the cycle's lock alone; the
    // other moves only read its state, side by side.
    let cycle = if action == SubmissionAction::Verify {
        app_cycles::lock(&mut tx, key).await?
    } else {
        app_cycles::lock_shared(&mut tx, key).await?
    };
    let loaded = lock(&mut tx, actor, id).await?;
    // A state change names the version it saw; `*` ("whatever it is now") only edits values.
    if action != SubmissionAction::Edit && headers.get(header::IF_MATCH).is_some_and(|v| v == "*") {
        return Err(ApiError::PreconditionFailed(
            "a state change needs the ETag of the version you reviewed, not `*`".to_owned(),
        ));
    }
    check_if_match(headers, loaded.version)?;
    if let Err(refused) = loaded.state.apply(action) {
        let allowed: Vec<&str> = action.allowed_from().iter().map(|s| s.as_str()).collect();
        return Err(ApiError::conflict(
            "invalid-transition",
            format!("{refused} (allowed from: {})", allowed.join(", ")),
        ));
    }
    Ok((tx, loaded, cycle))
}

/// Moves a locked submission to the state `action` leads to (its version moves on); a
/// submission is stamped `submitted_at` with the application's clock (`now`).
async fn bump(
    tx: &mut Transaction<'_, Postgres>,
    loaded: &Loaded,
    action: SubmissionAction,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<SubmissionState> {
    let new_state = loaded
        .state
        .apply(action)
        .map_err(|e| ApiError::conflict("invalid-transition", e.to_string()))?;
    sqlx::query!(
        "UPDATE submissions SET state = $2, version = version + 1, updated_at = now(),
                submitted_at = CASE WHEN $2 = 'submitted' THEN $3 ELSE submitted_at END
         WHERE id = $1",
        loaded.id,
        new_state.as_str(),
        now
    )
    .execute(&mut **tx)
    .await?;
    Ok(new_state)
}

/// Set indicator values.
///
/// Who may call: assessor (collecting), office, admin; draft or returned only.
#[utoipa::path(patch, path = "/submissions/{id}", operation_id = "update_submission", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), request_body(content = ValuesUpdate, content_type = "application/json"), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn update(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ValuesUpdate>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let (mut tx, loaded, _) =
        begin_change(&state, &actor, id, &headers, SubmissionAction::Edit).await?;
    may_edit(&actor, loaded.cycle_state)?;
    validate_values(
        state.require_methodology(&loaded.methodology)?,
        &body.values,
        "values",
    )?;
    write_values(&mut tx, actor_id, loaded.id, &body.values).await?;
    bump(&mut tx, &loaded, SubmissionAction::Edit, state.clock.now()).await?;
    crate::error::commit(tx).await?;
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Submit for verification (every indicator answered).
///
/// Who may call: assessor, office, admin.
#[utoipa::path(post, path = "/submissions/{id}/submit", operation_id = "submit_submission", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn submit(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let (mut tx, loaded, _) =
        begin_change(&state, &actor, id, &headers, SubmissionAction::Submit).await?;
    may_edit(&actor, loaded.cycle_state)?;
    let m = state.require_methodology(&loaded.methodology)?;
    let entered: HashSet<String> = sqlx::query_scalar!(
        "SELECT indicator_code FROM submission_values WHERE submission_id = $1",
        loaded.id
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let missing: Vec<FieldError> = m
        .indicator_ids()
        .map(|i| &m.indicator(i).code)
        .filter(|c| !entered.contains(*c))
        .map(|c| {
            FieldError::new(
                format!("values.{c}"),
                "needs a value or not_applicable before submitting",
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::fields(missing));
    }
    let now = bump(
        &mut tx,
        &loaded,
        SubmissionAction::Submit,
        state.clock.now(),
    )
    .await?;
    audit(
        &mut tx,
        actor_id,
        loaded.id,
        "submitted",
        Some("state"),
        Some(serde_json::json!(loaded.state.as_str())),
        Some(serde_json::json!(now.as_str())),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Return with comments.
///
/// Who may call: office (its provinces), admin.
#[utoipa::path(post, path = "/submissions/{id}/return", operation_id = "return_submission", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), request_body(content = ReturnRequest, content_type = "application/json"), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn return_(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ReturnRequest>,
) -> ApiResult<Response> {
    let actor_id = actor.require_staff()?;
    let (mut tx, loaded, _) =
        begin_change(&state, &actor, id, &headers, SubmissionAction::Return).await?;
    let m = state.require_methodology(&loaded.methodology)?;
    let mut errors = Vec::new();
    if body.note.trim().is_empty() {
        errors.push(FieldError::new("note", "tell the assessor what to fix"));
    }
    for (i, c) in body.comments.iter().enumerate() {
        if m.indicator_id(&c.indicator).is_none() {
            errors.push(FieldError::new(
                format!("comments[{i}].indicator"),
                format!("unknown indicator `{}`", c.indicator),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    sqlx::query!(
        "UPDATE submission_values SET review_comment = NULL WHERE submission_id = $1",
        loaded.id
    )
    .execute(&mut *tx)
    .await?;
    for c in &body.comments {
        sqlx::query!(
            "UPDATE submission_values SET review_comment = $3 WHERE submission_id = $1 AND indicator_code = $2",
            loaded.id,
            c.indicator,
            c.comment
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE submissions SET review_note = $2 WHERE id = $1",
        loaded.id,
        body.note
    )
    .execute(&mut *tx)
    .await?;
    bump(
        &mut tx,
        &loaded,
        SubmissionAction::Return,
        state.clock.now(),
    )
    .await?;
    let comments: Vec<serde_json::Value> = body
        .comments
        .iter()
        .map(|c| serde_json::json!({ "indicator": c.indicator, "comment": c.comment }))
        .collect();
    audit(
        &mut tx,
        actor_id,
        loaded.id,
        "returned",
        Some("state"),
        Some(serde_json::json!("submitted")),
        Some(serde_json::json!({ "note": body.note, "comments": comments })),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Answer of `POST /submissions/{id}/verify`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verified {
    /// The verified submission.
    pub submission: Submission,
    /// The recompute job enqueued.
    pub job_id: String,
}

/// Whoever created or submitted a submission does not verify it: an office is refused, an admin
/// must state a reason (returned, for the audit trail). `None` when the actor had no hand in it.
async fn separation_of_duties(
    tx: &mut Transaction<'_, Postgres>,
    actor: &Actor,
    submission: i64,
    reason: Option<String>,
) -> ApiResult<Option<String>> {
    let own = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM audit_log WHERE submission_id = $1 AND actor_id = $2
                          AND action IN ('created', 'submitted')) AS "own!""#,
        submission,
        actor.id()
    )
    .fetch_one(&mut **tx)
    .await?;
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    match (own, actor, reason) {
        (false, ..) => Ok(None),
        (true, Actor::Admin { .. }, Some(reason)) => Ok(Some(reason)),
        (true, Actor::Admin { .. }, None) => Err(ApiError::field(
            "reason",
            "you created or submitted this submission: say why you verify it yourself",
        )),
        (true, ..) => Err(ApiError::conflict(
            "separation-of-duties",
            "you created or submitted this submission; another reviewer of your office verifies it",
        )),
    }
}

/// Optional body of `POST /submissions/{id}/verify`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Why an admin verifies a submission they created or submitted themselves (kept in the
    /// audit trail); required then, and only then.
    pub reason: Option<String>,
}

/// Verify (locks it, enqueues a recompute). Separation of duties: whoever created or submitted a
/// submission does not verify it; an admin may, stating why (audited).
///
/// Who may call: office (its provinces; not its own submissions), admin.
#[utoipa::path(post, path = "/submissions/{id}/verify", operation_id = "verify_submission", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), request_body(content = Option<VerifyRequest>, content_type = "application/json", description = "Only for an admin verifying their own submission: `{ \"reason\": \"…\" }`"), responses((status = 200, description = "Success", body = Verified), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn verify(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Response> {
    let actor_id = actor.require_staff()?;
    let request: VerifyRequest = if body.is_empty() {
        VerifyRequest::default()
    } else {
        match parse_json(&body) {
            Ok(request) => request,
            Err(rejection) => return Ok(rejection.into_response()),
        }
    };
    let (mut tx, loaded, mut cycle) =
        begin_change(&state, &actor, id, &headers, SubmissionAction::Verify).await?;
    let own_reason = separation_of_duties(&mut tx, &actor, loaded.id, request.reason).await?;
    sqlx::query!(
        "UPDATE submissions SET verified_at = $3, verified_by = $2 WHERE id = $1",
        loaded.id,
        actor_id,
        state.clock.now()
    )
    .execute(&mut *tx)
    .await?;
    bump(
        &mut tx,
        &loaded,
        SubmissionAction::Verify,
        state.clock.now(),
    )
    .await?;
    audit(
        &mut tx,
        actor_id,
        loaded.id,
        "verified",
        Some("state"),
        Some(serde_json::json!("submitted")),
        Some(match own_reason {
            None => serde_json::json!("verified"),
            Some(reason) => {
                serde_json::json!({ "state": "verified", "own_submission": true, "reason": reason })
            }
        }),
    )
    .await?;
    let job_id = app_cycles::inputs_changed(
        &mut tx,
        &mut cycle,
        app_cycles::InputChange::Unit(loaded.unit_id),
    )
    .await?;
    crate::error::commit(tx).await?;
    let submission = read(&state, &actor, id).await?;
    let tag = etag(submission.version);
    Ok((
        StatusCode::OK,
        [(header::ETAG, tag)],
        Json(Verified { submission, job_id }),
    )
        .into_response())
}
