//! The service's routes answer through the real router.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kepatuhan_api::{AppState, router};
use tower::ServiceExt;

async fn get(path: &str) -> (StatusCode, Option<String>, serde_json::Value) {
    let app = router(AppState::load().unwrap());
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[tokio::test]
async fn liveness() {
    let (status, _, body) = get("/health/live").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}

#[tokio::test]
async fn lists_and_shows_the_shipped_methodologies() {
    let (status, _, body) = get("/api/v1/methodologies").await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ori-2021", "ori-2022", "ori-2025"]);

    let (status, _, body) = get("/api/v1/methodologies/ori-2022").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["dimensions"][0]["weight"], "21.85",
        "decimals are strings, never floats"
    );
    assert_eq!(body["bands"]["bands"][0]["lower"], "88.00");
}

#[tokio::test]
async fn unknown_things_are_problem_json_404s() {
    for path in ["/api/v1/methodologies/ori-1999", "/nowhere"] {
        let (status, content_type, body) = get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert!(body["type"].as_str().unwrap().ends_with("/not-found"));
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
}
