//! One trace from an HTTP request to the job it enqueued and the worker's recompute: an in-memory
//! OpenTelemetry exporter sees the API's request span and the worker's span with one trace id.

use kepatuhan_api::{auth, build};
use kepatuhan_app::App;
use kepatuhan_app::db::migrate;
use kepatuhan_app::jobs::Recompute;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sqlx::PgPool;
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

#[sqlx::test(migrations = "../../migrations")]
async fn a_request_and_its_job_share_one_trace(pool: PgPool) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    migrate(&pool).await.unwrap();
    let state = App::new(pool.clone()).unwrap();
    let settings = kepatuhan_app::config::Settings::from_lookup(|k| {
        (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned())
    })
    .unwrap();
    let app = build(state.clone(), &settings);
    let (_, admin) = auth::create_actor_with_token(&pool, "HQ", "admin", None)
        .await
        .unwrap();
    let post = |path: &str, body: &str| {
        axum::http::Request::post(path)
            .header("authorization", format!("Bearer {}", admin.secret))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    assert!(
        app.clone()
            .oneshot(post("/api/v1/cycles", r#"{"year": 2025}"#))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let response = app
        .clone()
        .oneshot(post("/api/v1/cycles/2025/recompute", "{}"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);

    // The job carries the request's trace context; the worker continues it.
    let payload: Vec<u8> =
        sqlx::query_scalar("SELECT job FROM apalis.jobs WHERE job_type = 'recompute'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let job: Recompute = serde_json::from_slice(&payload).unwrap();
    let traceparent = job
        .traceparent
        .clone()
        .expect("the job stores the request's traceparent");
    kepatuhan_worker::queues::recompute::run_traced(&state, &job)
        .await
        .unwrap();

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    // The request span is named by its route, with the standard attributes, so a tracing
    // backend groups every year's recompute under one name.
    let request = spans
        .iter()
        .find(|s| s.name == "POST /api/v1/cycles/{year}/recompute")
        .unwrap_or_else(|| {
            panic!(
                "the API's request span, named by route: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    let attribute = |key: &str| {
        request
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    };
    assert_eq!(
        attribute("http.route").as_deref(),
        Some("/api/v1/cycles/{year}/recompute")
    );
    assert_eq!(
        attribute("http.response.status_code").as_deref(),
        Some("202")
    );
    assert_eq!(request.span_kind, opentelemetry::trace::SpanKind::Server);
    let recompute = spans
        .iter()
        .find(|s| s.name == "recompute")
        .expect("the worker's span");
    assert_eq!(
        recompute.span_context.trace_id(),
        request.span_context.trace_id(),
        "one trace"
    );
    assert!(traceparent.contains(&request.span_context.trace_id().to_string()));
    assert_ne!(
        recompute.span_context.span_id(),
        request.span_context.span_id()
    );
}
