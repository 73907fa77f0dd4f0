//! The process's Prometheus registry. The api renders it at its own `/metrics` route (adding
//! database gauges at scrape time); the worker serves it from the exporter's own listener
//! (`/metrics`, and `/health` answering `OK` while the process runs), so it needs no web
//! framework. Job counts and durations are recorded by [`record_job`].

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The registry's builder, with the latency buckets every process uses.
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// The process-wide registry, installed on first use (rendered by the caller).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (several apps in one test process).
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Records a finished job: `kepatuhan_jobs_processed_total{queue, outcome}` and
/// `kepatuhan_job_duration_seconds{queue}`.
pub fn record_job(queue: &'static str, ok: bool, started: std::time::Instant) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!("kepatuhan_jobs_processed_total", "queue" => queue, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("kepatuhan_job_duration_seconds", "queue" => queue)
        .record(started.elapsed().as_secs_f64());
}
