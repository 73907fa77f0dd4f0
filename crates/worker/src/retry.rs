//! One retry policy for every queue: a failed attempt is logged with its error, counted in the
//! metrics, and its next attempt is pushed back exponentially ([`backoff`]); after the last one
//! the job stays `Failed` with its error: dead, visible and retryable through the API. Webhook
//! deliveries follow the same backoff, each attempt being a job of its own (see
//! [`crate::queues::webhooks`]).

use std::time::{Duration, Instant};

use apalis::prelude::{Attempt, TaskId};
use kepatuhan_app::App;

use crate::WorkerConfig;
use crate::error::JobError;

/// The delay before retry number `attempt` (1-based): base × 2^(attempt − 1), at most one hour.
///
/// ```
/// use std::time::Duration;
/// let base = Duration::from_secs(5);
/// assert_eq!(kepatuhan_worker::retry::backoff(base, 1), Duration::from_secs(5));
/// assert_eq!(kepatuhan_worker::retry::backoff(base, 3), Duration::from_secs(20));
/// assert_eq!(kepatuhan_worker::retry::backoff(base, 99), Duration::from_secs(3600));
/// ```
pub fn backoff(base: Duration, attempt: usize) -> Duration {
    let factor = 2u32.saturating_pow(
        u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20),
    );
    base.saturating_mul(factor).min(Duration::from_hours(1))
}

/// Which attempt of which job a handler runs, as apalis hands them over.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The queue.
    pub queue: &'static str,
    /// The job.
    pub id: TaskId,
    /// The attempt (1-based).
    pub attempt: Attempt,
}

/// Ends an attempt: records it in the metrics and, when it failed, logs the error with its
/// source chain and pushes the next attempt back by [`backoff`]. Returns the outcome for apalis.
pub async fn finish<T>(
    retry: &Retry,
    app: &App,
    config: &WorkerConfig,
    started: Instant,
    outcome: Result<T, JobError>,
) -> Result<T, JobError> {
    kepatuhan_app::metrics::record_job(retry.queue, outcome.is_ok(), started);
    if let Err(e) = &outcome {
        let delay = backoff(config.backoff_base, retry.attempt.current());
        let source = std::error::Error::source(e).map(ToString::to_string);
        tracing::warn!(
            queue = retry.queue, job = %retry.id, attempt = retry.attempt.current(),
            retry_in_ms = delay.as_millis(), error = %e, source = ?source, "job failed"
        );
        if let Err(db) =
            kepatuhan_app::jobs::push_back(&app.pool, &retry.id.to_string(), delay).await
        {
            tracing::warn!(job = %retry.id, error = %db, "could not schedule the retry");
        }
    }
    outcome
}
