//! The assessment workbook: the cycle's methodology as a spreadsheet to fill in, one sheet per
//! sampled unit, and its upload, which creates or updates the units' drafts by the same rules as
//! the JSON bulk upload.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/templates/assessment.xlsx` | admin, office (its provinces), assessor (assigned units, collecting) |
//! | `POST /cycles/{year}/submissions/import` | admin, office (its provinces), assessor (assigned units, collecting) |
//!
//! A unit's sheet holds, in its hidden column A, the unit's key (`A1`,
//! `kepatuhan:assessment:{year}:unit:{id}`) and each row's indicator code, so a renamed sheet or
//! a re-sorted row still maps back. Rows start at row 6; the columns are listed in
//! [`COLUMNS`]. Values are chosen from a list (data validation); the cells a person must not edit
//! are locked (sheet protection without a password: it guards against slips, it is not
//! encryption). The template carries the values already entered, so it is also the export of
//! the drafts.
//!
//! The upload (XLSX, or CSV with the header `unit_id,indicator,value,not_applicable,evidence_note`)
//! is all or nothing. A row with neither a level nor "Ya" under *Tidak berlaku* is not given and
//! leaves the unit's value as it is; a given row sets the value and its note (an empty note
//! clears it). Re-uploading the same file changes nothing; rows of a submitted or verified unit
//! that equal its stored values are skipped, and a changed value there is refused.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::{Indicator, VariableMeasure};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ValueInput;
use super::may_edit;
use super::values::{insert_draft, validate_values_at, write_values};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::export::XLSX;
use crate::extract::{BodyRejection, Json, Path, Query, bytes_problem, media_type};
use crate::problem::{FieldError, Problem};
use crate::routes::cycles::{self, Cycle, sample};
use crate::workbook::{self as book, Key, Styles, TemplateQuery, cell_ref, row_height};
use kepatuhan_app::cycles as app_cycles;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(template))
        .routes(routes!(import))
}

use crate::workbook::MAX_UNITS;

/// Row (from 0) of the column titles; indicators follow from the next row (row 6 as a
/// spreadsheet counts).
const HEADER_ROW: u32 = 4;
const FIRST_ROW: u32 = HEADER_ROW + 1;

// Columns of a unit's sheet (from 0).
const CODE: u16 = 0;
const VALUE: u16 = 4;
const NOT_APPLICABLE: u16 = 5;
const NOTE: u16 = 6;

/// The columns of a unit's sheet, in Bahasa Indonesia: the hidden indicator code, where the
/// indicator sits, what it asks, the three cells to fill (level, not applicable, evidence
/// note), the levels' meanings and whether evidence is expected.
pub const COLUMNS: [&str; 9] = [
    "Kode indikator",
    "Dimensi",
    "Variabel",
    "Indikator",
    "Nilai",
    "Tidak berlaku",
    "Catatan bukti",
    "Arti tiap tingkat",
    "Bukti",
];
const WIDTHS: [f64; 9] = [20.0, 14.0, 22.0, 44.0, 8.0, 12.0, 36.0, 60.0, 12.0];

/// The word under *Tidak berlaku* that marks an indicator not applicable.
const YES: &str = "Ya";

/// The form name in the sheets' keys.
const FORM: &str = "assessment";

/// A unit's sheet as the template writes it.
struct UnitSheet {
    unit_id: i64,
    unit_name: String,
    entity: String,
    state: Option<String>,
    values: HashMap<String, Stored>,
}

/// A value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    value: Option<i16>,
    not_applicable: bool,
    evidence_note: String,
}

