//! The findings register: the office records findings, the government follows them up with
//! evidence, the office accepts; the award rule reads the register, and the old counts endpoint
//! keeps working beside it.

mod common;

use common::TestApp;
use kepatuhan_core::CycleYear;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

/// The grade label of an entity in the current results of 2025, after a recompute.
async fn label(pool: &PgPool, state: &kepatuhan_app::App, code: &str) -> String {
    kepatuhan_app::recompute::recompute_cycle(state, CycleYear::new(2025).unwrap().into())
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT r.grade_label FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision
         JOIN entities e ON e.id = r.entity_id WHERE c.id = official_cycle(2025) AND e.code = $1",
    )
    .bind(code)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn findings_are_recorded_followed_up_and_accepted_and_the_opinion_reads_them(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (state, tokens) = common::demo(&pool, false).await;
    // An entity of Bangka Belitung with provisional 2025 results.
    let results = app
        .get("/api/v1/cycles/2025/results/entities", Some(&tokens.office))
        .await;
    let entity = results.body["items"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let government = app.government_token(&entity).await;
    let office = Some(tokens.office.as_str());
    let inputs = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT input_revision FROM cycles WHERE id = official_cycle(2025)",
        )
        .fetch_one(&pool)
    };
    let register = format!("/api/v1/cycles/2025/entities/{entity}/findings");

    // Two findings; the second at one of the entity's units.
    let units = app
        .get(&format!("/api/v1/entities/{entity}/units"), office)
        .await;
    let unit = units.body[0]["id"].as_i64().unwrap();
    let before = inputs().await.unwrap();
    let first = app
        .post(
            &register,
            office,
            json!({ "description": "Maklumat pelayanan belum dipasang", "due_on": "2025-12-31" }),
        )
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text);
    let second = app
        .post(
            &register,
            office,
            json!({ "description": "Tidak ada sarana pengaduan", "unit_id": unit }),
        )
        .await;
    assert_eq!(second.status.as_u16(), 201, "{}", second.text);
    assert_eq!(
        inputs().await.unwrap(),
        before + 2,
        "each finding is an input of the award rule"
    );
    let (a, b) = (
        first.body["id"].as_i64().unwrap(),
        second.body["id"].as_i64().unwrap(),
    );
    // Not at another entity's unit; not by the government.
    app.post(
        &register,
        office,
        json!({ "description": "x", "unit_id": 999_999 }),
    )
    .await
    .assert_problem(422, "validation-error");
    app.post(&register, Some(&government), json!({ "description": "x" }))
        .await
        .assert_problem(403, "forbidden");

    // The government follows both up; the office accepts one and sends the other back.
    for id in [a, b] {
        let done = app
            .post(
                &format!("/api/v1/findings/{id}/follow-up"),
                Some(&government),
                json!({ "note": "Sudah ditindaklanjuti", "evidence": ["https://dokumen.example.go.id/bukti.pdf"] }),
            )
            .await;
        done.assert_ok();
        assert_eq!(done.body["status"], "followed_up");
    }
    let followed = inputs().await.unwrap();
    app.post(
        &format!("/api/v1/findings/{a}/accept"),
        Some(&government),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    let accepted = app
        .post(&format!("/api/v1/findings/{a}/accept"), office, json!({}))
        .await;
    accepted.assert_ok();
    assert_eq!(accepted.body["status"], "accepted");
    let returned = app
        .post(
            &format!("/api/v1/findings/{b}/return"),
            office,
            json!({ "note": "Bukti belum cukup" }),
        )
        .await;
    assert_eq!(returned.body["status"], "open");
    assert_eq!(returned.body["review_note"], "Bukti belum cukup");
    assert_eq!(
        inputs().await.unwrap(),
        followed + 1,
        "only the acceptance moved what the rule reads"
    );
    // One finding still open: no "Tanpa Maladministrasi".
    assert!(
        !label(&pool, &state, &entity)
            .await
            .contains("Tanpa Maladministrasi")
    );

    // Followed up again and accepted: the register is complete.
    app.post(
        &format!("/api/v1/findings/{b}/follow-up"),
        Some(&government),
        json!({ "note": "Kotak pengaduan dan kanal daring tersedia" }),
    )
    .await
    .assert_ok();
    app.post(&format!("/api/v1/findings/{b}/accept"), office, json!({}))
        .await
        .assert_ok();
    assert!(
        label(&pool, &state, &entity)
            .await
            .ends_with("Tanpa Maladministrasi")
    );
    let listed = app.get(&register, Some(&government)).await;
    listed.assert_ok();
    let statuses: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "accepted"]);
    assert_eq!(listed.body[1]["unit_id"], unit);

    // The counts endpoint still works, beside the findings recorded one by one.
    let counts = format!("/api/v1/cycles/2025/entities/{entity}/follow-up");
    app.send(
        Method::PUT,
        &counts,
        office,
        Some(json!({ "findings": 1, "followed_up": 1 })),
        &[],
    )
    .await
    .assert_problem(409, "findings-register");
    app.send(
        Method::PUT,
        &counts,
        office,
        Some(json!({ "findings": 3, "followed_up": 2 })),
        &[],
    )
    .await
    .assert_ok();
    let listed = app.get(&register, office).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[2]["summary"], true);
    assert_eq!(listed[2]["status"], "open");
    assert!(
        !label(&pool, &state, &entity)
            .await
            .contains("Tanpa Maladministrasi")
    );

    // Every change is in the audit trail.
    let trail: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE object_type = 'finding'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Two recorded, three follow-ups, two acceptances and one return.
    assert_eq!(trail, 8);
}
