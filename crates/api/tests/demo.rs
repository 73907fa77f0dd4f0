//! The demo dataset loads through the real routes, covers every submission state, and loads once.

mod common;

use common::TestApp;
use kepatuhan_app::config::Settings;
use sqlx::PgPool;

#[sqlx::test(migrations = "../../migrations")]
async fn demo_data_is_a_living_system(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let state = kepatuhan_app::App::new(pool.clone()).unwrap();
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    let tokens = kepatuhan_api::demo::seed_demo(&state, &settings)
        .await
        .unwrap()
        .expect("first load creates tokens");
    assert!(
        kepatuhan_api::demo::seed_demo(&state, &settings)
            .await
            .unwrap()
            .is_none(),
        "loading twice changes nothing"
    );

    let states: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT state FROM submissions ORDER BY state")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(states, ["draft", "returned", "submitted", "verified"]);

    let past = app.get("/api/v1/cycles/2024/results/entities", None).await;
    past.assert_ok();
    assert_eq!(past.body["items"].as_array().unwrap().len(), 7);
    let open = app.get("/api/v1/cycles/2025", None).await;
    open.assert_problem(404, "not-found");
    let cycle = app.get("/api/v1/cycles/2025", Some(&tokens.office)).await;
    assert_eq!(cycle.body["state"], "collecting");
    let results = app
        .get("/api/v1/cycles/2025/results/units", Some(&tokens.office))
        .await;
    results.assert_ok();
    assert!(
        !results.body["items"].as_array().unwrap().is_empty(),
        "verified units have provisional results"
    );
    let mine = app
        .get("/api/v1/cycles/2025/submissions", Some(&tokens.assessor))
        .await;
    assert!(mine.body.as_array().unwrap().len() >= 4);
    let all = app.get("/api/v1/entities", Some(&tokens.admin)).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 7);

    // `seed-demo` adds a cycle assessed in the field and published, whose certificates the
    // worker issues; once.
    let showcase = kepatuhan_api::demo::publish_showcase(&state, &settings)
        .await
        .unwrap()
        .expect("2023 is published");
    assert!(
        kepatuhan_api::demo::publish_showcase(&state, &settings)
            .await
            .unwrap()
            .is_none()
    );
    let published = app.get("/api/v1/cycles/2023/results/entities", None).await;
    published.assert_ok();
    let grades: Vec<&str> = published.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["grade"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        grades.len(),
        4,
        "the Bangka Belitung governments: {grades:?}"
    );
    let job: String = sqlx::query_scalar("SELECT job_type FROM apalis.jobs WHERE id = $1")
        .bind(&showcase.certificates_job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(job, "certificates");
    let eligible: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision
         WHERE r.cycle_id = official_cycle(2023) AND r.award_eligible",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(eligible > 0, "some earn a certificate: {grades:?}");
}
