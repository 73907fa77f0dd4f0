//! Jobs enqueued inside a transaction (as the api and the worker do) are real apalis jobs: an apalis worker on
//! the same queue picks them up and decodes the payload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config, PostgresStorage};
use kepatuhan_app::jobs::{self, Job, Recompute};
use kepatuhan_core::CycleId;
use sqlx::PgPool;

/// Records each job and stops the worker after two.
async fn handle(
    job: Recompute,
    seen: Data<Arc<Mutex<Vec<Recompute>>>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let mut seen = seen.lock().unwrap();
    seen.push(job);
    if seen.len() == 2 {
        worker.stop()?;
    }
    Ok(())
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_apalis_worker_runs_what_the_api_enqueues(pool: PgPool) {
    kepatuhan_app::db::migrate(&pool).await.unwrap();
    let year = CycleId(1);
    let mut tx = pool.begin().await.unwrap();
    let id = jobs::enqueue(&mut tx, &Recompute::unit(year, 42), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A rolled-back transaction leaves no job.
    let mut tx = pool.begin().await.unwrap();
    jobs::enqueue(&mut tx, &Recompute::full(year), None)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 1);

    // The same idempotency key enqueues once.
    let mut tx = pool.begin().await.unwrap();
    let a = jobs::enqueue(&mut tx, &Recompute::full(year), Some("close-2025"))
        .await
        .unwrap();
    let b = jobs::enqueue(&mut tx, &Recompute::full(year), Some("close-2025"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(a, b);

    let seen: Arc<Mutex<Vec<Recompute>>> = Arc::default();
    let storage: PostgresStorage<Recompute> =
        PostgresStorage::new(&pool).with_config(Config::default().queue(Recompute::QUEUE));
    let worker = WorkerBuilder::new("test-recompute")
        .backend(storage)
        .data(seen.clone())
        .build(handle);
    tokio::time::timeout(Duration::from_secs(30), worker.run())
        .await
        .expect("the worker finished both jobs")
        .unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort_by_key(|j| j.unit_id);
    assert_eq!(got, [Recompute::full(year), Recompute::unit(year, 42)]);
    let status: String = sqlx::query_scalar("SELECT status FROM apalis.jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "Done");
}
