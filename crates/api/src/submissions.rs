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
//!
//! Updates need `If-Match` with the `ETag` of the version read (`428` without, `412` when stale).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kepatuhan_core::{CycleYear, Methodology};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

use crate::AppState;
use crate::auth::Actor;
use crate::cycles::{self, CycleState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::jobs;
use crate::problem::{FieldError, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(bulk_create))
        .routes(routes!(show, update))
        .routes(routes!(submit))
        .routes(routes!(return_))
        .routes(routes!(verify))
        .routes(routes!(audit_trail))
        .routes(routes!(correct))
}

/// One indicator value as sent by an assessor.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
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
    /// Cycle year.
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

struct Loaded {
    id: i64,
    year: CycleYear,
    unit_id: i64,
    state: String,
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
        r#"SELECT s.id, s.cycle_year, s.unit_id, s.state, s.version, c.state AS cycle_state, c.methodology_code
           FROM submissions s
           JOIN cycles c ON c.year = s.cycle_year
           JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE s.id = $1
             AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a WHERE a.cycle_year = s.cycle_year AND a.unit_id = s.unit_id AND a.actor_id = $3)))
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
        year: cycles::year(i64::from(row.cycle_year))?,
        unit_id: row.unit_id,
        state: row.state,
        version: row.version,
        cycle_state: match row.cycle_state.as_str() {
            "collecting" => CycleState::Collecting,
            "verifying" => CycleState::Verifying,
            "published" => CycleState::Published,
            _ => CycleState::Planning,
        },
        methodology: row.methodology_code,
    })
}

