//! Building the HTTP application: [`build`] (router and middleware, the one way `main` and the
//! tests make it), health checks, request ids and problem+json for every error.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use kepatuhan_app::App;
use kepatuhan_app::config::Settings;

use crate::problem::{self, Problem, REQUEST_ID};
use crate::{AppState, idempotency};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application over `app`, with its middleware and `settings`' limits.
pub fn build(app: App, settings: &Settings) -> Router {
    kepatuhan_app::metrics::handle();
    let state = AppState::new(app, settings);
    let (api, _) = crate::openapi::api_router()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .split_for_parts();
    // Both documents are made once: axum clones the router for every connection, and a handler
    // owning the OpenAPI tree (≈ 2 MB) would copy it each time.
    let doc = crate::openapi::document();
    let spec = axum::body::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    // The API reference (Swagger UI), its script and styles served from the binary: it works on
    // a network without internet access.
    let docs = swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: Some("kepatuhan API"),
    });
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/health/ready", get(ready))
        .nest("/api/v1", api)
        .merge(
            crate::routes::certificates::verify_router()
                .split_for_parts()
                .0,
        )
        .route(
            "/openapi.json",
            get(move || {
                std::future::ready(([(header::CONTENT_TYPE, "application/json")], spec.clone()))
            }),
        )
        .merge(public_metrics(settings))
        .with_state(state.clone())
        .merge(docs)
        .fallback(problem::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::public_cache::public_cache,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::limit_anonymous,
        ))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(problems_everywhere))
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .route_layer(middleware::from_fn(crate::metrics::track))
        .layer(middleware::from_fn(request_id))
}

/// `/metrics` on the public address, unless it has an address of its own ([`metrics_router`]).
fn public_metrics(settings: &Settings) -> Router<AppState> {
    if settings.metrics_addr.is_some() {
        Router::new()
    } else {
        Router::new().route("/metrics", get(crate::metrics::render))
    }
}

/// The router of `KEPATUHAN_METRICS_ADDR`: `/metrics` alone, for the scraper's network.
pub fn metrics_router() -> Router {
    kepatuhan_app::metrics::handle();
    Router::new().route("/metrics", get(crate::metrics::render))
}

/// Readiness: the database answers and every migration is applied.
async fn ready(State(state): State<AppState>) -> Response {
    let applied: Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&state.pool)
            .await;
    let expected = i64::try_from(kepatuhan_app::db::expected_migrations()).unwrap_or(i64::MAX);
    match applied {
        Ok(n) if n >= expected => {
            axum::Json(serde_json::json!({ "status": "ready", "migrations": n })).into_response()
        }
        Ok(n) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            format!("{n} of {expected} migrations applied"),
        )
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Not ready",
                "the database is not reachable",
            )
            .into_response()
        }
    }
}

/// Gives every request an id (the caller's `X-Request-Id` if sane, else a random one), makes it
/// available to problem documents and logs, and returns it in the response.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map_or_else(|| hex::encode(rand::random::<[u8; 12]>()), str::to_owned);
    // Named by route once routing has matched one (`crate::metrics::track` records it), so a
    // tracing backend groups `GET /api/v1/cycles/{year}/results/entities`, not every year.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        otel.name = %req.method(),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    kepatuhan_app::telemetry::continue_trace(&span, incoming);
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID
        .scope(
            id.clone(),
            tracing::Instrument::instrument(next.run(req), span.clone()),
        )
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis(),
            "served"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    response
}

/// Refuses a path or query holding a NUL character (`%00`) with a 400 problem: no text in the
/// database can hold one, so it can name nothing.
async fn refuse_nul_in_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "nul-character",
            "Bad request",
            "the path and query must not contain NUL characters (%00)",
        )
        .into_response();
    }
    next.run(req).await
}

/// Turns every error response that is not already problem+json (405 from the router, 503 from
/// the timeout, 500 from a caught panic…) into one.
async fn problems_everywhere(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !status.is_client_error() && !status.is_server_error() || is_problem {
        return response;
    }
    let (slug, title, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            "this resource does not support that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "timeout",
            "Request took too long",
            "the request did not finish within the time limit; nothing was saved",
        ),
        StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!("handler panicked");
            (
                "internal",
                "Internal error",
                "an unexpected error occurred; quote the request id when reporting it",
            )
        }
        _ => (
            "http-error",
            "Request failed",
            status.canonical_reason().unwrap_or("request failed"),
        ),
    };
    let mut problem = Problem::new(status, slug, title, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name) {
            problem.headers_mut().insert(name, v.clone());
        }
    }
    problem
}
