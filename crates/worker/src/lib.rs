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

pub mod recompute;
pub mod render;
pub mod schedule;

use std::future::Future;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use kepatuhan_api::AppState;
use kepatuhan_api::jobs::{Job, Recompute};

/// Tunables of a worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// A name for this process's workers (unique per process; defaults to host and pid).
    pub name: String,
    /// First retry delay; doubles with each attempt (capped at one hour).
    pub backoff_base: Duration,
    /// How often the schedule looks for closed collection windows.
    pub schedule_every: Duration,
    /// Jobs run at once by this process.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: format!("kepatuhan-worker-{}", std::process::id()),
            backoff_base: Duration::from_secs(5),
            schedule_every: Duration::from_mins(1),
            concurrency: 2,
        }
    }
}

/// The delay before retry number `attempt` (1-based): base × 2^(attempt − 1), at most one hour.
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
    let storage: PostgresStorage<Recompute> = PostgresStorage::new(&state.pool)
        .with_config(Config::default().queue(Recompute::QUEUE).batch_size(1));
    let worker = WorkerBuilder::new(format!("{}-recompute", config.name))
        .backend(storage)
        .concurrency(config.concurrency)
        .data(state.clone())
        .data(config.clone())
        .build(recompute::handle);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let schedule = tokio::spawn(schedule::run(state.clone(), config.schedule_every, stop_rx));
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new jobs, finishing the running ones");
        let _ = stop_tx.send(true);
    };
    let result = worker
        .run_until(async move {
            signal.await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    let _ = schedule.await;
    result.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
}
