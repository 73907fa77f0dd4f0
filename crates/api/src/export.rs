//! Result lists as spreadsheets: the same endpoint answers JSON, CSV or an XLSX workbook, chosen
//! by the `format` parameter or, without one, by the `Accept` header (answers carry
//! `Vary: Accept`).
//!
//! The workbook has one sheet per entity kind, a frozen header row and an autofilter; scores are
//! numbers with the `0.00` number format (so a spreadsheet sorts and sums them, and an Indonesian
//! locale shows 93,71), and each grade cell is filled with its zone's colour. A score is written
//! as the spreadsheet's number type (a binary double): it holds the published two-decimal value
//! to well beyond the cent, and the `0.00` format shows exactly the published figure.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{ApiError, ApiResult, InternalError};
use crate::routes::results::EntityResultView;

/// The media type of an XLSX workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Most rows an export holds (every entity of a cycle is about 600).
pub const MAX_EXPORT_ROWS: i64 = 20_000;

/// What a result list is answered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A page of JSON (the default).
    Json,
    /// Every matching row as comma-separated text.
    Csv,
    /// Every matching row as an XLSX workbook.
    Xlsx,
}

impl Format {
    /// The format asked for: the `format` parameter (`json`, `csv`, `xlsx`), else the first of
    /// CSV or XLSX the `Accept` header names, else JSON.
    pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> ApiResult<Self> {
        match param {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some("xlsx") => Ok(Format::Xlsx),
            Some(other) => Err(ApiError::field(
                "format",
                format!("unknown format `{other}` (json, csv, xlsx)"),
            )),
            None => Ok(Self::from_accept(headers)),
        }
    }

    /// The format the `Accept` header prefers among ours (JSON when it names neither CSV nor
    /// XLSX).
    pub fn from_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        for media in accept.split(',') {
            match media.split(';').next().unwrap_or_default().trim() {
                "text/csv" => return Format::Csv,
                XLSX => return Format::Xlsx,
                "application/json" | "application/*" | "*/*" => return Format::Json,
                _ => {}
            }
        }
        Format::Json
    }

    /// Whether the answer is a file rather than a page.
    pub fn is_export(self) -> bool {
        self != Format::Json
    }
}

/// The entity kinds in the order of the workbook's sheets, with their sheet names.
const KINDS: [(&str, &str); 5] = [
    ("ministry", "Kementerian"),
    ("agency", "Lembaga"),
    ("province", "Provinsi"),
    ("regency", "Kabupaten"),
    ("city", "Kota"),
];

/// The columns of a ranking, in Bahasa Indonesia as the offices read them.
const COLUMNS: [&str; 10] = [
    "Peringkat",
    "Kode",
    "Nama",
    "Jenis",
    "Provinsi",
    "Nilai",
    "Predikat",
    "Keterangan",
    "Zona",
    "Peringkat di provinsi",
];

fn zone_name(zone: Option<&str>) -> &'static str {
    match zone {
        Some("green") => "hijau",
        Some("yellow") => "kuning",
        Some("red") => "merah",
        _ => "",
    }
}

fn provincial(r: &EntityResultView) -> String {
    r.provincial_rank
        .map(|p| format!("{} dari {}", p.rank, p.of))
        .unwrap_or_default()
}

