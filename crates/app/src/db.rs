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
