//! Webhooks end to end: a receiver on localhost gets signed events, a failed delivery is retried,
//! every attempt is recorded and visible through the API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use hmac::{Hmac, Mac};
use kepatuhan_api::{auth, build, demo};
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::migrate;
use kepatuhan_app::egress::EgressPolicy;
use kepatuhan_worker::{WorkerConfig, run};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use tower::ServiceExt;

#[derive(Default)]
struct Received {
    calls: usize,
    verified: Vec<Value>,
}

/// A receiver that fails its first call and verifies the signature of every call, the way a
/// receiver is told to in docs/worker.md.
async fn receiver(secret: Arc<Mutex<String>>, seen: Arc<Mutex<Received>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let secret = secret.lock().unwrap().clone();
            let seen = seen.clone();
            async move {
                let header = headers
                    .get("kepatuhan-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let (t, v1) = header.split_once(',').unwrap_or_default();
                let t = t.strip_prefix("t=").unwrap_or_default();
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(format!("{t}.").as_bytes());
                mac.update(&body);
                let ok = mac
                    .verify_slice(
                        &hex::decode(v1.strip_prefix("v1=").unwrap_or_default())
                            .unwrap_or_default(),
                    )
                    .is_ok();
                let fresh =
                    (chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap_or(0)).abs() < 300;
                let mut seen = seen.lock().unwrap();
                seen.calls += 1;
                if seen.calls == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                if ok && fresh {
                    seen.verified.push(serde_json::from_slice(&body).unwrap());
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

async fn call(
    app: &axum::Router,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(serde_json::to_vec(&b).unwrap())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    (
        status,
        serde_json::from_slice(
            &axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .unwrap_or(Value::Null),
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn signed_events_reach_a_receiver_and_failures_are_retried(pool: PgPool) {
    migrate(&pool).await.unwrap();
    // The receiver runs on this machine: its network is allowed, as in development.
    let state = App {
        egress: Arc::new(EgressPolicy::parse("127.0.0.1/32").unwrap()),
        ..App::new(pool.clone()).unwrap()
    };
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    demo::seed_demo(&state, &settings).await.unwrap();
    let app = build(state.clone(), &settings);
    let (_, office) = auth::create_actor_with_token(&pool, "Babel", "office", Some("babel"))
        .await
        .unwrap();

    let secret = Arc::new(Mutex::new(String::new()));
    let seen = Arc::new(Mutex::new(Received::default()));
    let url = receiver(secret.clone(), seen.clone()).await;

    // The office registers an endpoint for one of its entities; not for another province's.
    let (status, _) = call(
        &app,
        &office.secret,
        "POST",
        "/api/v1/webhooks",
        Some(json!({ "url": url, "entity_code": "52.71" })),
    )
    .await;
    assert_eq!(status, 422);
    let (status, created) = call(
        &app,
        &office.secret,
        "POST",
        "/api/v1/webhooks",
        Some(json!({ "url": url, "entity_code": "19.01", "events": ["certificate.revoked"] })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    *secret.lock().unwrap() = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    let (_, listed) = call(&app, &office.secret, "GET", "/api/v1/webhooks", None).await;
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once only"
    );

    // An event about that entity, and one it did not subscribe to.
    let entity: i64 = sqlx::query_scalar("SELECT id FROM entities WHERE code = '19.01'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(
        kepatuhan_app::events::emit(
            &mut tx,
            "certificate.revoked",
            Some(entity),
            json!({ "code": "K7QX" })
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        kepatuhan_app::events::emit(&mut tx, "results.published", None, json!({ "year": 2025 }))
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(
        state.clone(),
        WorkerConfig {
            backoff_base: Duration::ZERO,
            ..WorkerConfig::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().verified.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (calls, verified) = {
        let received = seen.lock().unwrap();
        (received.calls, received.verified.clone())
    };
    assert_eq!(calls, 2, "one failure, one retry");
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["type"], "certificate.revoked");
    assert_eq!(verified[0]["data"]["code"], "K7QX");
    let (_, deliveries) = call(
        &app,
        &office.secret,
        "GET",
        &format!("/api/v1/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    let attempts: Vec<(i64, Option<i64>)> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|d| (d["attempt"].as_i64().unwrap(), d["status_code"].as_i64()))
        .collect();
    assert_eq!(
        attempts.iter().map(|a| a.1).collect::<Vec<_>>(),
        [Some(503), Some(204)]
    );
    assert!(
        attempts[1].0 > attempts[0].0,
        "the retry is a later attempt: {attempts:?}"
    );

    // Rotation gives a new secret once; deactivation stops deliveries.
    let (_, rotated) = call(
        &app,
        &office.secret,
        "POST",
        &format!("/api/v1/webhooks/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_ne!(rotated["secret"], created["secret"]);
    // The previous secret keeps signing for a day beside the new one.
    let (previous, until): (Option<String>, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as(
            "SELECT previous_secret, previous_secret_until FROM webhook_endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(previous.as_deref(), created["secret"].as_str());
    assert!(until.unwrap() > chrono::Utc::now() + chrono::Duration::hours(23));
    let (_, off) = call(
        &app,
        &office.secret,
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(off["active"], false);
}

#[test]
fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
    let sig =
        kepatuhan_worker::queues::webhooks::signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
    mac.update(b"1700000000.{\"a\":1}");
    assert_eq!(
        sig,
        format!(
            "t=1700000000,v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn webhooks_never_reach_private_addresses(pool: PgPool) {
    migrate(&pool).await.unwrap();
    let strict = App::new(pool.clone()).unwrap();
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    demo::seed_demo(&strict, &settings).await.unwrap();
    let app = build(strict.clone(), &settings);
    let (office_id, office) =
        auth::create_actor_with_token(&pool, "Babel", "office", Some("babel"))
            .await
            .unwrap();
    for url in [
        "http://127.0.0.1:5432/",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::1]:6379/",
    ] {
        let (status, problem) = call(
            &app,
            &office.secret,
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": url, "office": "babel" })),
        )
        .await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
    }
    // An endpoint stored before the rule (or while a network was allowed) is checked again at
    // delivery, after resolution: refused for good, nothing sent, no retry.
    let endpoint: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_endpoints (url, secret, office_code, events, created_by)
         VALUES ('http://localhost:9/hook', 'whsec_0123456789abcdef', 'babel', ARRAY['results.published'], $1)
         RETURNING id",
    )
    .bind(office_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    kepatuhan_app::events::emit(&mut tx, "results.published", None, json!({ "year": 2025 }))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(
        strict.clone(),
        WorkerConfig {
            backoff_base: Duration::ZERO,
            ..WorkerConfig::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let error = loop {
        let row: Option<String> =
            sqlx::query_scalar("SELECT error FROM webhook_deliveries WHERE endpoint_id = $1")
                .bind(endpoint)
                .fetch_optional(&pool)
                .await
                .unwrap()
                .flatten();
        if let Some(error) = row {
            break error;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        error.starts_with("refused: localhost is 127.0.0.1"),
        "{error}"
    );
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(endpoint)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "a refused destination is not retried");
}

#[test]
fn while_a_rotated_secret_overlaps_each_secret_signs() {
    let header = kepatuhan_worker::queues::webhooks::signatures(
        "whsec_new_secret",
        Some("whsec_old_secret"),
        1_700_000_000,
        b"{}",
    );
    let parts: Vec<&str> = header.split(',').collect();
    assert_eq!(parts[0], "t=1700000000");
    for (part, secret) in parts[1..]
        .iter()
        .zip(["whsec_new_secret", "whsec_old_secret"])
    {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            part.strip_prefix("v1=").unwrap(),
            hex::encode(mac.finalize().into_bytes())
        );
    }
}
