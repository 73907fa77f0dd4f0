//! The `recompute` queue. Incremental (one unit) and full jobs both recompute the cycle from its
//! verified inputs in one transaction under the cycle's row lock
//! (`kepatuhan_app::recompute::recompute_for_job`), so they are idempotent, order-independent and
//! serialized per cycle; after publication a changed result becomes a new revision.

use apalis::prelude::*;
use kepatuhan_app::App;
use kepatuhan_app::jobs::Recompute;
use kepatuhan_app::recompute::{JobOutcome, Trigger, recompute_for_job};
use tracing::Instrument;

use crate::WorkerConfig;
use crate::error::JobError;
use crate::retry::{Retry, finish};

/// Runs a recompute in a `recompute` span that continues the trace of the request that enqueued
/// it (the job's `traceparent`).
pub async fn run_traced(app: &App, job: &Recompute) -> Result<JobOutcome, JobError> {
    let span = tracing::info_span!("recompute", cycle_id = %job.cycle_id, unit = ?job.unit_id);
    kepatuhan_app::telemetry::continue_trace(&span, job.traceparent.as_deref());
    async { Ok(recompute_for_job(app, job.cycle_id.into(), Trigger::of(job)).await?) }
        .instrument(span)
        .await
}

/// Runs one recompute job; a failure is retried by the common policy ([`finish`]).
pub async fn handle(
    job: Recompute,
    app: Data<App>,
    config: Data<WorkerConfig>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), JobError> {
    let started = std::time::Instant::now();
    let result = run_traced(&app, &job).await;
    if let Ok(outcome) = &result {
        let (kind, summary) = match outcome {
            JobOutcome::Recomputed(s) => ("recomputed", Some(s)),
            JobOutcome::NewRevision(s) => ("new_revision", Some(s)),
            JobOutcome::Unchanged { .. } => ("unchanged", None),
        };
        tracing::info!(
            job = %id, cycle_id = %job.cycle_id, unit = ?job.unit_id, outcome = kind,
            units = summary.map(|s| s.units_scored), entities = summary.map(|s| s.entities_scored),
            elapsed_ms = started.elapsed().as_millis(), "recompute done"
        );
    }
    let retry = Retry {
        queue: "recompute",
        id,
        attempt,
    };
    finish(&retry, &app, &config, started, result)
        .await
        .map(|_| ())
}
