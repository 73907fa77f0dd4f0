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
use crate::routes::cycles::progress::ProgressByOffice;
use crate::routes::results::{EntityResultView, ProvinceSummary, UnitResultView};
use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::{Component, Zone};

/// The media type of an XLSX workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Most rows an export holds (every entity of a cycle is about 600; every unit about 3,800, or
/// 38,000 when every government assesses all its units). A larger selection is refused, never
/// cut short: the caller narrows it with the filters.
pub const MAX_EXPORT_ROWS: i64 = 20_000;

/// Refuses an export of more than [`MAX_EXPORT_ROWS`] rows (the query reads one more to know).
fn within_limit(rows: usize) -> ApiResult<()> {
    if i64::try_from(rows).unwrap_or(i64::MAX) > MAX_EXPORT_ROWS {
        return Err(ApiError::field(
            "format",
            format!(
                "more than {MAX_EXPORT_ROWS} rows match; narrow the export with province, kind, grade or entity"
            ),
        ));
    }
    Ok(())
}

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

/// One cell of an exported table.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A published score: a number formatted `0.00` (empty when `None`).
    Score(Option<Decimal>),
    /// A grade code, filled with its zone's colour (`green`, `yellow`, `red`).
    Grade {
        /// The grade's code.
        code: String,
        /// Its zone, where the methodology has zones.
        zone: Option<String>,
    },
}

impl Cell {
    /// The cell as CSV text (decimal point).
    fn text(&self) -> String {
        match self {
            Cell::Text(t) | Cell::Grade { code: t, .. } => t.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Score(s) => s.map(|s| s.round_dp(2).to_string()).unwrap_or_default(),
        }
    }
}

/// A table to export: a sheet of a workbook (a CSV file takes every sheet's rows under the
/// first one's header).
#[derive(Debug, Clone)]
pub struct Sheet {
    /// The sheet's name (at most 31 characters).
    pub name: String,
    /// Column titles, in Bahasa Indonesia.
    pub columns: Vec<String>,
    /// The rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// Column widths in characters.
    pub widths: Vec<f64>,
}

