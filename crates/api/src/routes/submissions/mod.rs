//! Submissions: one per sampled unit per cycle. Assessors fill a draft of indicator values,
//! submit it; the office returns it with comments per indicator or verifies it. Verified
//! submissions are locked and enqueue a recompute. Every change lands in an append-only audit
//! trail.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/submissions` | assessor (assigned unit, collecting), office (its provinces), admin |
//! | `GET /cycles/{year}/submissions` | admin, office (its provinces), assessor (assigned units, collecting) |
//! | `GET /submissions/{id}`, `GET /submissions/{id}/audit` | same as above |
//! | `PATCH /submissions/{id}` (`If-Match`) | assessor (collecting), office, admin — while draft or returned |
//! | `POST /submissions/{id}/submit` (`If-Match`) | assessor, office, admin |
//! | `POST /submissions/{id}/return`, `POST /submissions/{id}/verify` (`If-Match`) | office (its provinces), admin |
//! | `GET /cycles/{year}/templates/assessment.xlsx`, `POST /cycles/{year}/submissions/import` | admin, office (its provinces), assessor (assigned units, collecting) |
//!
//! Drafts are created in [`drafts`], reviewed in [`review`], corrected after publication in
//! [`corrections`]; values are checked and written in [`values`], the trail kept in [`audit`];
//! the assessment workbook is written and read back in [`workbook`].
//!
//! Updates need `If-Match` with the `ETag` of the version read (`428` without, `412` when stale).

pub mod audit;
pub mod corrections;
pub mod drafts;
pub mod review;
pub mod values;
pub mod workbook;

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kepatuhan_core::{CycleId, CycleYear, SubmissionState};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::problem::Problem;
use crate::routes::cycles::{self, CycleState};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .merge(drafts::router())
        .merge(review::router())
        .merge(audit::router())
        .merge(corrections::router())
        .merge(workbook::router())
}

/// One indicator value as sent by an assessor.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "indicator": "waiting_room", "value": 3, "evidence_note": "Ruang tunggu ber-AC, 40 kursi, diamati 12 Agustus" }))]
pub struct ValueInput {
    /// Indicator code of the cycle's methodology.
    pub indicator: String,
    /// A level of the indicator's scale; omit when not applicable.
    pub value: Option<i64>,
    /// The indicator does not apply to this unit.
    #[serde(default)]
    pub not_applicable: bool,
    /// Evidence note (what was observed, which document).
    #[serde(default)]
    pub evidence_note: Option<String>,
    /// References to attachments (file names or URLs of uploaded evidence).
    #[serde(default)]
    pub attachments: Option<Vec<String>>,
}

/// Body of `POST /cycles/{year}/submissions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubmission {
    /// The sampled unit.
    pub unit_id: i64,
    /// Initial values.
    #[serde(default)]
    pub values: Vec<ValueInput>,
}

/// Body of `PATCH /submissions/{id}`: values to set (others are kept).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuesUpdate {
    /// Values to set.
    pub values: Vec<ValueInput>,
}

/// Body of `POST /submissions/{id}/return`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// Overall note to the assessor.
    pub note: String,
    /// Comments per indicator.
    #[serde(default)]
    pub comments: Vec<IndicatorComment>,
}

/// A reviewer's comment on one indicator.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorComment {
    /// Indicator code.
    pub indicator: String,
    /// The comment.
    pub comment: String,
}

/// A stored value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoredValue {
    /// Indicator code.
    pub indicator: String,
    /// Level, or null when not applicable.
    pub value: Option<i16>,
    /// Not applicable.
    pub not_applicable: bool,
    /// Evidence note.
    pub evidence_note: String,
    /// Attachment references.
    #[schema(value_type = Vec<String>)]
    pub attachments: serde_json::Value,
    /// Reviewer's comment from the last return.
    pub review_comment: Option<String>,
}

/// A submission.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Submission {
    /// Id.
    pub id: i64,
    /// The cycle's id.
    pub cycle_id: i64,
    /// The year assessed.
    pub cycle_year: i32,
    /// Unit id.
    pub unit_id: i64,
    /// Unit name.
    pub unit_name: String,
    /// Entity code.
    pub entity_code: String,
    /// `draft`, `submitted`, `returned` or `verified`.
    pub state: String,
    /// Version, also the `ETag`.
    pub version: i32,
    /// Reviewer's note from the last return.
    pub review_note: Option<String>,
    /// Values entered.
    pub values: Vec<StoredValue>,
    /// Indicators still without a value.
    pub missing: Vec<String>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A submission locked for a change, with what the change needs of its cycle.
struct Loaded {
    id: i64,
    cycle_id: CycleId,
    year: CycleYear,
    unit_id: i64,
    state: SubmissionState,
    version: i32,
    cycle_state: CycleState,
    methodology: String,
}

fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"v0\""))
}

fn check_if_match(headers: &HeaderMap, version: i32) -> ApiResult<()> {
    let given = headers
        .get(header::IF_MATCH)
        .ok_or(ApiError::PreconditionRequired)?;
    let expected = etag(version);
    if given == expected || given.as_bytes() == b"*" {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed(format!(
            "the submission changed since you read it (now at {}); read it again and reapply your change",
            expected.to_str().unwrap_or_default()
        )))
    }
}

