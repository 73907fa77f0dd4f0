//! Prometheus metrics at `/metrics` (anyone may scrape; no personal data): HTTP requests by
//! route and status, request latency, and — read from the database at scrape time — job queue
//! depth by queue and state, and certificates by status. The worker records job counts and
//! durations by queue and outcome in the same registry format (`kepatuhan_app::metrics`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kepatuhan_app::metrics::handle;

use crate::AppState;

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
