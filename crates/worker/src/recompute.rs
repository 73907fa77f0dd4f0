//! The `recompute` queue's handler.

use apalis::prelude::*;
use kepatuhan_api::AppState;
use kepatuhan_api::jobs::Recompute;
use kepatuhan_api::recompute::{JobOutcome, Trigger, recompute_for_job};
use kepatuhan_core::CycleYear;
use tracing::Instrument;

use crate::{WorkerConfig, backoff};

/// Why a recompute job failed.
#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    /// The payload names an impossible year.
    #[error("invalid cycle year {0}")]
    Year(u16),
    /// The recompute itself failed (database unavailable, cycle missing…).
    #[error("{0}")]
    Failed(String),
}

/// Runs a recompute in a `recompute` span that continues the trace of the request that enqueued
/// it (the job's `traceparent`).
pub async fn run_traced(state: &AppState, job: &Recompute) -> Result<JobOutcome, RecomputeError> {
    let span = tracing::info_span!("recompute", year = job.year, unit = ?job.unit_id);
    kepatuhan_api::telemetry::continue_trace(&span, job.traceparent.as_deref());
    async {
        match CycleYear::new(i64::from(job.year)) {
            Ok(year) => recompute_for_job(state, year, Trigger::of(job))
                .await
                .map_err(|e| RecomputeError::Failed(e.to_string())),
            Err(_) => Err(RecomputeError::Year(job.year)),
        }
    }
    .instrument(span)
    .await
}

/// Runs one recompute job. On failure the job's next attempt is pushed back exponentially.
pub async fn handle(
    job: Recompute,
    state: Data<AppState>,
    config: Data<WorkerConfig>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), RecomputeError> {
    let started = std::time::Instant::now();
    let result = run_traced(&state, &job).await;
    match &result {
        Ok(outcome) => {
            let (kind, summary) = match outcome {
                JobOutcome::Recomputed(s) => ("recomputed", Some(s)),
                JobOutcome::NewRevision(s) => ("new_revision", Some(s)),
                JobOutcome::Unchanged { .. } => ("unchanged", None),
            };
            tracing::info!(
                job = %id, year = job.year, unit = ?job.unit_id, outcome = kind,
                units = summary.map(|s| s.units_scored), entities = summary.map(|s| s.entities_scored),
                elapsed_ms = started.elapsed().as_millis(), "recompute done"
            );
        }
        Err(e) => {
            let delay = backoff(config.backoff_base, attempt.current());
            tracing::warn!(job = %id, year = job.year, attempt = attempt.current(), retry_in_ms = delay.as_millis(), error = %e, "recompute failed");
            let delay =
                chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::hours(1));
            if let Err(db) = sqlx::query("UPDATE apalis.jobs SET run_at = now() + $2 WHERE id = $1")
                .bind(id.to_string())
                .bind(delay)
                .execute(&state.pool)
                .await
            {
                tracing::warn!(job = %id, error = %db, "could not schedule the retry");
            }
        }
    }
    crate::record_job("recompute", result.is_ok(), started);
    result.map(|_| ())
}

/// Pushes a job's next attempt `delay` into the future (apalis picks up failed jobs with attempts
/// left once their `run_at` has passed).
pub async fn schedule_retry(
    pool: &sqlx::PgPool,
    id: &str,
    delay: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let delay = chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::hours(1));
    sqlx::query("UPDATE apalis.jobs SET run_at = now() + $2 WHERE id = $1")
        .bind(id)
        .bind(delay)
        .execute(pool)
        .await?;
    Ok(())
}
