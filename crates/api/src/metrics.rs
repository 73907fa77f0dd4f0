//! Prometheus metrics at `/metrics` (anyone may scrape; no personal data): HTTP requests by
//! route and status, request latency, and — read from the database at scrape time — job queue
//! depth by queue and state, and certificates by status. The worker records job counts and
//! durations by queue and outcome in the same registry format (see `kepatuhan_worker`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process-wide registry (installed once).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (several apps in one test process).
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times every request by method, route template and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Ok(rows) = sqlx::query!(
        r#"SELECT job_type, status, count(*) AS "n!" FROM apalis.jobs GROUP BY job_type, status"#
    )
    .fetch_all(&state.pool)
    .await
    {
        for r in rows {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("kepatuhan_jobs", "queue" => r.job_type, "status" => r.status)
                .set(r.n as f64);
        }
    }
    if let Ok(rows) =
        sqlx::query!(r#"SELECT status, count(*) AS "n!" FROM certificates GROUP BY status"#)
            .fetch_all(&state.pool)
            .await
    {
        for r in rows {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("kepatuhan_certificates", "status" => r.status).set(r.n as f64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle().render(),
    )
        .into_response()
}
