//! Reference data: provinces, offices, entities, units; bulk JSON and CSV; scopes.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn health_and_unknown_routes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.get("/health/live", None).await.assert_ok();
    let ready = app.get("/health/ready", None).await;
    ready.assert_ok();
    app.get("/nowhere", None)
        .await
        .assert_problem(404, "not-found");
    app.send(Method::DELETE, "/api/v1/provinces", None, None, &[])
        .await
        .assert_problem(405, "method-not-allowed");
}

#[sqlx::test(migrations = "../../migrations")]
async fn bulk_upload_is_idempotent_and_counts_changes(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    let again = app.post("/api/v1/entities/bulk", admin, json!([
        { "code": "19.01", "kind": "regency", "name": "Pemerintah Kabupaten Bangka", "province_code": "19" },
        { "code": "19.02", "kind": "regency", "name": "Pemerintah Kabupaten Belitung", "province_code": "19" },
        { "code": "19.71", "kind": "city", "name": "Pemerintah Kota Pangkal Pinang", "province_code": "19" },
    ])).await;
    again.assert_ok();
    assert_eq!(
        again.body,
        json!({ "created": 1, "updated": 1, "unchanged": 1 })
    );

    let csv = "code,kind,name,province_code\n19.01,regency,Pemerintah Kabupaten Bangka,19\nKEMENKES,ministry,Kementerian Kesehatan,\n";
    let r = app
        .post_raw("/api/v1/entities/bulk", admin, "text/csv", csv)
        .await;
    r.assert_ok();
    assert_eq!(
        r.body,
        json!({ "created": 0, "updated": 0, "unchanged": 2 })
    );

    let list = app.get("/api/v1/entities?province=19&limit=2", admin).await;
    list.assert_ok();
    let codes: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["19", "19.01"]);
    let cursor = list.body["next_cursor"].as_str().unwrap().to_owned();
    let next = app
        .get(
            &format!("/api/v1/entities?province=19&limit=2&cursor={cursor}"),
            admin,
        )
        .await;
    let codes: Vec<&str> = next.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["19.02", "19.71"]);
    assert!(next.body.get("next_cursor").is_none());
}

#[sqlx::test(migrations = "../../migrations")]
async fn invalid_records_are_all_named_and_nothing_is_written(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = app.post("/api/v1/entities/bulk", admin, json!([
        { "code": "19.03", "kind": "regency", "name": "Pemerintah Kabupaten Bangka Barat", "province_code": "19" },
        { "code": "19.04", "kind": "regency", "name": "", "province_code": "99" },
        { "code": "KEMENDAGRI", "kind": "ministry", "name": "Kementerian Dalam Negeri", "province_code": "19" },
        { "code": "31.01", "kind": "regency", "name": "Kabupaten Kepulauan Seribu", "province_code": "19" },
        { "code": "19.03", "kind": "regency", "name": "Duplikat", "province_code": "19" },
    ])).await;
    r.assert_problem(422, "validation-error");
    assert_eq!(
        r.fields(),
        [
            "[1].name",
            "[1].province_code",
            "[2].province_code",
            "[3].code",
            "[4].code"
        ]
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after, "no partial write");

    let r = app
        .post(
            "/api/v1/entities/bulk",
            admin,
            json!([{ "code": "19.05", "kind": "village", "name": "x", "province_code": "19" }]),
        )
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["[0].kind"]);

    let csv = "code,kind,name,province_code\n19.05,regency,Kabupaten Bangka Selatan\n";
    let r = app
        .post_raw("/api/v1/entities/bulk", admin, "text/csv", csv)
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["line 2"]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_bodies_answer_problem_json(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let admin = Some(app.admin.as_str());
    app.post_raw(
        "/api/v1/provinces/bulk",
        admin,
        "application/json",
        "[{\"code\": ",
    )
    .await
    .assert_problem(400, "malformed-json");
    app.post_raw("/api/v1/provinces/bulk", admin, "text/plain", "hello")
        .await
        .assert_problem(415, "unsupported-media-type");
    let big = format!(
        "[{}]",
        vec!["{\"code\":\"19\",\"name\":\"x\"}"; 60_000].join(",")
    );
    app.post_raw("/api/v1/provinces/bulk", admin, "application/json", big)
        .await
        .assert_problem(413, "payload-too-large");
    let r = app
        .post(
            "/api/v1/provinces/bulk",
            admin,
            json!([{ "code": 19, "name": "x" }]),
        )
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["[0].code"]);
    app.get("/api/v1/entities?limit=0", admin)
        .await
        .assert_problem(422, "validation-error");
    app.get("/api/v1/entities?cursor=zz", admin)
        .await
        .assert_problem(422, "validation-error");
}

