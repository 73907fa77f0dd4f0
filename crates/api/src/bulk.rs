//! Bulk bodies: a JSON array or a CSV file (with a header row) of the same records.
//!
//! Field errors name the record: `[3].province_code` for the fourth JSON element, and
//! `line 5: province_code` for a CSV line, so a clerk can find the row in the spreadsheet.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::extract::{BodyRejection, bytes_problem, media_type, parse_json};
use crate::problem::FieldError;

/// A bulk body: records plus how to name each one in error messages.
#[derive(Debug)]
pub struct Bulk<T> {
    /// The records, in order.
    pub rows: Vec<T>,
    /// Whether they came from CSV (errors then name line numbers).
    pub csv: bool,
    /// The raw body, for idempotency fingerprints.
    pub raw: Bytes,
}

impl<T> Bulk<T> {
    /// The path prefix of record `i` in error messages.
    pub fn at(&self, i: usize, field: &str) -> String {
        if self.csv {
            format!("line {}: {field}", i + 2)
        } else {
            format!("[{i}].{field}")
        }
    }
}

/// Largest number of records in one bulk request.
pub const MAX_ROWS: usize = 50_000;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Bulk<T> {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let mt = media_type(&req);
        let csv = match mt.as_str() {
            "text/csv" => true,
            "application/json" => false,
            other => {
                let got = if other.is_empty() { "none" } else { other };
                return Err(BodyRejection::ContentType(format!(
                    "{got} (send application/json or text/csv)"
                ))
                .into_response());
            }
        };
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|e| bytes_problem(&e).into_response())?;
        let rows = if csv {
            parse_csv(&raw).map_err(IntoResponse::into_response)?
        } else {
            parse_json::<Vec<T>>(&raw).map_err(IntoResponse::into_response)?
        };
        if rows.len() > MAX_ROWS {
            return Err(ApiError::field(
                "",
                format!("at most {MAX_ROWS} records per request, got {}", rows.len()),
            )
            .into_response());
        }
        Ok(Bulk { rows, csv, raw })
    }
}

fn parse_csv<T: DeserializeOwned>(raw: &[u8]) -> Result<Vec<T>, ApiError> {
    crate::extract::refuse_nul(raw)?;
    // Strip a UTF-8 byte-order mark: spreadsheets add one.
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(raw);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for result in reader.deserialize::<T>() {
        match result {
            Ok(row) => rows.push(row),
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                let message = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => {
                        let field = err.field().and_then(|i| reader_header(raw, i));
                        match field {
                            Some(f) => format!("{f}: {}", err.kind()),
                            None => err.kind().to_string(),
                        }
                    }
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("expected {expected_len} columns, found {len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => {
                        "the file is not UTF-8 text (save it as CSV UTF-8)".to_owned()
                    }
                    _ => e.to_string(),
                };
                errors.push(FieldError::new(format!("line {line}"), message));
                if errors.len() >= 100 {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ApiError::fields(errors))
    }
}

fn reader_header(raw: &[u8], index: u64) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(raw);
    reader
        .headers()
        .ok()?
        .get(usize::try_from(index).ok()?)
        .map(str::to_owned)
}

/// Result of a bulk upsert.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    /// Records that did not exist.
    pub created: usize,
    /// Records that existed with different values.
    pub updated: usize,
    /// Records that existed with the same values (a re-upload changes nothing).
    pub unchanged: usize,
}
