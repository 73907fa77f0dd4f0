//! The review queue of integrity flags: what deserves a second look before HQ publishes.
//! Flags are computed by the recomputes (`kepatuhan_app::flags`); they never change a score.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/flags` | admin, office (its provinces) |
//! | `POST /flags/{id}/dismiss` | admin |
//! | `POST /flags/{id}/escalate` | admin |
//!
//! A dismissal holds while the flag's evidence stays the same; new evidence reopens the flag.
//! Both decisions are audited.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination;
use crate::problem::{FieldError, Problem, text_problem};
use crate::routes::cycles;

/// The longest reason or comment.
const TEXT_MAX: usize = 4_000;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(dismiss))
        .routes(routes!(escalate))
}

/// One integrity flag.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagView {
    /// Its id.
    pub id: i64,
    /// Its kind: `year_on_year_jump`, `identical_sheets`, `survey_contradiction`,
    /// `top_marks_without_evidence`, `fast_review`, `never_returned`, `assessor_outlier` or
    /// `cutoff_bunching`.
    pub kind: String,
    /// Who or what it is about, e.g. `{ "type": "unit", "unit": 12 }`.
    #[schema(value_type = Object)]
    pub subject: serde_json::Value,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// The unit it names first, if any.
    pub unit_id: Option<i64>,
    /// The entity's code, if it belongs to one.
    pub entity_code: Option<String>,
    /// The regional office it belongs to, if known.
    pub office: Option<String>,
    /// The province it belongs to, if any.
    pub province: Option<String>,
    /// The numbers that triggered it.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// What they were compared with.
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    /// Whether its rule fires on the latest recompute.
    pub current: bool,
    /// `open`, `dismissed` or `escalated`.
    pub status: String,
    /// The reason of a dismissal or the comment of an escalation.
    pub decision_note: Option<String>,
    /// When it was decided.
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was first raised.
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
}

/// The queue: counts of the cycle's flags the caller may see, and one page of them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagQueue {
    /// Current flags not yet dismissed or escalated, over the whole filter.
    pub open: i64,
    /// Flags matching the filter.
    pub total: i64,
    /// This page, high severity first.
    pub items: Vec<FlagView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters of the queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FlagFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this province.
    pub province: Option<String>,
    /// Only this regional office.
    pub office: Option<String>,
    /// Only this severity (`low`, `medium`, `high`).
    pub severity: Option<String>,
    /// Only this status (`open`, `dismissed`, `escalated`).
    pub status: Option<String>,
    /// Also flags whose rule no longer fires (default false).
    #[serde(default)]
    pub include_resolved: bool,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl FlagFilter {
    /// Every filter value that is not one of the allowed ones, as field errors.
    fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(k) = &self.kind
            && kepatuhan_core::flags::FlagKind::from_code(k).is_none()
        {
            errors.push(FieldError::new("kind", format!("unknown flag kind `{k}`")));
        }
        if let Some(s) = &self.severity
            && kepatuhan_core::flags::Severity::from_code(s).is_none()
        {
            errors.push(FieldError::new(
                "severity",
                format!("`{s}` is not low, medium or high"),
            ));
        }
        if let Some(s) = &self.status
            && !["open", "dismissed", "escalated"].contains(&s.as_str())
        {
            errors.push(FieldError::new(
                "status",
                format!("`{s}` is not open, dismissed or escalated"),
            ));
        }
        errors
    }
}

