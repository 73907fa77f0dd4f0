//! Corrections of verified values after publication: audited with their reason, recomputed
//! into a new results revision whose certificates are issued.

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
use crate::problem::Problem;
use crate::routes::cycles;
use kepatuhan_app::{cycles as app_cycles, recompute};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(correct))
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
    let mut cycle = app_cycles::lock(&mut tx, year.into()).await?;
    if !cycle.state.is_published() || cycle.imported {
        return Err(ApiError::conflict(
            "not-published",
            format!(
                "corrections are for published cycles with field data; {year} is {}",
                if cycle.imported {
                    "imported"
                } else {
                    cycle.state.as_str()
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
        state.require_methodology(&cycle.methodology_code)?,
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
    let summary = recompute::correct(&mut tx, &state, &mut cycle).await?;
    tx.commit().await?;
    Ok(Json(Corrected {
        revision: summary.revision,
        units_scored: summary.units_scored,
        entities_scored: summary.entities_scored,
    }))
}