/// The assessment workbook of a cycle, to fill in offline and upload again.
///
/// One sheet per sampled unit (at most 250: choose an office or an entity), after a cover sheet
/// of instructions in Bahasa Indonesia; each with the values already entered. An office gets its
/// provinces' sample, an assessor its assigned units.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/templates/assessment.xlsx", operation_id = "get_assessment_workbook", tag = "submissions", params(("year" = i64, Path, description = "Cycle year"), TemplateQuery), responses((status = 200, description = "The workbook", content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn template(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(query): Query<TemplateQuery>,
) -> ApiResult<Response> {
    let (cycle, units) = book::template_units(&state, &actor, raw, &query).await?;
    let m = state.require_methodology(&cycle.methodology)?.clone();
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let mut stored = stored_values(&state.pool, cycle.id, &ids).await?;
    let sheets: Vec<UnitSheet> = units
        .into_iter()
        .map(|u| UnitSheet {
            values: stored.remove(&u.unit_id).unwrap_or_default(),
            unit_id: u.unit_id,
            unit_name: u.unit_name,
            entity: format!("{} ({})", u.entity_name, u.entity_code),
            state: u.submission_state,
        })
        .collect();
    let year = cycle.year.get();
    let bytes = crate::workbook::blocking(move || write_template(&m, year, &sheets)).await?;
    Ok(book::download(bytes, &format!("penilaian-{year}.xlsx")))
}

/// The stored values of the units' submissions in a cycle, per unit and indicator.
async fn stored_values<'e>(
    db: impl sqlx::PgExecutor<'e>,
    cycle_id: i64,
    units: &[i64],
) -> ApiResult<HashMap<i64, HashMap<String, Stored>>> {
    if units.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        r#"SELECT s.unit_id, v.indicator_code, v.value, v.not_applicable, v.evidence_note
           FROM submissions s JOIN submission_values v ON v.submission_id = s.id
           WHERE s.cycle_id = $1 AND s.unit_id = ANY($2)"#,
        cycle_id,
        units
    )
    .fetch_all(db)
    .await?;
    let mut out: HashMap<i64, HashMap<String, Stored>> = HashMap::new();
    for r in rows {
        out.entry(r.unit_id).or_default().insert(
            r.indicator_code,
            Stored {
                value: r.value,
                not_applicable: r.not_applicable,
                evidence_note: r.evidence_note,
            },
        );
    }
    Ok(out)
}

/// A submission state as the workbook names it.
fn state_name(state: Option<&str>) -> &'static str {
    match state {
        None => "belum dimulai",
        Some("draft") => "draf",
        Some("submitted") => "diajukan (terkunci)",
        Some("returned") => "dikembalikan untuk diperbaiki",
        Some("verified") => "terverifikasi (terkunci)",
        Some(_) => "",
    }
}

/// Whether values of a unit in this state may still change.
fn editable(state: Option<&str>) -> bool {
    matches!(state, None | Some("draft" | "returned"))
}

/// Every assessed indicator with its dimension and variable names, in the methodology's order.
fn indicator_rows(m: &Methodology) -> Vec<(&str, &str, &Indicator)> {
    let mut rows = Vec::with_capacity(m.indicator_count());
    for d in m.dimensions() {
        for v in &d.variables {
            if let VariableMeasure::Indicators { indicators, .. } = &v.measure {
                rows.extend(
                    indicators
                        .iter()
                        .map(|i| (d.name.as_str(), v.name.as_str(), i)),
                );
            }
        }
    }
    rows
}

