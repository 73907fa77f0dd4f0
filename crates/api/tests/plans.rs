//! A government reads its own entity: its collection progress (never values), and, once results
//! are published, what to fix to reach the next grade and what other values would have given.

mod common;

use common::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn a_government_plans_its_next_grade_and_checks_it_by_simulation(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, true).await;
    // The lowest unit of the 2023 results and its entity.
    let units = app
        .get("/api/v1/cycles/2023/results/units?limit=100", None)
        .await;
    units.assert_ok();
    let lowest = units.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .min_by(|a, b| {
            let score = |v: &Value| v["score"].as_str().unwrap().parse::<f64>().unwrap();
            score(a).total_cmp(&score(b))
        })
        .unwrap()
        .clone();
    let (unit, entity) = (
        lowest["unit_id"].as_i64().unwrap(),
        lowest["entity_code"].as_str().unwrap().to_owned(),
    );
    let government = app.government_token(&entity).await;
    let me = Some(government.as_str());

    // The unit's plan to its next grade.
    let plan = app
        .get(
            &format!("/api/v1/cycles/2023/results/units/{unit}/plan"),
            me,
        )
        .await;
    plan.assert_ok();
    assert_eq!(plan.body["current"], lowest["score"], "{}", plan.text);
    assert_eq!(plan.body["outcome"], "reachable", "{}", plan.text);
    let steps = plan.body["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    let effort: u64 = steps.iter().map(|s| s["effort"].as_u64().unwrap()).sum();
    assert_eq!(plan.body["effort"].as_u64(), Some(effort));
    let reached: f64 = plan.body["published"].as_str().unwrap().parse().unwrap();
    let lower: f64 = plan.body["target_lower"].as_str().unwrap().parse().unwrap();
    assert!(reached >= lower, "{}", plan.text);

    // Simulating the plan's values gives exactly the plan's score, through another path.
    let values: Vec<Value> = steps
        .iter()
        .map(|s| json!({ "indicator": s["indicator"], "value": s["to"] }))
        .collect();
    let simulated = app
        .post(
            &format!("/api/v1/cycles/2023/results/units/{unit}/simulate"),
            me,
            json!({ "values": values }),
        )
        .await;
    simulated.assert_ok();
    assert_eq!(
        simulated.body["unit_score"], plan.body["published"],
        "{}",
        simulated.text
    );
    assert_eq!(simulated.body["unit_score_before"], plan.body["current"]);
    assert_eq!(simulated.body["unit_grade"]["code"], plan.body["grade"]);
    let entity_before: f64 = simulated.body["entity_score_before"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let entity_after: f64 = simulated.body["entity_score"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(entity_after > entity_before, "{}", simulated.text);
    assert!(simulated.body["national_rank"]["rank"].as_i64().unwrap() >= 1);
    // Nothing was stored: the published result is unchanged.
    let after = app
        .get(&format!("/api/v1/cycles/2023/results/units/{unit}"), None)
        .await;
    assert_eq!(after.body["score"], lowest["score"]);

    // The entity's plan reaches the grade it names, at a stated effort.
    let entity_plan = app
        .get(
            &format!("/api/v1/cycles/2023/results/entities/{entity}/plan?grade=A"),
            me,
        )
        .await;
    entity_plan.assert_ok();
    if entity_plan.body["reachable"] == true {
        let published: f64 = entity_plan.body["published"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(published >= 88.0, "{}", entity_plan.text);
    }

    // Bad input: an unknown grade, a value off the scale.
    app.get(
        &format!("/api/v1/cycles/2023/results/units/{unit}/plan?grade=Z"),
        me,
    )
    .await
    .assert_problem(422, "validation-error");
    let off_scale = app
        .post(
            &format!("/api/v1/cycles/2023/results/units/{unit}/simulate"),
            me,
            json!({ "values": [{ "indicator": steps[0]["indicator"], "value": 9 }] }),
        )
        .await;
    off_scale.assert_problem(422, "validation-error");
    assert_eq!(off_scale.fields(), ["values[0]"]);

    // Another government sees none of it; the public and assessors may not plan.
    let other_code = if entity == "19.01" { "19.71" } else { "19.01" };
    let other = app.government_token(other_code).await;
    app.get(
        &format!("/api/v1/cycles/2023/results/units/{unit}/plan"),
        Some(&other),
    )
    .await
    .assert_problem(404, "not-found");
    app.get(
        &format!("/api/v1/cycles/2023/results/entities/{entity}/plan"),
        Some(&other),
    )
    .await
    .assert_problem(404, "not-found");
    app.get(
        &format!("/api/v1/cycles/2023/results/units/{unit}/plan"),
        None,
    )
    .await
    .assert_problem(401, "unauthenticated");
    app.get(
        &format!("/api/v1/cycles/2023/results/units/{unit}/plan"),
        Some(&tokens.assessor),
    )
    .await
    .assert_problem(403, "forbidden");
    // The office of the province plans too.
    app.get(
        &format!("/api/v1/cycles/2023/results/units/{unit}/plan"),
        Some(&tokens.office),
    )
    .await
    .assert_ok();
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_government_follows_its_collection_but_never_sees_values_before_publication(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, true).await;
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.admin))
        .await;
    let entity = sample.body[0]["entity_code"].as_str().unwrap().to_owned();
    let sampled = sample
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["entity_code"] == entity.as_str())
        .count();
    let government = app.government_token(&entity).await;
    let me = Some(government.as_str());

    let progress = app
        .get(
            &format!("/api/v1/cycles/2025/entities/{entity}/progress"),
            me,
        )
        .await;
    progress.assert_ok();
    assert_eq!(progress.body["state"], "collecting");
    let units = progress.body["units"].as_array().unwrap();
    assert_eq!(units.len(), sampled, "{}", progress.text);
    let counted: u64 = progress.body["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, u64::try_from(sampled).unwrap());
    assert!(
        !progress.text.contains("\"value\""),
        "no values: {}",
        progress.text
    );

    // What a government may not read before publication.
    app.get("/api/v1/cycles/2025/results/units", me)
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/cycles/2025/submissions", me)
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/cycles/2025/sample", me)
        .await
        .assert_problem(403, "forbidden");
    // Its own entity, not another's.
    app.get(&format!("/api/v1/entities/{entity}"), me)
        .await
        .assert_ok();
    app.get("/api/v1/entities/31.71/units", me)
        .await
        .assert_problem(404, "not-found");
    // Its own webhooks: for its entity, not another's or an office's.
    let hook = app
        .post(
            "/api/v1/webhooks",
            me,
            json!({ "url": "https://hooks.example.org/pemda", "entity_code": entity }),
        )
        .await;
    assert_eq!(hook.status.as_u16(), 201, "{}", hook.text);
    app.post(
        "/api/v1/webhooks",
        me,
        json!({ "url": "https://hooks.example.org/pemda", "entity_code": "31.71" }),
    )
    .await
    .assert_problem(422, "validation-error");
    app.post(
        "/api/v1/webhooks",
        me,
        json!({ "url": "https://hooks.example.org/pemda", "office": "babel" }),
    )
    .await
    .assert_problem(422, "validation-error");
    app.post(
        "/api/v1/webhooks",
        Some(&tokens.office),
        json!({ "url": "https://hooks.example.org/perwakilan", "office": "babel" }),
    )
    .await
    .assert_ok();
    let hooks = app.get("/api/v1/webhooks", me).await;
    assert_eq!(hooks.body.as_array().unwrap().len(), 1, "{}", hooks.text);
    // Its certificates of the published cycle, and only its own.
    let certificates = app.get("/api/v1/cycles/2023/certificates", me).await;
    certificates.assert_ok();
    assert!(
        certificates
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["entity_code"] == entity.as_str()),
        "{}",
        certificates.text
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_government_token_is_created_for_an_existing_entity_only(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let none = kepatuhan_api::auth::create_government_with_token(&pool, "x", "99.99", None)
        .await
        .unwrap();
    assert!(none.is_none());
    let token = app.government_token("19.01").await;
    let actor = kepatuhan_api::auth::actor_for_token(&pool, &token)
        .await
        .unwrap();
    assert!(matches!(
        actor,
        kepatuhan_api::auth::Actor::Government { ref entity, .. } if entity == "19.01"
    ));
}
