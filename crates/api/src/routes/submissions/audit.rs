//! The append-only audit trail of a submission.

use axum::extract::State;
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::lock;
use crate::AppState;
use crate::auth::Actor;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::problem::Problem;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_trail))
}

pub(crate) async fn audit(
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
#[utoipa::path(get, path = "/submissions/{id}/audit", operation_id = "get_submission_audit", tag = "submissions", params(("id" = i64, Path, description = "Submission id")), responses((status = 200, description = "Success", body = Vec<AuditEntry>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
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
    crate::error::commit(tx).await?;
    Ok(Json(rows))
}
