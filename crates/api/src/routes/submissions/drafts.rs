//! Creating drafts: one unit at a time, or a regional office's bulk upload.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::values::{insert_draft, validate_values};
use super::{NewSubmission, Submission, may_edit, read, with_etag};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};
use crate::routes::cycles::{self, sample};
use kepatuhan_app::cycles as app_cycles;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(bulk_create))
}

/// Create a unit's submission (draft).
///
/// Who may call: assessor (assigned unit, collecting), office (its provinces), admin.
#[utoipa::path(post, path = "/cycles/{year}/submissions", operation_id = "create_submission", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = NewSubmission, content_type = "application/json"), responses((status = 201, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<NewSubmission>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let y = cycle.id;
    let visible = sample::sampled_unit_in_scope(&state, &scope, &cycle, body.unit_id).await?;
    if !visible {
        return Err(ApiError::field(
            "unit_id",
            format!(
                "unit {} is not in the sample of {} for you",
                body.unit_id, cycle.year
            ),
        ));
    }
    may_edit(&actor, cycle.state)?;
    let m = state.require_methodology(&cycle.methodology)?;
    validate_values(m, &body.values, "values")?;
    let mut tx = state.pool.begin().await?;
    // Checked again under the cycle's lock: the cycle may have moved on meanwhile.
    may_edit(
        &actor,
        app_cycles::lock_shared(&mut tx, app_cycles::CycleId(cycle.id))
            .await?
            .state
            .into(),
    )?;
    let Some((id, _)) = insert_draft(&mut tx, actor_id, y, body.unit_id, &body.values).await?
    else {
        return Err(ApiError::conflict(
            "submission-exists",
            format!(
                "unit {} already has a submission in {}",
                body.unit_id, cycle.year
            ),
        ));
    };
    crate::error::commit(tx).await?;
    let s = read(&state, &actor, id).await?;
    let location = format!("/api/v1/submissions/{id}");
    let mut response = with_etag(StatusCode::CREATED, s);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Most submissions in one bulk request.
pub const BULK_SUBMISSIONS_MAX: usize = 1_000;

/// One draft created by a bulk request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedDraft {
    /// Submission id.
    pub id: i64,
    /// Unit id.
    pub unit_id: i64,
    /// Version (its `ETag` is `"v{version}"`, for `If-Match` on the next change).
    pub version: i32,
}

/// Answer of `POST /cycles/{year}/submissions/bulk`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkCreated {
    /// How many drafts were created.
    pub created: usize,
    /// The drafts, in request order.
    pub submissions: Vec<CreatedDraft>,
}

/// Create many units' drafts at once (a regional office uploading its assessors' sheets).
///
/// All or nothing: every record is checked first (unit in your sample, values on the
/// methodology's scales) and every problem is reported with its path (`[3].values[2].value`);
/// nothing is written unless all are valid. Each draft gets the same audit entries as one created
/// alone. At most 1,000 submissions per request.
///
/// Who may call: assessor (assigned units, collecting), office (its provinces), admin.
#[utoipa::path(post, path = "/cycles/{year}/submissions/bulk", operation_id = "bulk_create_submissions", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Vec<NewSubmission>, content_type = "application/json"), responses((status = 201, description = "Created", body = BulkCreated), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_create(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Vec<NewSubmission>>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let y = cycle.id;
    may_edit(&actor, cycle.state)?;
    if body.is_empty() || body.len() > BULK_SUBMISSIONS_MAX {
        return Err(ApiError::field(
            "submissions",
            format!(
                "send 1 to {BULK_SUBMISSIONS_MAX} submissions, not {}",
                body.len()
            ),
        ));
    }
    let m = state.require_methodology(&cycle.methodology)?;
    let mut errors = Vec::new();
    let mut units = HashSet::new();
    for (i, item) in body.iter().enumerate() {
        if !units.insert(item.unit_id) {
            errors.push(FieldError::new(
                format!("[{i}].unit_id"),
                format!("unit {} appears more than once", item.unit_id),
            ));
        } else if !sample::sampled_unit_in_scope(&state, &scope, &cycle, item.unit_id).await? {
            errors.push(FieldError::new(
                format!("[{i}].unit_id"),
                format!(
                    "unit {} is not in the sample of {} for you",
                    item.unit_id, cycle.year
                ),
            ));
        }
        if let Err(ApiError::Validation { errors: e, .. }) =
            validate_values(m, &item.values, &format!("[{i}].values"))
        {
            errors.extend(e);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut tx = state.pool.begin().await?;
    may_edit(
        &actor,
        app_cycles::lock_shared(&mut tx, app_cycles::CycleId(cycle.id))
            .await?
            .state
            .into(),
    )?;
    let mut created = Vec::with_capacity(body.len());
    for (i, item) in body.iter().enumerate() {
        let Some((id, version)) =
            insert_draft(&mut tx, actor_id, y, item.unit_id, &item.values).await?
        else {
            return Err(ApiError::field(
                format!("[{i}].unit_id"),
                format!(
                    "unit {} already has a submission in {}",
                    item.unit_id, cycle.year
                ),
            ));
        };
        created.push(CreatedDraft {
            id,
            unit_id: item.unit_id,
            version,
        });
    }
    crate::error::commit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(BulkCreated {
            created: created.len(),
            submissions: created,
        }),
    )
        .into_response())
}