/// Loads a submission for update if the actor may see it (404 otherwise).
async fn lock(tx: &mut Transaction<'_, Postgres>, actor: &Actor, id: i64) -> ApiResult<Loaded> {
    let scope = actor.scope()?;
    let row = sqlx::query!(
        r#"SELECT s.id, s.cycle_id, c.year, s.unit_id, s.state, s.version, c.state AS cycle_state, c.methodology_code
           FROM submissions s
           JOIN cycles c ON c.id = s.cycle_id AND c.kind = 'official'
           JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE s.id = $1
             AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a WHERE a.cycle_id = s.cycle_id AND a.unit_id = s.unit_id AND a.actor_id = $3)))
           FOR UPDATE OF s"#,
        id,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no submission {id}")))?;
    Ok(Loaded {
        id: row.id,
        cycle_id: CycleId(row.cycle_id),
        year: cycles::year(i64::from(row.year))?,
        unit_id: row.unit_id,
        state: row.state.parse().map_err(
            |e: kepatuhan_core::submission::UnknownSubmissionState| {
                ApiError::Internal(crate::error::InternalError(Box::new(e)))
            },
        )?,
        version: row.version,
        cycle_state: CycleState::parse(&row.cycle_state),
        methodology: row.methodology_code,
    })
}

/// Reads a submission as the actor may see it.
async fn read(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Submission> {
    let mut tx = state.pool.begin().await?;
    let loaded = lock(&mut tx, actor, id).await?;
    let head = sqlx::query!(
        r#"SELECT s.review_note, s.updated_at, u.name AS unit_name, e.code AS entity_code
           FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id WHERE s.id = $1"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let values = sqlx::query_as!(
        StoredValue,
        r#"SELECT indicator_code AS indicator, value, not_applicable, evidence_note, attachments, review_comment
           FROM submission_values WHERE submission_id = $1 ORDER BY indicator_code"#,
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    crate::error::commit(tx).await?;
    let m = state.methodology(&loaded.methodology);
    let entered: HashSet<&str> = values.iter().map(|v| v.indicator.as_str()).collect();
    let missing = m
        .map(|m| {
            m.indicator_ids()
                .map(|i| m.indicator(i).code.clone())
                .filter(|c| !entered.contains(c.as_str()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Submission {
        id,
        cycle_id: loaded.cycle_id.get(),
        cycle_year: i32::from(loaded.year.get()),
        unit_id: loaded.unit_id,
        unit_name: head.unit_name,
        entity_code: head.entity_code,
        state: loaded.state.as_str().to_owned(),
        version: loaded.version,
        review_note: head.review_note,
        values,
        missing,
        updated_at: head.updated_at,
    })
}

fn with_etag(status: StatusCode, s: Submission) -> Response {
    let tag = etag(s.version);
    (status, [(header::ETAG, tag)], Json(s)).into_response()
}

/// May this actor enter data in a cycle in this state?
fn may_edit(actor: &Actor, cycle: CycleState) -> ApiResult<()> {
    let open = match actor {
        Actor::Assessor { .. } => cycle == CycleState::Collecting,
        _ => matches!(cycle, CycleState::Collecting | CycleState::Verifying),
    };
    if open {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "cycle-closed",
            "data can be entered only while the cycle is collecting (or verifying, for offices)",
        ))
    }
}

/// Filters of the submission list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmissionFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this entity.
    pub entity: Option<String>,
}

/// A line of the submission list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmissionSummary {
    /// Id.
    pub id: i64,
    /// Unit id.
    pub unit_id: i64,
    /// Unit name.
    pub unit_name: String,
    /// Entity code.
    pub entity_code: String,
    /// State.
    pub state: String,
    /// Version.
    pub version: i32,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// List submissions.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/submissions", operation_id = "list_submissions", tag = "submissions", params(("year" = i64, Path, description = "Cycle year"), SubmissionFilter), responses((status = 200, description = "Success", body = Vec<SubmissionSummary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(filter): Query<SubmissionFilter>,
) -> ApiResult<Json<Vec<SubmissionSummary>>> {
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let rows = sqlx::query_as!(
        SubmissionSummary,
        r#"SELECT s.id, s.unit_id, u.name AS unit_name, e.code AS entity_code, s.state, s.version, s.updated_at
           FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
           JOIN cycles c ON c.id = s.cycle_id
           WHERE s.cycle_id = $1
             AND ($2::text IS NULL OR s.state = $2)
             AND ($3::text IS NULL OR e.code = $3)
             AND ($4::text[] IS NULL OR e.province_code = ANY($4))
             AND ($5::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a WHERE a.cycle_id = s.cycle_id AND a.unit_id = s.unit_id AND a.actor_id = $5)))
           ORDER BY e.code, u.name"#,
        cycle.id,
        filter.state,
        filter.entity,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// A submission.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting); ETag in the response.
#[utoipa::path(get, path = "/submissions/{id}", operation_id = "get_submission", tag = "submissions", params(("id" = i64, Path, description = "Submission id")), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}
