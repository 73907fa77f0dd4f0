//! Why a job failed, with its source kept for the logs; the job's stored error is its display.

use kepatuhan_app::AppError;

/// Everything a job handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The application layer failed (a recompute, an enqueue…).
    #[error(transparent)]
    App(#[from] AppError),
    /// A statement failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The certificate store failed.
    #[error("certificate store: {0}")]
    Store(#[from] object_store::Error),
    /// A certificate could not be rendered.
    #[error("rendering: {0}")]
    Render(#[from] crate::render::RenderError),
    /// Stored data breaks an invariant (a stored score out of range…).
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// A webhook delivery failed for good.
    #[error("{0}")]
    Delivery(String),
}