/// Validates values against the methodology, naming each offending entry.
fn validate_values(m: &Methodology, values: &[ValueInput], prefix: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, v) in values.iter().enumerate() {
        let at = |f: &str| format!("{prefix}[{i}].{f}");
        let Some(id) = m.indicator_id(&v.indicator) else {
            errors.push(FieldError::new(
                at("indicator"),
                format!(
                    "unknown indicator `{}` in methodology {}",
                    v.indicator,
                    m.code()
                ),
            ));
            continue;
        };
        if !seen.insert(v.indicator.as_str()) {
            errors.push(FieldError::new(
                at("indicator"),
                format!("`{}` appears more than once", v.indicator),
            ));
        }
        let scale = &m.indicator(id).scale;
        match (v.value, v.not_applicable) {
            (Some(_), true) => errors.push(FieldError::new(
                at("value"),
                "give a value or not_applicable, not both",
            )),
            (None, false) => errors.push(FieldError::new(
                at("value"),
                "is required unless not_applicable is true",
            )),
            (Some(x), false) if !u8::try_from(x).is_ok_and(|x| scale.position(x).is_some()) => {
                let allowed: Vec<String> =
                    scale.levels.iter().map(|l| l.value.to_string()).collect();
                errors.push(FieldError::new(
                    at("value"),
                    format!(
                        "{x} is not on the scale of `{}` ({})",
                        v.indicator,
                        allowed.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        if v.evidence_note.as_ref().is_some_and(|n| n.len() > 4000) {
            errors.push(FieldError::new(
                at("evidence_note"),
                "at most 4000 characters",
            ));
        }
        if let Some(a) = &v.attachments
            && (a.len() > 20 || a.iter().any(|x| x.trim().is_empty() || x.len() > 500))
        {
            errors.push(FieldError::new(
                at("attachments"),
                "at most 20 non-empty references of at most 500 characters",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Writes values and their audit entries: one read of the previous values, one upsert of the
/// changed ones, one insert of their audit entries (three statements, however many values).
/// Unchanged values are neither written nor audited. Indicator codes are unique per request
/// (validated before).
async fn write_values(
    tx: &mut Transaction<'_, Postgres>,
    actor_id: i64,
    submission: i64,
    values: &[ValueInput],
) -> ApiResult<()> {
    if values.is_empty() {
        return Ok(());
    }
    let codes: Vec<&str> = values.iter().map(|v| v.indicator.as_str()).collect();
    let previous: HashMap<String, serde_json::Value> = sqlx::query!(
        "SELECT indicator_code, value, not_applicable, evidence_note, attachments FROM submission_values WHERE submission_id = $1 AND indicator_code = ANY($2)",
        submission,
        &codes as &[&str]
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|p| {
        (
            p.indicator_code,
            serde_json::json!({ "value": p.value, "not_applicable": p.not_applicable, "evidence_note": p.evidence_note, "attachments": p.attachments }),
        )
    })
    .collect();
    let mut changed = Vec::new();
    let mut new_values: Vec<Option<i16>> = Vec::new();
    let mut not_applicable = Vec::new();
    let mut notes = Vec::new();
    let mut attachments = Vec::new();
    let mut before: Vec<Option<serde_json::Value>> = Vec::new();
    let mut after = Vec::new();
    for v in values {
        let prev = previous.get(&v.indicator);
        let value = v
            .value
            .and_then(|x| i16::try_from(x).ok())
            .filter(|_| !v.not_applicable);
        let note = v
            .evidence_note
            .clone()
            .or_else(|| prev.and_then(|p| p["evidence_note"].as_str().map(str::to_owned)))
            .unwrap_or_default();
        let files = match &v.attachments {
            Some(a) => serde_json::json!(a),
            None => prev.map_or_else(|| serde_json::json!([]), |p| p["attachments"].clone()),
        };
        let current = serde_json::json!({ "value": value, "not_applicable": v.not_applicable, "evidence_note": note, "attachments": files });
        if prev == Some(&current) {
            continue;
        }
        changed.push(v.indicator.as_str());
        new_values.push(value);
        not_applicable.push(v.not_applicable);
        notes.push(note);
        attachments.push(files);
        before.push(prev.cloned());
        after.push(current);
    }
    if changed.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO submission_values (submission_id, indicator_code, value, not_applicable, evidence_note, attachments)
         SELECT $1, * FROM UNNEST($2::text[], $3::smallint[], $4::bool[], $5::text[], $6::jsonb[])
         ON CONFLICT (submission_id, indicator_code) DO UPDATE
           SET value = excluded.value, not_applicable = excluded.not_applicable,
               evidence_note = excluded.evidence_note, attachments = excluded.attachments",
        submission,
        &changed as &[&str],
        &new_values as &[Option<i16>],
        &not_applicable,
        &notes,
        &attachments
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, submission_id, action, field, previous, current)
         SELECT $1, $2, 'value_set', t.field, t.previous, t.current
         FROM UNNEST($3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS t(field, previous, current, n)
         ORDER BY t.n",
        actor_id,
        submission,
        &changed as &[&str],
        &before as &[Option<serde_json::Value>],
        &after
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a draft submission of `unit_id` in cycle `y` with its `created` audit entry and its
/// values, inside the caller's transaction. Returns its id and version, or `None` when the unit
/// already has a submission in that cycle (the transaction is then aborted: the caller answers
/// with its own problem).
async fn insert_draft(
    tx: &mut Transaction<'_, Postgres>,
    actor_id: i64,
    y: i32,
    unit_id: i64,
    values: &[ValueInput],
) -> ApiResult<Option<(i64, i32)>> {
    let inserted = sqlx::query!(
        "INSERT INTO submissions (cycle_year, unit_id, created_by) VALUES ($1, $2, $3) RETURNING id, version",
        y,
        unit_id,
        actor_id
    )
    .fetch_one(&mut **tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(db)) if db.constraint() == Some("submissions_one_per_unit") => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    audit(tx, actor_id, row.id, "created", None, None, None).await?;
    write_values(tx, actor_id, row.id, values).await?;
    Ok(Some((row.id, row.version)))
}

async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    actor_id: i64,
    submission: i64,
    action: &str,
    field: Option<&str>,
    previous: Option<serde_json::Value>,
    current: Option<serde_json::Value>,
) -> ApiResult<()> {
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, submission_id, action, field, previous, current) VALUES ($1, $2, $3, $4, $5, $6)",
        actor_id,
        submission,
        action,
        field,
        previous,
        current
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
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
    tx.commit().await?;
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
        cycle_year: i32::from(loaded.year.get()),
        unit_id: loaded.unit_id,
        unit_name: head.unit_name,
        entity_code: head.entity_code,
        state: loaded.state,
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

fn methodology<'a>(state: &'a AppState, code: &str) -> ApiResult<&'a Methodology> {
    state.methodology(code).ok_or_else(|| {
        ApiError::conflict(
            "unknown-methodology",
            format!("methodology `{code}` is not shipped in this build"),
        )
    })
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

/// Create a unit's submission (draft).
///
/// Who may call: assessor (assigned unit, collecting), office (its provinces), admin.
#[utoipa::path(post, path = "/cycles/{year}/submissions", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = NewSubmission, content_type = "application/json"), responses((status = 201, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<NewSubmission>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let y = i32::from(cycle.year.get());
    let visible = cycles::sampled_unit_in_scope(&state, &scope, &cycle, body.unit_id).await?;
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
    let m = methodology(&state, &cycle.methodology)?;
    validate_values(m, &body.values, "values")?;
    let mut tx = state.pool.begin().await?;
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
    tx.commit().await?;
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
#[utoipa::path(post, path = "/cycles/{year}/submissions/bulk", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Vec<NewSubmission>, content_type = "application/json"), responses((status = 201, description = "Created", body = BulkCreated), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_create(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Vec<NewSubmission>>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let y = i32::from(cycle.year.get());
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
    let m = methodology(&state, &cycle.methodology)?;
    let mut errors = Vec::new();
    let mut units = HashSet::new();
    for (i, item) in body.iter().enumerate() {
        if !units.insert(item.unit_id) {
            errors.push(FieldError::new(
                format!("[{i}].unit_id"),
                format!("unit {} appears more than once", item.unit_id),
            ));
        } else if !cycles::sampled_unit_in_scope(&state, &scope, &cycle, item.unit_id).await? {
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
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(BulkCreated {
            created: created.len(),
            submissions: created,
        }),
    )
        .into_response())
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
#[utoipa::path(get, path = "/cycles/{year}/submissions", tag = "submissions", params(("year" = i64, Path, description = "Cycle year"), SubmissionFilter), responses((status = 200, description = "Success", body = Vec<SubmissionSummary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
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
           JOIN cycles c ON c.year = s.cycle_year
           WHERE s.cycle_year = $1
             AND ($2::text IS NULL OR s.state = $2)
             AND ($3::text IS NULL OR e.code = $3)
             AND ($4::text[] IS NULL OR e.province_code = ANY($4))
             AND ($5::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a WHERE a.cycle_year = s.cycle_year AND a.unit_id = s.unit_id AND a.actor_id = $5)))
           ORDER BY e.code, u.name"#,
        i32::from(cycle.year.get()),
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
#[utoipa::path(get, path = "/submissions/{id}", tag = "submissions", params(("id" = i64, Path, description = "Submission id")), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Opens a transaction, locks the submission, checks `If-Match` and the allowed source states.
async fn begin_change(
    state: &AppState,
    actor: &Actor,
    id: i64,
    headers: &HeaderMap,
    from: &[&str],
    action: &str,
) -> ApiResult<(Transaction<'static, Postgres>, Loaded)> {
    let mut tx = state.pool.begin().await?;
    let loaded = lock(&mut tx, actor, id).await?;
    check_if_match(headers, loaded.version)?;
    if !from.contains(&loaded.state.as_str()) {
        return Err(ApiError::conflict(
            "invalid-transition",
            format!(
                "cannot {action} a {} submission (allowed from: {})",
                loaded.state,
                from.join(", ")
            ),
        ));
    }
    Ok((tx, loaded))
}

async fn bump(tx: &mut Transaction<'_, Postgres>, id: i64, new_state: &str) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE submissions SET state = $2, version = version + 1, updated_at = now(),
                submitted_at = CASE WHEN $2 = 'submitted' THEN now() ELSE submitted_at END
         WHERE id = $1",
        id,
        new_state
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Set indicator values.
///
/// Who may call: assessor (collecting), office, admin; draft or returned only.
#[utoipa::path(patch, path = "/submissions/{id}", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), request_body(content = ValuesUpdate, content_type = "application/json"), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn update(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ValuesUpdate>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let (mut tx, loaded) =
        begin_change(&state, &actor, id, &headers, &["draft", "returned"], "edit").await?;
    may_edit(&actor, loaded.cycle_state)?;
    validate_values(
        methodology(&state, &loaded.methodology)?,
        &body.values,
        "values",
    )?;
    write_values(&mut tx, actor_id, loaded.id, &body.values).await?;
    let state_now = loaded.state.clone();
    bump(&mut tx, loaded.id, &state_now).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Submit for verification (every indicator answered).
///
/// Who may call: assessor, office, admin.
#[utoipa::path(post, path = "/submissions/{id}/submit", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn submit(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let (mut tx, loaded) = begin_change(
        &state,
        &actor,
        id,
        &headers,
        &["draft", "returned"],
        "submit",
    )
    .await?;
    may_edit(&actor, loaded.cycle_state)?;
    let m = methodology(&state, &loaded.methodology)?;
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
    bump(&mut tx, loaded.id, "submitted").await?;
    audit(
        &mut tx,
        actor_id,
        loaded.id,
        "submitted",
        Some("state"),
        Some(serde_json::json!(loaded.state)),
        Some(serde_json::json!("submitted")),
    )
    .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, read(&state, &actor, id).await?))
}

/// Return with comments.
///
/// Who may call: office (its provinces), admin.
#[utoipa::path(post, path = "/submissions/{id}/return", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), request_body(content = ReturnRequest, content_type = "application/json"), responses((status = 200, description = "Success", body = Submission), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn return_(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ReturnRequest>,
) -> ApiResult<Response> {
    let actor_id = actor.require_staff()?;
    let (mut tx, loaded) =
        begin_change(&state, &actor, id, &headers, &["submitted"], "return").await?;
    let m = methodology(&state, &loaded.methodology)?;
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
    bump(&mut tx, loaded.id, "returned").await?;
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
    tx.commit().await?;
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

/// Verify (locks it, enqueues a recompute).
///
/// Who may call: office (its provinces), admin.
#[utoipa::path(post, path = "/submissions/{id}/verify", tag = "submissions", params(("id" = i64, Path, description = "Submission id"), ("If-Match" = String, Header, description = "ETag of the version read")), responses((status = 200, description = "Success", body = Verified), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn verify(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let actor_id = actor.require_staff()?;
    let (mut tx, loaded) =
        begin_change(&state, &actor, id, &headers, &["submitted"], "verify").await?;
    sqlx::query!(
        "UPDATE submissions SET verified_at = now(), verified_by = $2 WHERE id = $1",
        loaded.id,
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    bump(&mut tx, loaded.id, "verified").await?;
    let input_revision = sqlx::query_scalar!(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE year = $1 RETURNING input_revision",
        i32::from(loaded.year.get())
    )
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor_id,
        loaded.id,
        "verified",
        Some("state"),
        Some(serde_json::json!("submitted")),
        Some(serde_json::json!("verified")),
    )
    .await?;
    let job_id = jobs::enqueue(
        &mut tx,
        &jobs::Recompute::unit_at(loaded.year, loaded.unit_id, input_revision),
        None,
    )
    .await?;
    tx.commit().await?;
    let submission = read(&state, &actor, id).await?;
    let tag = etag(submission.version);
    Ok((
        StatusCode::OK,
        [(header::ETAG, tag)],
        Json(Verified { submission, job_id }),
    )
        .into_response())
}

/// One audit entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who (actor id).
    pub actor_id: Option<i64>,
    /// Who (name).
    pub actor_name: Option<String>,
    /// What: `created`, `value_set`, `submitted`, `returned`, `verified`.
    pub action: String,
    /// The field changed (indicator code or `state`).
    pub field: Option<String>,
    /// The value before.
    #[schema(value_type = Option<Object>)]
    pub previous: Option<serde_json::Value>,
    /// The value after.
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
}

/// The audit trail.
///
/// Who may call: as for reading the submission.
#[utoipa::path(get, path = "/submissions/{id}/audit", tag = "submissions", params(("id" = i64, Path, description = "Submission id")), responses((status = 200, description = "Success", body = Vec<AuditEntry>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn audit_trail(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    // Scope check only (404 outside the caller's scope); the trail is read in the same snapshot.
    let mut tx = state.pool.begin().await?;
    lock(&mut tx, &actor, id).await?;
    let rows = sqlx::query_as!(
        AuditEntry,
        r#"SELECT l.id, l.at, l.actor_id, a.name AS "actor_name?", l.action, l.field, l.previous, l.current
           FROM audit_log l LEFT JOIN actors a ON a.id = l.actor_id WHERE l.submission_id = $1 ORDER BY l.id"#,
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// Body of `POST /cycles/{year}/corrections`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// The unit whose verified values are corrected.
    pub unit_id: i64,
    /// Why (kept in the audit trail).
    pub reason: String,
    /// The corrected values.
    pub values: Vec<ValueInput>,
}

/// Answer of a correction.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Corrected {
    /// The new results revision.
    pub revision: i32,
    /// Units scored in it.
    pub units_scored: usize,
    /// Entities scored in it.
    pub entities_scored: usize,
}

