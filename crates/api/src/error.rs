//! The API's error type: every failure maps to one problem+json response, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use kepatuhan_app::AppError;

use crate::problem::{FieldError, Problem};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The object does not exist, or is outside the caller's scope (never 403 for objects, so
    /// nothing can be enumerated).
    #[error("{0}")]
    NotFound(String),
    /// A token was given but is unknown or revoked.
    #[error("the bearer token is invalid or revoked")]
    Unauthorized,
    /// No token was given where one is required.
    #[error("this endpoint needs a bearer token")]
    Unauthenticated,
    /// The caller's role may not use this endpoint at all.
    #[error("{0}")]
    Forbidden(String),
    /// Invalid fields.
    #[error("{detail}")]
    Validation {
        /// Summary.
        detail: String,
        /// Per-field errors.
        errors: Vec<FieldError>,
    },
    /// The request is malformed (bad JSON, CSV, header…).
    #[error("{detail}")]
    BadRequest {
        /// Stable slug of the problem type.
        slug: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The request body is larger than this endpoint accepts (`413`).
    #[error("{detail}")]
    TooLarge {
        /// Stable slug of the problem type.
        slug: &'static str,
        /// What the limit is.
        detail: String,
    },
    /// The request conflicts with the current state (e.g. a forbidden state transition).
    #[error("{detail}")]
    Conflict {
        /// Stable slug of the problem type.
        slug: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// `If-Match` does not match the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// `If-Match` is required and missing.
    #[error("this update needs an If-Match header with the ETag of the version you read")]
    PreconditionRequired,
    /// A part the request needs (the certificate store…) cannot serve it now; try again later.
    #[error("{detail}")]
    Unavailable {
        /// Stable slug of the problem type.
        slug: &'static str,
        /// What is unavailable.
        detail: String,
    },
    /// An unexpected failure; details go to the logs, never to the client.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// An unexpected error with its source chain (logged, not shown).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InternalError(pub Box<dyn std::error::Error + Send + Sync>);

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if database_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return ApiError::Unavailable {
                slug: "database-unavailable",
                detail:
                    "the database cannot be reached right now (a restart or a failover); retry \
                         shortly, with the same Idempotency-Key to be safe"
                        .to_owned(),
            };
        }
        ApiError::Internal(InternalError(Box::new(e)))
    }
}

impl From<rust_xlsxwriter::XlsxError> for ApiError {
    /// A workbook that could not be written is our failure, never the caller's.
    fn from(e: rust_xlsxwriter::XlsxError) -> Self {
        ApiError::Internal(InternalError(format!("writing XLSX: {e}").into()))
    }
}

/// Commits a transaction. A database that goes away during the commit leaves its outcome
/// unknown (the commit may have reached the log before the connection broke): that is a `503
/// commit-outcome-unknown` to retry, with the same `Idempotency-Key`, never a claim that nothing
/// was written. A failure before the commit is `database-unavailable`: nothing was written.
pub async fn commit(tx: sqlx::Transaction<'_, sqlx::Postgres>) -> ApiResult<()> {
    tx.commit().await.map_err(|e| {
        if database_unavailable(&e) {
            tracing::warn!(error = %e, "database lost during a commit");
            ApiError::Unavailable {
                slug: "commit-outcome-unknown",
                detail: "the database went away while this change was being committed: it may or \
                         may not have been applied; repeat the request (with the same \
                         Idempotency-Key) to be sure"
                    .to_owned(),
            }
        } else {
            e.into()
        }
    })
}

/// Whether an error means the database is unreachable for a while (connection lost or refused,
/// the pool exhausted, the server shutting down or starting up), not that the request is wrong:
/// a `503` the client can retry, not a `500`.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01–57P03: admin or crash shutdown, starting up.
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// The one mapping from the application's errors to HTTP problems.
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::CycleNotFound(key) => ApiError::NotFound(format!("no cycle {key}")),
            AppError::ResultsFrozen(key) => ApiError::conflict(
                "results-frozen",
                format!(
                    "the results of {key} are published and frozen; correct them with POST /cycles/{key}/corrections"
                ),
            ),
            AppError::UnknownMethodology(_) => {
                ApiError::conflict("unknown-methodology", e.to_string())
            }
            AppError::Database(e) => e.into(),
            AppError::Config(_)
            | AppError::Storage(_)
            | AppError::Encode(_)
            | AppError::Inconsistent(_) => ApiError::Internal(InternalError(Box::new(e))),
        }
    }
}

impl ApiError {
    /// A validation error with a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        ApiError::Validation {
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    /// A validation error with several fields.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::Validation { detail, errors }
    }

    /// A conflict with the current state.
    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            slug,
            detail: detail.into(),
        }
    }

    /// A body larger than the endpoint accepts.
    pub fn too_large(slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError::TooLarge {
            slug,
            detail: detail.into(),
        }
    }

    /// A malformed request.
    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            slug,
            detail: detail.into(),
        }
    }

    /// The problem document for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            ApiError::NotFound(d) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", d)
            }
            ApiError::Unauthorized => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                self.to_string(),
            ),
            ApiError::Unauthenticated => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                self.to_string(),
            ),
            ApiError::Forbidden(d) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", d)
            }
            ApiError::Validation { detail, errors } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-error",
                "Invalid input",
                detail,
            )
            .with_errors(errors.clone()),
            ApiError::BadRequest { slug, detail } => {
                Problem::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
            }
            ApiError::Conflict { slug, detail } => {
                Problem::new(StatusCode::CONFLICT, slug, "Conflict", detail)
            }
            ApiError::PreconditionFailed(d) => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
                d,
            ),
            ApiError::TooLarge { slug, detail } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                slug,
                "Payload too large",
                detail,
            ),
            ApiError::PreconditionRequired => Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition-required",
                "Precondition required",
                self.to_string(),
            ),
            ApiError::Unavailable { slug, detail } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                slug,
                "Service unavailable",
                detail,
            ),
            ApiError::Internal(_) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an unexpected error occurred; quote the request id when reporting it",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e.0, source = ?e.0.source(), "internal error");
        }
        self.to_problem().into_response()
    }
}

/// Turns database constraint violations into 422/409 problems with a field, instead of 500s.
pub trait ResultExt<T> {
    /// Maps a violation of `constraint` to a validation error on `field`.
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => f(),
            _ => ApiError::from(e),
        })
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
