//! Cycles as the rest of the application holds them: a cycle's identity ([`CycleKey`]), its row
//! lock ([`lock`]), a change of its inputs with the recompute it needs ([`inputs_changed`]) and
//! the publication of a results revision with its certificates ([`publish_revision`]). Each rule
//! is written here once; every write path goes through it.
//!
//! Everything that changes a cycle's inputs or results first takes the cycle's row lock, so
//! recomputes, verifications, corrections and transitions of one cycle happen one after another.

pub use kepatuhan_core::{CycleId, CycleKey, CycleKind};
use kepatuhan_core::{CycleState, CycleYear};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::error::{AppError, AppResult};
use crate::jobs::{self, IssueCertificates, Recompute};

/// A cycle whose row the holder's transaction has locked (`FOR UPDATE` or `FOR SHARE`): nothing
/// else changes its state or revisions until that transaction ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Its identity.
    pub id: CycleId,
    /// How callers name it: the year for the official cycle, its id for the others.
    pub key: CycleKey,
    /// The year assessed.
    pub year: CycleYear,
    /// Official, or a self-assessment or pre-evaluation beside the official cycle.
    pub kind: CycleKind,
    /// Its state.
    pub state: CycleState,
    /// Whether it holds imported published scores rather than field data.
    pub imported: bool,
    /// The methodology it is scored with.
    pub methodology_code: String,
    /// The current results revision.
    pub results_revision: i32,
    /// The revision of its inputs: moved by every change of verified values, survey responses
    /// or follow-up ([`inputs_changed`]).
    pub input_revision: i64,
    /// The input revision its current results reflect.
    pub results_input_revision: i64,
}

impl Cycle {
    /// Whether its results are frozen (published, or imported): they change only through a
    /// correction.
    pub fn is_frozen(&self) -> bool {
        self.state.is_published() || self.imported
    }

    /// [`AppError::ResultsFrozen`] when its results are frozen.
    pub fn require_open(&self) -> AppResult<()> {
        if self.is_frozen() {
            Err(AppError::ResultsFrozen(self.key))
        } else {
            Ok(())
        }
    }

    /// Whether its stored results reflect every input.
    pub fn results_are_current(&self) -> bool {
        self.results_input_revision == self.input_revision
    }
}

/// A cycle's row as read under a lock.
struct CycleRow {
    id: i64,
    year: i32,
    kind: String,
    state: String,
    imported: bool,
    methodology_code: String,
    results_revision: i32,
    input_revision: i64,
    results_input_revision: i64,
}

impl CycleRow {
    fn into_cycle(self) -> AppResult<Cycle> {
        let inconsistent = |e: &dyn std::fmt::Display| AppError::Inconsistent(e.to_string());
        let id = CycleId(self.id);
        let year = CycleYear::new(i64::from(self.year)).map_err(|e| inconsistent(&e))?;
        let kind: CycleKind = self.kind.parse().map_err(|e| inconsistent(&e))?;
        Ok(Cycle {
            id,
            key: if kind.is_official() {
                CycleKey::Official(year)
            } else {
                CycleKey::Id(id)
            },
            year,
            kind,
            state: self.state.parse().map_err(|e| inconsistent(&e))?,
            imported: self.imported,
            methodology_code: self.methodology_code,
            results_revision: self.results_revision,
            input_revision: self.input_revision,
            results_input_revision: self.results_input_revision,
        })
    }
}

/// The id of the cycle a caller names ([`AppError::CycleNotFound`] when there is none). An id
/// is taken as given: the lock that follows reads the row.
pub async fn id_of(db: impl PgExecutor<'_>, key: CycleKey) -> AppResult<CycleId> {
    match key {
        CycleKey::Id(id) => Ok(id),
        CycleKey::Official(year) => sqlx::query_scalar!(
            "SELECT id FROM cycles WHERE kind = 'official' AND year = $1",
            i32::from(year.get())
        )
        .fetch_optional(db)
        .await?
        .map(CycleId)
        .ok_or(AppError::CycleNotFound(key)),
    }
}

/// Locks a cycle's row in the caller's transaction and reads it ([`AppError::CycleNotFound`]
/// when there is none). The lock is held until the transaction ends: for writes that change the
/// cycle (its state, its revisions), one at a time.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    key: impl Into<CycleKey>,
) -> AppResult<Cycle> {
    let key = key.into();
    let id = id_of(&mut **tx, key).await?;
    sqlx::query_as!(
        CycleRow,
        "SELECT id, year, kind, state, imported, methodology_code, results_revision, input_revision, results_input_revision
         FROM cycles WHERE id = $1 FOR UPDATE",
        id.get()
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::CycleNotFound(key))?
    .into_cycle()
}

