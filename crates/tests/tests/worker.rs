//! The worker against real Postgres: jobs from the API are run, results are right, idempotent and
//! order-independent, failures retry then die visibly, closed windows are noticed once.

use std::time::Duration;

use kepatuhan_api::demo;
use kepatuhan_app::App;
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::migrate;
use kepatuhan_app::jobs::{self, Recompute};
use kepatuhan_app::recompute::{JobOutcome, Trigger, recompute_for_job};
use kepatuhan_core::{CycleId, CycleYear};
use kepatuhan_worker::{WorkerConfig, run, schedule};
use sqlx::PgPool;

type Snapshot = (
    Vec<(i64, String, String)>,
    Vec<(i64, String, String, i32, Option<i32>)>,
);

async fn snapshot(pool: &PgPool, year: i32) -> Snapshot {
    let revision: i32 = sqlx::query_scalar("SELECT results_revision FROM cycles WHERE year = $1")
        .bind(year)
        .fetch_one(pool)
        .await
        .unwrap();
    let units = sqlx::query_as("SELECT unit_id, score::text, grade_code FROM unit_results WHERE cycle_id = official_cycle($1) AND revision = $2 ORDER BY unit_id")
        .bind(year)
        .bind(revision)
        .fetch_all(pool)
        .await
        .unwrap();
    let entities = sqlx::query_as(
        "SELECT entity_id, score::text, grade_code, national_rank, provincial_rank FROM entity_results WHERE cycle_id = official_cycle($1) AND revision = $2 ORDER BY entity_id",
    )
    .bind(year)
    .bind(revision)
    .fetch_all(pool)
    .await
    .unwrap();
    (units, entities)
}

async fn setup(pool: &PgPool) -> App {
    migrate(pool).await.unwrap();
    let state = App::new(pool.clone()).unwrap();
    demo::seed_demo(&state, &Settings::from_lookup(|_| None).unwrap())
        .await
        .unwrap();
    state
}

fn fast() -> WorkerConfig {
    WorkerConfig {
        backoff_base: Duration::ZERO,
        schedule_every: Duration::from_millis(200),
        ..WorkerConfig::default()
    }
}

/// Waits until `done` (a SQL boolean) holds; fails the test when it does not within 30 s.
async fn wait_for(pool: &PgPool, done: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(done.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after 30 s waiting for: {done}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a worker until `done` (a SQL boolean) holds (failing the test after 30 s), then shuts it
/// down gracefully: the jobs it is running finish before it returns.
async fn drain_until(state: &App, done: &str) {
    drain_until_with(state, fast(), done).await;
}

/// [`drain_until`] with a worker of this configuration.
async fn drain_until_with(state: &App, config: WorkerConfig, done: &str) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(state.clone(), config, async move {
        let _ = rx.await;
    }));
    wait_for(&state.pool, done).await;
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .expect("the worker stops on shutdown")
        .unwrap()
        .unwrap();
}

