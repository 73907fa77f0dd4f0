//! `/metrics` in Prometheus text format: requests by route and status, from counters.

mod common;

use common::TestApp;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn requests_and_queue_depth_are_exposed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    app.get("/api/v1/provinces", None).await.assert_ok();
    app.get("/api/v1/entities/99.99", Some(&app.admin))
        .await
        .assert_problem(404, "not-found");
    app.post("/api/v1/cycles", Some(&app.admin), json!({ "year": 2025 }))
        .await
        .assert_ok();
    let r = app
        .post("/api/v1/cycles/2025/recompute", Some(&app.admin), json!({}))
        .await;
    assert_eq!(r.status.as_u16(), 202);
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status.as_u16(), 200);
    assert!(metrics.content_type().starts_with("text/plain"));
    let text = metrics.text;
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/provinces",status="200"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/entities/{code}",status="404"}"#
        ),
        "route templates, not raw paths"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert!(
        !text.contains("kepatuhan_jobs{"),
        "queue depth is the worker's gauge: a scrape here runs no query"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn metrics_leave_the_public_address_when_they_have_their_own(pool: PgPool) {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let settings = kepatuhan_app::config::Settings {
        metrics_addr: Some("127.0.0.1:9090".parse().unwrap()),
        ..kepatuhan_app::config::Settings::from_lookup(|_| None).unwrap()
    };
    let public = kepatuhan_api::build(kepatuhan_app::App::new(pool).unwrap(), &settings);
    let get = || Request::get("/metrics").body(Body::empty()).unwrap();
    assert_eq!(public.oneshot(get()).await.unwrap().status(), 404);
    let private = kepatuhan_api::startup::metrics_router();
    assert_eq!(private.oneshot(get()).await.unwrap().status(), 200);
}
