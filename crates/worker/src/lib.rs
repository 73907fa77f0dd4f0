//! The kepatuhan worker: runs the jobs the API enqueues (apalis on Postgres, same database) and
//! watches cycles on its own schedule.
//!
//! - [`recompute`]: the `recompute` queue. Incremental (one unit) and full jobs both recompute the
//!   cycle from its verified inputs in one transaction under the cycle's row lock, so they are
//!   idempotent, order-independent and serialized per cycle; after publication a changed result
//!   becomes a new revision.
//! - [`schedule`]: notices collection windows that have closed and enqueues one full recompute
//!   per closing (an idempotency key makes it exactly once across several workers).
//! - Failed jobs are retried with exponential backoff (their `run_at` is pushed back); after the
//!   last attempt a job stays `Failed` with its error: dead, visible and retryable through the API.
//!
//! Several workers may run against one database: apalis locks each job for one worker
//! (`FOR UPDATE SKIP LOCKED`), and recomputes of one cycle wait for each other.

pub mod certificates;
pub mod recompute;
pub mod render;
pub mod schedule;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use kepatuhan_api::AppState;
use kepatuhan_api::jobs::{IssueCertificates, Job, Recompute, RenderCertificates};

/// Tunables of a worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// A name for this process's workers (unique per start; defaults to pid and a random suffix).
    pub name: String,
    /// First retry delay; doubles with each attempt (capped at one hour).
    pub backoff_base: Duration,
    /// How often the schedule looks for closed collection windows.
    pub schedule_every: Duration,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// Place printed on certificates (`KEPATUHAN_CERTIFICATE_PLACE`).
    pub place: String,
    /// Signatory's name (`KEPATUHAN_CERTIFICATE_SIGNATORY`).
    pub signatory_name: String,
    /// Signatory's title (`KEPATUHAN_CERTIFICATE_SIGNATORY_TITLE`).
    pub signatory_title: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            // Unique per start: apalis refuses a second live worker with the same name.
            name: format!(
                "kepatuhan-worker-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            backoff_base: Duration::from_secs(5),
            schedule_every: Duration::from_mins(1),
            // Two per core: a certificate job waits on the database about as long as it
            // renders, so four at once keep both cores busy (docs/benchmarks.md).
            concurrency: 4,
            place: "Jakarta".to_owned(),
            signatory_name: "Mokhammad Najih".to_owned(),
            signatory_title: "Ketua Ombudsman Republik Indonesia".to_owned(),
        }
    }
}

/// The delay before retry number `attempt` (1-based): base × 2^(attempt − 1), at most one hour.
///
/// ```
/// use std::time::Duration;
/// let base = Duration::from_secs(5);
/// assert_eq!(kepatuhan_worker::backoff(base, 1), Duration::from_secs(5));
/// assert_eq!(kepatuhan_worker::backoff(base, 3), Duration::from_secs(20));
/// assert_eq!(kepatuhan_worker::backoff(base, 99), Duration::from_secs(3600));
/// ```
pub fn backoff(base: Duration, attempt: usize) -> Duration {
    let factor = 2u32.saturating_pow(
        u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20),
    );
    base.saturating_mul(factor).min(Duration::from_hours(1))
}

/// Runs the workers and the schedule until `shutdown` resolves; then stops taking jobs, lets
/// running jobs finish, and returns.
pub async fn run(
    state: AppState,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let recompute = WorkerBuilder::new(format!("{}-recompute", config.name))
        .backend(storage_for::<Recompute>(&state))
        .concurrency(config.concurrency)
        .data(state.clone())
        .data(config.clone())
        .build(recompute::handle);
    let issue = WorkerBuilder::new(format!("{}-certificates", config.name))
        .backend(storage_for::<IssueCertificates>(&state))
        .data(state.clone())
        .build(certificates::issue);
    let render = WorkerBuilder::new(format!("{}-certificate-render", config.name))
        .backend(storage_for::<RenderCertificates>(&state))
        .concurrency(config.concurrency)
        .data(state.clone())
        .data(std::sync::Arc::new(render::Renderer::new()))
        .data(config.clone())
        .build(certificates::render);

    let deliver = WorkerBuilder::new(format!("{}-webhooks", config.name))
        .backend(storage_for::<kepatuhan_api::webhooks::DeliverWebhook>(
            &state,
        ))
        .concurrency(config.concurrency)
        .data(state.clone())
        .data(config.clone())
        .build(webhooks::deliver);

    let (stop, _) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
        Ok::<(), std::io::Error>(())
    };
    let schedule = tokio::spawn(schedule::run(
        state.clone(),
        config.schedule_every,
        stop.subscribe(),
    ));
    let workers = [
        tokio::spawn(recompute.run_until(until(stop.subscribe()))),
        tokio::spawn(issue.run_until(until(stop.subscribe()))),
        tokio::spawn(render.run_until(until(stop.subscribe()))),
        tokio::spawn(deliver.run_until(until(stop.subscribe()))),
    ];
    shutdown.await;
    tracing::info!("shutting down: no new jobs, finishing the running ones");
    let _ = stop.send(true);
    let mut first_error: Option<String> = None;
    for worker in workers {
        let outcome = match worker.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        first_error = first_error.or(outcome);
    }
    let _ = schedule.await;
    first_error.map_or(Ok(()), |e| Err(e.into()))
}

/// Records a finished job for `/metrics`: `kepatuhan_jobs_processed_total{queue, outcome}` and
/// `kepatuhan_job_duration_seconds{queue}`.
pub fn record_job(queue: &'static str, ok: bool, started: std::time::Instant) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!("kepatuhan_jobs_processed_total", "queue" => queue, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("kepatuhan_job_duration_seconds", "queue" => queue)
        .record(started.elapsed().as_secs_f64());
}

/// Serves the worker's `/metrics` on `addr` until `stop` turns true.
pub async fn serve_metrics(
    addr: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let handle = kepatuhan_api::metrics::handle().clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "worker metrics listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// The apalis storage of a job type's queue.
fn storage_for<J: Job>(
    state: &AppState,
) -> PollWith<PostgresStorage<J>, StreamStrategy<apalis_postgres::Pubsub>> {
    // A new job is announced by the queue's insert trigger (LISTEN/NOTIFY) and fetched at once;
    // delayed retries are fetched at every heartbeat (1 s). 30 missed heartbeats (30 s) mark a
    // crashed worker's jobs as orphaned.
    let config = Config::default()
        .queue(J::QUEUE)
        .batch_size(1)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(30);
    // Each queue has its own few connections: the listener holds one for good, and fetching and
    // acknowledging must not wait behind the job handlers, which use the main pool.
    let queue_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .connect_lazy_with((*state.pool.connect_options()).clone());
    PostgresStorage::new(&queue_pool)
        .with_config(config)
        .with_pubsub()
}