/// List a cycle's integrity flags, with filters.
///
/// Who may call: admin, office (the flags of its provinces and its own office).
#[utoipa::path(get, path = "/cycles/{year}/flags", operation_id = "list_flags", tag = "flags", params(("year" = i64, Path, description = "Cycle year"), FlagFilter), responses((status = 200, description = "Success", body = FlagQueue), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(filter): Query<FlagFilter>,
) -> ApiResult<Json<FlagQueue>> {
    actor.require_staff()?;
    let errors = filter.problems();
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let limit = pagination::limit(filter.limit)?;
    let offset = pagination::offset(filter.cursor.as_deref())?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    let provinces: Option<Vec<String>> = match &actor {
        Actor::Office { provinces, .. } => Some(provinces.clone()),
        _ => None,
    };
    let counts = sqlx::query!(
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE f.current AND f.status = 'open') AS "open!"
           FROM flags f
           WHERE f.cycle_id = $1 AND (f.current OR $2)
             AND ($3::text IS NULL OR f.kind = $3) AND ($4::text IS NULL OR f.province_code = $4)
             AND ($5::text IS NULL OR f.office_code = $5) AND ($6::text IS NULL OR f.severity = $6)
             AND ($7::text IS NULL OR f.status = $7)
             AND ($8::text[] IS NULL OR f.province_code = ANY($8)
                  OR f.office_code IN (SELECT office_code FROM office_provinces WHERE province_code = ANY($8)))"#,
        cycle.id,
        filter.include_resolved,
        filter.kind,
        filter.province,
        filter.office,
        filter.severity,
        filter.status,
        provinces.as_deref()
    )
    .fetch_one(&state.pool)
    .await?;
    let flags = sqlx::query_as!(
        FlagView,
        r#"SELECT f.id, f.kind, f.subject, f.severity, f.unit_id, e.code AS "entity_code?", f.office_code AS office,
                  f.province_code AS province, f.evidence, f.context, f.current, f.status, f.decision_note,
                  f.decided_at, f.first_seen_at
           FROM flags f LEFT JOIN entities e ON e.id = f.entity_id
           WHERE f.cycle_id = $1 AND (f.current OR $2)
             AND ($3::text IS NULL OR f.kind = $3) AND ($4::text IS NULL OR f.province_code = $4)
             AND ($5::text IS NULL OR f.office_code = $5) AND ($6::text IS NULL OR f.severity = $6)
             AND ($7::text IS NULL OR f.status = $7)
             AND ($8::text[] IS NULL OR f.province_code = ANY($8)
                  OR f.office_code IN (SELECT office_code FROM office_provinces WHERE province_code = ANY($8)))
           ORDER BY CASE f.severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, f.kind, f.id
           LIMIT $9 OFFSET $10"#,
        cycle.id,
        filter.include_resolved,
        filter.kind,
        filter.province,
        filter.office,
        filter.severity,
        filter.status,
        provinces.as_deref(),
        limit + 1,
        offset
    )
    .fetch_all(&state.pool)
    .await?;
    let page = pagination::offset_page(flags, limit, offset);
    Ok(Json(FlagQueue {
        open: counts.open,
        total: counts.total,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Body of a dismissal or an escalation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why the flag is dismissed, or what the office should look at.
    pub note: String,
}

/// Dismiss a current, open flag with a reason. It stays dismissed while its evidence stays the
/// same.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/flags/{id}/dismiss", operation_id = "dismiss_flag", tag = "flags", params(("id" = i64, Path, description = "Flag id")), request_body(content = Decision, content_type = "application/json"), responses((status = 200, description = "Success", body = FlagView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn dismiss(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<Decision>,
) -> ApiResult<Json<FlagView>> {
    decide(&state, &actor, id, &body, "dismissed").await
}

/// Escalate a current, open flag with a comment for the office: HQ's decision that the unit's
/// data must be looked at again (before publication, by returning the submission; after, by a
/// correction).
///
/// Who may call: admin.
#[utoipa::path(post, path = "/flags/{id}/escalate", operation_id = "escalate_flag", tag = "flags", params(("id" = i64, Path, description = "Flag id")), request_body(content = Decision, content_type = "application/json"), responses((status = 200, description = "Success", body = FlagView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn escalate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<Decision>,
) -> ApiResult<Json<FlagView>> {
    decide(&state, &actor, id, &body, "escalated").await
}

/// Records HQ's decision on a flag, audited in the same transaction.
async fn decide(
    state: &AppState,
    actor: &Actor,
    id: i64,
    body: &Decision,
    status: &'static str,
) -> ApiResult<Json<FlagView>> {
    let actor_id = actor.require_admin()?;
    let note = body.note.trim();
    if let Some(problem) = text_problem("note".to_owned(), note, TEXT_MAX) {
        return Err(ApiError::fields(vec![problem]));
    }
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query!(
        "SELECT f.current, f.status, f.kind, f.province_code, f.fingerprint FROM flags f WHERE f.id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no flag {id}")))?;
    if !row.current || row.status != "open" {
        return Err(ApiError::conflict(
            "flag-decided",
            format!(
                "flag {id} is {}{}: only a current, open flag can be {status}",
                row.status,
                if row.current {
                    ""
                } else {
                    " and no longer fires"
                }
            ),
        ));
    }
    sqlx::query!(
        "UPDATE flags SET status = $2, decision_note = $3, decided_by = $4, decided_at = now() WHERE id = $1",
        id,
        status,
        note,
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("flag", id.to_string()),
        row.province_code.as_deref(),
        status,
        serde_json::json!({ "kind": row.kind, "note": note, "fingerprint": row.fingerprint }),
    )
    .await?;
    let view = sqlx::query_as!(
        FlagView,
        r#"SELECT f.id, f.kind, f.subject, f.severity, f.unit_id, e.code AS "entity_code?", f.office_code AS office,
                  f.province_code AS province, f.evidence, f.context, f.current, f.status, f.decision_note,
                  f.decided_at, f.first_seen_at
           FROM flags f LEFT JOIN entities e ON e.id = f.entity_id WHERE f.id = $1"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(view))
}
