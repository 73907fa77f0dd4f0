//! The follow-up of the Ombudsman's findings by an entity as two counts: the endpoint kept for
//! callers of the counts since the findings register (`routes::findings`) replaced them. The
//! counts become summary findings of the register (beside those recorded one by one); it is
//! deprecated, and removed in API v2 (see `docs/api.md`).
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

/// The most findings one entity can be counted with in a cycle (each becomes a row of the
/// register).
const FINDINGS_MAX: i32 = 1_000;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(set_follow_up))
}

/// Body of a follow-up statement.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Findings and recommendations the Ombudsman addressed to the entity (0–1,000).
    #[schema(minimum = 0, maximum = 1000)]
    pub findings: i32,
    /// Of which followed up.
    pub followed_up: i32,
}

/// Record how many of the Ombudsman's findings an entity followed up in a cycle, as counts.
/// Deprecated: the findings register (`/cycles/{year}/entities/{code}/findings`) records each
/// finding; these counts become summary findings beside those (removed in API v2). From 2023
/// awards (and certificates) need every finding followed up; from 2025 the opinion then reads
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
    if !(0..=FINDINGS_MAX).contains(&body.findings) {
        errors.push(crate::problem::FieldError::new(
            "findings",
            format!("must be from 0 to {FINDINGS_MAX}"),
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
    // The counts stand for summary findings of the register, beside those recorded one by one:
    // they are what the counts leave over. Recording the counts already stored changes nothing:
    // no new input revision (and so no recompute), no audit entry.
    let held = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE NOT summary) AS "recorded!",
                  count(*) FILTER (WHERE NOT summary AND status = 'accepted') AS "recorded_accepted!",
                  count(*) FILTER (WHERE summary) AS "summary!",
                  count(*) FILTER (WHERE summary AND status = 'accepted') AS "summary_accepted!"
           FROM findings WHERE cycle_id = $1 AND entity_id = $2"#,
        y,
        entity_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (total, accepted) = (
        i64::from(body.findings) - held.recorded,
        i64::from(body.followed_up) - held.recorded_accepted,
    );
    if total < 0 || accepted < 0 || accepted > total {
        return Err(ApiError::conflict(
            "findings-register",
            format!(
                "the findings register holds {} finding(s) recorded one by one ({} accepted): counts below those cannot be stated; follow them up in the register",
                held.recorded, held.recorded_accepted
            ),
        ));
    }
    let changed = (held.summary, held.summary_accepted) != (total, accepted);
    if changed {
        sqlx::query!(
            "DELETE FROM findings WHERE cycle_id = $1 AND entity_id = $2 AND summary",
            y,
            entity_id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO findings (cycle_id, entity_id, description, status, summary, recorded_by, accepted_by, accepted_at)
             SELECT $1, $2, 'Temuan ' || n || ' (dari rekap jumlah temuan)',
                    CASE WHEN n <= $4::bigint THEN 'accepted' ELSE 'open' END, true, $5::bigint,
                    CASE WHEN n <= $4::bigint THEN $5::bigint END, CASE WHEN n <= $4::bigint THEN now() END
             FROM generate_series(1, $3::bigint) AS n",
            y,
            entity_id,
            total,
            accepted,
            actor_id
        )
        .execute(&mut *tx)
        .await?;
    }
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
