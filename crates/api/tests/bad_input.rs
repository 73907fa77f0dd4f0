//! Bad input gets a clear 4xx problem, never a 500: NUL characters anywhere, cursors this api
//! never issued, names longer than the database can index.

mod common;

use common::TestApp;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn nul_characters_are_refused_wherever_they_come(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    for path in [
        "/verify/%00",
        "/api/v1/results/entities/%00/history",
        "/api/v1/cycles/2024/results/entities?province=%00",
        "/api/v1/entities/ab%00cd",
    ] {
        for token in [None, admin] {
            app.get(path, token)
                .await
                .assert_problem(400, "nul-character");
        }
    }
    app.post(
        "/api/v1/entities/bulk",
        admin,
        json!([{ "code": "19.09", "kind": "regency", "name": "Kabupaten\u{0}X", "province_code": "19" }]),
    )
    .await
    .assert_problem(400, "malformed-json");
    app.post_raw(
        "/api/v1/provinces/bulk",
        admin,
        "text/csv",
        "code,name\n19,Bangka\u{0}Belitung\n",
    )
    .await
    .assert_problem(400, "nul-character");
    // A cursor that decodes to a NUL-bearing key, and one that decodes to a negative offset.
    let nul_cursor = hex::encode(b"\"\\u0000\"");
    app.get(&format!("/api/v1/entities?cursor={nul_cursor}"), admin)
        .await
        .assert_problem(422, "validation-error");
    let nothing_written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entities WHERE code = '19.09'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(nothing_written, 0);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_negative_offset_cursor_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    app.post("/api/v1/cycles", admin, json!({ "year": 2025 }))
        .await
        .assert_ok();
    let negative = hex::encode(b"-50");
    let reply = app
        .get(
            &format!("/api/v1/cycles/2025/results/entities?cursor={negative}"),
            admin,
        )
        .await;
    reply.assert_problem(422, "validation-error");
    assert_eq!(reply.fields(), ["cursor"]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn names_have_a_stated_length_limit(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    let long = "Dinas ".repeat(1000);
    let reply = app
        .post(
            "/api/v1/units/bulk",
            admin,
            json!([{ "entity_code": "19.01", "name": long, "kind": "k".repeat(200) }]),
        )
        .await;
    reply.assert_problem(422, "validation-error");
    assert_eq!(reply.fields(), ["[0].name", "[0].kind"]);
    assert!(
        reply.text.contains("at most 300 characters"),
        "{}",
        reply.text
    );
    let reply = app
        .post(
            "/api/v1/entities/bulk",
            admin,
            json!([{ "code": "19.09", "kind": "regency", "name": long, "province_code": "19" }]),
        )
        .await;
    reply.assert_problem(422, "validation-error");
}
