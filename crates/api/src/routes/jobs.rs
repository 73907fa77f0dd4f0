//! Background jobs as users follow them: their state, the dead ones, and a retry. Payloads and
//! enqueueing are the application's (`kepatuhan_app::jobs`).
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /jobs`, `GET /jobs/{id}` | admin (all), office (jobs about its provinces, and cycle-wide jobs) |
//! | `POST /jobs/{id}/retry` | admin |
//!
//! An office sees a job when it concerns only its provinces: the recompute of a unit there, the
//! render of certificates whose recipients are all there, a webhook delivery to its own endpoint
//! or to one of an entity there; and the cycle-wide jobs (a full recompute, a certificate fan-out),
//! which name no entity. Any other job answers 404, as objects outside a scope do everywhere.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::problem::Problem;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(retry))
}

/// A job's state as shown to users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    /// Job id.
    pub id: String,
    /// Queue, e.g. `recompute`.
    pub queue: String,
    /// `Pending`, `Queued`, `Running`, `Done`, `Failed` or `Killed` (dead: no more attempts).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// No attempts left after failures: the job will not run again unless retried.
    pub dead: bool,
    /// When it runs (or ran).
    pub run_at: chrono::DateTime<chrono::Utc>,
    /// When it finished.
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Error of the last failed attempt, if any.
    pub last_error: Option<String>,
    /// The job's payload.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Progress of fan-out jobs: `{ "done": 1200, "total": 4000 }`.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<serde_json::Value>,
}

/// A background job's state.
///
/// Who may call: admin, office.
#[utoipa::path(get, path = "/jobs/{id}", operation_id = "get_job", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Success", body = JobStatus), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    actor.require_staff()?;
    Ok(Json(load(&state, &actor, &id).await?))
}

/// Loads a job's status, or 404.
/// Loads a job's status, or 404 when there is none or it is outside the caller's scope.
async fn load(state: &AppState, actor: &Actor, id: &str) -> ApiResult<JobStatus> {
    visible_jobs(state, actor, Some(id), None, None)
        .await?
        .into_iter()
        .next()
        .map(JobStatus::from)
        .ok_or_else(|| ApiError::NotFound(format!("no job `{id}`")))
}

/// The newest jobs (at most 200) the caller may see, optionally one job, one queue or one
/// status filter (`dead`, `failed`, `pending`, `running`, `done`). An office sees the jobs about
/// its provinces (a cycle-wide recompute, a render batch whose recipients are all in them, a
/// delivery to one of its endpoints) and no other: this one query is the jobs' scope.
async fn visible_jobs(
    state: &AppState,
    actor: &Actor,
    id: Option<&str>,
    queue: Option<&str>,
    status: Option<&str>,
) -> ApiResult<Vec<JobRow>> {
    let (provinces, office) = job_scope(actor);
    Ok(sqlx::query_as!(
        JobRow,
        r#"SELECT j.id, j.job_type, j.status, j.attempts, j.max_attempts, j.run_at, j.done_at, j.last_result, j.job,
                  p.done AS "done?", p.total AS "total?"
           FROM apalis.jobs j LEFT JOIN job_progress p ON p.job_id = j.id
           WHERE ($5::text IS NULL OR j.id = $5)
             AND ($1::text IS NULL OR j.job_type = $1)
             AND ($3::text[] IS NULL OR CASE j.job_type
                   WHEN 'recompute' THEN
                     convert_from(j.job, 'UTF8')::jsonb->>'unit_id' IS NULL
                     OR EXISTS (SELECT 1 FROM units u JOIN entities e ON e.id = u.entity_id
                                WHERE u.id = (convert_from(j.job, 'UTF8')::jsonb->>'unit_id')::bigint
                                  AND e.province_code = ANY($3))
                   WHEN 'certificates' THEN true
                   WHEN 'certificate-render' THEN NOT EXISTS (
                     SELECT 1 FROM jsonb_array_elements(convert_from(j.job, 'UTF8')::jsonb->'recipients') r
                     LEFT JOIN entities e ON e.id = (r->>'entity_id')::bigint
                     WHERE e.province_code IS NULL OR NOT e.province_code = ANY($3))
                   WHEN 'webhooks' THEN EXISTS (
                     SELECT 1 FROM webhook_endpoints w LEFT JOIN entities e ON e.id = w.entity_id
                     WHERE w.id = (convert_from(j.job, 'UTF8')::jsonb->>'endpoint_id')::bigint
                       AND (w.office_code = $4 OR e.province_code = ANY($3)))
                   ELSE false END)
             AND CASE $2::text
                   WHEN 'dead' THEN j.status = 'Killed' OR (j.status = 'Failed' AND j.attempts >= j.max_attempts)
                   WHEN 'failed' THEN j.status IN ('Failed', 'Killed')
                   WHEN 'pending' THEN j.status IN ('Pending', 'Queued')
                   WHEN 'running' THEN j.status = 'Running'
                   WHEN 'done' THEN j.status = 'Done'
                   ELSE true END
           ORDER BY j.run_at DESC LIMIT 200"#,
        queue,
        status,
        provinces,
        office,
        id
    )
    .fetch_all(&state.pool)
    .await?)
}

/// The provinces and office whose jobs the caller sees (`None` provinces: every job).
fn job_scope(actor: &Actor) -> (Option<&[String]>, Option<&str>) {
    match actor {
        Actor::Office {
            office, provinces, ..
        } => (Some(provinces.as_slice()), Some(office.as_str())),
        _ => (None, None),
    }
}

/// A job row with its progress, as both the single and the list query read it.
struct JobRow {
    id: String,
    job_type: String,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: chrono::DateTime<chrono::Utc>,
    done_at: Option<chrono::DateTime<chrono::Utc>>,
    last_result: Option<serde_json::Value>,
    job: Vec<u8>,
    done: Option<i32>,
    total: Option<i32>,
}

impl From<JobRow> for JobStatus {
    fn from(row: JobRow) -> Self {
        let failed = matches!(row.status.as_str(), "Failed" | "Killed");
        let last_error = row.last_result.filter(|_| failed).map(|r| match r {
            serde_json::Value::String(s) => s,
            other => other
                .get("Err")
                .and_then(|e| e.as_str())
                .map_or_else(|| other.to_string(), str::to_owned),
        });
        JobStatus {
            id: row.id,
            queue: row.job_type,
            dead: row.status == "Killed"
                || (row.status == "Failed" && row.attempts >= row.max_attempts),
            status: row.status,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            done_at: row.done_at,
            last_error,
            payload: serde_json::from_slice(&row.job).unwrap_or(serde_json::Value::Null),
            progress: row
                .done
                .zip(row.total)
                .map(|(done, total)| serde_json::json!({ "done": done, "total": total })),
        }
    }
}

/// Filters of the job list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    /// `dead` (failed with no attempts left), `failed`, `pending`, `running` or `done`.
    pub status: Option<String>,
    /// Only this queue, e.g. `recompute`.
    pub queue: Option<String>,
}

/// List the newest jobs (at most 200), e.g. the dead ones.
///
/// Who may call: admin, office.
#[utoipa::path(get, path = "/jobs", operation_id = "list_jobs", tag = "jobs", params(JobFilter), responses((status = 200, description = "Success", body = Vec<JobStatus>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(f): Query<JobFilter>,
) -> ApiResult<Json<Vec<JobStatus>>> {
    actor.require_staff()?;
    let status = match f.status.as_deref() {
        None => None,
        Some(s @ ("dead" | "failed" | "pending" | "running" | "done")) => Some(s),
        Some(other) => {
            return Err(ApiError::field(
                "status",
                format!("unknown status `{other}` (dead, failed, pending, running, done)"),
            ));
        }
    };
    let rows = visible_jobs(&state, &actor, None, f.queue.as_deref(), status).await?;
    Ok(Json(rows.into_iter().map(JobStatus::from).collect()))
}

/// Run a dead job again: its attempts start over.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/jobs/{id}/retry", operation_id = "retry_job", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Success", body = JobStatus), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    actor.require_admin()?;
    let job = load(&state, &actor, &id).await?;
    if !job.dead {
        return Err(ApiError::conflict(
            "job-not-dead",
            format!(
                "job `{id}` is {} with {} of {} attempts; only dead jobs are retried",
                job.status, job.attempts, job.max_attempts
            ),
        ));
    }
    let mut tx = state.pool.begin().await?;
    kepatuhan_app::jobs::revive(&mut tx, &id).await?;
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("job", id.clone()),
        None,
        "retried",
        serde_json::json!({ "queue": job.queue, "attempts": job.attempts, "error": job.last_error }),
    )
    .await?;
    crate::error::commit(tx).await?;
    tracing::info!(job = %id, "dead job retried");
    Ok(Json(load(&state, &actor, &id).await?))
}