/// Writes the workbook: the cover sheet, then one sheet per unit.
fn write_template(m: &Methodology, year: u16, units: &[UnitSheet]) -> ApiResult<Vec<u8>> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let styles = Styles::new();
    write_cover(&mut wb, m, year, units.len())?;
    let rows = indicator_rows(m);
    let mut taken = HashSet::new();
    for unit in units {
        let sheet = wb.add_worksheet();
        sheet.set_name(book::sheet_name(&unit.unit_name, &unit.entity, &mut taken))?;
        sheet.write_string(0, CODE, Key::Unit(year, unit.unit_id).text(FORM))?;
        let head = [
            ("Unit layanan", unit.unit_name.clone()),
            ("Instansi", unit.entity.clone()),
            ("Status", state_name(unit.state.as_deref()).to_owned()),
            ("Metodologi", format!("{} ({year})", m.code())),
        ];
        for (r, (label, text)) in (0u32..).zip(head) {
            sheet.write_string_with_format(r, 1, label, &styles.bold)?;
            sheet.write_string(r, 3, &text)?;
        }
        for (c, title) in (0u16..).zip(COLUMNS) {
            sheet.write_string_with_format(HEADER_ROW, c, title, &styles.header)?;
        }
        for (r, (dimension, variable, ind)) in (FIRST_ROW..).zip(&rows) {
            sheet.write_string(r, CODE, &ind.code)?;
            sheet.write_string_with_format(r, 1, *dimension, &styles.wrap)?;
            sheet.write_string_with_format(r, 2, *variable, &styles.wrap)?;
            sheet.write_string_with_format(r, 3, &ind.name, &styles.wrap)?;
            write_inputs(sheet, &styles, r, ind, unit)?;
            let note = unit
                .values
                .get(&ind.code)
                .map_or(0, |v| v.evidence_note.len());
            let level_lines: usize = ind
                .scale
                .levels
                .iter()
                .map(|l| (l.description.chars().count() + 4).div_ceil(58))
                .sum();
            let height =
                row_height(&[(level_lines, 1), (ind.name.chars().count(), 42), (note, 34)]);
            sheet.set_row_height(r, height)?;
        }
        for (c, width) in (0u16..).zip(WIDTHS) {
            sheet.set_column_width(c, width)?;
        }
        sheet.set_column_hidden(CODE)?;
        sheet.set_freeze_panes(FIRST_ROW, 4)?;
        sheet.set_landscape();
        sheet.set_print_fit_to_pages(1, 0);
        sheet.set_repeat_rows(HEADER_ROW, HEADER_ROW)?;
        sheet.protect();
    }
    Ok(wb.save_to_buffer()?)
}

/// The cells of an indicator's row that a person fills (level from a list, "Ya" from a list
/// where the indicator may be not applicable, a note), with what is stored, and what the levels
/// mean. A submitted or verified unit's cells stay locked.
fn write_inputs(
    sheet: &mut rust_xlsxwriter::Worksheet,
    styles: &Styles,
    r: u32,
    ind: &Indicator,
    unit: &UnitSheet,
) -> ApiResult<()> {
    use rust_xlsxwriter::DataValidation;
    let edit = editable(unit.state.as_deref());
    let stored = unit.values.get(&ind.code);
    let input = if edit { &styles.open } else { &styles.closed };
    match stored.and_then(|s| s.value) {
        Some(v) => sheet.write_number_with_format(r, VALUE, f64::from(v), input)?,
        None => sheet.write_blank(r, VALUE, input)?,
    };
    let na_format = if edit && ind.not_applicable_allowed {
        &styles.open
    } else {
        &styles.closed
    };
    if stored.is_some_and(|s| s.not_applicable) {
        sheet.write_string_with_format(r, NOT_APPLICABLE, YES, na_format)?;
    } else {
        sheet.write_blank(r, NOT_APPLICABLE, na_format)?;
    }
    let note = stored.map_or("", |s| s.evidence_note.as_str());
    let note_format = if edit {
        &styles.open_wrap
    } else {
        &styles.closed
    };
    sheet.write_string_with_format(r, NOTE, note, note_format)?;
    let levels: Vec<String> = ind
        .scale
        .levels
        .iter()
        .map(|l| format!("{} = {}", l.value, l.description))
        .collect();
    sheet.write_string_with_format(r, 7, levels.join("\n"), &styles.wrap)?;
    if ind.evidence_expected {
        sheet.write_string(r, 8, "Diharapkan")?;
    }
    let allowed: Vec<String> = ind
        .scale
        .levels
        .iter()
        .map(|l| l.value.to_string())
        .collect();
    let list = DataValidation::new()
        .allow_list_strings(&allowed)?
        .set_error_title("Nilai tidak ada dalam skala")?
        .set_error_message(format!(
            "Pilih salah satu tingkat dari daftar: {}.",
            allowed.join(", ")
        ))?;
    sheet.add_data_validation(r, VALUE, r, VALUE, &list)?;
    if ind.not_applicable_allowed {
        let na = DataValidation::new()
            .allow_list_strings(&[YES])?
            .set_error_message(
                "Isi \"Ya\" bila indikator tidak berlaku untuk unit ini, atau kosongkan.",
            )?;
        sheet.add_data_validation(r, NOT_APPLICABLE, r, NOT_APPLICABLE, &na)?;
    }
    Ok(())
}

