//! The database: the pool, the migrations (ours under the top-level `migrations/`, then the job
//! queue's own schema), and the two roles of a deployment.
//!
//! - The **owner** role owns the tables. `kepatuhan-api migrate` runs as it, applies the
//!   migrations, and grants the service role what it needs ([`grant_service_role`]).
//! - The **service** role is what the api and the worker connect as. It reads and writes rows,
//!   but owns nothing: it cannot create, alter or drop a table, disable or drop a trigger, or
//!   truncate. It may only read and append to `audit_log`, and never delete a certificate. With
//!   `KEPATUHAN_MIGRATE_ON_START=false` the services only check that the schema is current
//!   ([`prepare`]).
//!
//! The line for the job queue: apalis creates its schema (`apalis`) in its own migrations, run
//! by `migrate` as the owner; the service role gets rights on its rows, sequences and functions,
//! which the queue needs to take, lock and finish jobs, and nothing to change its shape.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::Settings;

/// The migrations under the top-level `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// How long a request waits for a database connection (retrying while the database is
/// unreachable) before it fails: the api then answers `503 database-unavailable`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the database pool.
pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.db_max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
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

/// Migrates when `settings.migrate_on_start` (development, the tests), granting to the service
/// role when one is named; otherwise checks that the schema is at this build's version, and
/// fails with a message naming the command that fixes it.
pub async fn prepare(
    pool: &PgPool,
    settings: &Settings,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if settings.migrate_on_start {
        migrate(pool).await?;
        if let Some(role) = &settings.service_role {
            grant_service_role(pool, role).await?;
        }
        return Ok(());
    }
    let applied = applied_migrations(pool).await.unwrap_or(0);
    let expected = expected_migrations();
    if applied < expected {
        return Err(format!(
            "the database schema has {applied} of this build's {expected} migrations: run `kepatuhan-api migrate` as the owner role first"
        )
        .into());
    }
    Ok(())
}

/// The migrations applied to the database, as recorded by the migrator.
pub async fn applied_migrations(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Whether `name` can stand in SQL as a role name without quoting: lower-case ASCII letters,
/// digits and `_`, not starting with a digit, at most 63 bytes.
pub fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Grants the service role `role` (which must exist) what the api and the worker need, and no
/// more: rows of every table (only reading and appending to `audit_log`, never deleting
/// certificates, reading `_sqlx_migrations`), the sequences, and the job queue's rows and
/// functions. Run by `migrate` after the migrations, so new tables are covered; idempotent.
pub async fn grant_service_role(pool: &PgPool, role: &str) -> Result<(), sqlx::Error> {
    if !is_plain_identifier(role) {
        return Err(sqlx::Error::Configuration(
            format!("`{role}` is not a plain role name").into(),
        ));
    }
    let statements = [
        format!("GRANT CONNECT, TEMPORARY ON DATABASE \"{{db}}\" TO {role}"),
        format!("GRANT USAGE ON SCHEMA public, apalis TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("REVOKE UPDATE, DELETE ON audit_log FROM {role}"),
        format!("REVOKE DELETE ON certificates FROM {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM {role}"),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA apalis TO {role}"),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA apalis TO {role}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA apalis TO {role}"),
    ];
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await?;
    let mut tx = pool.begin().await?;
    for statement in statements {
        let statement = statement.replace("{db}", &database.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(role, "service role granted");
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
