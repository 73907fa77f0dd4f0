//! Background jobs: their payload types (shared with the worker), transactional enqueueing, and
//! `GET /jobs/{id}`.
//!
//! Jobs are stored by apalis (`apalis-postgres`) in the same database, schema `apalis`. The API
//! enqueues inside its own transaction, so a request that fails leaves no job behind and a job is
//! never enqueued for a change that was rolled back. The row written is exactly the one
//! `PostgresStorage::push` writes (JSON payload, ULID id, queue name as `job_type`); a test
//! checks this against apalis itself.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /jobs/{id}` | admin, office |

use axum::extract::State;
use kepatuhan_core::CycleYear;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

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

/// A job payload with its queue.
pub trait Job: Serialize {
    /// The apalis queue (stored as `job_type`).
    const QUEUE: &'static str;
    /// How many attempts before the job is dead.
    const MAX_ATTEMPTS: i32 = 10;
}

/// Recompute results of a cycle: one unit (and its entity and their ranks) or the whole cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recompute {
    /// The cycle year.
    pub year: u16,
    /// The unit whose verified data changed; `None` for a full recompute.
    pub unit_id: Option<i64>,
    /// The cycle's input revision right after that change: when the stored results reflect the
    /// revision just before it, only the unit's entity and the ranks need recomputing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_revision: Option<i64>,
    /// W3C trace context of the request that caused the job, to continue its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Recompute {
    /// A full recompute of a cycle.
    pub fn full(year: CycleYear) -> Self {
        Self {
            year: year.get(),
            unit_id: None,
            input_revision: None,
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    /// An incremental recompute after one unit's data changed.
    pub fn unit(year: CycleYear, unit_id: i64) -> Self {
        Self {
            year: year.get(),
            unit_id: Some(unit_id),
            input_revision: None,
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    /// An incremental recompute after one unit's data changed, which brought the cycle to
    /// `input_revision`.
    pub fn unit_at(year: CycleYear, unit_id: i64, input_revision: i64) -> Self {
        Self {
            input_revision: Some(input_revision),
            ..Self::unit(year, unit_id)
        }
    }
}

impl Job for Recompute {
    const QUEUE: &'static str = "recompute";
}

/// Issue the certificates of a published cycle's results revision: a fan-out of one
/// [`RenderCertificates`] job per batch of recipients whose valid certificate is missing or outdated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueCertificates {
    /// The cycle year.
    pub year: u16,
    /// The results revision the certificates state.
    pub revision: i32,
    /// W3C trace context of the request that caused the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Job for IssueCertificates {
    const QUEUE: &'static str = "certificates";
}

/// One certificate's recipient: an entity, or one of its units (`unit_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The entity.
    pub entity_id: i64,
    /// The unit, for a unit's certificate.
    pub unit_id: Option<i64>,
}

/// Render certificates: one recipient (a reissue), or a batch of a fan-out. A batch shares its
/// queries, its job bookkeeping and the transaction that records its certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderCertificates {
    /// The cycle year.
    pub year: u16,
    /// The results revision to state.
    pub revision: i32,
    /// Whose certificates, in order.
    pub recipients: Vec<Recipient>,
    /// The fan-out job whose progress these count towards.
    pub parent: Option<String>,
    /// Render even if a valid certificate with the same result exists (reissue).
    #[serde(default)]
    pub force: bool,
}

impl Job for RenderCertificates {
    const QUEUE: &'static str = "certificate-render";
}

/// Enqueues a job inside the caller's transaction and returns its id. With an idempotency key, a
/// job already enqueued under the same key is not enqueued again; its id is returned.
pub async fn enqueue<J: Job>(
    tx: &mut Transaction<'_, Postgres>,
    job: &J,
    idempotency_key: Option<&str>,
) -> ApiResult<String> {
    enqueue_after(tx, job, idempotency_key, std::time::Duration::ZERO).await
}

/// A job's payload as apalis stores it (JSON bytes, the codec the worker decodes with).
fn payload<J: Job>(job: &J) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(job)
        .map_err(|e| ApiError::Internal(crate::error::InternalError(Box::new(e))))
}