/// The instructions sheet, first in the workbook.
fn write_cover(
    wb: &mut rust_xlsxwriter::Workbook,
    m: &Methodology,
    year: u16,
    units: usize,
) -> ApiResult<()> {
    let lines = [
        format!("Metodologi: {} ({}). Lembar kerja ini memuat {units} unit layanan, satu lembar (sheet) per unit.", m.name(), m.code()),
        "Cara mengisi:".to_owned(),
        "1. Pada setiap lembar unit, pilih nilai tiap indikator di kolom \"Nilai\" dari daftar pilihan. Arti tiap tingkat ada di kolom \"Arti tiap tingkat\".".to_owned(),
        "2. Bila indikator tidak berlaku untuk unit itu (hanya bila sel kolom \"Tidak berlaku\" dapat diisi), pilih \"Ya\" dan kosongkan \"Nilai\".".to_owned(),
        "3. Tulis di \"Catatan bukti\" apa yang diamati atau dokumen yang diperiksa. Kolom \"Bukti\" menandai indikator yang buktinya diharapkan.".to_owned(),
        "4. Baris yang \"Nilai\" dan \"Tidak berlaku\"-nya kosong tidak mengubah apa pun. Catatan yang dikosongkan pada baris yang diisi akan dihapus.".to_owned(),
        "5. Unggah berkas ini (.xlsx) ke POST /api/v1/cycles/{tahun}/submissions/import. Semua lembar diperiksa lebih dahulu: bila ada kesalahan, tidak ada yang disimpan, dan setiap kesalahan disebut dengan lembar dan selnya.".to_owned(),
        "Jangan menambah, menghapus atau menggabungkan (merge) baris dan sel, jangan mengisi rumus, dan jangan mengubah kolom A yang tersembunyi: kolom itu menghubungkan baris dengan indikatornya. Nama lembar dan urutan baris boleh diubah.".to_owned(),
        "Unit yang sudah diajukan atau terverifikasi terkunci: nilainya hanya dapat diubah setelah dikembalikan oleh kantor perwakilan. Mengunggah ulang berkas yang sama tidak mengubah apa pun.".to_owned(),
        format!("Batas: {MAX_UNITS} unit per berkas, {} MB per berkas.", book::MAX_WORKBOOK_BYTES / (1024 * 1024)),
    ];
    book::write_cover(
        wb,
        &Key::Cover(year).text(FORM),
        &format!("Lembar kerja penilaian kepatuhan {year}"),
        &lines,
    )
}

/// Where a value came from, to name it in errors.
#[derive(Debug, Clone)]
enum Origin {
    /// A row of a unit's sheet (row from 0).
    Cell { sheet: String, row: u32 },
    /// A line of a CSV file (from 1, the header being line 1).
    Line(u64),
}

impl Origin {
    /// Where `field` of this value is: a cell (`'Dinas Sosial'!E7`) or a CSV line.
    fn at(&self, field: &str) -> String {
        match self {
            Origin::Cell { sheet, row } => {
                let col = match field {
                    "value" => VALUE,
                    "not_applicable" => NOT_APPLICABLE,
                    "evidence_note" | "attachments" => NOTE,
                    _ => CODE,
                };
                cell_ref(sheet, *row, u32::from(col))
            }
            Origin::Line(n) => format!("line {n}: {field}"),
        }
    }
}

/// The values given for one unit.
#[derive(Debug)]
struct UnitRows {
    unit_id: i64,
    /// Where the unit was named (the sheet's key cell, or the CSV line).
    named_at: String,
    /// The sheet's name, when from a workbook.
    sheet: Option<String>,
    values: Vec<ValueInput>,
    origins: Vec<Origin>,
}

/// A level as typed or chosen: a whole number (the spreadsheet may hold `3` as a number or as
/// text).
fn level(cell: &calamine::Data) -> Result<Option<i64>, String> {
    use calamine::Data;
    match cell {
        Data::Empty => Ok(None),
        #[allow(clippy::cast_possible_truncation)] // checked to be a small whole number
        Data::Float(f) if f.fract() == 0.0 && f.abs() <= 1e6 => Ok(Some(*f as i64)),
        Data::Int(i) => Ok(Some(*i)),
        Data::String(s) if s.trim().is_empty() => Ok(None),
        Data::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("`{}` is not a level: choose one from the list", s.trim())),
        other => Err(format!(
            "`{other}` is not a level: choose one from the list"
        )),
    }
}