#[sqlx::test(migrations = "../../migrations")]
async fn who_may_see_and_change_reference_data(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let babel = app.token("office", Some("babel")).await;
    let assessor = app.token("assessor", Some("babel")).await;

    // Public: provinces only.
    app.get("/api/v1/provinces", None).await.assert_ok();
    app.get("/api/v1/entities", None)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/entities", Some("kpt_nonsense"))
        .await
        .assert_problem(401, "unauthorized");

    // An office sees its own provinces only; others answer 404, not 403.
    let list = app.get("/api/v1/entities", Some(&babel)).await;
    let codes: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["19", "19.01", "19.71"]);
    app.get("/api/v1/entities/19.71", Some(&babel))
        .await
        .assert_ok();
    app.get("/api/v1/entities/31.71", Some(&babel))
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/entities/KEMENKES/units", Some(&babel))
        .await
        .assert_problem(404, "not-found");
    let offices = app.get("/api/v1/offices", Some(&babel)).await;
    assert_eq!(offices.body.as_array().unwrap().len(), 1);

    // An office may maintain its own provinces' entities, not others', and not provinces or offices.
    app.post("/api/v1/entities/bulk", Some(&babel), json!([{ "code": "19.04", "kind": "regency", "name": "Pemerintah Kabupaten Belitung Timur", "province_code": "19" }])).await.assert_ok();
    let r = app.post("/api/v1/entities/bulk", Some(&babel), json!([{ "code": "31.72", "kind": "city", "name": "Jakarta Timur", "province_code": "31" }])).await;
    r.assert_problem(422, "validation-error");
    let r = app.post("/api/v1/units/bulk", Some(&babel), json!([{ "entity_code": "31.71", "name": "Puskesmas Kebayoran Baru", "kind": "puskesmas" }])).await;
    assert_eq!(r.fields(), ["[0].entity_code"]);
    app.post("/api/v1/provinces/bulk", Some(&babel), json!([]))
        .await
        .assert_problem(403, "forbidden");
    app.post("/api/v1/offices/bulk", Some(&babel), json!([]))
        .await
        .assert_problem(403, "forbidden");

    // An assessor without assignments sees nothing and changes nothing.
    let list = app.get("/api/v1/entities", Some(&assessor)).await;
    assert_eq!(list.body["items"], json!([]));
    app.get("/api/v1/entities/19.01", Some(&assessor))
        .await
        .assert_problem(404, "not-found");
    app.post("/api/v1/entities/bulk", Some(&assessor), json!([]))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/offices", Some(&assessor))
        .await
        .assert_problem(403, "forbidden");
}

#[sqlx::test(migrations = "../../migrations")]
async fn tokens_are_stored_hashed(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(
        !hashes[0]
            .windows(8)
            .any(|w| app.admin.as_bytes().windows(8).any(|t| t == w))
    );
    assert_eq!(hashes[0], kepatuhan_api::auth::hash_token(&app.admin));
}

#[sqlx::test(migrations = "../../migrations")]
async fn idempotency_keys_replay_and_refuse_reuse(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = Some(app.admin.as_str());
    let body = json!({ "year": 2024, "opens_on": "2024-06-01", "closes_on": "2024-09-30" });
    let first = app
        .send(
            Method::POST,
            "/api/v1/cycles",
            admin,
            Some(body.clone()),
            &[("idempotency-key", "create-2024")],
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text);
    let replay = app
        .send(
            Method::POST,
            "/api/v1/cycles",
            admin,
            Some(body.clone()),
            &[("idempotency-key", "create-2024")],
        )
        .await;
    assert_eq!(
        replay.status.as_u16(),
        201,
        "the original answer, not a 409"
    );
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    let other = app
        .send(
            Method::POST,
            "/api/v1/cycles",
            admin,
            Some(json!({ "year": 2025 })),
            &[("idempotency-key", "create-2024")],
        )
        .await;
    other.assert_problem(422, "idempotency-key-reused");
    // Keys belong to their caller: another admin's same key is a new request.
    let other_admin = app.token("admin", None).await;
    let r = app
        .send(
            Method::POST,
            "/api/v1/cycles",
            Some(&other_admin),
            Some(body),
            &[("idempotency-key", "create-2024")],
        )
        .await;
    r.assert_problem(409, "cycle-exists");
    let cycles: i64 = sqlx::query_scalar("SELECT count(*) FROM cycles")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(cycles, 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn revoked_tokens_stop_working_and_rotation_keeps_the_actor(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin_id = app.actor_id(&app.admin).await;
    let second = kepatuhan_api::auth::add_token(&pool, admin_id, None)
        .await
        .unwrap();
    app.get("/api/v1/offices", Some(&second.secret))
        .await
        .assert_ok();
    let listed = kepatuhan_api::auth::list_tokens(&pool).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|l| !l.contains(&app.admin[12..])),
        "secrets are never listed"
    );
    assert_eq!(
        kepatuhan_api::auth::revoke_token(&pool, &app.admin[..12])
            .await
            .unwrap(),
        1
    );
    app.get("/api/v1/offices", Some(&app.admin))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/offices", Some(&second.secret))
        .await
        .assert_ok();
}

