//! Extractors whose rejections are problem+json: malformed JSON, wrong content type, oversized
//! bodies, bad path or query parameters all answer in the API's error format.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::problem::{FieldError, Problem};

/// JSON body, deserialized with field paths in its errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyRejection {
    /// Not `application/json`.
    ContentType(String),
    /// Over the size limit or unreadable.
    Bytes(BytesRejection),
    /// Not JSON at all.
    Syntax(String),
    /// JSON of the wrong shape, with the path of the offending field.
    Data(FieldError),
}

impl axum::response::IntoResponse for BodyRejection {
    fn into_response(self) -> axum::response::Response {
        match self {
            BodyRejection::ContentType(got) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("expected Content-Type: application/json, got {got}"),
            )
            .into_response(),
            BodyRejection::Bytes(e) => bytes_problem(&e).into_response(),
            BodyRejection::Syntax(d) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                d,
            )
            .into_response(),
            BodyRejection::Data(e) => ApiError::fields(vec![e]).into_response(),
        }
    }
}

/// The problem for an unreadable or oversized body.
pub fn bytes_problem(e: &BytesRejection) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the server accepts",
        )
    } else {
        Problem::new(
            e.status(),
            "unreadable-body",
            "Unreadable body",
            e.body_text(),
        )
    }
}

/// The media type of a request, without parameters, lower-case.
pub fn media_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Why a body with a NUL character is refused (Postgres text cannot hold one).
const NUL_REFUSED: &str = "text must not contain NUL characters (U+0000)";

/// Whether a body holds a NUL character, raw or as the JSON escape `\u0000`.
pub(crate) fn has_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0) || bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// Refuses a CSV (or any text) body holding a NUL character, with a 400 problem.
pub fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if has_nul(bytes) {
        Err(ApiError::bad_request("nul-character", NUL_REFUSED))
    } else {
        Ok(())
    }
}

/// Parses JSON bytes, reporting the path of the first offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyRejection> {
    if has_nul(bytes) {
        return Err(BodyRejection::Syntax(NUL_REFUSED.to_owned()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            BodyRejection::Syntax(format!("the body is not valid JSON: {inner}"))
        } else {
            let field = if path == "." { String::new() } else { path };
            BodyRejection::Data(FieldError::new(field, strip_position(&inner.to_string())))
        }
    })
}

/// `serde_json` appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mt = media_type(&req);
        if mt != "application/json" && !mt.ends_with("+json") {
            return Err(BodyRejection::ContentType(if mt.is_empty() {
                "none".into()
            } else {
                mt
            }));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(BodyRejection::Bytes)?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters with problem+json rejections.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| {
                ApiError::NotFound(format!("no resource at this path ({})", e.body_text()))
            })
    }
}

/// Query parameters with problem+json rejections.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                let text = e.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                ApiError::field("query", message)
            })
    }
}
