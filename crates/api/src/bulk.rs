//! Bulk bodies: a JSON array, a CSV file (with a header row) of the same records, or an XLSX
//! workbook whose first sheet holds that table (header in row 1).
//!
//! Field errors name the record: `[3].province_code` for the fourth JSON element,
//! `line 5: province_code` for a CSV line, and `'Sheet1' row 5: province_code` for a workbook
//! row, so a clerk can find the row in the spreadsheet.
//!
//! CSV is read as spreadsheets write it ([`csv_reader`]): comma- or semicolon-separated (an
//! Indonesian-locale Excel writes `;`), detected from the header row; with or without a UTF-8
//! byte-order mark; and a number with a decimal comma (`88,50`) reads as `88.50`.

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
    /// Whether they came from CSV or a workbook (errors then name line or row numbers).
    pub csv: bool,
    /// The sheet they came from, when from a workbook.
    pub sheet: Option<String>,
    /// The raw body, for idempotency fingerprints.
    pub raw: Bytes,
}

impl<T> Bulk<T> {
    /// The path prefix of record `i` in error messages.
    pub fn at(&self, i: usize, field: &str) -> String {
        match (&self.sheet, self.csv) {
            (Some(sheet), _) => format!("'{sheet}' row {}: {field}", i + 2),
            (None, true) => format!("line {}: {field}", i + 2),
            (None, false) => format!("[{i}].{field}"),
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
            "text/csv" | crate::export::XLSX => true,
            "application/json" => false,
            other => {
                let got = if other.is_empty() { "none" } else { other };
                return Err(BodyRejection::ContentType(format!(
                    "{got} (send application/json, text/csv or an XLSX workbook)"
                ))
                .into_response());
            }
        };
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|e| bytes_problem(&e).into_response())?;
        let mut sheet = None;
        let rows = if mt == crate::export::XLSX {
            let (name, rows) = parse_xlsx(raw.clone())
                .await
                .map_err(IntoResponse::into_response)?;
            sheet = Some(name);
            rows
        } else if csv {
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
        Ok(Bulk {
            rows,
            csv,
            sheet,
            raw,
        })
    }
}

/// The records of a workbook's first sheet (a header row, then one record per row): the sheet
/// is read as its CSV (numbers as the spreadsheet holds them, not as a locale shows them) and
/// parsed as CSV is, errors naming the sheet's rows. Formulas and merged cells are refused.
async fn parse_xlsx<T: DeserializeOwned>(raw: Bytes) -> Result<(String, Vec<T>), ApiError> {
    let (name, text) = crate::workbook::blocking(move || -> Result<_, ApiError> {
        let sheets = crate::workbook::read(&raw)?;
        let first = sheets.first().ok_or_else(|| {
            ApiError::bad_request("unreadable-workbook", "the workbook has no sheet")
        })?;
        let width = (0..200u32)
            .take_while(|c| first.text(0, *c).is_some())
            .count();
        let errors =
            first.structure_errors(&(0..u32::try_from(width).unwrap_or(0)).collect::<Vec<_>>());
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let cols = 0..u32::try_from(width).unwrap_or(0);
        // Rows after the last one holding anything are not records (formatting may reach them).
        let last = (0..=first.last_row().unwrap_or(0))
            .rev()
            .find(|r| cols.clone().any(|c| first.text(*r, c).is_some()))
            .unwrap_or(0);
        let mut out = csv::Writer::from_writer(Vec::new());
        for r in 0..=last {
            let record: Vec<String> = cols
                .clone()
                .map(|c| first.text(r, c).unwrap_or_default())
                .collect();
            out.write_record(&record)
                .map_err(|e| ApiError::bad_request("unreadable-workbook", e.to_string()))?;
        }
        let text = out
            .into_inner()
            .map_err(|e| ApiError::bad_request("unreadable-workbook", e.to_string()))?;
        Ok((first.name.clone(), text))
    })
    .await?;
    let rows = parse_csv(&text).map_err(|e| match e {
        ApiError::Validation { detail, errors } => ApiError::Validation {
            detail,
            errors: errors
                .into_iter()
                .map(|mut f| {
                    if let Some(rest) = f.field.strip_prefix("line ") {
                        f.field = format!("'{name}' row {rest}");
                    }
                    f
                })
                .collect(),
        },
        other => other,
    })?;
    Ok((name, rows))
}

