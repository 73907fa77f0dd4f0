//! Background jobs: their payload types and transactional enqueueing.
//!
//! Jobs are stored by apalis (`apalis-postgres`) in the same database, schema `apalis`. Jobs are
//! enqueued inside the caller's transaction, so a request that fails leaves no job behind and a
//! job is never enqueued for a change that was rolled back. The row written is exactly the one
//! `PostgresStorage::push` writes (JSON payload, ULID id, queue name as `job_type`); a test
//! checks this against apalis itself.

use kepatuhan_core::CycleId;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::AppResult;

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
    /// The cycle.
    pub cycle_id: CycleId,
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
    pub fn full(cycle_id: CycleId) -> Self {
        Self {
            cycle_id,
            unit_id: None,
            input_revision: None,
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    /// An incremental recompute after one unit's data changed.
    pub fn unit(cycle_id: CycleId, unit_id: i64) -> Self {
        Self {
            cycle_id,
            unit_id: Some(unit_id),
            input_revision: None,
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    /// An incremental recompute after one unit's data changed, which brought the cycle to
    /// `input_revision`.
    pub fn unit_at(cycle_id: CycleId, unit_id: i64, input_revision: i64) -> Self {
        Self {
            input_revision: Some(input_revision),
            ..Self::unit(cycle_id, unit_id)
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
    /// The cycle.
    pub cycle_id: CycleId,
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
    /// The cycle.
    pub cycle_id: CycleId,
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

/// Deliver an endpoint's pending events (its rows of `webhook_outbox`), oldest first. One job is
/// enqueued per endpoint an event goes to; whichever runs drains everything pending, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverWebhook {
    /// The endpoint.
    pub endpoint_id: i64,
    /// An event carried by a job enqueued before the outbox existed: put in the outbox first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
}

/// Delivery attempts per event and endpoint; after the last the event is abandoned (and the
/// job that gave up on it is dead, visible through the API) and the endpoint's next events go on.
pub const DELIVERY_ATTEMPTS: u32 = 8;

impl Job for DeliverWebhook {
    const QUEUE: &'static str = "webhooks";
    // A failed delivery schedules the endpoint's next drain itself, after the backoff (the
    // attempts are counted per event in the outbox), so the job itself runs once.
    const MAX_ATTEMPTS: i32 = 1;
}

/// Enqueues a job inside the caller's transaction and returns its id. With an idempotency key, a
/// job already enqueued under the same key is not enqueued again; its id is returned.
pub async fn enqueue<J: Job>(
    tx: &mut Transaction<'_, Postgres>,
    job: &J,
    idempotency_key: Option<&str>,
) -> AppResult<String> {
    enqueue_after(tx, job, idempotency_key, std::time::Duration::ZERO).await
}

/// A job's payload as apalis stores it (JSON bytes, the codec the worker decodes with).
fn payload<J: Job>(job: &J) -> AppResult<Vec<u8>> {
    Ok(serde_json::to_vec(job)?)
}

/// Enqueues many jobs of one queue in the caller's transaction with one statement, each with its
/// optional idempotency key (a key already queued is skipped, as with [`enqueue`]); returns how
/// many were added. Workers are woken per job by the queue's insert trigger, as for single jobs.
pub async fn enqueue_many<J: Job>(
    tx: &mut Transaction<'_, Postgres>,
    jobs: &[(J, Option<String>)],
) -> AppResult<u64> {
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
) -> AppResult<String> {
    let delay = crate::db::interval(delay);
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

/// Pushes a failed job's next attempt `delay` into the future (apalis picks up failed jobs with
/// attempts left once their `run_at` has passed): the retry policy's backoff.
pub async fn push_back(pool: &PgPool, id: &str, delay: std::time::Duration) -> AppResult<()> {
    let delay = crate::db::interval(delay);
    sqlx::query!(
        "UPDATE apalis.jobs SET run_at = now() + $2 WHERE id = $1",
        id,
        delay
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes a dead job run again, its attempts starting over.
pub async fn revive(tx: &mut Transaction<'_, Postgres>, id: &str) -> AppResult<()> {
    sqlx::query!(
        "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, run_at = now(), lock_by = NULL, lock_at = NULL, done_at = NULL WHERE id = $1",
        id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
