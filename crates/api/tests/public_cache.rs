//! Anonymous answers about published results are served from memory for a moment; callers with
//! a token always see the database; unpublished results never enter the cache.

use std::time::Duration;

use kepatuhan_api::{build, demo};
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::migrate;
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn published_results_are_answered_from_memory_for_anonymous_callers(pool: PgPool) {
    migrate(&pool).await.unwrap();
    let settings = Settings {
        public_cache: Duration::from_secs(3),
        ..Settings::from_lookup(|_| None).unwrap()
    };
    let state = App::new(pool.clone()).unwrap();
    let tokens = demo::seed_demo(&state, &settings).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = build(state, &settings);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let name_of = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["code"] == "19.01")
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let path = "/api/v1/cycles/2024/results/entities";
    let kept_at = std::time::Instant::now();
    let (status, first) = get(path, None).await;
    assert_eq!(status, 200, "{first}");
    let original = name_of(&first);

    sqlx::query(
        "UPDATE entities SET name = 'Pemerintah Kabupaten Bangka (baru)' WHERE code = '19.01'",
    )
    .execute(&pool)
    .await
    .unwrap();
    // Within the time to live the public answer is the remembered one…
    assert_eq!(name_of(&get(path, None).await.1), original);
    // …a caller with a token reads the database…
    let (status, fresh) = get(path, Some(&tokens.admin)).await;
    assert_eq!(status, 200);
    assert_eq!(name_of(&fresh), "Pemerintah Kabupaten Bangka (baru)");
    // Past half its time to live, the kept answer is still served at once, and that request
    // refreshes it in the background: the next ones see the change before it would expire.
    tokio::time::sleep(Duration::from_millis(1_600).saturating_sub(kept_at.elapsed())).await;
    assert_eq!(name_of(&get(path, None).await.1), original);
    let mut seen = name_of(&get(path, None).await.1);
    while seen == original && kept_at.elapsed() < Duration::from_millis(2_900) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        seen = name_of(&get(path, None).await.1);
    }
    assert_eq!(seen, "Pemerintah Kabupaten Bangka (baru)");
    assert!(
        kept_at.elapsed() < Duration::from_secs(3),
        "the refreshed answer arrived only after expiry"
    );

    // One address, three formats: the JSON kept in memory is never the answer to a caller who
    // asks for CSV or a workbook by `Accept`, nor the other way round.
    for (accept, content_type) in [
        ("text/csv", "text/csv; charset=utf-8"),
        (kepatuhan_api::export::XLSX, kepatuhan_api::export::XLSX),
        ("application/json", "application/json"),
        ("text/csv", "text/csv; charset=utf-8"),
    ] {
        let res = client
            .get(format!("{base}{path}"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], content_type, "{accept}");
        assert_eq!(res.headers()["vary"], "Accept");
    }

    // Unpublished results are not public, cached or not.
    for _ in 0..2 {
        let (status, problem) = get("/api/v1/cycles/2025/results/entities", None).await;
        assert_eq!(status, 404, "{problem}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn anonymous_callers_are_rate_limited_per_client(pool: PgPool) {
    migrate(&pool).await.unwrap();
    let settings = Settings {
        anonymous_rate: 1,
        anonymous_burst: 3,
        trusted_proxy_hops: 1,
        ..Settings::from_lookup(|_| None).unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = build(App::new(pool.clone()).unwrap(), &settings)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_, admin) = kepatuhan_api::auth::create_actor_with_token(&pool, "HQ", "admin", None)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let get = |client_ip: &'static str, token: Option<String>| {
        let mut req = client
            .get(format!("{base}/api/v1/provinces"))
            .header("x-forwarded-for", format!("203.0.113.77, {client_ip}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    // A burst of 3, then 429 with a Retry-After, for that client only.
    for _ in 0..3 {
        assert_eq!(get("198.51.100.1", None).await.status().as_u16(), 200);
    }
    let refused = get("198.51.100.1", None).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("/rate-limited"));
    // Another client (as the trusted proxy saw it) is not affected, nor is a caller with a token.
    assert_eq!(get("198.51.100.2", None).await.status().as_u16(), 200);
    assert_eq!(
        get("198.51.100.1", Some(admin.secret))
            .await
            .status()
            .as_u16(),
        200
    );
}