/// The text of a CSV body as the reader takes it: without a leading UTF-8 byte-order mark, and
/// with Windows line ends (`\r\n`, as Excel writes them) made `\n`, so that line numbers in
/// errors count right (the CSV reader's own count falls behind on `\r\n`).
pub(crate) fn csv_text(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    if raw.contains(&b'\r') {
        let mut text = Vec::with_capacity(raw.len());
        let mut bytes = raw.iter().peekable();
        while let Some(b) = bytes.next() {
            if *b == b'\r' && bytes.peek() == Some(&&b'\n') {
                continue;
            }
            text.push(*b);
        }
        std::borrow::Cow::Owned(text)
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// A CSV reader over `text` (from [`csv_text`]) as spreadsheets write it: fields trimmed, and
/// the delimiter detected from the header row: `;` when it holds more semicolons than commas
/// outside quotes (Excel in an Indonesian locale), `,` otherwise.
pub(crate) fn csv_reader(text: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .delimiter(delimiter(text))
        .from_reader(text)
}

/// `;` or `,`: whichever occurs more often outside quotes in the first line.
fn delimiter(raw: &[u8]) -> u8 {
    let (mut quoted, mut commas, mut semicolons) = (false, 0usize, 0usize);
    for b in raw.iter().take_while(|b| **b != b'\n') {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// The record with every field that is a number written with a decimal comma (`88,50`,
/// `-1,5`) rewritten with a point; other fields as they are.
pub(crate) fn decimal_points(record: &csv::StringRecord) -> csv::StringRecord {
    record
        .iter()
        .map(|field| {
            let digits = field.strip_prefix(['-', '+']).unwrap_or(field);
            match digits.split_once(',') {
                Some((whole, fraction))
                    if !whole.is_empty()
                        && !fraction.is_empty()
                        && whole.bytes().all(|b| b.is_ascii_digit())
                        && fraction.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    std::borrow::Cow::Owned(field.replacen(',', ".", 1))
                }
                _ => std::borrow::Cow::Borrowed(field),
            }
        })
        .collect()
}

fn parse_csv<T: DeserializeOwned>(raw: &[u8]) -> Result<Vec<T>, ApiError> {
    Ok(parse_csv_lines(raw)?
        .into_iter()
        .map(|(_, row)| row)
        .collect())
}

/// The records of a CSV body with the line each starts on (the header is line 1), or a problem
/// naming every bad line (at most 100).
pub(crate) fn parse_csv_lines<T: DeserializeOwned>(raw: &[u8]) -> Result<Vec<(u64, T)>, ApiError> {
    crate::extract::refuse_nul(raw)?;
    let text = csv_text(raw);
    let mut reader = csv_reader(&text);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::field("line 1", csv_message(&e, &csv::StringRecord::new())))?
        .clone();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let (line, outcome) = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => (
                record.position().map_or(0, csv::Position::line),
                decimal_points(&record).deserialize::<T>(Some(&headers)),
            ),
            Err(e) => (e.position().map_or(0, csv::Position::line), Err(e)),
        };
        match outcome {
            Ok(row) => rows.push((line, row)),
            Err(e) => {
                errors.push(FieldError::new(
                    format!("line {line}"),
                    csv_message(&e, &headers),
                ));
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

/// What is wrong with a CSV line, naming the column where there is one.
fn csv_message(e: &csv::Error, headers: &csv::StringRecord) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .and_then(|i| headers.get(usize::try_from(i).ok()?));
            match field {
                Some(f) => format!("{f}: {}", err.kind()),
                None => err.kind().to_string(),
            }
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} columns, found {len}"),
        csv::ErrorKind::Utf8 { .. } => {
            "the file is not UTF-8 text (save it as CSV UTF-8)".to_owned()
        }
        _ => e.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_read_from_the_header() {
        assert_eq!(delimiter(b"a,b,c\n1;2;3"), b',');
        assert_eq!(delimiter(b"a;b;c\r\n1,5;2;3"), b';');
        // A comma inside quotes is not a delimiter.
        assert_eq!(delimiter(b"\"name, full\";code;score\n"), b';');
        assert_eq!(delimiter(b""), b',');
    }

    #[test]
    fn decimal_commas_become_points_and_nothing_else_changes() {
        let record = csv::StringRecord::from(vec![
            "88,50",
            "-1,5",
            "19.04",
            "Dinas Sosial, Kota",
            "1,2,3",
            ",5",
            "7,",
            "70",
        ]);
        let fixed = decimal_points(&record);
        assert_eq!(
            fixed.iter().collect::<Vec<_>>(),
            [
                "88.50",
                "-1.5",
                "19.04",
                "Dinas Sosial, Kota",
                "1,2,3",
                ",5",
                "7,",
                "70"
            ]
        );
    }
}

#[cfg(test)]
mod line_tests {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Row {
        a: String,
        b: String,
        c: u8,
    }

    #[test]
    fn errors_name_the_line_whatever_the_line_ends() {
        for raw in [
            &b"a;b;c\n1;2;3\n1;2\n4;5;x\n"[..],
            b"\xEF\xBB\xBFa;b;c\r\n1;2;3\r\n1;2\r\n4;5;x\r\n",
            b"a,b,c\r\n1,2,3\r\n1,2\r\n4,5,x",
        ] {
            let Err(crate::error::ApiError::Validation { errors, .. }) =
                super::parse_csv::<Row>(raw)
            else {
                panic!("refused");
            };
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["line 3", "line 4"]);
        }
    }
}