/// "Ya" (or yes, true, 1) under *Tidak berlaku*; empty or "Tidak" is no.
fn yes(text: Option<&str>) -> Result<bool, String> {
    match text.map(str::to_lowercase).as_deref() {
        None | Some("tidak" | "no" | "false" | "0" | "n" | "-") => Ok(false),
        Some("ya" | "y" | "yes" | "true" | "1" | "x") => Ok(true),
        Some(other) => Err(format!("`{other}`: write \"{YES}\" or leave it empty")),
    }
}

/// The units' values in a workbook of `year`'s template, or every problem found in it.
fn rows_from_workbook(
    sheets: &[book::Sheet],
    year: u16,
    m: &Methodology,
) -> Result<Vec<UnitRows>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut units = Vec::new();
    for sheet in sheets {
        let key = sheet.text(0, 0).unwrap_or_default();
        let unit_id = match Key::parse(FORM, &key) {
            Some(Key::Cover(y) | Key::Unit(y, _)) if y != year => {
                errors.push(sheet.error(
                    0,
                    0,
                    format!("this sheet is from the {y} template; download the {year} template and copy the values into it"),
                ));
                continue;
            }
            Some(Key::Cover(_)) => continue,
            Some(Key::Unit(_, id)) => id,
            None => {
                errors.push(sheet.error(
                    0,
                    0,
                    format!("this sheet is not part of the {year} assessment template (its hidden cell A1 holds the unit's key); remove it, or copy its values into the template's sheets"),
                ));
                continue;
            }
        };
        units.push(unit_rows(sheet, unit_id, year, m, &mut errors));
    }
    if units.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "file",
            format!("the workbook has no unit sheet of the {year} assessment template"),
        ));
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(errors)
    }
}

/// The values a unit's sheet gives, row by row; problems are added to `errors`.
fn unit_rows(
    sheet: &book::Sheet,
    unit_id: i64,
    year: u16,
    m: &Methodology,
    errors: &mut Vec<FieldError>,
) -> UnitRows {
    errors.extend(sheet.structure_errors(&[
        u32::from(VALUE),
        u32::from(NOT_APPLICABLE),
        u32::from(NOTE),
    ]));
    let mut seen = HashSet::new();
    let mut rows = UnitRows {
        unit_id,
        named_at: cell_ref(&sheet.name, 0, 0),
        sheet: Some(sheet.name.clone()),
        values: Vec::new(),
        origins: Vec::new(),
    };
    for r in FIRST_ROW..=sheet.last_row().unwrap_or(0) {
        let value = sheet.get(r, u32::from(VALUE));
        let na = sheet.text(r, u32::from(NOT_APPLICABLE));
        let note = sheet.text(r, u32::from(NOTE));
        let Some(code) = sheet.text(r, u32::from(CODE)) else {
            if !matches!(value, calamine::Data::Empty) || na.is_some() || note.is_some() {
                errors.push(sheet.error(r, u32::from(VALUE), format!("row {} has no indicator (hidden column A is empty): rows cannot be added, each indicator has its row", r + 1)));
            }
            continue;
        };
        if m.indicator_id(&code).is_none() {
            errors.push(sheet.error(r, u32::from(CODE), format!("`{code}` is not an indicator of methodology {}: download the {year} template again", m.code())));
            continue;
        }
        if !seen.insert(code.clone()) {
            errors.push(sheet.error(
                r,
                u32::from(CODE),
                format!("the row of `{code}` appears twice: remove the copy"),
            ));
            continue;
        }
        let value = level(value).map_err(|e| errors.push(sheet.error(r, u32::from(VALUE), e)));
        let na = yes(na.as_deref())
            .map_err(|e| errors.push(sheet.error(r, u32::from(NOT_APPLICABLE), e)));
        let (Ok(value), Ok(not_applicable)) = (value, na) else {
            continue;
        };
        if value.is_none() && !not_applicable {
            if note.is_some() {
                errors.push(sheet.error(
                    r,
                    u32::from(NOTE),
                    format!(
                        "a note needs a level in {} or \"{YES}\" in {}",
                        book::cell_name(r, u32::from(VALUE)),
                        book::cell_name(r, u32::from(NOT_APPLICABLE))
                    ),
                ));
            }
            continue;
        }
        rows.values.push(ValueInput {
            indicator: code,
            value,
            not_applicable,
            evidence_note: Some(note.unwrap_or_default()),
            attachments: None,
        });
        rows.origins.push(Origin::Cell {
            sheet: sheet.name.clone(),
            row: r,
        });
    }
    let removed: Vec<&str> = m
        .indicator_ids()
        .map(|i| m.indicator(i).code.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    if !removed.is_empty() {
        errors.push(sheet.error(
            FIRST_ROW,
            u32::from(CODE),
            format!(
                "the rows of {} were removed; download the template again",
                removed.join(", ")
            ),
        ));
    }
    rows
}

/// A line of the CSV form of the upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    unit_id: i64,
    indicator: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    not_applicable: Option<String>,
    #[serde(default)]
    evidence_note: Option<String>,
}