/// Locks a cycle's row for sharing in the caller's transaction and reads it: for writes that
/// depend on the cycle's state but never change its row (drafts, edits, survey uploads). They
/// run side by side, while a transition or a recompute ([`lock`]) waits for them, and they for
/// it. A transaction holding this lock must not go on to change the cycle's row.
pub async fn lock_shared(
    tx: &mut Transaction<'_, Postgres>,
    key: impl Into<CycleKey>,
) -> AppResult<Cycle> {
    let key = key.into();
    let id = id_of(&mut **tx, key).await?;
    sqlx::query_as!(
        CycleRow,
        "SELECT id, year, kind, state, imported, methodology_code, results_revision, input_revision, results_input_revision
         FROM cycles WHERE id = $1 FOR SHARE",
        id.get()
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::CycleNotFound(key))?
    .into_cycle()
}

/// Reads a cycle's row without locking it ([`AppError::CycleNotFound`] when there is none): for
/// readers that need a consistent view (a snapshot transaction), not a serialized write.
pub async fn read(
    tx: &mut Transaction<'_, Postgres>,
    key: impl Into<CycleKey>,
) -> AppResult<Cycle> {
    let key = key.into();
    let id = id_of(&mut **tx, key).await?;
    sqlx::query_as!(
        CycleRow,
        "SELECT id, year, kind, state, imported, methodology_code, results_revision, input_revision, results_input_revision
         FROM cycles WHERE id = $1",
        id.get()
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(AppError::CycleNotFound(key))?
    .into_cycle()
}

/// What changed among a cycle's inputs (the verified submissions' values and survey responses,
/// and the entities' follow-up of findings): it decides the recompute needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputChange {
    /// One unit's verified inputs (a verification): its entity is scored again and the ranks
    /// re-derived, incrementally when the stored results allow it.
    Unit(i64),
    /// Something every entity's grade or rank may depend on (a follow-up): the whole cycle.
    Cycle,
}

/// Records a change of the cycle's inputs: moves its input revision and enqueues the recompute
/// the change needs, in the caller's transaction (which holds the cycle's lock). Returns the
/// recompute job's id. Every write of a cycle's inputs comes here, so none can leave stale
/// results looking current: incremental recomputes and publication both trust the revision.
pub async fn inputs_changed(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &mut Cycle,
    change: InputChange,
) -> AppResult<String> {
    let revision = bump_input_revision(tx, cycle).await?;
    let job = match change {
        InputChange::Unit(unit) => Recompute::unit_at(cycle.id, unit, revision),
        InputChange::Cycle => Recompute::full(cycle.id),
    };
    jobs::enqueue(tx, &job, None).await
}

/// Moves the cycle's input revision and returns the new one: for [`inputs_changed`], and for a
/// correction, which recomputes in its own transaction instead of enqueueing a job.
pub(crate) async fn bump_input_revision(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &mut Cycle,
) -> AppResult<i64> {
    cycle.input_revision = sqlx::query_scalar!(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE id = $1 RETURNING input_revision",
        cycle.id.get()
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(cycle.input_revision)
}

/// Starts a new results revision of a published cycle (a correction, or a recompute whose
/// results differ): the published revision stays readable, the new one becomes current.
pub async fn new_results_revision(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &mut Cycle,
) -> AppResult<i32> {
    cycle.results_revision = sqlx::query_scalar!(
        "UPDATE cycles SET results_revision = results_revision + 1, updated_at = now() WHERE id = $1 RETURNING results_revision",
        cycle.id.get()
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(cycle.results_revision)
}

/// Publishes a results revision of a cycle: enqueues the issue of its certificates, once per
/// revision (an idempotency key), and returns that job's id. Publication, corrections and
/// recomputes of a published cycle all come here.
pub async fn publish_revision(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &Cycle,
    revision: i32,
) -> AppResult<String> {
    let job = IssueCertificates {
        cycle_id: cycle.id,
        revision,
        traceparent: crate::telemetry::current_traceparent(),
    };
    let key = format!("certificates-{}-{revision}", cycle.key);
    jobs::enqueue(tx, &job, Some(&key)).await
}