/// Entity results as an answer in `format` (CSV or XLSX), named after `year`.
pub fn entity_results(format: Format, year: u16, rows: &[EntityResultView]) -> ApiResult<Response> {
    let (body, content_type, extension) = match format {
        Format::Csv => (csv(rows)?, "text/csv; charset=utf-8", "csv"),
        Format::Xlsx => (xlsx(year, rows)?, XLSX, "xlsx"),
        Format::Json => {
            return Err(internal("a JSON page is not an export".to_owned()));
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"hasil-{year}.{extension}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

fn csv(rows: &[EntityResultView]) -> ApiResult<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| internal(format!("writing CSV: {e}"));
    out.write_record(COLUMNS).map_err(failed)?;
    for r in rows {
        out.write_record([
            r.national_rank.rank.to_string(),
            r.code.clone(),
            r.name.clone(),
            r.kind.clone(),
            r.province_code.clone().unwrap_or_default(),
            r.score.round_dp(2).to_string(),
            r.grade.code.clone(),
            r.grade.label.clone(),
            zone_name(r.grade.zone.as_deref()).to_owned(),
            provincial(r),
        ])
        .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| internal(format!("writing CSV: {e}")))
}

fn xlsx(year: u16, rows: &[EntityResultView]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::{Color, Format as Style, FormatBorder, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    let header = Style::new()
        .set_bold()
        .set_background_color(Color::RGB(0x00D9_E1F2))
        .set_border_bottom(FormatBorder::Thin);
    let score = Style::new().set_num_format("0.00");
    let zone_fill = |zone: Option<&str>| match zone {
        Some("green") => Some(Style::new().set_background_color(Color::RGB(0x00C6_EFCE))),
        Some("yellow") => Some(Style::new().set_background_color(Color::RGB(0x00FF_EB9C))),
        Some("red") => Some(Style::new().set_background_color(Color::RGB(0x00FF_C7CE))),
        _ => None,
    };
    for (kind, sheet_name) in KINDS {
        let of_kind: Vec<&EntityResultView> = rows.iter().filter(|r| r.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name).map_err(failed)?;
        for (c, title) in (0u16..).zip(COLUMNS) {
            sheet
                .write_string_with_format(0, c, title, &header)
                .map_err(failed)?;
        }
        for (row, r) in (1u32..).zip(&of_kind) {
            sheet
                .write_number(row, 0, f64::from(r.national_rank.rank))
                .map_err(failed)?;
            sheet.write_string(row, 1, &r.code).map_err(failed)?;
            sheet.write_string(row, 2, &r.name).map_err(failed)?;
            sheet.write_string(row, 3, &r.kind).map_err(failed)?;
            sheet
                .write_string(row, 4, r.province_code.as_deref().unwrap_or_default())
                .map_err(failed)?;
            sheet
                .write_number_with_format(row, 5, number(r.score), &score)
                .map_err(failed)?;
            match zone_fill(r.grade.zone.as_deref()) {
                Some(fill) => sheet.write_string_with_format(row, 6, &r.grade.code, &fill),
                None => sheet.write_string(row, 6, &r.grade.code),
            }
            .map_err(failed)?;
            sheet.write_string(row, 7, &r.grade.label).map_err(failed)?;
            sheet
                .write_string(row, 8, zone_name(r.grade.zone.as_deref()))
                .map_err(failed)?;
            sheet.write_string(row, 9, provincial(r)).map_err(failed)?;
        }
        let last = u32::try_from(of_kind.len()).unwrap_or(u32::MAX);
        sheet.set_freeze_panes(1, 0).map_err(failed)?;
        sheet.autofilter(0, 0, last, 9).map_err(failed)?;
        for (c, width) in (0u16..).zip([10.0, 10.0, 48.0, 10.0, 9.0, 8.0, 9.0, 28.0, 8.0, 20.0]) {
            sheet.set_column_width(c, width).map_err(failed)?;
        }
    }
    if rows.is_empty() {
        // A workbook needs a sheet: an empty ranking still opens.
        let sheet = book.add_worksheet();
        sheet.set_name(format!("Hasil {year}")).map_err(failed)?;
        for (c, title) in (0u16..).zip(COLUMNS) {
            sheet
                .write_string_with_format(0, c, title, &header)
                .map_err(failed)?;
        }
    }
    book.save_to_buffer().map_err(failed)
}

fn internal(message: String) -> ApiError {
    ApiError::Internal(InternalError(message.into()))
}

/// A published score as the spreadsheet's number.
fn number(score: Decimal) -> f64 {
    score.round_dp(2).to_f64().unwrap_or_default()
}
