//! The database: the pool, and the migrations (ours under the top-level `migrations/`, then the
//! job queue's own schema).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::Settings;

/// The migrations under the top-level `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Opens the database pool.
pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.db_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&settings.database_url)
        .await
}

/// Applies pending migrations (ours, then the job queue's own schema). Safe with several
/// processes: the migrator holds an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    MIGRATOR.run(pool).await?;
    apalis_postgres::PostgresStorage::<()>::setup(pool).await?;
    Ok(())
}

/// The number of migrations this build ships (readiness compares it with those applied).
pub fn expected_migrations() -> usize {
    MIGRATOR.iter().count()
}

/// How long an `Idempotency-Key` is remembered with its answer (24 hours).
pub const IDEMPOTENCY_KEY_LIFETIME: std::time::Duration = std::time::Duration::from_hours(24);

/// Removes idempotency keys older than [`IDEMPOTENCY_KEY_LIFETIME`] (the worker's schedule);
/// returns how many.
pub async fn sweep_idempotency_keys(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let lifetime = interval(IDEMPOTENCY_KEY_LIFETIME);
    Ok(sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval",
        lifetime
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// A duration as a Postgres interval (saturating at the largest one).
pub fn interval(d: std::time::Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
    }
}
