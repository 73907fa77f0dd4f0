//! An entity's collection progress in a cycle: how far the assessment of each of its sampled
//! units has come, never the values.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/entities/{code}/progress` | admin, office (its provinces), government (its entity) |

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{CycleState, load, year};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::Problem;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(progress))
}

/// Where one sampled unit's assessment stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitProgress {
    /// The unit.
    pub unit_id: i64,
    /// Its name.
    pub unit_name: String,
    /// `not_started` (no submission yet), `draft`, `submitted`, `returned` or `verified`.
    pub status: String,
    /// Why it was excluded from the sample, when it was.
    pub excluded_reason: Option<String>,
    /// When its submission last changed.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How many sampled units stand where.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ProgressCounts {
    /// No submission yet.
    pub not_started: usize,
    /// Being filled in.
    pub draft: usize,
    /// Submitted, awaiting review.
    pub submitted: usize,
    /// Returned to the assessors with a note.
    pub returned: usize,
    /// Verified by the office.
    pub verified: usize,
    /// Excluded from the sample.
    pub excluded: usize,
}

/// An entity's collection progress in a cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// Entity code.
    pub entity_code: String,
    /// The cycle year.
    pub year: i32,
    /// The cycle's state.
    pub state: CycleState,
    /// Counts per status.
    pub counts: ProgressCounts,
    /// Each sampled unit.
    pub units: Vec<UnitProgress>,
}

/// An entity's collection progress: for each of its sampled units, whether its assessment is
/// not started, drafted, submitted, returned or verified. Never the values.
///
/// Who may call: admin, office (its provinces), government (its entity); others get 404.
#[utoipa::path(get, path = "/cycles/{year}/entities/{code}/progress", operation_id = "get_entity_progress", tag = "cycles", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Progress), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn progress(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
) -> ApiResult<Json<Progress>> {
    if matches!(actor, Actor::Assessor { .. }) {
        return Err(ApiError::Forbidden(
            "assessors follow their units through the submissions".into(),
        ));
    }
    let (entity_id, entity, _) =
        crate::routes::reference::entity_for(&state, &actor, &code).await?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    let rows = sqlx::query!(
        r#"SELECT u.id, u.name, s.state AS "state?", s.updated_at AS "updated_at?", cu.exclusion_reason
           FROM cycle_units cu JOIN units u ON u.id = cu.unit_id
           LEFT JOIN submissions s ON s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id
           WHERE cu.cycle_id = $1 AND u.entity_id = $2
           ORDER BY u.name"#,
        cycle.id,
        entity_id
    )
    .fetch_all(&state.pool)
    .await?;
    let mut counts = ProgressCounts::default();
    let units = rows
        .into_iter()
        .map(|r| {
            let status = r.state.unwrap_or_else(|| "not_started".to_owned());
            let slot = match (r.exclusion_reason.is_some(), status.as_str()) {
                (true, _) => &mut counts.excluded,
                (false, "draft") => &mut counts.draft,
                (false, "submitted") => &mut counts.submitted,
                (false, "returned") => &mut counts.returned,
                (false, "verified") => &mut counts.verified,
                _ => &mut counts.not_started,
            };
            *slot += 1;
            UnitProgress {
                unit_id: r.id,
                unit_name: r.name,
                status,
                excluded_reason: r.exclusion_reason,
                updated_at: r.updated_at,
            }
        })
        .collect();
    Ok(Json(Progress {
        entity_code: entity.code,
        year: i32::from(cycle.year.get()),
        state: cycle.state,
        counts,
        units,
    }))
}