/// The units' values in the CSV form, grouped by unit in the order first named.
fn rows_from_csv(raw: &[u8]) -> ApiResult<Vec<UnitRows>> {
    let mut errors = Vec::new();
    let mut units: HashMap<i64, UnitRows> = HashMap::new();
    let mut order = Vec::new();
    for (line, row) in crate::bulk::parse_csv_lines::<CsvRow>(raw)? {
        let at = |field: &str| format!("line {line}: {field}");
        let value = match row
            .value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => match v.parse() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(FieldError::new(
                        at("value"),
                        format!("`{v}` is not a level"),
                    ));
                    continue;
                }
            },
        };
        let given = row
            .not_applicable
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let not_applicable = match yes(given) {
            Ok(b) => b,
            Err(e) => {
                errors.push(FieldError::new(at("not_applicable"), e));
                continue;
            }
        };
        let note = row
            .evidence_note
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        if value.is_none() && !not_applicable {
            if !note.is_empty() {
                errors.push(FieldError::new(
                    at("evidence_note"),
                    "a note needs a value or not_applicable",
                ));
            }
            continue;
        }
        let unit = units.entry(row.unit_id).or_insert_with(|| {
            order.push(row.unit_id);
            UnitRows {
                unit_id: row.unit_id,
                named_at: at("unit_id"),
                sheet: None,
                values: Vec::new(),
                origins: Vec::new(),
            }
        });
        unit.values.push(ValueInput {
            indicator: row.indicator,
            value,
            not_applicable,
            evidence_note: Some(note),
            attachments: None,
        });
        unit.origins.push(Origin::Line(line));
    }
    if units.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("file", "the file holds no values"));
    }
    if errors.is_empty() {
        Ok(order.into_iter().filter_map(|u| units.remove(&u)).collect())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// What the upload did to one unit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportedUnit {
    /// The unit.
    pub unit_id: i64,
    /// Its sheet in the workbook (none for CSV).
    pub sheet: Option<String>,
    /// Its submission (none when nothing was given for a unit without one).
    pub submission_id: Option<i64>,
    /// Its version after the upload.
    pub version: Option<i32>,
    /// `created` (a new draft), `updated`, `unchanged` (same values as stored), `locked`
    /// (submitted or verified, and the file agrees with it) or `empty` (nothing given).
    pub outcome: String,
    /// How many values were written.
    pub values_written: usize,
}

/// Answer of an upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportOutcome {
    /// Drafts created.
    pub created: usize,
    /// Drafts whose values changed.
    pub updated: usize,
    /// Units the file left as they were (unchanged, locked or empty).
    pub unchanged: usize,
    /// Values written in all.
    pub values_written: usize,
    /// Each unit, in the file's order.
    pub units: Vec<ImportedUnit>,
}