/// Runs a worker until every recompute job has been picked up, then stops it gracefully.
async fn drain(state: &App) {
    drain_until(state, "SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = 'recompute' AND status IN ('Pending', 'Queued'))").await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn verified_submissions_become_results_through_the_worker(pool: PgPool) {
    let state = setup(&pool).await;
    // The demo computed results directly: that is the full recompute.
    let full = snapshot(&pool, 2025).await;
    assert!(!full.0.is_empty());
    sqlx::query("DELETE FROM unit_results WHERE cycle_id = official_cycle(2025)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM entity_results WHERE cycle_id = official_cycle(2025)")
        .execute(&pool)
        .await
        .unwrap();
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE job_type = 'recompute'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(pending >= 2, "each verification enqueued a job");

    // The incremental jobs the verifications enqueued give exactly the full recompute's results.
    drain(&state).await;
    assert_eq!(snapshot(&pool, 2025).await, full);
    let done: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM apalis.jobs WHERE job_type = 'recompute'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(done, ["Done"]);

    // Running the jobs again, in the other order, changes nothing and duplicates no row.
    let year = kepatuhan_tests::official_cycle(&pool, 2025).await;
    let mut tx = pool.begin().await.unwrap();
    jobs::enqueue(&mut tx, &Recompute::full(year), None)
        .await
        .unwrap();
    jobs::enqueue(&mut tx, &Recompute::unit(year, 1), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    drain(&state).await;
    assert_eq!(snapshot(&pool, 2025).await, full);
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unit_results WHERE cycle_id = official_cycle(2025)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(usize::try_from(rows).unwrap(), full.0.len());
    let stamped: i64 = sqlx::query_scalar("SELECT count(*) FROM unit_results WHERE cycle_id = official_cycle(2025) AND input_revision = (SELECT input_revision FROM cycles WHERE year = 2025)")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        stamped, rows,
        "every row says which input revision it reflects"
    );
}

/// Enqueues a recompute of a cycle that does not exist: every attempt fails.
async fn enqueue_doomed(pool: &PgPool) -> String {
    let mut tx = pool.begin().await.unwrap();
    let id = jobs::enqueue(&mut tx, &Recompute::full(CycleId(9_999)), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_failing_job_retries_then_dies_visibly_and_can_be_retried(pool: PgPool) {
    let state = setup(&pool).await;
    let id = enqueue_doomed(&pool).await;
    // One attempt allowed: the first failure makes it dead. (Jobs with attempts left are pushed
    // back by the retry policy, tested in `a_failed_attempt_is_retried_later`.)
    sqlx::query("UPDATE apalis.jobs SET max_attempts = 1 WHERE id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    drain_until(
        &state,
        &format!("SELECT status = 'Failed' FROM apalis.jobs WHERE id = '{id}'"),
    )
    .await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM apalis.jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), attempts),
        ("Failed", 1),
        "failed with no attempt left: dead"
    );

    // Visible and retryable through the API.
    let settings =
        Settings::from_lookup(|k| (k == "KEPATUHAN_PUBLIC_CACHE_MS").then(|| "0".to_owned()))
            .unwrap();
    let app = kepatuhan_api::build(state.clone(), &settings);
    let (_, admin) = kepatuhan_api::auth::create_actor_with_token(&pool, "ops", "admin", None)
        .await
        .unwrap();
    let call = |method: &'static str, path: String| {
        let app = app.clone();
        let token = admin.secret.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        }
    };
    let job = call("GET", format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["dead"], true);
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("no cycle #9999"),
        "{job}"
    );
    let dead = call("GET", "/api/v1/jobs?status=dead".to_owned()).await;
    assert_eq!(dead.as_array().unwrap().len(), 1);
    let retried = call("POST", format!("/api/v1/jobs/{id}/retry")).await;
    assert_eq!(
        (
            retried["status"].as_str(),
            retried["attempts"].as_i64(),
            retried["dead"].as_bool()
        ),
        (Some("Pending"), Some(0), Some(false))
    );
    let trail = call(
        "GET",
        format!("/api/v1/audit?object_type=job&object_id={id}"),
    )
    .await;
    assert_eq!(trail[0]["action"], "retried", "{trail}");
    assert!(
        trail[0]["current"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no cycle #9999"),
        "{trail}"
    );
    let again = call("POST", format!("/api/v1/jobs/{id}/retry")).await;
    assert_eq!(
        again["type"].as_str().map(|t| t.ends_with("/job-not-dead")),
        Some(true)
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_failed_attempt_is_retried_later(pool: PgPool) {
    migrate(&pool).await.unwrap();
    let app = App::new(pool.clone()).unwrap();
    let id = enqueue_doomed(&pool).await;
    // The real handler fails (no cycle #9999) and the common retry policy pushes the next attempt
    // back by the backoff: 40 s for the first retry.
    let config = WorkerConfig {
        backoff_base: Duration::from_secs(40),
        ..fast()
    };
    drain_until_with(
        &app,
        config,
        &format!("SELECT attempts >= 1 AND status = 'Failed' FROM apalis.jobs WHERE id = '{id}'"),
    )
    .await;
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM run_at - now())::float8 FROM apalis.jobs WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((20.0..=40.0).contains(&wait), "next attempt in {wait} s");
}

#[test]
fn backoff_doubles_up_to_an_hour() {
    let base = Duration::from_secs(5);
    let delays: Vec<u64> = (1..=4)
        .map(|a| kepatuhan_worker::retry::backoff(base, a).as_secs())
        .collect();
    assert_eq!(delays, [5, 10, 20, 40]);
    assert_eq!(
        kepatuhan_worker::retry::backoff(base, 30),
        Duration::from_hours(1)
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_closed_window_is_noticed_once(pool: PgPool) {
    let state = setup(&pool).await;
    sqlx::query("UPDATE cycles SET closes_on = current_date WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        schedule::enqueue_closed_windows(&state)
            .await
            .unwrap()
            .is_empty(),
        "a window closing today is still open"
    );
    sqlx::query("UPDATE cycles SET closes_on = current_date - 1 WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    let first = schedule::enqueue_closed_windows(&state).await.unwrap();
    let second = schedule::enqueue_closed_windows(&state).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first, second, "the same job, not a second one");
}

#[sqlx::test(migrations = "../../migrations")]
async fn published_results_change_only_through_a_new_revision(pool: PgPool) {
    let state = setup(&pool).await;
    let year = CycleYear::new(2025).unwrap();
    sqlx::query("UPDATE cycles SET state = 'published', published_at = now() WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    let before = snapshot(&pool, 2025).await;
    assert_eq!(
        recompute_for_job(&state, year.into(), Trigger::Full)
            .await
            .unwrap(),
        JobOutcome::Unchanged { revision: 1 }
    );
    assert_eq!(snapshot(&pool, 2025).await, before);
    // A verified value changes behind the published results (e.g. a data repair).
    sqlx::query(
        "UPDATE submission_values SET value = 0 WHERE submission_id = (SELECT min(id) FROM submissions WHERE cycle_id = official_cycle(2025) AND state = 'verified')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let outcome = recompute_for_job(&state, year.into(), Trigger::Full)
        .await
        .unwrap();
    assert!(
        matches!(outcome, JobOutcome::NewRevision(s) if s.revision == 2),
        "{outcome:?}"
    );
    assert_ne!(snapshot(&pool, 2025).await, before);
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unit_results WHERE cycle_id = official_cycle(2025) AND revision = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        usize::try_from(kept).unwrap(),
        before.0.len(),
        "the published revision is kept"
    );
}

/// A verification's job whose input revision is unknown (as queued before a burst).
const BURST: Trigger = Trigger::Unit {
    unit_id: 1,
    input_revision: None,
};

#[sqlx::test(migrations = "../../migrations")]
async fn a_burst_of_verifications_costs_one_recompute(pool: PgPool) {
    let state = setup(&pool).await;
    let year = CycleYear::new(2025).unwrap();
    // A verification arrives: the first job of the burst computes from every input so far.
    sqlx::query("UPDATE cycles SET input_revision = input_revision + 1 WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        recompute_for_job(&state, year.into(), BURST).await.unwrap(),
        JobOutcome::Recomputed(_)
    ));
    let computed_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT max(computed_at) FROM unit_results WHERE cycle_id = official_cycle(2025)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // The burst's other jobs find the results current and write nothing.
    assert_eq!(
        recompute_for_job(&state, year.into(), BURST).await.unwrap(),
        JobOutcome::Unchanged { revision: 1 }
    );
    let after: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT max(computed_at) FROM unit_results WHERE cycle_id = official_cycle(2025)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(after, computed_at);
    // An explicit full recompute always runs; new input makes the next burst job run too.
    assert!(matches!(
        recompute_for_job(&state, year.into(), Trigger::Full)
            .await
            .unwrap(),
        JobOutcome::Recomputed(_)
    ));
    sqlx::query("UPDATE cycles SET input_revision = input_revision + 1 WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        recompute_for_job(&state, year.into(), BURST).await.unwrap(),
        JobOutcome::Recomputed(_)
    ));
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_incremental_recompute_writes_what_a_full_one_would(pool: PgPool) {
    let state = setup(&pool).await;
    let year = CycleYear::new(2025).unwrap();
    recompute_for_job(&state, year.into(), Trigger::Full)
        .await
        .unwrap();
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unit_results WHERE cycle_id = official_cycle(2025)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // Verify the demo's submitted submissions one at a time, as offices do, each followed by its
    // job; after each, the stored results must equal a full recompute's.
    let waiting: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, unit_id FROM submissions WHERE cycle_id = official_cycle(2025) AND state = 'submitted' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!waiting.is_empty());
    for (id, unit_id) in waiting {
        sqlx::query("UPDATE submissions SET state = 'verified', verified_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        let revision: i64 = sqlx::query_scalar(
            "UPDATE cycles SET input_revision = input_revision + 1 WHERE year = 2025 RETURNING input_revision",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let outcome = recompute_for_job(
            &state,
            year.into(),
            Trigger::Unit {
                unit_id,
                input_revision: Some(revision),
            },
        )
        .await
        .unwrap();
        let JobOutcome::Recomputed(summary) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(summary.entities_scored, 1, "only the unit's entity");
        assert!(
            i64::try_from(summary.units_scored).unwrap() < total,
            "only the entity's units: {summary:?}"
        );
        let incremental = snapshot(&pool, 2025).await;
        recompute_for_job(&state, year.into(), Trigger::Full)
            .await
            .unwrap();
        assert_eq!(
            snapshot(&pool, 2025).await,
            incremental,
            "after verifying submission {id}"
        );
        let current: bool = sqlx::query_scalar(
            "SELECT results_input_revision = input_revision FROM cycles WHERE year = 2025",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(current);
    }
    // A job that finds other changes since the stored results falls back to a full recompute.
    sqlx::query("UPDATE cycles SET input_revision = input_revision + 2 WHERE year = 2025")
        .execute(&pool)
        .await
        .unwrap();
    let outcome = recompute_for_job(
        &state,
        year.into(),
        Trigger::Unit {
            unit_id: 1,
            input_revision: Some(0),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, JobOutcome::Recomputed(s) if i64::try_from(s.units_scored).unwrap() >= total),
        "{outcome:?}"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_worker_exports_queue_depth_and_certificates_by_status(pool: PgPool) {
    migrate(&pool).await.unwrap();
    let app = App::new(pool.clone()).unwrap();
    enqueue_doomed(&pool).await;
    schedule::refresh_gauges(&app).await.unwrap();
    let text = kepatuhan_app::metrics::handle().render();
    assert!(
        text.contains(r#"kepatuhan_jobs{queue="recompute",status="Pending"} 1"#),
        "{text}"
    );
}

/// Moves the official 2025 cycle's input revision, as every change of its inputs does.
async fn bump_inputs(pool: &PgPool) {
    sqlx::query(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE id = official_cycle(2025)",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The official 2025 cycle's unit rows: unit, score, breakdown, input revision and time written.
async fn unit_rows(pool: &PgPool) -> Vec<(i64, String, String, i64, String)> {
    sqlx::query_as(
        "SELECT unit_id, score::text, breakdown::text, input_revision, computed_at::text
         FROM unit_results WHERE cycle_id = official_cycle(2025) ORDER BY unit_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_full_recompute_rewrites_only_what_changed_and_drops_units_no_longer_scored(
    pool: PgPool,
) {
    let state = setup(&pool).await;
    let year = CycleYear::new(2025).unwrap();
    let full = || recompute_for_job(&state, year.into(), Trigger::Full);
    full().await.unwrap();
    let before = unit_rows(&pool).await;
    assert!(before.len() > 2);

    // A verified unit leaves the sample: the next full recompute drops its row, and leaves the
    // others untouched (same time written, same input revision).
    let gone = before[0].0;
    sqlx::query(
        "UPDATE cycle_units SET excluded_at = now(), exclusion_reason = 'uji' WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(gone)
    .execute(&pool)
    .await
    .unwrap();
    bump_inputs(&pool).await;
    full().await.unwrap();
    assert_eq!(
        unit_rows(&pool).await,
        before[1..],
        "only the excluded unit's row went"
    );

    // One unit's verified value changes: only its row is written again, with the new input
    // revision.
    let changed = before[1].0;
    let updated = sqlx::query(
        "UPDATE submission_values v SET value = CASE WHEN v.value = 0 THEN 1 ELSE 0 END
         WHERE v.submission_id = (SELECT id FROM submissions WHERE cycle_id = official_cycle(2025) AND unit_id = $1)
           AND v.indicator_code = (SELECT min(w.indicator_code) FROM submission_values w
                                   WHERE w.submission_id = v.submission_id AND w.value IS NOT NULL AND NOT w.not_applicable)",
    )
    .bind(changed)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    bump_inputs(&pool).await;
    full().await.unwrap();
    let after = unit_rows(&pool).await;
    let revision: i64 =
        sqlx::query_scalar("SELECT input_revision FROM cycles WHERE id = official_cycle(2025)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(after[0].0, changed);
    assert_ne!(
        after[0].2, before[1].2,
        "the changed unit's breakdown is new"
    );
    assert_eq!(after[0].3, revision);
    assert_ne!(after[0].4, before[1].4);
    assert_eq!(after[1..], before[2..], "the other rows are untouched");

    // A row without a digest (written before digests were kept) is written again, unchanged.
    let undigested = before[2].0;
    sqlx::query(
        "UPDATE unit_results SET digest = NULL WHERE cycle_id = official_cycle(2025) AND unit_id = $1",
    )
    .bind(undigested)
    .execute(&pool)
    .await
    .unwrap();
    full().await.unwrap();
    let again = unit_rows(&pool).await;
    assert_eq!(again[1].0, undigested);
    assert_eq!((&again[1].1, &again[1].2), (&before[2].1, &before[2].2));
    assert_ne!(again[1].4, before[2].4, "written again");
    assert_eq!(again[2..], before[3..]);
}
