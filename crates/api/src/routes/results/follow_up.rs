//! The follow-up of the Ombudsman's findings by an entity, which the grade rule reads.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `PUT /cycles/{year}/entities/{code}/follow-up` | admin, office (entities of its provinces); not once the cycle is published |

use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::Problem;
use crate::routes::cycles::{self, CycleState};
use kepatuhan_app::cycles as app_cycles;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(set_follow_up))
}

/// Body of a follow-up statement.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Findings and recommendations the Ombudsman addressed to the entity.
    pub findings: i32,
    /// Of which followed up.
    pub followed_up: i32,
}

/// Record whether an entity followed up the Ombudsman's findings in a cycle. From 2023 awards
/// (and certificates) need every finding followed up; from 2025 the opinion then reads
/// "… Tanpa Maladministrasi". A recompute of the cycle is enqueued with it.
///
/// Who may call: admin, office (entities of its provinces); not once the cycle is published.
#[utoipa::path(put, path = "/cycles/{year}/entities/{code}/follow-up", operation_id = "set_follow_up", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), request_body(content = FollowUp, content_type = "application/json"), responses((status = 200, description = "Recorded", body = FollowUp), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn set_follow_up(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
    Json(body): Json<FollowUp>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor_id = actor.require_staff()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    if cycle.state == CycleState::Published || cycle.imported {
        return Err(ApiError::conflict(
            "results-frozen",
            format!(
                "the results of {} are published; use corrections",
                cycle.year
            ),
        ));
    }
    let mut errors = Vec::new();
    if body.findings < 0 {
        errors.push(crate::problem::FieldError::new(
            "findings",
            "must be 0 or more",
        ));
    }
    if body.followed_up < 0 || body.followed_up > body.findings {
        errors.push(crate::problem::FieldError::new(
            "followed_up",
            "must be between 0 and findings",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (entity_id, _) = crate::routes::reference::visible_entity(&state, &scope, &code).await?;
    let y = cycle.id;
    let mut tx = state.pool.begin().await?;
    // Checked again under the cycle's lock: publication may have happened meanwhile.
    let mut locked = app_cycles::lock(&mut tx, app_cycles::CycleId(cycle.id)).await?;
    locked.require_open()?;
    // Recording the counts already stored changes nothing: no new input revision (and so no
    // recompute), no audit entry.
    let changed = sqlx::query_scalar!(
        r#"INSERT INTO entity_follow_up (cycle_id, entity_id, findings, followed_up, updated_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (cycle_id, entity_id) DO UPDATE
             SET findings = excluded.findings, followed_up = excluded.followed_up, updated_by = excluded.updated_by, updated_at = now()
             WHERE (entity_follow_up.findings, entity_follow_up.followed_up) IS DISTINCT FROM (excluded.findings, excluded.followed_up)
           RETURNING true AS "changed!""#,
        y,
        entity_id,
        body.findings,
        body.followed_up,
        actor_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    if changed {
        app_cycles::inputs_changed(&mut tx, &mut locked, app_cycles::InputChange::Cycle).await?;
        let province = crate::routes::audit::entity_province(&mut tx, entity_id).await?;
        crate::routes::audit::write(
            &mut tx,
            Some(actor_id),
            ("follow_up", format!("{}/{code}", cycle.year)),
            province.as_deref(),
            "recorded",
            serde_json::json!({ "findings": body.findings, "followed_up": body.followed_up }),
        )
        .await?;
    }
    crate::error::commit(tx).await?;
    Ok(Json(
        serde_json::json!({ "findings": body.findings, "followed_up": body.followed_up }),
    ))
}