/// Upload a filled assessment workbook (or its CSV form) and create or update the drafts.
///
/// All or nothing: every sheet is checked first (its key, every row and cell against the
/// methodology, the unit against your sample) and every problem is named by sheet and cell
/// (`'Dinas Kesehatan'!E14: 4 is not on the scale…`); nothing is written unless all are valid.
/// Unchanged values are not written again, so re-uploading a file changes nothing, and a
/// submitted or verified unit is skipped when the file agrees with it (a changed value there is
/// refused). At most 250 units and 8 MiB.
///
/// CSV: header `unit_id,indicator,value,not_applicable,evidence_note`, `,` or `;`, with or
/// without a byte-order mark.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting).
#[utoipa::path(post, path = "/cycles/{year}/submissions/import", operation_id = "import_submissions", tag = "submissions", params(("year" = i64, Path, description = "Cycle year")), request_body(content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (String = "text/csv"))), responses((status = 200, description = "What the upload did", body = ImportOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn import(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    req: Request,
) -> ApiResult<Response> {
    let actor_id = actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    may_edit(&actor, cycle.state)?;
    let m = state.require_methodology(&cycle.methodology)?.clone();
    let year = cycle.year.get();
    let media = media_type(&req);
    let body = match Bytes::from_request(req, &()).await {
        Ok(body) => body,
        Err(e) => return Ok(bytes_problem(&e).into_response()),
    };
    let units = match media.as_str() {
        XLSX => {
            let m = m.clone();
            crate::workbook::blocking(move || {
                let sheets = book::read(&body)?;
                rows_from_workbook(&sheets, year, &m).map_err(ApiError::fields)
            })
            .await?
        }
        "text/csv" => rows_from_csv(&body)?,
        other => {
            let got = if other.is_empty() { "none" } else { other };
            return Ok(BodyRejection::ContentType(format!(
                "{got} (send the workbook as {XLSX}, or text/csv)"
            ))
            .into_response());
        }
    };
    check_units(&state, &scope, &cycle, &m, &units).await?;
    let outcome = apply(&state, &actor, actor_id, &cycle, &units).await?;
    Ok(Json(outcome).into_response())
}

