//! The kepatuhan worker: runs the jobs the API enqueues (apalis on Postgres, same database) and
//! watches cycles on its own schedule.
//!
//! - [`queues`]: one module per queue (recompute, certificate fan-out, certificate rendering,
//!   webhook deliveries); [`render`] makes the certificate PDFs beside them.
//! - [`schedule`]: notices collection windows that have closed and enqueues one full recompute
//!   per closing (an idempotency key makes it exactly once across several workers).
//! - [`retry`]: one policy for every queue: failed jobs are retried with exponential backoff
//!   (their `run_at` is pushed back); after the last attempt a job stays `Failed` with its error:
//!   dead, visible and retryable through the API.
//! - Its `/metrics` (and `/health`) are served by the Prometheus exporter's own listener: the
//!   worker has no web framework.
//!
//! Several workers may run against one database: apalis locks each job for one worker
//! (`FOR UPDATE SKIP LOCKED`), and recomputes of one cycle wait for each other.

pub mod error;
pub mod queues;
pub mod render;
pub mod retry;
pub mod schedule;

use std::future::Future;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use kepatuhan_app::App;
use kepatuhan_app::config::WorkerSettings;
use kepatuhan_app::jobs::{DeliverWebhook, IssueCertificates, Job, Recompute, RenderCertificates};

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
    /// Missed heartbeats (one a second) after which another worker's running jobs count as
    /// orphaned and are run again.
    pub orphan_after_secs: u32,
    /// Place printed on certificates (`KEPATUHAN_CERTIFICATE_PLACE`).
    pub place: String,
    /// Signatory's name (`KEPATUHAN_CERTIFICATE_SIGNATORY`).
    pub signatory_name: String,
    /// Signatory's title (`KEPATUHAN_CERTIFICATE_SIGNATORY_TITLE`).
    pub signatory_title: String,
}

impl WorkerConfig {
    /// The tunables of the configuration (`KEPATUHAN_WORKER_*`, `KEPATUHAN_CERTIFICATE_*`); the
    /// schedule checks every minute; the name is unique per start (apalis refuses a second live
    /// worker with the same name).
    pub fn from_settings(w: &WorkerSettings) -> Self {
        Self {
            name: format!(
                "kepatuhan-worker-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            backoff_base: Duration::from_secs(w.backoff_secs),
            schedule_every: Duration::from_mins(1),
            concurrency: w.concurrency,
            orphan_after_secs: w.orphan_after_secs,
            place: w.place.clone(),
            signatory_name: w.signatory_name.clone(),
            signatory_title: w.signatory_title.clone(),
        }
    }
}

impl Default for WorkerConfig {
    /// The configuration's defaults (see `kepatuhan_app::config`).
    fn default() -> Self {
        Self::from_settings(&WorkerSettings::default())
    }
}

/// Runs the workers and the schedule until `shutdown` resolves; then stops taking jobs, lets
/// running jobs finish, and returns.
pub async fn run(
    app: App,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let recompute = WorkerBuilder::new(format!("{}-recompute", config.name))
        .backend(storage_for::<Recompute>(&app, &config))
        .concurrency(config.concurrency)
        .data(app.clone())
        .data(config.clone())
        .build(queues::recompute::handle);
    let issue = WorkerBuilder::new(format!("{}-certificates", config.name))
        .backend(storage_for::<IssueCertificates>(&app, &config))
        .data(app.clone())
        .data(config.clone())
        .build(queues::certificates::issue);
    let render = WorkerBuilder::new(format!("{}-certificate-render", config.name))
        .backend(storage_for::<RenderCertificates>(&app, &config))
        .concurrency(config.concurrency)
        .data(app.clone())
        .data(std::sync::Arc::new(render::Renderer::new()))
        .data(config.clone())
        .build(queues::certificates::render);

    let deliver = WorkerBuilder::new(format!("{}-webhooks", config.name))
        .backend(storage_for::<DeliverWebhook>(&app, &config))
        .concurrency(config.concurrency)
        .data(queues::webhooks::WebhookClient::new(app.egress.clone())?)
        .data(app.clone())
        .data(config.clone())
        .build(queues::webhooks::deliver);

    let (stop, _) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
        Ok::<(), std::io::Error>(())
    };
    let schedule = tokio::spawn(schedule::run(
        app.clone(),
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

/// Installs the metrics registry with the Prometheus exporter's own HTTP listener on `addr`
/// (`/metrics`, and `/health` answering `OK` while the process runs) and returns the listener's
/// task, to spawn; it serves until aborted.
pub fn metrics_listener(
    addr: std::net::SocketAddr,
) -> Result<
    impl std::future::Future<Output = ()> + Send + 'static,
    metrics_exporter_prometheus::BuildError,
> {
    let (recorder, exporter) = kepatuhan_app::metrics::builder()
        .with_http_listener(addr)
        .build()?;
    // In a test process an earlier recorder may be installed; the listener still serves this one.
    let _ = metrics::set_global_recorder(recorder);
    Ok(async move {
        if let Err(e) = exporter.await {
            tracing::warn!(error = ?e, "metrics listener stopped");
        }
    })
}

/// The apalis storage of a job type's queue.
fn storage_for<J: Job>(
    app: &App,
    worker: &WorkerConfig,
) -> PollWith<PostgresStorage<J>, StreamStrategy<apalis_postgres::Pubsub>> {
    // A new job is announced by the queue's insert trigger (LISTEN/NOTIFY) and fetched at once;
    // delayed retries are fetched at every heartbeat (1 s). `orphan_after_secs` missed heartbeats
    // (30 s by default) mark a crashed worker's jobs as orphaned.
    let config = Config::default()
        .queue(J::QUEUE)
        .batch_size(1)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(worker.orphan_after_secs as usize);
    // Each queue has its own few connections: the listener holds one for good, and fetching and
    // acknowledging must not wait behind the job handlers, which use the main pool.
    let queue_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .connect_lazy_with((*app.pool.connect_options()).clone());
    PostgresStorage::new(&queue_pool)
        .with_config(config)
        .with_pubsub()
}
