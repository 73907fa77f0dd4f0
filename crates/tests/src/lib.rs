//! End-to-end tests of kepatuhan that need the api and the worker together: jobs enqueued by the
//! api and run by the worker, certificates rendered and verified, webhooks delivered, traces
//! continued from a request into its jobs. The tests are under `tests/`; this library holds what
//! several of them share.

use kepatuhan_core::CycleId;
use sqlx::PgPool;

/// The id of the official cycle of `year`.
///
/// # Panics
/// When there is no such cycle.
pub async fn official_cycle(pool: &PgPool, year: i32) -> CycleId {
    sqlx::query_scalar("SELECT id FROM cycles WHERE kind = 'official' AND year = $1")
        .bind(year)
        .fetch_one(pool)
        .await
        .map_or_else(|e| panic!("no official cycle {year}: {e}"), CycleId)
}

/// Makes the demo's 2025 cycle publishable, behind the api's back (as the owner role): every
/// sampled unit without a submission leaves the sample, every submission is verified with every
/// answer at the top of its scale (so every recipient earns an award under ori-2025), and the
/// input revision moves so publishing recomputes from them.
///
/// # Panics
/// When the database refuses a statement.
pub async fn make_2025_publishable(pool: &PgPool) {
    sqlx::query("DELETE FROM cycle_units cu WHERE cycle_id = official_cycle(2025) AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.cycle_id = official_cycle(2025) AND s.unit_id = cu.unit_id)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE submissions SET state = 'verified' WHERE cycle_id = official_cycle(2025)")
        .execute(pool)
        .await
        .unwrap();
    let m = kepatuhan_core::methodology::builtin::by_code("ori-2025").unwrap();
    for id in m.indicator_ids() {
        let indicator = m.indicator(id);
        let top = indicator
            .scale
            .levels
            .iter()
            .map(|l| l.value)
            .max()
            .unwrap();
        sqlx::query(
            "INSERT INTO submission_values (submission_id, indicator_code, value, not_applicable)
             SELECT s.id, $2, $1, false FROM submissions s WHERE s.cycle_id = official_cycle(2025)
             ON CONFLICT (submission_id, indicator_code) DO UPDATE SET value = excluded.value, not_applicable = false",
        )
        .bind(i16::from(top))
        .bind(&indicator.code)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE cycles SET input_revision = input_revision + 1 WHERE year = 2025")
        .execute(pool)
        .await
        .unwrap();
}

/// Adds `n` regencies to the demo's province 19, each with two units sampled in 2025 under the
/// Bangka Belitung office, the survey responses of the demo's first surveyed unit, and a draft
/// submission (by the first actor), so that a publication has
/// a few hundred recipients. Call before [`make_2025_publishable`].
///
/// # Panics
/// When the database refuses a statement.
pub async fn add_regencies(pool: &PgPool, n: i32) {
    sqlx::query(
        "WITH e AS (
             INSERT INTO entities (code, kind, name, province_code)
             SELECT '19.' || (500 + i), 'regency', 'Pemerintah Kabupaten Uji ' || i, '19'
             FROM generate_series(1, $1) i RETURNING id),
         u AS (
             INSERT INTO units (entity_id, name, kind)
             SELECT e.id, k.name, k.kind FROM e,
                 (VALUES ('Dinas Kependudukan dan Pencatatan Sipil', 'dukcapil'),
                         ('Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu', 'dpmptsp')) k(name, kind)
             RETURNING id),
         s AS (
             INSERT INTO cycle_units (cycle_id, unit_id, office_code) SELECT official_cycle(2025), id, 'babel' FROM u RETURNING unit_id),
         r AS (
             INSERT INTO survey_responses (cycle_id, unit_id, survey_code, respondent, answers)
             SELECT official_cycle(2025), s.unit_id, x.survey_code, x.respondent, x.answers FROM s,
                 (SELECT survey_code, respondent, answers FROM survey_responses
                  WHERE cycle_id = official_cycle(2025) AND unit_id = (SELECT min(unit_id) FROM survey_responses WHERE cycle_id = official_cycle(2025))) x)
         INSERT INTO submissions (cycle_id, unit_id, created_by)
         SELECT official_cycle(2025), unit_id, (SELECT min(id) FROM actors) FROM s",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

/// Polls `sql` (a boolean) every 100 ms until it holds; after `limit`, panics naming the
/// condition and what `context` says (a process's log, say).
///
/// # Panics
/// After `limit`, or when the database refuses the query.
pub async fn until(
    pool: &PgPool,
    sql: &str,
    limit: std::time::Duration,
    context: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {sql}\n{}",
            context()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until no job is pending, queued or running (nor, with `failed`, failed and waiting for
/// its retry); panics after a minute.
///
/// # Panics
/// After a minute, or when the database refuses the query.
pub async fn until_jobs_done(pool: &PgPool, failed: bool) {
    let statuses = if failed {
        "'Pending', 'Queued', 'Running', 'Failed'"
    } else {
        "'Pending', 'Queued', 'Running'"
    };
    until(
        pool,
        &format!("SELECT NOT EXISTS (SELECT 1 FROM apalis.jobs WHERE status IN ({statuses}))"),
        std::time::Duration::from_mins(1),
        String::new,
    )
    .await;
}
