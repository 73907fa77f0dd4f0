//! The connection pool under cancellation: a request or job whose future is dropped while its
//! `BEGIN` is in flight must not leave the connection inside a transaction for the next borrower
//! (see vendor/README.md). Every write made after such a cancellation must be committed.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrations = false)]
async fn a_cancelled_begin_never_swallows_later_writes(
    options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // One connection, so every step reuses the connection the cancelled `BEGIN` ran on.
    let pool: PgPool = options
        .max_connections(1)
        .connect_with(connect.clone())
        .await
        .unwrap();
    let observer = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE writes (n integer NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();

    let mut cancelled = 0;
    for n in 0..400_i32 {
        // Deadlines from 0 to 99 µs cancel `begin()` before, during and after its round trip.
        let deadline = Duration::from_micros(u64::from(n.unsigned_abs() % 100));
        match tokio::time::timeout(deadline, pool.begin()).await {
            Ok(tx) => tx.unwrap().rollback().await.unwrap(),
            Err(_) => cancelled += 1,
        }
        // An autocommit write on the pooled connection, then a read from another session.
        sqlx::query("INSERT INTO writes (n) VALUES ($1)")
            .bind(n)
            .execute(&pool)
            .await
            .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM writes")
            .fetch_one(&observer)
            .await
            .unwrap();
        assert_eq!(
            seen,
            i64::from(n) + 1,
            "write {n} is not visible to another session: it ran inside a leaked transaction"
        );
    }
    assert!(
        cancelled > 0,
        "no begin() was cancelled; the test proved nothing"
    );
}