/// Correct a verified submission of a published cycle: its values change (audited with the
/// reason) and the results are recomputed into a new revision; the published revision stays
/// readable in the database, never silently overwritten.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles/{year}/corrections", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Correction, content_type = "application/json"), responses((status = 200, description = "Success", body = Corrected), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn correct(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Correction>,
) -> ApiResult<Json<Corrected>> {
    let actor_id = actor.require_admin()?;
    let year = cycles::year(raw)?;
    let y = i32::from(year.get());
    let mut tx = state.pool.begin().await?;
    let cycle = sqlx::query!(
        "SELECT state, imported, methodology_code FROM cycles WHERE year = $1 FOR UPDATE",
        y
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    if cycle.state != "published" || cycle.imported {
        return Err(ApiError::conflict(
            "not-published",
            format!(
                "corrections are for published cycles with field data; {year} is {}",
                if cycle.imported {
                    "imported"
                } else {
                    &cycle.state
                }
            ),
        ));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::field(
            "reason",
            "say why the published values change",
        ));
    }
    validate_values(
        methodology(&state, &cycle.methodology_code)?,
        &body.values,
        "values",
    )?;
    let submission = sqlx::query_scalar!("SELECT id FROM submissions WHERE cycle_year = $1 AND unit_id = $2 AND state = 'verified' FOR UPDATE", y, body.unit_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::field("unit_id", format!("unit {} has no verified submission in {year}", body.unit_id)))?;
    audit(
        &mut tx,
        actor_id,
        submission,
        "corrected",
        None,
        None,
        Some(serde_json::json!({ "reason": body.reason })),
    )
    .await?;
    write_values(&mut tx, actor_id, submission, &body.values).await?;
    sqlx::query!(
        "UPDATE submissions SET version = version + 1, updated_at = now() WHERE id = $1",
        submission
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE cycles SET input_revision = input_revision + 1, results_revision = results_revision + 1, updated_at = now() WHERE year = $1", y)
        .execute(&mut *tx)
        .await?;
    let summary = crate::recompute::recompute_cycle_in(&mut tx, &state, year).await?;
    let reissue = jobs::IssueCertificates {
        year: year.get(),
        revision: summary.revision,
        traceparent: crate::telemetry::current_traceparent(),
    };
    jobs::enqueue(
        &mut tx,
        &reissue,
        Some(&format!("certificates-{}-{}", year.get(), summary.revision)),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Corrected {
        revision: summary.revision,
        units_scored: summary.units_scored,
        entities_scored: summary.entities_scored,
    }))
}
