//! A government assesses itself beside the official cycle, with the same instrument and scoring;
//! nobody else sees it, it never reaches the official results, and once those are out it is
//! compared with them indicator by indicator.

mod common;

use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn a_government_assesses_itself_and_calibrates_against_the_official_result(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, true).await;
    // An entity and one of its units assessed officially in 2023.
    let official = app
        .get("/api/v1/cycles/2023/results/units?limit=100", None)
        .await;
    let first = official.body["items"][0].clone();
    let (entity, unit) = (
        first["entity_code"].as_str().unwrap().to_owned(),
        first["unit_id"].as_i64().unwrap(),
    );
    let public_before = app
        .get("/api/v1/cycles/2023/results/entities", None)
        .await
        .text;
    let history_before = app
        .get(&format!("/api/v1/results/entities/{entity}/history"), None)
        .await
        .text;
    let government = app.government_token(&entity).await;
    let me = Some(government.as_str());

    let created = app
        .post(
            "/api/v1/self-assessments",
            me,
            json!({ "entity_code": entity, "year": 2023, "name": "Penilaian mandiri I" }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["kind"], "self_assessment");
    let id = created.body["id"].as_i64().unwrap();
    let units = created.body["units"].as_array().unwrap();
    assert!(
        units.iter().any(|u| u["unit_id"] == unit),
        "{}",
        created.text
    );
    // Named: a second of the same name is refused, another name is fine.
    app.post(
        "/api/v1/self-assessments",
        me,
        json!({ "entity_code": entity, "year": 2023, "name": "penilaian mandiri i" }),
    )
    .await
    .assert_problem(409, "self-assessment-exists");

    // Every indicator at its highest level, and a survey without maladministration.
    let methodology = app
        .get(
            &format!(
                "/api/v1/methodologies/{}",
                created.body["methodology"].as_str().unwrap()
            ),
            None,
        )
        .await
        .body;
    let mut values = Vec::new();
    let mut surveys = Vec::new();
    for dimension in methodology["dimensions"].as_array().unwrap() {
        for variable in dimension["variables"].as_array().unwrap() {
            match variable["measure"]["kind"].as_str().unwrap() {
                "indicators" => {
                    for indicator in variable["measure"]["indicators"].as_array().unwrap() {
                        let top = indicator["scale"]["levels"]
                            .as_array()
                            .unwrap()
                            .last()
                            .unwrap()["value"]
                            .clone();
                        values.push(json!({ "indicator": indicator["code"], "value": top }));
                    }
                }
                _ => surveys.push(variable["measure"].clone()),
            }
        }
    }
    let sheet = app
        .put(
            &format!("/api/v1/self-assessments/{id}/units/{unit}/values"),
            me,
            json!(values),
        )
        .await;
    sheet.assert_ok();
    // Sending the same sheet again changes nothing.
    let trail = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let entries = trail(pool.clone()).await;
    app.put(
        &format!("/api/v1/self-assessments/{id}/units/{unit}/values"),
        me,
        json!(values),
    )
    .await
    .assert_ok();
    assert_eq!(trail(pool.clone()).await, entries);
    for survey in &surveys {
        let answers: serde_json::Map<String, Value> = survey["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["code"].as_str().unwrap().to_owned(), json!(false)))
            .collect();
        let responses: Vec<Value> = (1..=5)
            .map(|r| json!({ "respondent": format!("R-{r}"), "answers": answers }))
            .collect();
        app.post(
            &format!("/api/v1/self-assessments/{id}/units/{unit}/survey-responses"),
            me,
            json!({ "survey": survey["code"], "responses": responses }),
        )
        .await
        .assert_ok();
    }
    let read = app.get(&format!("/api/v1/self-assessments/{id}"), me).await;
    read.assert_ok();
    let mine = read.body["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit_id"] == unit)
        .unwrap()
        .clone();
    assert_eq!(mine["score"], "100.00", "{}", read.text);
    assert_eq!(
        read.body["score"], "100.00",
        "the one scored unit: {}",
        read.text
    );

    // The calibration report: the entity was optimistic wherever the Ombudsman found less.
    let report = app
        .get(&format!("/api/v1/self-assessments/{id}/calibration"), me)
        .await;
    report.assert_ok();
    let compared = report.body["units"].as_array().unwrap();
    let row = compared.iter().find(|u| u["unit_id"] == unit).unwrap();
    assert_eq!(row["official_score"], first["score"], "{}", report.text);
    assert_eq!(row["self_score"], "100.00");
    let gaps = row["indicators"].as_array().unwrap();
    assert!(!gaps.is_empty(), "{}", report.text);
    let points: Vec<f64> = gaps
        .iter()
        .map(|g| g["points"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(points.iter().all(|p| *p >= 0.0), "{points:?}");
    assert!(
        points.windows(2).all(|w| w[0] >= w[1]),
        "most optimistic first"
    );
    assert_eq!(report.body["optimistic_units"], 1);

    // Nothing of it reaches the official results or the public.
    assert_eq!(
        app.get("/api/v1/cycles/2023/results/entities", None)
            .await
            .text,
        public_before
    );
    assert_eq!(
        app.get(&format!("/api/v1/results/entities/{entity}/history"), None)
            .await
            .text,
        history_before
    );
    let cycles = app.get("/api/v1/cycles", Some(&tokens.admin)).await;
    assert!(
        cycles
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != id)
    );
    let submission: i64 = sqlx::query_scalar("SELECT id FROM submissions WHERE cycle_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    app.get(
        &format!("/api/v1/submissions/{submission}"),
        Some(&tokens.admin),
    )
    .await
    .assert_problem(404, "not-found");

    // Only the entity and its office see it.
    let other = app
        .government_token(if entity == "19.01" { "19.71" } else { "19.01" })
        .await;
    app.get(&format!("/api/v1/self-assessments/{id}"), Some(&other))
        .await
        .assert_problem(404, "not-found");
    assert_eq!(
        app.get("/api/v1/self-assessments", Some(&other)).await.body,
        json!([])
    );
    app.get(
        &format!("/api/v1/self-assessments/{id}"),
        Some(&tokens.office),
    )
    .await
    .assert_ok();
    app.get(&format!("/api/v1/self-assessments/{id}"), None)
        .await
        .assert_problem(401, "unauthenticated");
    let listed = app.get("/api/v1/self-assessments", me).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);

    // A pre-evaluation of 2025 by the office: the official 2025 results are not out yet.
    let pre = app
        .post(
            "/api/v1/self-assessments",
            Some(&tokens.office),
            json!({ "entity_code": entity, "year": 2025, "name": "Pra-evaluasi" }),
        )
        .await;
    assert_eq!(pre.status.as_u16(), 201, "{}", pre.text);
    assert_eq!(pre.body["kind"], "pre_evaluation");
    app.get(
        &format!("/api/v1/self-assessments/{}/calibration", pre.body["id"]),
        me,
    )
    .await
    .assert_problem(409, "not-published");
    // A government adds a unit of its own.
    let added = app
        .post(
            &format!("/api/v1/self-assessments/{id}/units"),
            me,
            json!({ "name": "Puskesmas Uji", "kind": "puskesmas" }),
        )
        .await;
    added.assert_ok();
    assert!(
        added.body["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["unit_name"] == "Puskesmas Uji"),
        "{}",
        added.text
    );
    // Bad input: an off-scale value is named, and nothing is written.
    let refused = app
        .put(
            &format!("/api/v1/self-assessments/{id}/units/{unit}/values"),
            me,
            json!([{ "indicator": values[0]["indicator"], "value": 9 }]),
        )
        .await;
    refused.assert_problem(422, "validation-error");
    assert_eq!(refused.fields(), ["[0].value"]);
}
