//! Every write is on the record, of any object, and the record cannot be changed.

mod common;

use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn every_write_is_on_the_record_and_the_record_is_append_only(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    let babel = app.token("office", Some("babel")).await;
    let jakarta = app.token("office", Some("jakarta")).await;
    app.post("/api/v1/cycles", admin, json!({ "year": 2025 }))
        .await
        .assert_ok();
    app.post(
        "/api/v1/webhooks",
        Some(&babel),
        json!({ "url": "https://hooks.example.org/babel", "office": "babel" }),
    )
    .await
    .assert_ok();
    app.post(
        "/api/v1/entities/bulk",
        Some(&jakarta),
        json!([{ "code": "31.72", "kind": "city", "name": "Pemerintah Kota Administrasi Jakarta Timur", "province_code": "31" }]),
    )
    .await
    .assert_ok();

    let types = |entries: &Value| {
        let mut t: Vec<String> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["object_type"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let all = app.get("/api/v1/audit", admin).await;
    all.assert_ok();
    for object in [
        "cycle", "entity", "office", "province", "token", "unit", "webhook",
    ] {
        assert!(
            types(&all.body).contains(&object.to_owned()),
            "{object}: {}",
            all.text
        );
    }
    // Filters: by object, by actor.
    let cycle = app
        .get("/api/v1/audit?object_type=cycle&object_id=2025", admin)
        .await;
    assert_eq!(cycle.body[0]["action"], "created");
    let babel_id = app.actor_id(&babel).await;
    let mine = app
        .get(&format!("/api/v1/audit?actor_id={babel_id}"), admin)
        .await;
    assert_eq!(types(&mine.body), ["webhook"]);
    // An office reads its provinces' trail and its own writes, not another province's.
    let seen_by_babel = app.get("/api/v1/audit", Some(&babel)).await;
    assert!(types(&seen_by_babel.body).contains(&"webhook".to_owned()));
    assert!(
        seen_by_babel
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["province_code"] != "31"),
        "{}",
        seen_by_babel.text
    );
    let seen_by_jakarta = app
        .get("/api/v1/audit?object_type=entity", Some(&jakarta))
        .await;
    assert_eq!(seen_by_jakarta.body[0]["province_code"], "31");
    app.get(
        "/api/v1/audit",
        Some(&app.token("assessor", Some("babel")).await),
    )
    .await
    .assert_problem(403, "forbidden");

    // The record cannot be rewritten, deleted or truncated, even by the service's own role.
    for statement in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&pool)
            .await;
        assert!(refused.is_err(), "{statement}");
    }
}
