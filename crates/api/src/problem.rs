//! RFC 9457 problem details: every error response of the API has this shape, and carries the
//! request id that also appears in the logs.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Base of the stable problem `type` URIs.
pub const TYPE_BASE: &str = "https://kepatuhan.ombudsman.go.id/problems/";

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, if inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// One field-level validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the offending field, e.g. `values[3].value` or `[12].province_code`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A problem details document (`application/problem+json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://kepatuhan.ombudsman.go.id/problems/validation-error",
    "title": "Invalid input",
    "status": 422,
    "detail": "values[1].value: 4 is not on the scale 0–3",
    "errors": [{ "field": "values[1].value", "message": "4 is not on the scale 0–3" }],
    "request_id": "9b59df519396c934162d5994"
}))]
pub struct Problem {
    /// Stable URI identifying the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened, for a person.
    pub detail: String,
    /// Field-level errors, where the request had invalid fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    /// A problem of kind `slug` (appended to [`TYPE_BASE`]).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: current_request_id(),
        }
    }

    /// Adds field errors.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// Fallback for unknown routes.
pub async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no resource at {}", uri.path()),
    )
}

/// The longest name accepted (of a province, an office, an entity or a unit), in characters.
pub const NAME_MAX: usize = 300;
/// The longest code or short label accepted (an entity code, a unit kind, a respondent), in
/// characters.
pub const CODE_MAX: usize = 100;

/// A field error when `value` is blank or longer than `max` characters; `None` when it is fine.
pub fn text_problem(field: String, value: &str, max: usize) -> Option<FieldError> {
    let length = value.trim().chars().count();
    if length == 0 {
        Some(FieldError::new(field, "must not be empty"))
    } else if length > max {
        Some(FieldError::new(
            field,
            format!("must be at most {max} characters, got {length}"),
        ))
    } else {
        None
    }
}

/// A field error when `value` is longer than `max` characters.
pub fn too_long(field: String, value: &str, max: usize) -> Option<FieldError> {
    let length = value.trim().chars().count();
    (length > max).then(|| {
        FieldError::new(
            field,
            format!("must be at most {max} characters, got {length}"),
        )
    })
}
