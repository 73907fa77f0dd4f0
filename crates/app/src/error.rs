//! The application's error: what went wrong, in the application's own terms. It knows nothing of
//! HTTP: the api maps each variant to a problem+json response in one place, the worker records it
//! as a job's failure, and both keep the source chain for the logs.

use kepatuhan_core::CycleKey;

/// Everything the application layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such cycle.
    #[error("no cycle {0}")]
    CycleNotFound(CycleKey),
    /// The cycle's results are published (or imported) and frozen: they change only through a
    /// correction, which writes a new revision.
    #[error("the results of {0} are published and frozen")]
    ResultsFrozen(CycleKey),
    /// The cycle names a methodology this build does not ship.
    #[error("methodology `{0}` is not shipped in this build")]
    UnknownMethodology(String),
    /// A configuration value is unusable.
    #[error("{0}")]
    Config(String),
    /// The database failed (unreachable, a statement failed…).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The object store failed.
    #[error("object store: {0}")]
    Storage(String),
    /// A value could not be encoded (a job payload, an event).
    #[error("could not encode a value: {0}")]
    Encode(#[from] serde_json::Error),
    /// Stored data breaks an invariant the code relies on (a stored score out of range…).
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

/// A result of the application layer.
pub type AppResult<T> = Result<T, AppError>;