#[sqlx::test(migrations = "../../migrations")]
async fn tokens_expire_and_record_their_last_use(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin_id = app.actor_id(&app.admin).await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let expiring = kepatuhan_api::auth::add_token(&pool, admin_id, Some(tomorrow))
        .await
        .unwrap();
    app.get("/api/v1/offices", Some(&expiring.secret))
        .await
        .assert_ok();
    // Its use is recorded (off the request's path: wait for it a moment).
    let mut used = None;
    for _ in 0..50 {
        used = sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_tokens WHERE prefix = $1",
        )
        .bind(&expiring.prefix)
        .fetch_one(&pool)
        .await
        .unwrap();
        if used.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_some(), "the last use is recorded");
    let listed = kepatuhan_api::auth::list_tokens(&pool).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|l| l.contains("expires") && l.contains("last used")),
        "{listed:?}"
    );
    // Once expired it answers 401, like a revoked token.
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE prefix = $1")
        .bind(&expiring.prefix)
        .execute(&pool)
        .await
        .unwrap();
    app.get("/api/v1/offices", Some(&expiring.secret))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/offices", Some(&app.admin))
        .await
        .assert_ok();
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_requests_with_one_key_run_once_and_secrets_are_not_kept(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let token = app.admin.clone();
    // Three at once, one key: one endpoint; each caller gets its answer or "still running".
    let body = json!({ "url": "https://hooks.example.org/kepatuhan", "office": "babel" });
    let send = || {
        let (app, token, body) = (&app, &token, body.clone());
        async move {
            app.send(
                Method::POST,
                "/api/v1/webhooks",
                Some(token),
                Some(body),
                &[("idempotency-key", "hook-1")],
            )
            .await
        }
    };
    let replies = tokio::join!(send(), send(), send());
    let replies = [replies.0, replies.1, replies.2];
    let endpoints: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(endpoints, 1, "one key, one endpoint");
    let original: Vec<_> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 201 && r.headers.get("idempotent-replayed").is_none())
        .collect();
    assert_eq!(original.len(), 1, "{replies:?}");
    assert!(
        original[0].body["secret"].is_string(),
        "shown once, to the caller"
    );
    for r in &replies {
        assert!(
            matches!(r.status.as_u16(), 201 | 409),
            "{} {}",
            r.status,
            r.text
        );
        if r.status.as_u16() == 409 {
            r.assert_problem(409, "idempotency-key-in-use");
            assert!(r.headers.get("retry-after").is_some());
        }
    }
    // The stored answer has no secret, and neither has a replay.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM idempotency_keys WHERE key = 'hook-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let secret = original[0].body["secret"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(secret));
    let replay = send().await;
    assert_eq!(replay.status.as_u16(), 201);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert!(replay.body.get("secret").is_none(), "{}", replay.text);
    assert_eq!(replay.body["id"], original[0].body["id"]);

    // A key expires after a day: the same key is then a new request.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&pool)
        .await
        .unwrap();
    // (The bearer scheme is case-insensitive, in the idempotency layer as in auth.)
    let later = app
        .send(
            Method::POST,
            "/api/v1/webhooks",
            None,
            Some(json!({ "url": "https://hooks.example.org/other", "office": "babel" })),
            &[
                ("idempotency-key", "hook-1"),
                ("authorization", &format!("BEARER {token}")),
            ],
        )
        .await;
    assert_eq!(later.status.as_u16(), 201, "{}", later.text);
    assert!(later.headers.get("idempotent-replayed").is_none());
}
