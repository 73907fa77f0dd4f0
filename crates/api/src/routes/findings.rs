//! The findings register: the Ombudsman's findings addressed to an entity in a cycle, their
//! follow-up by the government and the office's acceptance. The award rule of the cycle reads it:
//! findings not accepted withhold the award, and (from 2025) a register fully accepted adds
//! "Tanpa Maladministrasi" to the opinion. Every change is audited; a change of what the rule
//! reads (a new finding, an acceptance, a follow-up sent back after acceptance) moves the cycle's
//! inputs and enqueues its recompute. The register of a published cycle is frozen.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/entities/{code}/findings` | admin, office (its provinces), government (its entity) |
//! | `POST /cycles/{year}/entities/{code}/findings` | admin, office (its provinces) |
//! | `POST /findings/{id}/follow-up` | government (its entity), admin |
//! | `POST /findings/{id}/accept`, `POST /findings/{id}/return` | admin, office (its provinces) |

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use kepatuhan_app::cycles::{self as app_cycles, CycleId, InputChange};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem, text_problem};
use crate::routes::cycles;

/// The longest description, note or evidence reference.
const TEXT_MAX: usize = 4_000;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, record))
        .routes(routes!(follow_up))
        .routes(routes!(accept))
        .routes(routes!(send_back))
}

