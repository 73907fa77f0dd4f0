//! Prometheus metrics (no personal data): HTTP requests by route and status, and request
//! latency, from counters kept in memory. Served at `/metrics` on the public address, or, when
//! `KEPATUHAN_METRICS_ADDR` is set (as in deployment), only on that address. The worker exports
//! job counts and durations, queue depth and certificates by status (`kepatuhan_worker`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kepatuhan_app::metrics::handle;

/// Counts and times every request by method, route template and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    // The request's span (`startup::request_id`) takes its name and route from the match.
    let span = tracing::Span::current();
    span.record("http.route", route.as_str());
    kepatuhan_app::telemetry::rename(&span, format!("{method} {route}"));
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the process's counters and histograms, rendered; no database query, so a
/// scrape costs nothing but the rendering. Queue depth and certificates by status are gauges of
/// the worker (`kepatuhan_worker::schedule`).
pub async fn render() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle().render(),
    )
        .into_response()
}