/// The JSON answer of an address that answers CSV and XLSX too: `Vary: Accept`, as the files
/// carry it.
pub fn json<T: serde::Serialize>(body: T) -> Response {
    let mut response = crate::extract::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// `sheets` as an answer in `format` (CSV or XLSX), downloaded as `{file}.csv` or `{file}.xlsx`.
pub fn answer(format: Format, file: &str, sheets: &[Sheet]) -> ApiResult<Response> {
    let (body, content_type, extension) = match format {
        Format::Csv => (csv(sheets)?, "text/csv; charset=utf-8", "csv"),
        Format::Xlsx => (xlsx(sheets)?, XLSX, "xlsx"),
        Format::Json => {
            return Err(internal("a JSON page is not an export".to_owned()));
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

fn csv(sheets: &[Sheet]) -> ApiResult<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| internal(format!("writing CSV: {e}"));
    if let Some(first) = sheets.first() {
        out.write_record(&first.columns).map_err(failed)?;
    }
    for row in sheets.iter().flat_map(|s| &s.rows) {
        out.write_record(row.iter().map(Cell::text))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| internal(format!("writing CSV: {e}")))
}

fn xlsx(sheets: &[Sheet]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::{Color, Format as Style, FormatBorder, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    let header = Style::new()
        .set_bold()
        .set_background_color(Color::RGB(0x00D9_E1F2))
        .set_border_bottom(FormatBorder::Thin);
    let score = Style::new().set_num_format("0.00");
    let zone_fill = |zone: Option<&str>| {
        let rgb = match zone {
            Some("green") => 0x00C6_EFCE,
            Some("yellow") => 0x00FF_EB9C,
            Some("red") => 0x00FF_C7CE,
            _ => return None,
        };
        Some(Style::new().set_background_color(Color::RGB(rgb)))
    };
    for s in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(&s.name).map_err(failed)?;
        for (c, title) in (0u16..).zip(&s.columns) {
            sheet
                .write_string_with_format(0, c, title, &header)
                .map_err(failed)?;
        }
        for (r, row) in (1u32..).zip(&s.rows) {
            for (c, cell) in (0u16..).zip(row) {
                match cell {
                    Cell::Text(t) => sheet.write_string(r, c, t),
                    #[allow(clippy::cast_precision_loss)] // ranks and counts: far below 2^52
                    Cell::Int(n) => sheet.write_number(r, c, *n as f64),
                    Cell::Score(Some(v)) => {
                        sheet.write_number_with_format(r, c, number(*v), &score)
                    }
                    Cell::Score(None) => continue,
                    Cell::Grade { code, zone } => match zone_fill(zone.as_deref()) {
                        Some(fill) => sheet.write_string_with_format(r, c, code, &fill),
                        None => sheet.write_string(r, c, code),
                    },
                }
                .map_err(failed)?;
            }
        }
        let last_row = u32::try_from(s.rows.len()).unwrap_or(u32::MAX);
        let last_col = u16::try_from(s.columns.len().saturating_sub(1)).unwrap_or(0);
        sheet.set_freeze_panes(1, 0).map_err(failed)?;
        sheet.autofilter(0, 0, last_row, last_col).map_err(failed)?;
        for (c, width) in (0u16..).zip(&s.widths) {
            sheet.set_column_width(c, *width).map_err(failed)?;
        }
    }
    book.save_to_buffer().map_err(failed)
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

/// Entity results as an answer in `format`, named after `year`: a workbook has one sheet per
/// kind (ministries first), a CSV file one table in the order asked for.
pub fn entity_results(format: Format, year: u16, rows: &[EntityResultView]) -> ApiResult<Response> {
    within_limit(rows.len())?;
    let row = |r: &EntityResultView| {
        vec![
            Cell::Int(i64::from(r.national_rank.rank)),
            Cell::Text(r.code.clone()),
            Cell::Text(r.name.clone()),
            Cell::Text(
                KINDS
                    .iter()
                    .find(|(kind, _)| *kind == r.kind)
                    .map_or_else(|| r.kind.clone(), |(_, name)| (*name).to_owned()),
            ),
            Cell::Text(r.province_code.clone().unwrap_or_default()),
            Cell::Score(Some(r.score)),
            Cell::Grade {
                code: r.grade.code.clone(),
                zone: r.grade.zone.clone(),
            },
            Cell::Text(r.grade.label.clone()),
            Cell::Text(zone_name(r.grade.zone.as_deref()).to_owned()),
            Cell::Text(
                r.provincial_rank
                    .map(|p| format!("{} dari {}", p.rank, p.of))
                    .unwrap_or_default(),
            ),
        ]
    };
    let columns: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let widths = vec![10.0, 10.0, 48.0, 10.0, 9.0, 8.0, 9.0, 28.0, 8.0, 20.0];
    if format == Format::Csv {
        // One table, in the order asked for (`sort`), kind in its own column.
        let all = Sheet {
            name: format!("Hasil {year}"),
            columns,
            rows: rows.iter().map(row).collect(),
            widths,
        };
        return answer(format, &format!("hasil-{year}"), &[all]);
    }
    let mut sheets: Vec<Sheet> = KINDS
        .iter()
        .map(|(kind, name)| Sheet {
            name: (*name).to_owned(),
            columns: columns.clone(),
            rows: rows.iter().filter(|r| r.kind == *kind).map(row).collect(),
            widths: widths.clone(),
        })
        .filter(|s| !s.rows.is_empty())
        .collect();
    if sheets.is_empty() {
        // A workbook needs a sheet: an empty ranking still opens.
        sheets.push(Sheet {
            name: format!("Hasil {year}"),
            columns,
            rows: Vec::new(),
            widths,
        });
    }
    answer(format, &format!("hasil-{year}"), &sheets)
}

/// The province summary as an answer in `format`, named after `year`: code, name, entities
/// scored, mean score, and the entities of each grade (one column per grade code).
pub fn province_summaries(
    format: Format,
    year: u16,
    rows: &[ProvinceSummary],
) -> ApiResult<Response> {
    let mut grades: Vec<String> = rows
        .iter()
        .filter_map(|r| r.grades.as_object())
        .flat_map(|g| g.keys().cloned())
        .collect();
    grades.sort_unstable();
    grades.dedup();
    let mut columns: Vec<String> = ["Kode", "Provinsi", "Entitas dinilai", "Rata-rata"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    columns.extend(grades.iter().map(|g| format!("Predikat {g}")));
    let mut widths = vec![8.0, 30.0, 15.0, 11.0];
    widths.extend(grades.iter().map(|_| 11.0));
    let sheet = Sheet {
        name: "Provinsi".to_owned(),
        columns,
        rows: rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    Cell::Text(r.code.clone()),
                    Cell::Text(r.name.clone()),
                    Cell::Int(r.entities),
                    Cell::Score(r.mean_score),
                ];
                row.extend(
                    grades
                        .iter()
                        .map(|g| Cell::Int(r.grades[g.as_str()].as_i64().unwrap_or(0))),
                );
                row
            })
            .collect(),
        widths,
    };
    answer(format, &format!("provinsi-{year}"), &[sheet])
}

/// Collection progress per office as an answer in `format`, named after the cycle: one row per
/// office (HQ's own units last), the sampled units and where they stand, and the days left.
pub fn progress(format: Format, p: &ProgressByOffice) -> ApiResult<Response> {
    let columns: Vec<String> = [
        "Kode kantor",
        "Kantor perwakilan",
        "Unit sampel",
        "Belum dimulai",
        "Draf",
        "Diajukan",
        "Dikembalikan",
        "Terverifikasi",
        "Dikecualikan",
        "Sisa hari",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    let count = |n: usize| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let rows = p
        .offices
        .iter()
        .map(|o| {
            let c = &o.counts;
            vec![
                Cell::Text(o.office.clone().unwrap_or_default()),
                Cell::Text(
                    o.name
                        .clone()
                        .unwrap_or_else(|| "Kantor pusat (kementerian dan lembaga)".to_owned()),
                ),
                count(o.sampled),
                count(c.not_started),
                count(c.draft),
                count(c.submitted),
                count(c.returned),
                count(c.verified),
                count(c.excluded),
                p.days_left.map_or(Cell::Text(String::new()), Cell::Int),
            ]
        })
        .collect();
    let sheet = Sheet {
        name: format!("Kemajuan {}", p.year),
        columns,
        rows,
        widths: vec![12.0, 52.0, 11.0, 13.0, 8.0, 10.0, 13.0, 13.0, 13.0, 10.0],
    };
    answer(format, &format!("kemajuan-{}", p.year), &[sheet])
}

/// Which table of the unit results a CSV file holds (a workbook holds both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitTable {
    /// One row per unit (and product), with its dimension scores.
    Units,
    /// One row per deficiency of each unit, largest loss first.
    Deficiencies,
}

impl UnitTable {
    /// The `table` parameter: `units` (the default) or `deficiencies`.
    pub fn parse(param: Option<&str>) -> ApiResult<Self> {
        match param {
            None | Some("units") => Ok(UnitTable::Units),
            Some("deficiencies") => Ok(UnitTable::Deficiencies),
            Some(other) => Err(ApiError::field(
                "table",
                format!("unknown table `{other}` (units, deficiencies)"),
            )),
        }
    }
}

/// A stored decimal (text in the results' JSON) as a published figure: rounded half-up to two
/// decimals, as every published score is.
fn published(value: &serde_json::Value) -> Option<Decimal> {
    value
        .as_str()
        .and_then(|s| s.parse::<Decimal>().ok())
        .map(kepatuhan_core::score::round_published)
}

/// The zone of a grade in a methodology, as the exports name zones.
fn grade_cell(m: &Methodology, code: &str) -> Cell {
    let zone = m
        .bands()
        .bands()
        .iter()
        .find(|b| b.code == code)
        .and_then(|b| b.zone)
        .map(|z| match z {
            Zone::Green => "green",
            Zone::Yellow => "yellow",
            Zone::Red => "red",
        });
    Cell::Grade {
        code: code.to_owned(),
        zone: zone.map(str::to_owned),
    }
}

/// Unit results as an answer in `format`, named after `year`: a workbook with a sheet of units
/// (one row per unit and product: its score, grade and the score of each dimension of the
/// methodology) and a sheet of their deficiencies (what lost the most points, in plain words);
/// a CSV file holds the `table` asked for.
pub fn unit_results(
    format: Format,
    table: UnitTable,
    year: u16,
    m: &Methodology,
    rows: &[UnitResultView],
) -> ApiResult<Response> {
    within_limit(rows.len())?;
    let dimensions = m.dimensions();
    let mut columns: Vec<String> = [
        "Kode instansi",
        "Instansi",
        "Provinsi",
        "ID unit",
        "Unit layanan",
        "Produk",
        "Nilai",
        "Predikat",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    columns.extend(dimensions.iter().map(|d| format!("Dimensi {}", d.name)));
    let mut widths = vec![12.0, 40.0, 9.0, 9.0, 44.0, 16.0, 8.0, 9.0];
    widths.extend(dimensions.iter().map(|_| 14.0));
    let mut unit_rows = Vec::new();
    let mut deficiency_rows = Vec::new();
    for r in rows {
        let products = r.breakdown.as_array().cloned().unwrap_or_default();
        for product in products
            .iter()
            .chain(products.is_empty().then_some(&serde_json::Value::Null))
        {
            let mut row = vec![
                Cell::Text(r.entity_code.clone()),
                Cell::Text(r.entity_name.clone()),
                Cell::Text(r.province_code.clone().unwrap_or_default()),
                Cell::Int(r.unit_id),
                Cell::Text(r.unit_name.clone()),
                Cell::Text(product["label"].as_str().unwrap_or_default().to_owned()),
                Cell::Score(Some(r.score)),
                grade_cell(m, &r.grade),
            ];
            row.extend(dimensions.iter().map(|d| {
                let scored = product["dimensions"]
                    .as_array()
                    .and_then(|ds| ds.iter().find(|x| x["code"] == d.code.as_str()));
                Cell::Score(scored.and_then(|x| published(&x["score"])))
            }));
            unit_rows.push(row);
        }
        deficiency_rows.extend(deficiencies(m, r));
    }
    let units = Sheet {
        name: "Unit".to_owned(),
        columns,
        rows: unit_rows,
        widths,
    };
    let deficiencies = Sheet {
        name: "Kekurangan".to_owned(),
        columns: [
            "Kode instansi",
            "ID unit",
            "Unit layanan",
            "Urutan",
            "Jenis",
            "Kode",
            "Uraian",
            "Dimensi",
            "Poin hilang",
        ]
        .iter()
        .map(|c| (*c).to_owned())
        .collect(),
        rows: deficiency_rows,
        widths: vec![12.0, 9.0, 44.0, 8.0, 10.0, 28.0, 60.0, 14.0, 11.0],
    };
    let file = format!("unit-{year}");
    match (format, table) {
        (Format::Csv, UnitTable::Units) => answer(format, &file, &[units]),
        (Format::Csv, UnitTable::Deficiencies) => {
            answer(format, &format!("kekurangan-{year}"), &[deficiencies])
        }
        _ => answer(format, &file, &[units, deficiencies]),
    }
}

/// A unit's deficiencies as rows: what lost the most points, largest first, in plain words.
fn deficiencies(m: &Methodology, r: &UnitResultView) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (n, d) in (1i64..).zip(r.deficiencies.as_array().into_iter().flatten()) {
        let source = &d["source"];
        let code = source["code"].as_str().unwrap_or_default();
        let (kind, name) = if source["kind"] == "survey" {
            ("Survei", survey_name(m, code))
        } else {
            (
                "Indikator",
                source["name"].as_str().unwrap_or(code).to_owned(),
            )
        };
        let dimension = source["dimension"]
            .as_str()
            .and_then(|c| m.dimensions().iter().find(|x| x.code == c))
            .map(|x| x.name.clone())
            .unwrap_or_default();
        rows.push(vec![
            Cell::Text(r.entity_code.clone()),
            Cell::Int(r.unit_id),
            Cell::Text(r.unit_name.clone()),
            Cell::Int(n),
            Cell::Text(kind.to_owned()),
            Cell::Text(code.to_owned()),
            Cell::Text(name),
            Cell::Text(dimension),
            Cell::Score(published(&d["lost_points"])),
        ]);
    }
    rows
}

/// The Indonesian name of a survey (a survey variable's or a survey component's name).
pub(crate) fn survey_name(m: &Methodology, code: &str) -> String {
    let variable = m
        .dimensions()
        .iter()
        .flat_map(|d| &d.variables)
        .find(|v| v.code == code)
        .map(|v| v.name.clone());
    let component = || {
        m.composition().iter().find_map(|c| match c {
            Component::Survey { name, survey, .. } if survey.code == code => Some(name.clone()),
            _ => None,
        })
    };
    variable
        .or_else(component)
        .unwrap_or_else(|| code.to_owned())
}

fn internal(message: String) -> ApiError {
    ApiError::Internal(InternalError(message.into()))
}

/// A published score as the spreadsheet's number.
fn number(score: Decimal) -> f64 {
    score.round_dp(2).to_f64().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_larger_than_the_limit_is_refused_not_cut() {
        let limit = usize::try_from(MAX_EXPORT_ROWS).unwrap();
        assert!(within_limit(limit).is_ok());
        let refused = within_limit(limit + 1).unwrap_err();
        assert!(
            matches!(&refused, ApiError::Validation { errors, .. } if errors[0].message.contains("narrow")),
            "{refused:?}"
        );
    }
}