/// A finding of the register.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// Its id.
    pub id: i64,
    /// The entity it is addressed to.
    pub entity_code: String,
    /// The unit where it was found, when at a unit.
    pub unit_id: Option<i64>,
    /// What was found.
    pub description: String,
    /// When its follow-up is due.
    pub due_on: Option<NaiveDate>,
    /// `open`, `followed_up` (by the government, awaiting the office) or `accepted`.
    pub status: String,
    /// The government's account of its follow-up.
    pub follow_up_note: Option<String>,
    /// References to the evidence of follow-up (documents, photos, links).
    pub follow_up_evidence: Vec<String>,
    /// The office's reason when it sent the follow-up back.
    pub review_note: Option<String>,
    /// Whether it stands for a count recorded through the deprecated `PUT …/follow-up`.
    pub summary: bool,
    /// When it was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was followed up.
    pub followed_up_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the office accepted the follow-up.
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Body of `POST /cycles/{year}/entities/{code}/findings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "description": "Standar pelayanan tidak dipublikasikan di ruang tunggu", "unit_id": 12, "due_on": "2026-03-31" }))]
pub struct NewFinding {
    /// What was found.
    pub description: String,
    /// The unit where it was found (a unit of the entity).
    pub unit_id: Option<i64>,
    /// When its follow-up is due.
    pub due_on: Option<NaiveDate>,
}

/// Body of `POST /findings/{id}/follow-up`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "note": "Standar pelayanan dicetak dan dipasang", "evidence": ["https://dokumen.example.go.id/sp-2026.pdf"] }))]
pub struct FollowUpReport {
    /// What was done.
    pub note: String,
    /// References to the evidence.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Body of `POST /findings/{id}/return`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBack {
    /// Why the follow-up is not accepted.
    pub note: String,
}

/// A finding's row, with what access checks need.
struct Row {
    id: i64,
    cycle_id: i64,
    entity_id: i64,
    entity_code: String,
    province_code: Option<String>,
    unit_id: Option<i64>,
    description: String,
    due_on: Option<NaiveDate>,
    status: String,
    follow_up_note: Option<String>,
    follow_up_evidence: serde_json::Value,
    review_note: Option<String>,
    summary: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    followed_up_at: Option<chrono::DateTime<chrono::Utc>>,
    accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Row> for Finding {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            entity_code: r.entity_code,
            unit_id: r.unit_id,
            description: r.description,
            due_on: r.due_on,
            status: r.status,
            follow_up_note: r.follow_up_note,
            follow_up_evidence: serde_json::from_value(r.follow_up_evidence).unwrap_or_default(),
            review_note: r.review_note,
            summary: r.summary,
            created_at: r.created_at,
            followed_up_at: r.followed_up_at,
            accepted_at: r.accepted_at,
        }
    }
}

/// Reads one finding (locked for update in the caller's transaction), or 404 when the actor may
/// not see it.
async fn locked(tx: &mut Transaction<'_, Postgres>, actor: &Actor, id: i64) -> ApiResult<Row> {
    sqlx::query_as!(
        Row,
        r#"SELECT f.id, f.cycle_id, f.entity_id, e.code AS entity_code, e.province_code, f.unit_id, f.description,
                  f.due_on, f.status, f.follow_up_note, f.follow_up_evidence, f.review_note, f.summary,
                  f.created_at, f.followed_up_at, f.accepted_at
           FROM findings f JOIN entities e ON e.id = f.entity_id
           WHERE f.id = $1 FOR UPDATE OF f"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .filter(|r| actor.covers_entity(r.entity_id, r.province_code.as_deref()))
    .ok_or_else(|| ApiError::NotFound(format!("no finding {id}")))
}

/// The findings of an entity in a cycle.
async fn of_entity(state: &AppState, cycle_id: i64, entity_id: i64) -> ApiResult<Vec<Finding>> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT f.id, f.cycle_id, f.entity_id, e.code AS entity_code, e.province_code, f.unit_id, f.description,
                  f.due_on, f.status, f.follow_up_note, f.follow_up_evidence, f.review_note, f.summary,
                  f.created_at, f.followed_up_at, f.accepted_at
           FROM findings f JOIN entities e ON e.id = f.entity_id
           WHERE f.cycle_id = $1 AND f.entity_id = $2 ORDER BY f.id"#,
        cycle_id,
        entity_id
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows.into_iter().map(Finding::from).collect())
}

/// Who may read a register: admin, offices, governments (each within its scope).
fn require_reader(actor: &Actor) -> ApiResult<()> {
    match actor {
        Actor::Public => Err(ApiError::Unauthenticated),
        Actor::Assessor { .. } => Err(ApiError::Forbidden(
            "the findings register is for HQ, the offices and the governments assessed".into(),
        )),
        _ => Ok(()),
    }
}

/// The findings addressed to an entity in a cycle, with their follow-up.
///
/// Who may call: admin, office (its provinces), government (its entity); others get 404.
#[utoipa::path(get, path = "/cycles/{year}/entities/{code}/findings", operation_id = "list_findings", tag = "findings", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Vec<Finding>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
) -> ApiResult<Json<Vec<Finding>>> {
    require_reader(&actor)?;
    let (entity_id, _, _) = crate::routes::reference::entity_for(&state, &actor, &code).await?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    Ok(Json(of_entity(&state, cycle.id, entity_id).await?))
}

/// Locks the finding's cycle and refuses when its results are frozen (published).
async fn open_cycle(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
) -> ApiResult<app_cycles::Cycle> {
    let cycle = app_cycles::lock(tx, CycleId(cycle_id)).await?;
    cycle.require_open()?;
    Ok(cycle)
}

/// Record a finding addressed to an entity in a cycle (at one of its units, or the entity as a
/// whole). The cycle is recomputed: an open finding withholds the award.
///
/// Who may call: admin, office (its provinces); not once the cycle is published.
#[utoipa::path(post, path = "/cycles/{year}/entities/{code}/findings", operation_id = "record_finding", tag = "findings", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), request_body(content = NewFinding, content_type = "application/json"), responses((status = 201, description = "Recorded", body = Finding), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn record(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
    Json(body): Json<NewFinding>,
) -> ApiResult<(StatusCode, Json<Finding>)> {
    let actor_id = actor.require_staff()?;
    let (entity_id, entity, _) =
        crate::routes::reference::entity_for(&state, &actor, &code).await?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let description = body.description.trim();
    let mut errors: Vec<FieldError> = text_problem("description".to_owned(), description, TEXT_MAX)
        .into_iter()
        .collect();
    if let Some(unit) = body.unit_id {
        let of_entity = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM units WHERE id = $1 AND entity_id = $2) AS "found!""#,
            unit,
            entity_id
        )
        .fetch_one(&state.pool)
        .await?;
        if !of_entity {
            errors.push(FieldError::new(
                "unit_id",
                format!("unit {unit} is not a unit of {}", entity.code),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut tx = state.pool.begin().await?;
    let mut locked_cycle = open_cycle(&mut tx, cycle.id).await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO findings (cycle_id, entity_id, unit_id, description, due_on, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        cycle.id,
        entity_id,
        body.unit_id,
        description,
        body.due_on,
        actor_id
    )
    .fetch_one(&mut *tx)
    .await?;
    app_cycles::inputs_changed(&mut tx, &mut locked_cycle, InputChange::Cycle).await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("finding", id.to_string()),
        entity.province_code.as_deref(),
        "recorded",
        serde_json::json!({ "year": cycle.year.get(), "entity": entity.code, "unit_id": body.unit_id, "description": description, "due_on": body.due_on }),
    )
    .await?;
    let row = locked(&mut tx, &actor, id).await?;
    crate::error::commit(tx).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Report the follow-up of a finding, with evidence: it awaits the office's acceptance.
///
/// Who may call: government (its entity), admin; while the cycle is not published.
#[utoipa::path(post, path = "/findings/{id}/follow-up", operation_id = "follow_up_finding", tag = "findings", params(("id" = i64, Path, description = "Finding id")), request_body(content = FollowUpReport, content_type = "application/json"), responses((status = 200, description = "Success", body = Finding), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn follow_up(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<FollowUpReport>,
) -> ApiResult<Json<Finding>> {
    let actor_id = match &actor {
        Actor::Government { id, .. } | Actor::Admin { id } => *id,
        Actor::Public => return Err(ApiError::Unauthenticated),
        _ => {
            return Err(ApiError::Forbidden(
                "the government assessed reports its follow-up; the office accepts it".into(),
            ));
        }
    };
    let note = body.note.trim();
    let mut errors: Vec<FieldError> = text_problem("note".to_owned(), note, TEXT_MAX)
        .into_iter()
        .collect();
    for (i, e) in body.evidence.iter().enumerate() {
        errors.extend(text_problem(format!("evidence[{i}]"), e.trim(), TEXT_MAX));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut tx = state.pool.begin().await?;
    let row = locked(&mut tx, &actor, id).await?;
    open_cycle(&mut tx, row.cycle_id).await?;
    if row.status == "accepted" {
        return Err(ApiError::conflict(
            "finding-accepted",
            format!("finding {id} is already accepted by the office"),
        ));
    }
    let evidence: Vec<&str> = body.evidence.iter().map(|e| e.trim()).collect();
    sqlx::query!(
        "UPDATE findings SET status = 'followed_up', follow_up_note = $2, follow_up_evidence = $3,
                followed_up_by = $4, followed_up_at = now(), review_note = NULL, updated_at = now()
         WHERE id = $1",
        id,
        note,
        serde_json::json!(evidence),
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("finding", id.to_string()),
        row.province_code.as_deref(),
        "followed-up",
        serde_json::json!({ "note": note, "evidence": evidence, "previous_status": row.status }),
    )
    .await?;
    let row = locked(&mut tx, &actor, id).await?;
    crate::error::commit(tx).await?;
    Ok(Json(row.into()))
}

/// Moves a finding's status as the office reviews it, with the audit entry and (where the
/// accepted count changes) the cycle's recompute.
async fn review(
    state: &AppState,
    actor: &Actor,
    id: i64,
    accept: bool,
    note: Option<&str>,
) -> ApiResult<Finding> {
    let actor_id = actor.require_staff()?;
    let mut tx = state.pool.begin().await?;
    let row = locked(&mut tx, actor, id).await?;
    let mut cycle = open_cycle(&mut tx, row.cycle_id).await?;
    let (to, allowed) = if accept {
        ("accepted", row.status == "followed_up")
    } else {
        ("open", row.status != "open")
    };
    if !allowed {
        return Err(ApiError::conflict(
            "invalid-transition",
            format!(
                "finding {id} is {}: it cannot be {}",
                row.status,
                if accept { "accepted" } else { "sent back" }
            ),
        ));
    }
    sqlx::query!(
        "UPDATE findings SET status = $2::text, review_note = $3,
                accepted_by = CASE WHEN $2::text = 'accepted' THEN $4::bigint END,
                accepted_at = CASE WHEN $2::text = 'accepted' THEN now() END, updated_at = now()
         WHERE id = $1",
        id,
        to,
        note,
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    // What the award rule reads (findings, and those accepted) changed.
    if accept || row.status == "accepted" {
        app_cycles::inputs_changed(&mut tx, &mut cycle, InputChange::Cycle).await?;
    }
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("finding", id.to_string()),
        row.province_code.as_deref(),
        if accept { "accepted" } else { "sent-back" },
        serde_json::json!({ "from": row.status, "to": to, "note": note }),
    )
    .await?;
    let row = locked(&mut tx, actor, id).await?;
    crate::error::commit(tx).await?;
    Ok(row.into())
}

/// Accept a finding's follow-up: it no longer withholds the award.
///
/// Who may call: admin, office (its provinces); while the cycle is not published.
#[utoipa::path(post, path = "/findings/{id}/accept", operation_id = "accept_finding", tag = "findings", params(("id" = i64, Path, description = "Finding id")), responses((status = 200, description = "Success", body = Finding), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn accept(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<Finding>> {
    Ok(Json(review(&state, &actor, id, true, None).await?))
}

/// Send a finding's follow-up back to the government, with the reason: it is open again.
///
/// Who may call: admin, office (its provinces); while the cycle is not published.
#[utoipa::path(post, path = "/findings/{id}/return", operation_id = "return_finding", tag = "findings", params(("id" = i64, Path, description = "Finding id")), request_body(content = SendBack, content_type = "application/json"), responses((status = 200, description = "Success", body = Finding), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn send_back(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<SendBack>,
) -> ApiResult<Json<Finding>> {
    let note = body.note.trim();
    if let Some(problem) = text_problem("note".to_owned(), note, TEXT_MAX) {
        return Err(ApiError::fields(vec![problem]));
    }
    Ok(Json(review(&state, &actor, id, false, Some(note)).await?))
}