/// Enqueues many jobs of one queue in the caller's transaction with one statement, each with its
/// optional idempotency key (a key already queued is skipped, as with [`enqueue`]); returns how
/// many were added. Workers are woken per job by the queue's insert trigger, as for single jobs.
pub async fn enqueue_many<J: Job>(
    tx: &mut Transaction<'_, Postgres>,
    jobs: &[(J, Option<String>)],
) -> ApiResult<u64> {
    let mut ids = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut keys = Vec::with_capacity(jobs.len());
    for (job, key) in jobs {
        ids.push(ulid::Ulid::new().to_string());
        payloads.push(payload(job)?);
        keys.push(key.clone());
    }
    let inserted = sqlx::query!(
        r#"INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata, idempotency_key)
           SELECT t.id, $1, t.job, 'Pending', 0, $2, now(), 0, ''::hstore, t.idempotency_key
           FROM UNNEST($3::text[], $4::bytea[], $5::text[]) AS t(id, job, idempotency_key)
           ON CONFLICT (job_type, idempotency_key) DO NOTHING"#,
        J::QUEUE,
        J::MAX_ATTEMPTS,
        &ids,
        &payloads,
        &keys as &[Option<String>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected())
}

/// Like [`enqueue`], to run no sooner than `delay` from now (retries with backoff).
pub async fn enqueue_after<J: Job>(
    tx: &mut Transaction<'_, Postgres>,
    job: &J,
    idempotency_key: Option<&str>,
    delay: std::time::Duration,
) -> ApiResult<String> {
    let delay = sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(delay.as_micros()).unwrap_or(i64::MAX),
    };
    let payload = payload(job)?;
    let id = ulid::Ulid::new().to_string();
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority, metadata, idempotency_key)
           VALUES ($1, $2, $3, 'Pending', 0, $4, now() + $6, 0, ''::hstore, $5)
           ON CONFLICT (job_type, idempotency_key) DO NOTHING
           RETURNING id"#,
        id,
        J::QUEUE,
        payload,
        J::MAX_ATTEMPTS,
        idempotency_key,
        delay
    )
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => Ok(sqlx::query_scalar!(
            "SELECT id FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = $2",
            J::QUEUE,
            idempotency_key
        )
        .fetch_one(&mut **tx)
        .await?),
    }
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
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Success", body = JobStatus), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    actor.require_staff()?;
    Ok(Json(load(&state, &id).await?))
}

/// Loads a job's status, or 404.
async fn load(state: &AppState, id: &str) -> ApiResult<JobStatus> {
    let row = sqlx::query_as!(
        JobRow,
        r#"SELECT j.id, j.job_type, j.status, j.attempts, j.max_attempts, j.run_at, j.done_at, j.last_result, j.job,
                  p.done AS "done?", p.total AS "total?"
           FROM apalis.jobs j LEFT JOIN job_progress p ON p.job_id = j.id WHERE j.id = $1"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no job `{id}`")))?;
    Ok(row.into())
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
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobFilter), responses((status = 200, description = "Success", body = Vec<JobStatus>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(f): Query<JobFilter>,
) -> ApiResult<Json<Vec<JobStatus>>> {
    actor.require_staff()?;
    let status = match f.status.as_deref() {
        None => None,
        Some(s @ ("dead" | "failed" | "pending" | "running" | "done")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::field(
                "status",
                format!("unknown status `{other}` (dead, failed, pending, running, done)"),
            ));
        }
    };
    let rows = sqlx::query_as!(
        JobRow,
        r#"SELECT j.id, j.job_type, j.status, j.attempts, j.max_attempts, j.run_at, j.done_at, j.last_result, j.job,
                  p.done AS "done?", p.total AS "total?"
           FROM apalis.jobs j LEFT JOIN job_progress p ON p.job_id = j.id
           WHERE ($1::text IS NULL OR j.job_type = $1)
             AND CASE $2::text
                   WHEN 'dead' THEN j.status = 'Killed' OR (j.status = 'Failed' AND j.attempts >= j.max_attempts)
                   WHEN 'failed' THEN j.status IN ('Failed', 'Killed')
                   WHEN 'pending' THEN j.status IN ('Pending', 'Queued')
                   WHEN 'running' THEN j.status = 'Running'
                   WHEN 'done' THEN j.status = 'Done'
                   ELSE true END
           ORDER BY j.run_at DESC LIMIT 200"#,
        f.queue,
        status
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(JobStatus::from).collect()))
}

/// Run a dead job again: its attempts start over.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Success", body = JobStatus), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    actor.require_admin()?;
    let job = load(&state, &id).await?;
    if !job.dead {
        return Err(ApiError::conflict(
            "job-not-dead",
            format!(
                "job `{id}` is {} with {} of {} attempts; only dead jobs are retried",
                job.status, job.attempts, job.max_attempts
            ),
        ));
    }
    sqlx::query!(
        "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL, done_at = NULL WHERE id = $1",
        id
    )
    .execute(&state.pool)
    .await?;
    tracing::info!(job = %id, "dead job retried");
    Ok(Json(load(&state, &id).await?))
}
