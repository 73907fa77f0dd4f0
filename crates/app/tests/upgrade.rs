//! Upgrading a database that holds data: the migration that gives cycles an identity of their
//! own keeps every row attached to its cycle and rewrites the jobs queued before it.

use kepatuhan_app::db::MIGRATOR;
use kepatuhan_app::jobs::{self, Job, Recompute};
use serde::Serialize;
use sqlx::PgPool;

/// The last migration before cycles had ids.
const BEFORE_CYCLE_IDS: i64 = 20_261_201_000_013;

/// A recompute job as it was queued before cycles had ids: it named its cycle by year.
#[derive(Serialize)]
struct RecomputeByYear {
    year: u16,
    unit_id: Option<i64>,
}

impl Job for RecomputeByYear {
    const QUEUE: &'static str = Recompute::QUEUE;
}

#[sqlx::test(migrations = false)]
async fn an_upgrade_keys_every_row_by_its_cycle_and_keeps_queued_jobs(pool: PgPool) {
    MIGRATOR.run_to(BEFORE_CYCLE_IDS, &pool).await.unwrap();
    apalis_postgres::PostgresStorage::<()>::setup(&pool)
        .await
        .unwrap();
    // Two years of data in the old shape.
    sqlx::raw_sql(
        "INSERT INTO provinces (code, name) VALUES ('19', 'Kepulauan Bangka Belitung');
         INSERT INTO entities (code, kind, name, province_code) VALUES ('19.04', 'regency', 'Pemerintah Kabupaten Bangka Tengah', '19');
         INSERT INTO units (entity_id, name, kind) SELECT id, 'Dinas Sosial', 'dinsos' FROM entities;
         INSERT INTO actors (name, role) VALUES ('HQ', 'admin');
         INSERT INTO cycles (year, methodology_code, state) VALUES (2024, 'ori-2024', 'published'), (2025, 'ori-2025', 'collecting');
         INSERT INTO cycle_units (cycle_year, unit_id) SELECT y, id FROM units, (VALUES (2024), (2025)) v(y);
         INSERT INTO submissions (cycle_year, unit_id, created_by) SELECT y, u.id, a.id FROM units u, actors a, (VALUES (2024), (2025)) v(y);
         INSERT INTO survey_responses (cycle_year, unit_id, survey_code, respondent, answers) SELECT 2025, id, 'maladministrasi', 'R1', '{}' FROM units;
         INSERT INTO unit_results (cycle_year, revision, unit_id, score, grade_code, input_revision) SELECT 2024, 1, id, 88.5, 'A', 0 FROM units;
         INSERT INTO entity_results (cycle_year, revision, entity_id, score, grade_code, grade_label, award_eligible, national_rank, national_of, units_scored, input_revision)
             SELECT 2024, 1, id, 88.5, 'A', 'Kualitas Tertinggi', true, 1, 1, 1, 0 FROM entities;
         INSERT INTO entity_follow_up (cycle_year, entity_id, findings, followed_up, updated_by) SELECT 2024, e.id, 2, 2, a.id FROM entities e, actors a;
         INSERT INTO certificates (code, cycle_year, revision, entity_id, recipient, score, grade_code, grade_label, sha256, object_key, size_bytes)
             SELECT 'ABCD-EFGH', 2024, 1, id, 'Pemerintah Kabupaten Bangka Tengah', 88.5, 'A', 'Kualitas Tertinggi', sha256('x'), 'certificates/2024/ABCD-EFGH.pdf', 1 FROM entities;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let queued = jobs::enqueue(
        &mut tx,
        &RecomputeByYear {
            year: 2025,
            unit_id: Some(7),
        },
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    MIGRATOR.run(&pool).await.unwrap();

    let ids: Vec<(i32, i64)> =
        sqlx::query_as("SELECT year, id FROM cycles WHERE kind = 'official' ORDER BY year")
            .fetch_all(&pool)
            .await
            .unwrap();
    let (y2024, y2025) = (ids[0].1, ids[1].1);
    assert_ne!(y2024, y2025);
    let keyed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'cycle_units', cycle_id FROM cycle_units
         UNION ALL SELECT 'submissions', cycle_id FROM submissions
         UNION ALL SELECT 'survey_responses', cycle_id FROM survey_responses
         UNION ALL SELECT 'unit_results', cycle_id FROM unit_results
         UNION ALL SELECT 'entity_results', cycle_id FROM entity_results
         UNION ALL SELECT 'findings', cycle_id FROM findings
         UNION ALL SELECT 'certificates', cycle_id FROM certificates
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, i64)> = [
        ("certificates", y2024),
        ("cycle_units", y2024),
        ("cycle_units", y2025),
        ("entity_results", y2024),
        ("findings", y2024),
        ("findings", y2024),
        ("submissions", y2024),
        ("submissions", y2025),
        ("survey_responses", y2025),
        ("unit_results", y2024),
    ]
    .into_iter()
    .map(|(t, id)| (t.to_owned(), id))
    .collect();
    assert_eq!(keyed, expected);
    // The two follow-up counts became the findings register: two findings, both accepted.
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM findings WHERE summary ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(statuses, ["accepted", "accepted"]);
    let official: i64 = sqlx::query_scalar("SELECT official_cycle(2025)")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(official, y2025);

    // The queued job names its cycle by id, and the worker's payload type reads it.
    let payload: Vec<u8> = sqlx::query_scalar("SELECT job FROM apalis.jobs WHERE id = $1")
        .bind(&queued)
        .fetch_one(&pool)
        .await
        .unwrap();
    let job: Recompute = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        (job.cycle_id.get(), job.unit_id),
        (y2025, Some(7)),
        "{}",
        String::from_utf8_lossy(&payload)
    );

    // A second official cycle of a year is refused; an unofficial one beside it is not.
    let second =
        sqlx::query("INSERT INTO cycles (year, methodology_code) VALUES (2025, 'ori-2025')")
            .execute(&pool)
            .await;
    assert!(second.is_err());
    sqlx::query(
        "INSERT INTO cycles (year, methodology_code, kind, entity_id, name)
         SELECT 2025, 'ori-2025', 'self_assessment', id, 'Penilaian mandiri' FROM entities",
    )
    .execute(&pool)
    .await
    .unwrap();
}
