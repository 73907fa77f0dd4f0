//! The audit trail: every write is recorded the same way, in the transaction that makes it (who,
//! when, what object, what action, the details). The log is append-only: the database refuses
//! UPDATE, DELETE and TRUNCATE on it. Submissions keep their own detailed entries (field by
//! field); everything else is recorded through [`record`].

use sqlx::{Postgres, Transaction};

use crate::error::AppResult;

/// One entry: what was done to which object.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The kind of object: `entity`, `unit`, `sample`, `certificate`, `webhook`, `cycle`…
    pub object_type: &'static str,
    /// Its identity: a code, an id, `2025/12` for a unit of a cycle's sample, `bulk` for a bulk
    /// upload (whose details list the objects).
    pub object_id: String,
    /// The province it belongs to, if any (offices read the trail of their provinces).
    pub province: Option<&'a str>,
    /// What was done, e.g. `created`, `revoked`, `excluded`.
    pub action: &'static str,
    /// The details: the new values, a reason, the objects of a bulk upload.
    pub details: serde_json::Value,
}

/// Records `entry` by `actor` (`None`: the command line or the system) in the caller's
/// transaction.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    actor: Option<i64>,
    entry: Entry<'_>,
) -> AppResult<()> {
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, object_type, object_id, province_code, action, current)
         VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        entry.object_type,
        entry.object_id,
        entry.province,
        entry.action,
        entry.details
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
