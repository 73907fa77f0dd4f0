//! The audit trail of every write, filtered by object, actor and time.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /audit` | admin (all), office (the objects of its provinces, and its own writes) |

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::problem::Problem;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Filters of the audit trail.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this kind of object: `submission`, `entity`, `unit`, `sample`, `assignment`,
    /// `survey_responses`, `follow_up`, `certificate`, `webhook`, `cycle`, `token`…
    pub object_type: Option<String>,
    /// Only this object (a submission id, an entity code, a certificate code…).
    pub object_id: Option<String>,
    /// Only this actor's writes.
    pub actor_id: Option<i64>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// At most this many entries, newest first (1–1000, default 200).
    pub limit: Option<i64>,
}

/// One audit entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`null`: the command line or the system).
    pub actor_id: Option<i64>,
    /// Their name.
    pub actor_name: Option<String>,
    /// The kind of object.
    pub object_type: String,
    /// The object.
    pub object_id: String,
    /// The province it belongs to, if any.
    pub province_code: Option<String>,
    /// What was done.
    pub action: String,
    /// The field changed (submissions).
    pub field: Option<String>,
    /// The value before (submissions).
    #[schema(value_type = Option<Object>)]
    pub previous: Option<serde_json::Value>,
    /// The value after, or the details.
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
}

/// The audit trail, newest first.
///
/// Who may call: admin (all), office (the objects of its provinces, and its own writes).
#[utoipa::path(get, path = "/audit", operation_id = "list_audit_entries", tag = "audit", params(AuditFilter), responses((status = 200, description = "Success", body = Vec<AuditRecord>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    actor.require_staff()?;
    let scope = actor.scope()?;
    let limit = match f.limit {
        None => 200,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and 1000, got {n}"),
            ));
        }
    };
    let rows = sqlx::query_as!(
        AuditRecord,
        r#"SELECT l.id, l.at, l.actor_id, a.name AS "actor_name?", l.object_type,
                  COALESCE(l.object_id, l.submission_id::text, '') AS "object_id!",
                  COALESCE(l.province_code, e.province_code) AS province_code,
                  l.action, l.field, l.previous, l.current
           FROM audit_log l
           LEFT JOIN actors a ON a.id = l.actor_id
           LEFT JOIN submissions s ON s.id = l.submission_id
           LEFT JOIN units u ON u.id = s.unit_id
           LEFT JOIN entities e ON e.id = u.entity_id
           WHERE ($1::text IS NULL OR l.object_type = $1)
             AND ($2::text IS NULL OR COALESCE(l.object_id, l.submission_id::text) = $2)
             AND ($3::bigint IS NULL OR l.actor_id = $3)
             AND ($4::timestamptz IS NULL OR l.at >= $4)
             AND ($5::timestamptz IS NULL OR l.at < $5)
             AND ($6::text[] IS NULL OR COALESCE(l.province_code, e.province_code) = ANY($6) OR l.actor_id = $8)
           ORDER BY l.id DESC LIMIT $7"#,
        f.object_type,
        f.object_id,
        f.actor_id,
        f.from,
        f.to,
        scope.provinces.as_deref(),
        limit,
        actor.id()
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// Records a write in the audit trail, in the caller's transaction (the handlers' shorthand for
/// `kepatuhan_app::audit::record`).
pub(crate) async fn write(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: Option<i64>,
    object: (&'static str, String),
    province: Option<&str>,
    action: &'static str,
    details: serde_json::Value,
) -> ApiResult<()> {
    let (object_type, object_id) = object;
    let entry = kepatuhan_app::audit::Entry {
        object_type,
        object_id,
        province,
        action,
        details,
    };
    Ok(kepatuhan_app::audit::record(tx, actor, entry).await?)
}

/// Records a bulk upload of `object_type` rows (object id `bulk`) when it changed any: an upload
/// that changed nothing (a file sent again) writes no entry.
pub(crate) async fn bulk_uploaded(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: i64,
    object_type: &'static str,
    province: Option<&str>,
    changed: usize,
    details: serde_json::Value,
) -> ApiResult<()> {
    if changed == 0 {
        return Ok(());
    }
    write(
        tx,
        Some(actor),
        (object_type, "bulk".to_owned()),
        province,
        "uploaded",
        details,
    )
    .await
}

/// The province of a unit (through its entity), for its audit entries: offices read the trail of
/// their provinces.
pub(crate) async fn unit_province(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    unit_id: i64,
) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT e.province_code FROM units u JOIN entities e ON e.id = u.entity_id WHERE u.id = $1",
        unit_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .flatten())
}

/// The province of an entity, for its audit entries.
pub(crate) async fn entity_province(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    entity_id: i64,
) -> ApiResult<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT province_code FROM entities WHERE id = $1",
        entity_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .flatten())
}