/// Checks every unit and value before anything is written: at most [`MAX_UNITS`] units, each
/// once, each sampled and yours, each value valid for the methodology.
async fn check_units(
    state: &AppState,
    scope: &crate::auth::Scope,
    cycle: &Cycle,
    m: &Methodology,
    units: &[UnitRows],
) -> ApiResult<()> {
    if units.len() > MAX_UNITS {
        return Err(ApiError::too_large(
            "workbook-too-large",
            format!(
                "the file holds {} units; at most {MAX_UNITS} per upload: split it by office or entity",
                units.len()
            ),
        ));
    }
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let visible = sample::sampled_units_in_scope(state, scope, cycle, &ids).await?;
    let mut errors = Vec::new();
    let mut seen = HashMap::new();
    for unit in units {
        if let Some(first) = seen.insert(unit.unit_id, &unit.named_at) {
            errors.push(FieldError::new(
                unit.named_at.clone(),
                format!("unit {} appears twice (also at {first})", unit.unit_id),
            ));
        } else if !visible.contains(&unit.unit_id) {
            errors.push(FieldError::new(
                unit.named_at.clone(),
                format!(
                    "unit {} is not in the sample of {} for you",
                    unit.unit_id, cycle.year
                ),
            ));
        }
        if let Err(ApiError::Validation { errors: e, .. }) =
            validate_values_at(m, &unit.values, |i, f| unit.origins[i].at(f))
        {
            errors.extend(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Writes the checked units in one transaction: new drafts, changed drafts; a submitted or
/// verified unit only if the file agrees with it (else every differing cell is refused and
/// nothing is written).
async fn apply(
    state: &AppState,
    actor: &Actor,
    actor_id: i64,
    cycle: &Cycle,
    units: &[UnitRows],
) -> ApiResult<ImportOutcome> {
    let mut tx = state.pool.begin().await?;
    // Checked again under the cycle's lock: the cycle may have moved on meanwhile.
    may_edit(
        actor,
        app_cycles::lock_shared(&mut tx, app_cycles::CycleId(cycle.id))
            .await?
            .state
            .into(),
    )?;
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let existing: HashMap<i64, (i64, String, i32)> = sqlx::query!(
        "SELECT id, unit_id, state, version FROM submissions WHERE cycle_id = $1 AND unit_id = ANY($2) ORDER BY id FOR UPDATE",
        cycle.id,
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.unit_id, (r.id, r.state, r.version)))
    .collect();
    let locked: Vec<i64> = existing
        .iter()
        .filter(|(_, (_, s, _))| !editable(Some(s)))
        .map(|(u, _)| *u)
        .collect();
    let mut stored = stored_values(&mut *tx, cycle.id, &locked).await?;
    let mut errors = Vec::new();
    let mut outcome = ImportOutcome {
        created: 0,
        updated: 0,
        unchanged: 0,
        values_written: 0,
        units: Vec::with_capacity(units.len()),
    };
    for unit in units {
        let (submission_id, version, result, written) = match existing.get(&unit.unit_id) {
            None if unit.values.is_empty() => (None, None, "empty", 0),
            None => {
                let Some((id, version)) =
                    insert_draft(&mut tx, actor_id, cycle.id, unit.unit_id, &unit.values).await?
                else {
                    return Err(ApiError::conflict(
                        "concurrent-change",
                        format!(
                            "unit {}'s draft was created meanwhile; upload again",
                            unit.unit_id
                        ),
                    ));
                };
                (Some(id), Some(version), "created", unit.values.len())
            }
            Some((id, s, version)) if editable(Some(s)) => {
                let written = write_values(&mut tx, actor_id, *id, &unit.values).await?;
                if written == 0 {
                    (Some(*id), Some(*version), "unchanged", 0)
                } else {
                    let version = sqlx::query_scalar!(
                        "UPDATE submissions SET version = version + 1, updated_at = now() WHERE id = $1 RETURNING version",
                        id
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    (Some(*id), Some(version), "updated", written)
                }
            }
            Some((id, s, version)) => {
                let held = stored.remove(&unit.unit_id).unwrap_or_default();
                errors.extend(locked_changes(unit, s, &held));
                (Some(*id), Some(*version), "locked", 0)
            }
        };
        match result {
            "created" => outcome.created += 1,
            "updated" => outcome.updated += 1,
            _ => outcome.unchanged += 1,
        }
        outcome.values_written += written;
        outcome.units.push(ImportedUnit {
            unit_id: unit.unit_id,
            sheet: unit.sheet.clone(),
            submission_id,
            version,
            outcome: result.to_owned(),
            values_written: written,
        });
    }
    if !errors.is_empty() {
        // Dropping the transaction rolls back whatever was written before the refusal.
        return Err(ApiError::fields(errors));
    }
    crate::error::commit(tx).await?;
    Ok(outcome)
}

/// The cells where a file differs from a submitted or verified unit's stored values (its
/// values change only after a return).
fn locked_changes(unit: &UnitRows, state: &str, held: &HashMap<String, Stored>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (v, origin) in unit.values.iter().zip(&unit.origins) {
        let given = Stored {
            value: v.value.and_then(|x| i16::try_from(x).ok()),
            not_applicable: v.not_applicable,
            evidence_note: v.evidence_note.clone().unwrap_or_default(),
        };
        let stored = held.get(&v.indicator);
        if stored == Some(&given) {
            continue;
        }
        let only_note = stored
            .is_some_and(|h| h.value == given.value && h.not_applicable == given.not_applicable);
        errors.push(FieldError::new(
            origin.at(if only_note { "evidence_note" } else { "value" }),
            format!(
                "unit {} is {state}: its values change only after its office returns it",
                unit.unit_id
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_typed_or_chosen() {
        use calamine::Data;
        assert_eq!(level(&Data::Float(3.0)), Ok(Some(3)));
        assert_eq!(level(&Data::String(" 2 ".into())), Ok(Some(2)));
        assert_eq!(level(&Data::Empty), Ok(None));
        assert!(level(&Data::Float(2.5)).is_err());
        assert!(level(&Data::String("tiga".into())).is_err());
        assert!(level(&Data::Bool(true)).is_err());
        assert_eq!(yes(Some("Ya")), Ok(true));
        assert_eq!(yes(None), Ok(false));
        assert!(yes(Some("mungkin")).is_err());
    }
}
