//! A cycle's moves through its states, and the full recompute an admin may ask for.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/transitions` | admin |
//! | `POST /cycles/{year}/recompute` | admin |
//!
//! The moves allowed are core's transition table (`kepatuhan_core::CycleState::TRANSITIONS`);
//! every other move is refused with a `409 invalid-transition` problem that lists the allowed ones.

use axum::extract::State;
use axum::http::StatusCode;
use kepatuhan_app::cycles as app_cycles;
use kepatuhan_app::{events, jobs, recompute};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Cycle, CycleState, load, year};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::Problem;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(transition))
        .routes(routes!(recompute))
}

/// Body of `POST /cycles/{year}/transitions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The state to move to.
    pub to: CycleState,
}

/// The body of a transition's answer: the cycle and, where one was enqueued, the recompute job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionOutcome {
    /// The cycle after the move.
    pub cycle: Cycle,
    /// The job enqueued by the move: closing the collection window enqueues a full recompute,
    /// publishing enqueues the issue of certificates.
    pub job_id: Option<String>,
    /// On publication: the integrity flags still open, refreshed just before and recorded with
    /// the publication (HQ may publish with open flags; it is a decision, not a block).
    pub open_flags: Option<i64>,
}

/// Move a cycle to another state.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles/{year}/transitions", operation_id = "transition_cycle", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Transition, content_type = "application/json"), responses((status = 200, description = "Success", body = TransitionOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn transition(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Transition>,
) -> ApiResult<Json<TransitionOutcome>> {
    actor.require_admin()?;
    let year = year(raw)?;
    let mut tx = state.pool.begin().await?;
    let cycle = app_cycles::lock(&mut tx, year).await?;
    let to = kepatuhan_core::CycleState::from(body.to);
    if cycle.imported || cycle.state.move_to(to).is_err() {
        let why = if cycle.is_frozen() {
            "published results are frozen; corrections create a new results revision".to_owned()
        } else {
            let allowed: Vec<&str> = cycle
                .state
                .allowed_next()
                .iter()
                .map(|s| s.as_str())
                .collect();
            format!(
                "allowed from {}: {}",
                cycle.state,
                if allowed.is_empty() {
                    "none".into()
                } else {
                    allowed.join(", ")
                }
            )
        };
        return Err(ApiError::conflict(
            "invalid-transition",
            format!(
                "cannot move cycle {year} from {} to {to}: {why}",
                cycle.state
            ),
        ));
    }
    check_preconditions(&mut tx, &cycle, to).await?;
    sqlx::query!(
        "UPDATE cycles SET state = $2, updated_at = now(), published_at = CASE WHEN $2 = 'published' THEN now() END WHERE id = $1",
        cycle.id.get(),
        to.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let mut open_flags = None;
    let job_id = match to {
        // Publishing freezes results computed from exactly the verified inputs: the stored
        // ones when they reflect every input (the usual case, after the recompute that closing
        // the collection enqueued), else freshly recomputed ones.
        kepatuhan_core::CycleState::Published => {
            // Either way the flags of the whole cycle are refreshed first (a recompute does it).
            let (summary, flags) = match recompute::current_results_in(&mut tx, &cycle).await? {
                Some(current) => {
                    let m = state.require_methodology(&cycle.methodology_code)?;
                    let flags = kepatuhan_app::flags::refresh(
                        &mut tx,
                        m,
                        &state.flag_settings,
                        &cycle,
                        kepatuhan_app::flags::Scope::Cycle,
                    )
                    .await?
                    .unwrap_or_default();
                    (current, flags)
                }
                None => {
                    let summary = recompute::recompute_cycle_in(&mut tx, &state, &cycle).await?;
                    let flags = kepatuhan_app::flags::counts(&mut tx, cycle.id.get()).await?;
                    (summary, flags)
                }
            };
            sqlx::query!(
                "UPDATE cycles SET open_flags_at_publication = $2 WHERE id = $1",
                cycle.id.get(),
                i32::try_from(flags.open).unwrap_or(i32::MAX)
            )
            .execute(&mut *tx)
            .await?;
            open_flags = Some(flags.open);
            let job = app_cycles::publish_revision(&mut tx, &cycle, summary.revision).await?;
            let data = serde_json::json!({ "year": year.get(), "revision": summary.revision, "entities": summary.entities_scored, "units": summary.units_scored });
            events::emit(&mut tx, "results.published", None, data).await?;
            Some(job)
        }
        // Closing the collection window enqueues a full recompute, once per closing.
        kepatuhan_core::CycleState::Verifying => {
            Some(jobs::enqueue(&mut tx, &jobs::Recompute::full(cycle.id), None).await?)
        }
        _ => None,
    };
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("cycle", year.to_string()),
        None,
        "moved",
        serde_json::json!({ "from": cycle.state.as_str(), "to": to.as_str(), "open_flags": open_flags }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(TransitionOutcome {
        cycle: load(&state, &actor, year).await?,
        job_id,
        open_flags,
    }))
}

/// What must hold before entering a state: a sample to collect, verified submissions to publish.
async fn check_preconditions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    cycle: &app_cycles::Cycle,
    to: kepatuhan_core::CycleState,
) -> ApiResult<()> {
    let (y, year) = (cycle.id.get(), cycle.key);
    match to {
        kepatuhan_core::CycleState::Collecting => {
            let sampled = sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM cycle_units WHERE cycle_id = $1"#,
                y
            )
            .fetch_one(&mut **tx)
            .await?;
            if sampled == 0 {
                return Err(ApiError::conflict(
                    "empty-sample",
                    format!("cycle {year} has no units in its sample yet"),
                ));
            }
        }
        kepatuhan_core::CycleState::Published => {
            let pending = sqlx::query!(
                r#"SELECT count(*) FILTER (WHERE s.id IS NULL) AS "missing!",
                          count(*) FILTER (WHERE s.state IS DISTINCT FROM 'verified' AND s.id IS NOT NULL) AS "unverified!"
                   FROM cycle_units cu LEFT JOIN submissions s ON s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id
                   WHERE cu.cycle_id = $1 AND cu.excluded_at IS NULL"#,
                y
            )
            .fetch_one(&mut **tx)
            .await?;
            if pending.missing + pending.unverified > 0 {
                return Err(ApiError::conflict(
                    "unverified-submissions",
                    format!(
                        "cannot publish {year}: {} sampled unit(s) have no submission and {} submission(s) are not verified",
                        pending.missing, pending.unverified
                    ),
                ));
            }
        }
        kepatuhan_core::CycleState::Verifying | kepatuhan_core::CycleState::Planning => {}
    }
    Ok(())
}

/// Answer of `POST /cycles/{year}/recompute`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enqueued {
    /// The job to follow at `GET /jobs/{id}`.
    pub job_id: String,
}

/// Enqueue a full recompute of a cycle from its verified inputs.
///
/// Who may call: admin. Published cycles are frozen: use corrections.
#[utoipa::path(post, path = "/cycles/{year}/recompute", operation_id = "recompute_cycle", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 202, description = "Enqueued", body = Enqueued), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn recompute(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    actor.require_admin()?;
    let year = year(raw)?;
    let mut tx = state.pool.begin().await?;
    let cycle = app_cycles::lock(&mut tx, year).await?;
    cycle.require_open()?;
    let job_id = jobs::enqueue(&mut tx, &jobs::Recompute::full(cycle.id), None).await?;
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("cycle", year.to_string()),
        None,
        "recompute-requested",
        serde_json::json!({ "job_id": job_id }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { job_id })))
}
