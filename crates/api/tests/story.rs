//! The year of an assessment, told end to end: HQ sets up a cycle, the office samples units and
//! assigns assessors, assessors submit, the office returns one and verifies the rest, results
//! appear with the right scores, grades and ranks.

mod common;

use common::{Reply, TestApp};
use kepatuhan_core::CycleYear;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Values for every indicator of ori-2022 at `level` (capped at each scale's maximum).
fn all_values(level: u8) -> Value {
    let m = kepatuhan_core::methodology::builtin::by_code("ori-2022").unwrap();
    Value::Array(
        m.indicator_ids()
            .map(|id| {
                let ind = m.indicator(id);
                json!({ "indicator": ind.code, "value": level.min(ind.scale.max()), "evidence_note": "Diamati di lokasi" })
            })
            .collect(),
    )
}

/// 30 respondents, `reported` of whom report some maladministration.
fn survey(reported: usize) -> Value {
    let responses: Vec<Value> = (0..30)
        .map(|i| json!({ "respondent": format!("R-{i:03}"), "answers": { "undue_delay": i < reported, "unofficial_fees": false } }))
        .collect();
    json!({ "survey": "maladministration_perception", "responses": responses })
}

fn etag(r: &Reply) -> String {
    r.headers.get("etag").unwrap().to_str().unwrap().to_owned()
}

async fn act(app: &TestApp, path: &str, token: &str, tag: &str, body: Option<Value>) -> Reply {
    app.send(Method::POST, path, Some(token), body, &[("if-match", tag)])
        .await
}

/// Cycle 2024 (ori-2022) collecting, with the population-registry office of each of `entities`
/// sampled; returns the sample as `GET /cycles/2024/sample` answers it.
async fn collecting_2024(app: &TestApp, entities: &[&str]) -> Value {
    let admin = Some(app.admin.as_str());
    app.post("/api/v1/cycles", admin, json!({ "year": 2024 }))
        .await
        .assert_ok();
    let sample: Vec<Value> = entities
        .iter()
        .map(
            |e| json!({ "entity_code": e, "unit_name": "Dinas Kependudukan dan Pencatatan Sipil" }),
        )
        .collect();
    app.post(
        "/api/v1/cycles/2024/sample/bulk",
        admin,
        Value::Array(sample),
    )
    .await
    .assert_ok();
    let sampled = app.get("/api/v1/cycles/2024/sample", admin).await.body;
    app.post(
        "/api/v1/cycles/2024/transitions",
        admin,
        json!({ "to": "collecting" }),
    )
    .await
    .assert_ok();
    sampled
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_cycle_from_planning_to_published_results(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let babel = app.token("office", Some("babel")).await;
    let assessor = app.token("assessor", Some("babel")).await;
    let assessor_id = app.actor_id(&assessor).await;

    // HQ opens the 2023 cycle; the methodology defaults to the one for the year.
    let r = app
        .post(
            "/api/v1/cycles",
            Some(&admin),
            json!({ "year": 2023, "opens_on": "2023-06-01", "closes_on": "2023-10-31" }),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(
        (r.body["methodology"].as_str(), r.body["state"].as_str()),
        (Some("ori-2022"), Some("planning"))
    );
    app.post("/api/v1/cycles", Some(&admin), json!({ "year": 2023 }))
        .await
        .assert_problem(409, "cycle-exists");
    app.post(
        "/api/v1/cycles/2023/transitions",
        Some(&admin),
        json!({ "to": "collecting" }),
    )
    .await
    .assert_problem(409, "empty-sample");

    // The office samples the Bangka Belitung units it runs and assigns its assessor.
    let sample: Vec<Value> = ["19", "19.01", "19.71"]
        .iter()
        .flat_map(|e| {
            [
                "Dinas Kependudukan dan Pencatatan Sipil",
                "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu",
            ]
            .map(|u| json!({ "entity_code": e, "unit_name": u }))
        })
        .collect();
    let r = app
        .post(
            "/api/v1/cycles/2023/sample/bulk",
            Some(&babel),
            Value::Array(sample.clone()),
        )
        .await;
    assert_eq!(r.body["created"], 6, "{}", r.text);
    let r = app
        .post(
            "/api/v1/cycles/2023/sample/bulk",
            Some(&babel),
            Value::Array(sample),
        )
        .await;
    assert_eq!(
        r.body["unchanged"], 6,
        "re-uploading the sample changes nothing"
    );
    let units: Vec<i64> = app
        .get("/api/v1/cycles/2023/sample", Some(&babel))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit_id"].as_i64().unwrap())
        .collect();
    assert_eq!(units.len(), 6);
    let assignments: Vec<Value> = units
        .iter()
        .map(|u| json!({ "unit_id": u, "assessor_id": assessor_id }))
        .collect();
    app.post(
        "/api/v1/cycles/2023/assignments/bulk",
        Some(&babel),
        Value::Array(assignments),
    )
    .await
    .assert_ok();
    let r = app
        .post(
            "/api/v1/cycles/2023/transitions",
            Some(&admin),
            json!({ "to": "collecting" }),
        )
        .await;
    r.assert_ok();

    // Assessors enter complete data and surveys: the second unit of each entity does less well.
    let mut submissions = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let level = if i % 2 == 0 { 3 } else { 2 };
        let r = app
            .post(
                "/api/v1/cycles/2023/submissions",
                Some(&assessor),
                json!({ "unit_id": unit, "values": all_values(level) }),
            )
            .await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
        assert_eq!(r.body["missing"], json!([]));
        app.post(
            &format!("/api/v1/cycles/2023/units/{unit}/survey-responses"),
            Some(&assessor),
            survey(if i % 2 == 0 { 0 } else { 3 }),
        )
        .await
        .assert_ok();
        let id = r.body["id"].as_i64().unwrap();
        let submitted = act(
            &app,
            &format!("/api/v1/submissions/{id}/submit"),
            &assessor,
            &etag(&r),
            None,
        )
        .await;
        submitted.assert_ok();
        submissions.push((id, etag(&submitted)));
    }

    // The office returns the first submission with a comment, the assessor fixes and resubmits.
    let (first, tag) = submissions[0].clone();
    let r = act(&app, &format!("/api/v1/submissions/{first}/return"), &babel, &tag, Some(json!({
        "note": "Bukti maklumat pelayanan belum dilampirkan",
        "comments": [{ "indicator": "service_declaration", "comment": "Lampirkan foto maklumat" }]
    }))).await;
    r.assert_ok();
    assert_eq!(r.body["state"], "returned");
    let comment = r.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["indicator"] == "service_declaration")
        .unwrap()["review_comment"]
        .clone();
    assert_eq!(comment, "Lampirkan foto maklumat");
    // A stale ETag is refused; a missing one too.
    app.send(
        Method::PATCH,
        &format!("/api/v1/submissions/{first}"),
        Some(&assessor),
        Some(json!({ "values": [] })),
        &[("if-match", &tag)],
    )
    .await
    .assert_problem(412, "precondition-failed");
    app.send(
        Method::PATCH,
        &format!("/api/v1/submissions/{first}"),
        Some(&assessor),
        Some(json!({ "values": [] })),
        &[],
    )
    .await
    .assert_problem(428, "precondition-required");
    let fixed = app.send(Method::PATCH, &format!("/api/v1/submissions/{first}"), Some(&assessor),
        Some(json!({ "values": [{ "indicator": "service_declaration", "value": 3, "attachments": ["maklumat.jpg"] }] })), &[("if-match", &etag(&r))]).await;
    fixed.assert_ok();
    let resubmitted = act(
        &app,
        &format!("/api/v1/submissions/{first}/submit"),
        &assessor,
        &etag(&fixed),
        None,
    )
    .await;
    resubmitted.assert_ok();
    submissions[0].1 = etag(&resubmitted);

    // Publishing is refused while submissions are unverified.
    app.post(
        "/api/v1/cycles/2023/transitions",
        Some(&admin),
        json!({ "to": "verifying" }),
    )
    .await
    .assert_ok();
    app.post(
        "/api/v1/cycles/2023/transitions",
        Some(&admin),
        json!({ "to": "published" }),
    )
    .await
    .assert_problem(409, "unverified-submissions");

    // A state change names the version reviewed: `If-Match: *` moves nothing.
    act(
        &app,
        &format!("/api/v1/submissions/{}/verify", submissions[0].0),
        &babel,
        "*",
        None,
    )
    .await
    .assert_problem(412, "precondition-failed");

    // The office verifies everything; each verification enqueues a recompute job.
    for (id, tag) in &submissions {
        let r = act(
            &app,
            &format!("/api/v1/submissions/{id}/verify"),
            &babel,
            tag,
            None,
        )
        .await;
        r.assert_ok();
        let job = app
            .get(
                &format!("/api/v1/jobs/{}", r.body["job_id"].as_str().unwrap()),
                Some(&babel),
            )
            .await;
        job.assert_ok();
        assert_eq!(
            (job.body["queue"].as_str(), job.body["status"].as_str()),
            (Some("recompute"), Some("Pending"))
        );
        assert_eq!(
            job.body["payload"]["unit_id"],
            r.body["submission"]["unit_id"]
        );
    }
    // A verified submission is locked.
    let (id, _) = &submissions[1];
    let current = app
        .get(&format!("/api/v1/submissions/{id}"), Some(&babel))
        .await;
    app.send(
        Method::PATCH,
        &format!("/api/v1/submissions/{id}"),
        Some(&babel),
        Some(json!({ "values": [] })),
        &[("if-match", &etag(&current))],
    )
    .await
    .assert_problem(409, "invalid-transition");

    // A verified unit's survey responses are final too: they count in the results.
    let inputs_before: i64 =
        sqlx::query_scalar("SELECT input_revision FROM cycles WHERE year = 2023")
            .fetch_one(&pool)
            .await
            .unwrap();
    app.post(
        &format!("/api/v1/cycles/2023/units/{}/survey-responses", units[1]),
        Some(&babel),
        survey(0),
    )
    .await
    .assert_problem(409, "inputs-final");
    let full_recomputes = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'recompute' AND convert_from(job, 'UTF8')::jsonb->>'unit_id' IS NULL",
        )
        .fetch_one(&pool)
    };
    let full_before = full_recomputes().await.unwrap();

    // The recompute the worker would run: results readable by the office before publication.
    let state = kepatuhan_app::App::new(pool.clone()).unwrap();
    // Bangka followed up one of its two findings: no award in 2023 (ori-2022's rule from 2023).
    let path = "/api/v1/cycles/2023/entities/19.01/follow-up";
    app.send(
        Method::PUT,
        path,
        Some(&babel),
        Some(json!({ "findings": 2, "followed_up": 3 })),
        &[],
    )
    .await
    .assert_problem(422, "validation-error");
    app.send(
        Method::PUT,
        "/api/v1/cycles/2023/entities/31.71/follow-up",
        Some(&babel),
        Some(json!({ "findings": 1, "followed_up": 0 })),
        &[],
    )
    .await
    .assert_problem(404, "not-found");
    app.send(
        Method::PUT,
        path,
        Some(&babel),
        Some(json!({ "findings": 2, "followed_up": 1 })),
        &[],
    )
    .await
    .assert_ok();
    // Recording the same counts again changes nothing (no second recompute).
    app.send(
        Method::PUT,
        path,
        Some(&babel),
        Some(json!({ "findings": 2, "followed_up": 1 })),
        &[],
    )
    .await
    .assert_ok();
    // The follow-up is an input: it moves the input revision and enqueues a full recompute.
    assert_eq!(full_recomputes().await.unwrap(), full_before + 1);
    let inputs_after: i64 =
        sqlx::query_scalar("SELECT input_revision FROM cycles WHERE year = 2023")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        inputs_after,
        inputs_before + 1,
        "the refused upload changed nothing"
    );
    let summary =
        kepatuhan_app::recompute::recompute_cycle(&state, CycleYear::new(2023).unwrap().into())
            .await
            .unwrap();
    assert_eq!((summary.units_scored, summary.entities_scored), (6, 3));
    app.get("/api/v1/cycles/2023/results/entities", None)
        .await
        .assert_problem(404, "not-found");
    let r = app
        .get("/api/v1/cycles/2023/results/entities", Some(&babel))
        .await;
    r.assert_ok();

    // Publish and read the public results. They reflect every input already, so publishing
    // freezes them as they are instead of computing them again.
    let computed_at = || {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT max(computed_at) FROM entity_results WHERE cycle_id = official_cycle(2023)",
        )
        .fetch_one(&pool)
    };
    let before = computed_at().await.unwrap();
    app.post(
        "/api/v1/cycles/2023/transitions",
        Some(&admin),
        json!({ "to": "published" }),
    )
    .await
    .assert_ok();
    assert_eq!(
        computed_at().await.unwrap(),
        before,
        "results frozen as computed"
    );
    app.post(
        "/api/v1/cycles/2023/transitions",
        Some(&admin),
        json!({ "to": "collecting" }),
    )
    .await
    .assert_problem(409, "invalid-transition");
    let r = app.get("/api/v1/cycles/2023/results/entities", None).await;
    r.assert_ok();
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    // Unit at level 3 with a clean survey: 100. Unit at level 2 (0–3 scales) with 3 of 30
    // reporting maladministration: 75.76 % × 66.67 + 24.24 % × 90 = 72.32. Entity: mean 86.16.
    for e in items {
        assert_eq!(e["score"], "86.16", "{e}");
        assert_eq!(e["grade"]["code"], "B");
        assert_eq!(e["grade"]["zone"], "green");
    }
    let province = items.iter().find(|e| e["code"] == "19").unwrap();
    // Per dimension: the mean of the units' (100 and 66.67 for the assessed dimensions; 100 and 90 for output).
    let dims: Vec<(&str, &str)> = province["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["score"].as_str().unwrap()))
        .collect();
    assert_eq!(
        dims,
        [
            ("input", "83.33"),
            ("process", "83.33"),
            ("output", "95.00"),
            ("complaints", "83.33")
        ]
    );
    assert_eq!(province["national_rank"], json!({ "rank": 1, "of": 1 }));
    assert_eq!(province["provincial_rank"], Value::Null);
    let city = items.iter().find(|e| e["code"] == "19.71").unwrap();
    assert_eq!(
        city["provincial_rank"],
        json!({ "rank": 1, "of": 2 }),
        "ties share the rank"
    );
    let regency = items.iter().find(|e| e["code"] == "19.01").unwrap();
    assert_eq!(regency["provincial_rank"], json!({ "rank": 1, "of": 2 }));
    assert_eq!(
        (
            regency["award_eligible"].as_bool(),
            city["award_eligible"].as_bool()
        ),
        (Some(false), Some(true)),
        "awards need every finding followed up"
    );

    let units = app
        .get(
            "/api/v1/cycles/2023/results/units?entity=19.01&sort=score_asc",
            None,
        )
        .await;
    let scores: Vec<&str> = units.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["score"].as_str().unwrap())
        .collect();
    assert_eq!(scores, ["72.32", "100.00"]);
    let weakest = &units.body["items"][0];
    assert_eq!(weakest["grade"], "C");
    assert!(
        weakest["deficiencies"].as_array().unwrap().len() > 10,
        "the unit knows what to fix"
    );
    let unit_id = weakest["unit_id"].as_i64().unwrap();
    let detail = app
        .get(
            &format!("/api/v1/cycles/2023/results/units/{unit_id}"),
            None,
        )
        .await;
    assert_eq!(
        detail.body["breakdown"][0]["dimensions"][2]["code"],
        "output"
    );
    assert_eq!(detail.body["breakdown"][0]["dimensions"][2]["score"], "90");

    let provinces = app.get("/api/v1/cycles/2023/results/provinces", None).await;
    assert_eq!(provinces.body[0]["code"], "19");
    assert_eq!(provinces.body[0]["entities"], 3);
    assert_eq!(provinces.body[0]["grades"], json!({ "B": 3 }));

    let history = app
        .get("/api/v1/results/entities/19.01/history", None)
        .await;
    assert_eq!(history.body[0]["score"], "86.16");

    // The audit trail tells the story of the returned submission.
    let trail = app
        .get(&format!("/api/v1/submissions/{first}/audit"), Some(&babel))
        .await;
    let actions: Vec<&str> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| *a != "value_set")
        .collect();
    assert_eq!(
        actions,
        ["created", "submitted", "returned", "submitted", "verified"]
    );
    let change = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["action"] == "value_set")
        .unwrap();
    assert_eq!(
        (
            change["field"].as_str(),
            change["previous"]["value"].as_i64(),
            change["current"]["value"].as_i64()
        ),
        (Some("service_declaration"), Some(3), Some(3))
    );
    assert_eq!(change["current"]["attachments"], json!(["maklumat.jpg"]));
    // The audit log cannot be rewritten.
    assert!(
        sqlx::query("DELETE FROM audit_log")
            .execute(&pool)
            .await
            .is_err()
    );

    // Published results are frozen: no recompute, only corrections, which make a new revision.
    app.post("/api/v1/cycles/2023/recompute", Some(&admin), json!({}))
        .await
        .assert_problem(409, "results-frozen");
    let weakest_unit = units.body["items"][0]["unit_id"].as_i64().unwrap();
    let downgrade: Vec<Value> = all_values(0).as_array().unwrap().clone();
    let r = app
        .post(
            "/api/v1/cycles/2023/corrections",
            Some(&babel),
            json!({ "unit_id": weakest_unit, "reason": "x", "values": [] }),
        )
        .await;
    r.assert_problem(403, "forbidden");
    let r = app.post("/api/v1/cycles/2023/corrections", Some(&admin), json!({ "unit_id": weakest_unit, "reason": "Temuan pemeriksaan ulang", "values": downgrade })).await;
    r.assert_ok();
    assert_eq!(r.body["revision"], 2);
    let after = app
        .get("/api/v1/cycles/2023/results/entities?kind=regency", None)
        .await;
    // 0.7576 × 0 + 0.2424 × 90 = 21.816 → 21.82; entity (100 + 21.82) / 2 = 60.91.
    assert_eq!(after.body["items"][0]["score"], "60.91");
    let kept: Vec<(i32, String)> = sqlx::query_as(
        "SELECT revision, score::text FROM entity_results r JOIN entities e ON e.id = r.entity_id WHERE e.code = '19.01' ORDER BY revision",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        kept,
        [(1, "86.16".to_owned()), (2, "60.91".to_owned())],
        "the published revision is kept"
    );
    let history = app
        .get("/api/v1/results/entities/19.01/history", None)
        .await;
    assert_eq!(
        history.body[0]["score"], "60.91",
        "readers see the current revision"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_explicit_recompute_is_enqueued_for_open_cycles(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let cycle = app
        .post("/api/v1/cycles", Some(&admin), json!({ "year": 2025 }))
        .await;
    cycle.assert_ok();
    let r = app
        .post("/api/v1/cycles/2025/recompute", Some(&admin), json!({}))
        .await;
    assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    let job = app
        .get(
            &format!("/api/v1/jobs/{}", r.body["job_id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(
        job.body["payload"],
        json!({ "cycle_id": cycle.body["id"], "unit_id": null })
    );
    app.post("/api/v1/cycles/2031/recompute", Some(&admin), json!({}))
        .await
        .assert_problem(404, "not-found");
    let babel = app.token("office", Some("babel")).await;
    app.post("/api/v1/cycles/2025/recompute", Some(&babel), json!({}))
        .await
        .assert_problem(403, "forbidden");
}

#[sqlx::test(migrations = "../../migrations")]
async fn values_are_checked_against_the_methodology(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let unit = common::sampled_unit(&collecting_2024(&app, &["19.01"]).await, "19.01");
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions",
            Some(&admin),
            json!({ "unit_id": unit, "values": [
                { "indicator": "knows_ombudsman", "value": 2 },
                { "indicator": "telepathy", "value": 1 },
                { "indicator": "waiting_room", "value": 4 },
                { "indicator": "user_toilet", "value": 1, "not_applicable": true },
                { "indicator": "parking_area" },
            ]}),
        )
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(
        r.fields(),
        [
            "values[1].indicator",
            "values[2].value",
            "values[3].value",
            "values[4].value"
        ]
    );
    assert!(
        r.text
            .contains("4 is not on the scale of `waiting_room` (0, 1, 2, 3)"),
        "{}",
        r.text
    );
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM submissions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(none, 0, "nothing written");

    let r = app.post("/api/v1/cycles/2024/submissions", Some(&admin), json!({ "unit_id": unit, "values": [{ "indicator": "knows_ombudsman", "not_applicable": true }] })).await;
    assert_eq!(r.status.as_u16(), 201);
    let id = r.body["id"].as_i64().unwrap();
    let s = act(
        &app,
        &format!("/api/v1/submissions/{id}/submit"),
        &admin,
        &etag(&r),
        None,
    )
    .await;
    s.assert_problem(422, "validation-error");
    assert_eq!(s.fields().len(), 32, "every missing indicator is named");
    app.post(
        "/api/v1/cycles/2024/units/999999/survey-responses",
        Some(&admin),
        survey(0),
    )
    .await
    .assert_problem(404, "not-found");
    let bad = app.post(&format!("/api/v1/cycles/2024/units/{unit}/survey-responses"), Some(&admin), json!({ "survey": "maladministration_perception", "responses": [{ "respondent": "R1", "answers": { "telepathy": true } }] })).await;
    assert_eq!(bad.fields(), ["responses[0].answers"]);
    let csv = "survey,respondent,undue_delay,unofficial_fees\nmaladministration_perception,R1,tidak,tidak\nmaladministration_perception,R2,ya,\n";
    let r = app
        .post_raw(
            &format!("/api/v1/cycles/2024/units/{unit}/survey-responses"),
            Some(&admin),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(
        r.body,
        json!({ "created": 2, "updated": 0, "unchanged": 0 })
    );
    let r = app
        .post_raw(
            &format!("/api/v1/cycles/2024/units/{unit}/survey-responses"),
            Some(&admin),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(
        r.body,
        json!({ "created": 0, "updated": 0, "unchanged": 2 })
    );
    let summary = app
        .get(
            &format!("/api/v1/cycles/2024/units/{unit}/survey-responses"),
            Some(&admin),
        )
        .await;
    assert_eq!(summary.body[0]["counts"], json!([1, 1]));
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_forbidden_cycle_transition_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    app.post("/api/v1/cycles", Some(&admin), json!({ "year": 2025 }))
        .await
        .assert_ok();
    app.post(
        "/api/v1/cycles/2025/sample/bulk",
        Some(&admin),
        json!([{ "entity_code": "31.71", "unit_name": "Dinas Kependudukan dan Pencatatan Sipil" }]),
    )
    .await
    .assert_ok();
    let to = |s: &str| json!({ "to": s });
    let path = "/api/v1/cycles/2025/transitions";
    for bad in ["planning", "verifying", "published"] {
        app.post(path, Some(&admin), to(bad))
            .await
            .assert_problem(409, "invalid-transition");
    }
    app.post(path, Some(&admin), to("collecting"))
        .await
        .assert_ok();
    for bad in ["planning", "collecting", "published"] {
        app.post(path, Some(&admin), to(bad))
            .await
            .assert_problem(409, "invalid-transition");
    }
    let r = app.post(path, Some(&admin), to("verifying")).await;
    assert!(
        r.body["job_id"].is_string(),
        "closing the window enqueues a full recompute"
    );
    app.post(path, Some(&admin), to("planning"))
        .await
        .assert_problem(409, "invalid-transition");
    app.post(path, Some(&admin), to("collecting"))
        .await
        .assert_ok();
    app.post(path, Some(&admin), to("bogus"))
        .await
        .assert_problem(422, "validation-error");
    let babel = app.token("office", Some("babel")).await;
    app.post(path, Some(&babel), to("verifying"))
        .await
        .assert_problem(403, "forbidden");
    app.post(path, None, to("verifying"))
        .await
        .assert_problem(401, "unauthenticated");
    app.post(
        "/api/v1/cycles/1999/transitions",
        Some(&admin),
        to("collecting"),
    )
    .await
    .assert_problem(404, "not-found");
    let r = app
        .post("/api/v1/cycles", Some(&admin), json!({ "year": 2021 }))
        .await;
    r.assert_problem(422, "validation-error");
    assert!(r.text.contains("can only be imported"), "{}", r.text);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_office_uploads_many_drafts_at_once_all_or_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let sampled = collecting_2024(&app, &["19.01", "19.71", "31.71"]).await;
    let unit = |entity: &str| common::sampled_unit(&sampled, entity);
    let office = app.token("office", Some("babel")).await;
    let values = json!([
        { "indicator": "knows_ombudsman", "value": 2, "evidence_note": "Wawancara" },
        { "indicator": "waiting_room", "value": 3 },
    ]);

    // One bad record (a value off the scale), one unit outside the office's provinces, one
    // repeated unit: every problem named, nothing written.
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions/bulk",
            Some(&office),
            json!([
                { "unit_id": unit("19.01"), "values": values },
                { "unit_id": unit("19.71"), "values": [{ "indicator": "waiting_room", "value": 9 }] },
                { "unit_id": unit("31.71"), "values": values },
                { "unit_id": unit("19.01"), "values": values },
            ]),
        )
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(
        r.fields(),
        ["[1].values[0].value", "[2].unit_id", "[3].unit_id"]
    );
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM submissions")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0, "nothing written");

    // The valid upload: two drafts, each with its values and audit entries, ready to submit.
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions/bulk",
            Some(&office),
            json!([
                { "unit_id": unit("19.01"), "values": values },
                { "unit_id": unit("19.71"), "values": values },
            ]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["created"], 2);
    let first = &r.body["submissions"][0];
    assert_eq!(first["unit_id"], unit("19.01"));
    let id = first["id"].as_i64().unwrap();
    let trail = app
        .get(&format!("/api/v1/submissions/{id}/audit"), Some(&office))
        .await;
    trail.assert_ok();
    assert_eq!(trail.body.as_array().unwrap().len(), 3, "{}", trail.text);
    let shown = app
        .get(&format!("/api/v1/submissions/{id}"), Some(&office))
        .await;
    shown.assert_ok();
    assert_eq!(shown.body["version"], first["version"], "{}", shown.text);
    assert_eq!(
        shown.body["values"].as_array().unwrap().len(),
        2,
        "{}",
        shown.text
    );
    // Again: the units already have drafts.
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions/bulk",
            Some(&office),
            json!([{ "unit_id": unit("19.71"), "values": values }]),
        )
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["[0].unit_id"]);
    assert_eq!(count().await, 2);
}

#[sqlx::test(migrations = "../../migrations")]
async fn whoever_submits_does_not_verify(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let babel = app.token("office", Some("babel")).await;
    let colleague = app.token("office", Some("babel")).await;
    let sample = collecting_2024(&app, &["19.01", "19.71"]).await;
    let unit = |entity: &str| common::sampled_unit(&sample, entity);
    // An office enters and submits a unit's sheet itself; then it may not verify it.
    let submitted = |token: String, unit: i64| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/api/v1/cycles/2024/submissions",
                    Some(&token),
                    json!({ "unit_id": unit, "values": all_values(3) }),
                )
                .await;
            assert_eq!(r.status.as_u16(), 201, "{}", r.text);
            let id = r.body["id"].as_i64().unwrap();
            let s = act(
                app,
                &format!("/api/v1/submissions/{id}/submit"),
                &token,
                &etag(&r),
                None,
            )
            .await;
            s.assert_ok();
            (id, etag(&s))
        }
    };
    let (own, tag) = submitted(babel.clone(), unit("19.01")).await;
    act(
        &app,
        &format!("/api/v1/submissions/{own}/verify"),
        &babel,
        &tag,
        None,
    )
    .await
    .assert_problem(409, "separation-of-duties");
    // A colleague of the same office verifies it.
    act(
        &app,
        &format!("/api/v1/submissions/{own}/verify"),
        &colleague,
        &tag,
        None,
    )
    .await
    .assert_ok();
    // An admin verifying their own submission states why, and the trail keeps it.
    let (mine, tag) = submitted(admin.clone(), unit("19.71")).await;
    let path = format!("/api/v1/submissions/{mine}/verify");
    let r = act(&app, &path, &admin, &tag, None).await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["reason"]);
    act(
        &app,
        &path,
        &admin,
        &tag,
        Some(json!({ "reason": "Kantor perwakilan tanpa penelaah kedua" })),
    )
    .await
    .assert_ok();
    let trail = app
        .get(&format!("/api/v1/submissions/{mine}/audit"), Some(&admin))
        .await;
    let verified = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "verified")
        .unwrap();
    assert_eq!(
        verified["current"]["reason"],
        "Kantor perwakilan tanpa penelaah kedua"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_unit_that_cannot_be_assessed_is_excluded_and_no_longer_blocks_publication(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let babel = app.token("office", Some("babel")).await;
    let jakarta = app.token("office", Some("jakarta")).await;
    let sample = collecting_2024(&app, &["19.01", "19.71"]).await;
    let (assessed, closed) = (
        common::sampled_unit(&sample, "19.01"),
        common::sampled_unit(&sample, "19.71"),
    );
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions",
            Some(&babel),
            json!({ "unit_id": assessed, "values": all_values(3) }),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/cycles/2024/units/{assessed}/survey-responses"),
        Some(&babel),
        survey(0),
    )
    .await
    .assert_ok();
    let s = act(
        &app,
        &format!("/api/v1/submissions/{id}/submit"),
        &babel,
        &etag(&r),
        None,
    )
    .await;
    act(
        &app,
        &format!("/api/v1/submissions/{id}/verify"),
        &admin,
        &etag(&s),
        None,
    )
    .await
    .assert_ok();
    app.post(
        "/api/v1/cycles/2024/transitions",
        Some(&admin),
        json!({ "to": "verifying" }),
    )
    .await
    .assert_ok();
    // The office closed for renovation has no submission: publication waits for it…
    app.post(
        "/api/v1/cycles/2024/transitions",
        Some(&admin),
        json!({ "to": "published" }),
    )
    .await
    .assert_problem(409, "unverified-submissions");
    // …until it is excluded, with a reason, by the office covering it (not another one).
    let path = format!("/api/v1/cycles/2024/sample/{closed}/exclusion");
    app.post(
        &path,
        Some(&jakarta),
        json!({ "reason": "Kantor direnovasi" }),
    )
    .await
    .assert_problem(404, "not-found");
    app.post(&path, Some(&babel), json!({ "reason": "  " }))
        .await
        .assert_problem(422, "validation-error");
    let excluded = app
        .post(
            &path,
            Some(&babel),
            json!({ "reason": "Kantor direnovasi selama masa penilaian" }),
        )
        .await;
    excluded.assert_ok();
    assert_eq!(
        excluded.body["excluded_reason"],
        "Kantor direnovasi selama masa penilaian"
    );
    app.post(&path, Some(&babel), json!({ "reason": "lagi" }))
        .await
        .assert_problem(404, "not-found");
    // It takes no new data.
    app.post(
        "/api/v1/cycles/2024/submissions",
        Some(&admin),
        json!({ "unit_id": closed }),
    )
    .await
    .assert_problem(422, "validation-error");
    app.post(
        "/api/v1/cycles/2024/transitions",
        Some(&admin),
        json!({ "to": "published" }),
    )
    .await
    .assert_ok();
    let units = app.get("/api/v1/cycles/2024/results/units", None).await;
    let scored: Vec<i64> = units.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit_id"].as_i64().unwrap())
        .collect();
    assert_eq!(scored, [assessed]);
    // Published: the sample is frozen.
    app.post(
        &format!("/api/v1/cycles/2024/sample/{assessed}/exclusion"),
        Some(&admin),
        json!({ "reason": "terlambat" }),
    )
    .await
    .assert_problem(409, "results-frozen");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_verified_units_survey_responses_change_only_through_a_correction(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = app.admin.clone();
    let babel = app.token("office", Some("babel")).await;
    let unit = common::sampled_unit(&collecting_2024(&app, &["19.01"]).await, "19.01");
    let responses = format!("/api/v1/cycles/2024/units/{unit}/survey-responses");
    app.post(&responses, Some(&babel), survey(6))
        .await
        .assert_ok();
    let r = app
        .post(
            "/api/v1/cycles/2024/submissions",
            Some(&babel),
            json!({ "unit_id": unit, "values": all_values(3) }),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let s = act(
        &app,
        &format!("/api/v1/submissions/{id}/submit"),
        &babel,
        &etag(&r),
        None,
    )
    .await;
    act(
        &app,
        &format!("/api/v1/submissions/{id}/verify"),
        &admin,
        &etag(&s),
        Some(json!({ "reason": "Satu penelaah" })),
    )
    .await
    .assert_ok();
    let counts = || async { app.get(&responses, Some(&admin)).await.body[0]["counts"].clone() };
    let before = counts().await;

    // Final: an upload is refused, by anyone.
    app.post(&responses, Some(&admin), survey(0))
        .await
        .assert_problem(409, "inputs-final");
    // A correction is checked whole before anything is written: a bad answer is named, and a
    // respondent to strike that does not exist refuses the whole correction.
    let bad = app
        .post(
            "/api/v1/cycles/2024/corrections",
            Some(&admin),
            json!({ "unit_id": unit, "reason": "Wawancara ganda",
                    "survey_responses": [{ "survey": "maladministration_perception",
                        "responses": [{ "respondent": "R-000", "answers": { "undue_delay": 7 } }] }] }),
        )
        .await;
    bad.assert_problem(422, "validation-error");
    assert_eq!(bad.fields(), ["survey_responses[0].responses[0].answers"]);
    app.post(
        "/api/v1/cycles/2024/corrections",
        Some(&admin),
        json!({ "unit_id": unit, "reason": "Wawancara ganda",
                "survey_responses": [{ "survey": "maladministration_perception",
                    "responses": [{ "respondent": "R-000", "answers": { "undue_delay": false, "unofficial_fees": false } }] }],
                "removed_respondents": [{ "survey": "maladministration_perception", "respondent": "R-999" }] }),
    )
    .await
    .assert_problem(422, "validation-error");
    assert_eq!(counts().await, before, "nothing of a refused correction");
    // Without a reason, nothing.
    app.post(
        "/api/v1/cycles/2024/corrections",
        Some(&admin),
        json!({ "unit_id": unit, "reason": " ", "removed_respondents": [{ "survey": "maladministration_perception", "respondent": "R-001" }] }),
    )
    .await
    .assert_problem(422, "validation-error");

    // One answer corrected and one duplicate interview struck: audited with the reason, and the
    // unit's recompute scheduled.
    let done = app
        .post(
            "/api/v1/cycles/2024/corrections",
            Some(&admin),
            json!({ "unit_id": unit, "reason": "Wawancara ganda",
                    "survey_responses": [{ "survey": "maladministration_perception",
                        "responses": [{ "respondent": "R-000", "answers": { "undue_delay": false, "unofficial_fees": false } }] }],
                    "removed_respondents": [{ "survey": "maladministration_perception", "respondent": "R-001" }] }),
        )
        .await;
    done.assert_ok();
    assert_eq!(done.body["responses_changed"], 2, "{}", done.text);
    assert!(done.body["recompute_job"].is_string(), "{}", done.text);
    let after = app.get(&responses, Some(&admin)).await.body;
    assert_eq!(after[0]["respondents"], 29, "{after}");
    assert_ne!(after[0]["counts"], before);
    let trail = app
        .get(
            &format!("/api/v1/audit?object_type=survey_responses&object_id=2024/{unit}"),
            Some(&admin),
        )
        .await;
    let corrected = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "corrected")
        .unwrap_or_else(|| panic!("{}", trail.text))
        .clone();
    assert_eq!(
        corrected["current"]["reason"], "Wawancara ganda",
        "{corrected}"
    );
    assert_eq!(corrected["current"]["removed"], 1, "{corrected}");
    // The job that records the change is queued: the results will reflect it.
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs WHERE job_type = 'recompute' AND status = 'Pending'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(queued >= 1);
}

#[sqlx::test(migrations = "../../migrations")]
async fn hq_follows_collection_office_by_office(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, false).await;
    let progress = app
        .get("/api/v1/cycles/2025/progress", Some(&tokens.admin))
        .await;
    progress.assert_ok();
    assert!(!progress.text.contains("\"value\""), "{}", progress.text);
    assert_eq!(progress.body["state"], "collecting");
    let closes_on: chrono::NaiveDate =
        serde_json::from_value(progress.body["closes_on"].clone()).unwrap();
    assert_eq!(
        progress.body["days_left"],
        (closes_on - chrono::Utc::now().date_naive()).num_days()
    );
    // Every office is listed, HQ's own units (ministries, agencies) last; together they are
    // the whole sample.
    let offices = progress.body["offices"].as_array().unwrap();
    let listed: Vec<Value> = offices.iter().map(|o| o["office"].clone()).collect();
    let known: Vec<String> = sqlx::query_scalar("SELECT code FROM offices ORDER BY code")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expected: Vec<Value> = known.iter().map(|c| json!(c)).collect();
    expected.push(Value::Null);
    assert_eq!(listed, expected);
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.admin))
        .await;
    let sampled: u64 = offices.iter().map(|o| o["sampled"].as_u64().unwrap()).sum();
    assert_eq!(sampled, sample.body.as_array().unwrap().len() as u64);
    // Each office's counts are its provinces' submissions by state, read here independently.
    for o in offices {
        let counts = &o["counts"];
        let total: u64 = counts
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, o["sampled"].as_u64().unwrap(), "{o}");
        let Some(code) = o["office"].as_str() else {
            continue;
        };
        for state in ["draft", "submitted", "returned", "verified"] {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM submissions s JOIN cycle_units cu ON cu.cycle_id = s.cycle_id AND cu.unit_id = s.unit_id
                 JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
                 JOIN office_provinces op ON op.province_code = e.province_code
                 WHERE s.cycle_id = official_cycle(2025) AND op.office_code = $1 AND s.state = $2
                   AND cu.exclusion_reason IS NULL",
            )
            .bind(code)
            .bind(state)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(counts[state].as_i64().unwrap(), n, "{code} {state}");
        }
    }
    let babel = offices.iter().find(|o| o["office"] == "babel").unwrap();
    assert!(babel["counts"]["verified"].as_u64().unwrap() > 0);
    assert!(babel["counts"]["not_started"].as_u64().unwrap() > 0);

    // An office sees its own line only; an assessor is refused.
    let own = app
        .get("/api/v1/cycles/2025/progress", Some(&tokens.office))
        .await;
    own.assert_ok();
    assert_eq!(own.body["offices"], json!([babel]));
    app.get("/api/v1/cycles/2025/progress", Some(&tokens.assessor))
        .await
        .assert_problem(403, "forbidden");
}
