//! Workbooks to fill in and upload again (the assessment and survey templates): the parts they
//! share (the hidden keys of their sheets, which units they hold, their cell formats, sheet
//! names), and reading an uploaded XLSX workbook (with `calamine`), refusing what cannot be read safely or
//! truly: files that are not XLSX, encrypted or old `.xls` workbooks, workbooks larger than
//! [`MAX_WORKBOOK_BYTES`] or that unpack to more than [`MAX_UNPACKED_BYTES`], formulas where a
//! value belongs, and merged cells. Each problem names the sheet and cell, as a spreadsheet user
//! writes it: `'Dinas Kesehatan'!E14`.
//!
//! Sheet protection (as the templates carry it) is not encryption: a protected sheet reads as
//! any other.

use std::collections::HashSet;
use std::io::Cursor;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use calamine::{Data, Range, Reader, Xlsx};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::problem::FieldError;
use crate::routes::cycles::{self, Cycle, sample};

/// The most units one template holds (one sheet each).
pub const MAX_UNITS: usize = 250;

/// What a template's hidden key (cell `A1`, in a hidden column) says a sheet is:
/// `kepatuhan:{form}:{year}:cover` or `kepatuhan:{form}:{year}:unit:{id}`.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// The instructions sheet of a year's template.
    Cover(u16),
    /// The sheet of a unit in a year's template.
    Unit(u16, i64),
}

impl Key {
    /// Reads a key of the form `form` (`assessment`, `surveys`); `None` when the text is not one.
    pub fn parse(form: &str, text: &str) -> Option<Key> {
        let rest = text.strip_prefix("kepatuhan:")?.strip_prefix(form)?;
        let (year, rest) = rest.strip_prefix(':')?.split_once(':')?;
        let year = year.parse().ok()?;
        match rest.split_once(':') {
            None if rest == "cover" => Some(Key::Cover(year)),
            Some(("unit", id)) => id.parse().ok().map(|id| Key::Unit(year, id)),
            _ => None,
        }
    }

    /// The key as written in a template of the form `form`.
    pub fn text(&self, form: &str) -> String {
        match self {
            Key::Cover(y) => format!("kepatuhan:{form}:{y}:cover"),
            Key::Unit(y, id) => format!("kepatuhan:{form}:{y}:unit:{id}"),
        }
    }
}

/// Which sampled units a template holds.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// Only the units of this regional office (its code).
    pub office: Option<String>,
    /// Only the units of this entity (its code).
    pub entity: Option<String>,
    /// Only these units: their ids, comma-separated (`12,15,31`).
    pub units: Option<String>,
}

/// The cycle and the sampled units (not excluded) a template for `actor` holds: an office's
/// provinces, an assessor's assigned units, narrowed by `query`; at most [`MAX_UNITS`].
pub async fn template_units(
    state: &AppState,
    actor: &Actor,
    raw: i64,
    query: &TemplateQuery,
) -> ApiResult<(Cycle, Vec<sample::SampledUnit>)> {
    let scope = actor.scope()?;
    let only: Option<HashSet<i64>> = match &query.units {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|id| id.trim().parse::<i64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    ApiError::field("units", "unit ids separated by commas, e.g. 12,15,31")
                })?,
        ),
    };
    let cycle = cycles::load(state, actor, cycles::year(raw)?).await?;
    let units: Vec<_> = sample::sample_rows(state, &scope, cycle.id)
        .await?
        .into_iter()
        .filter(|u| u.excluded_reason.is_none())
        .filter(|u| query.office.is_none() || u.office == query.office)
        .filter(|u| query.entity.as_ref().is_none_or(|e| *e == u.entity_code))
        .filter(|u| only.as_ref().is_none_or(|ids| ids.contains(&u.unit_id)))
        .collect();
    if units.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no sampled unit of {} matches for you",
            cycle.year
        )));
    }
    if units.len() > MAX_UNITS {
        return Err(ApiError::field(
            "office",
            format!(
                "{} units match; a workbook holds at most {MAX_UNITS}: choose an office or an entity",
                units.len()
            ),
        ));
    }
    Ok((cycle, units))
}

/// Runs blocking workbook work (parsing or writing XML) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(crate::error::InternalError(Box::new(e))))?
}

/// A workbook as a download named `file`.
pub fn download(bytes: Vec<u8>, file: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::export::XLSX),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Writes a template's first sheet, "Petunjuk": the key in the hidden cell `A1`, a title, and
/// the instructions, one paragraph per row.
pub fn write_cover(
    wb: &mut rust_xlsxwriter::Workbook,
    key: &str,
    title: &str,
    lines: &[String],
) -> ApiResult<()> {
    use rust_xlsxwriter::Format;
    let sheet = wb.add_worksheet();
    sheet.set_name("Petunjuk")?;
    sheet.write_string(0, 0, key)?;
    let bold = Format::new().set_bold().set_font_size(14);
    let wrap = Format::new().set_text_wrap();
    sheet.write_string_with_format(0, 1, title, &bold)?;
    for (r, line) in (2u32..).zip(lines) {
        sheet.write_string_with_format(r, 1, line, &wrap)?;
        sheet.set_row_height(r, row_height(&[(line.chars().count(), 95)]))?;
    }
    sheet.set_column_hidden(0)?;
    sheet.set_column_width(1, 100.0)?;
    sheet.set_print_fit_to_pages(1, 0);
    sheet.set_active(true);
    sheet.protect();
    Ok(())
}

/// A sheet name for a unit: its entity's code and its name, within Excel's 31 characters and
/// without the characters sheet names may not hold, unique (case-insensitively) in `taken`.
/// `entity` is written `Name (code)`.
pub fn sheet_name<S: std::hash::BuildHasher>(
    unit_name: &str,
    entity: &str,
    taken: &mut HashSet<String, S>,
) -> String {
    let clean: String = unit_name
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { ' ' } else { c })
        .collect();
    let code = entity
        .rsplit_once('(')
        .map_or("", |(_, c)| c.trim_end_matches(')'));
    let base: String = format!("{code} {}", clean.trim())
        .chars()
        .take(31)
        .collect::<String>()
        .trim()
        .trim_matches('\'')
        .to_owned();
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.to_lowercase()) {
        let suffix = format!(" ({n})");
        name = base.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    name
}

/// The cell formats of a template's unit sheets.
pub struct Styles {
    /// Labels.
    pub bold: rust_xlsxwriter::Format,
    /// The column titles.
    pub header: rust_xlsxwriter::Format,
    /// Text that wraps, top-aligned.
    pub wrap: rust_xlsxwriter::Format,
    /// A cell to fill in (unlocked, tinted).
    pub open: rust_xlsxwriter::Format,
    /// A cell to fill in with text that wraps.
    pub open_wrap: rust_xlsxwriter::Format,
    /// A cell that may not be filled (locked, grey).
    pub closed: rust_xlsxwriter::Format,
}

impl Default for Styles {
    fn default() -> Self {
        Self::new()
    }
}

impl Styles {
    /// The formats every template uses.
    pub fn new() -> Self {
        use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder};
        let open = Format::new()
            .set_unlocked()
            .set_background_color(Color::RGB(0x00FF_F2CC))
            .set_border(FormatBorder::Thin)
            .set_align(FormatAlign::Top);
        Styles {
            bold: Format::new().set_bold(),
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_background_color(Color::RGB(0x00D9_E1F2))
                .set_border_bottom(FormatBorder::Thin),
            wrap: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            open_wrap: open.clone().set_text_wrap(),
            open,
            closed: Format::new()
                .set_background_color(Color::RGB(0x00F2_F2F2))
                .set_align(FormatAlign::Top),
        }
    }
}

/// The height (points) of a row of wrapped text: the most lines any of its cells needs, each
/// given as (characters, characters per line), or (lines, 1).
pub fn row_height(cells: &[(usize, usize)]) -> f64 {
    let lines = cells
        .iter()
        .map(|(chars, per_line)| chars.div_ceil(*per_line))
        .max()
        .unwrap_or(1)
        .max(1);
    15.0 * f64::from(u32::try_from(lines).unwrap_or(1))
}

/// The largest workbook accepted, in bytes (a template of 250 units is about 1 MB).
pub const MAX_WORKBOOK_BYTES: usize = 8 * 1024 * 1024;

/// The most a workbook may unpack to (its XML parts), so a small file cannot expand without
/// bound while being read.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// The most rows a sheet of an uploaded workbook may use.
pub const MAX_SHEET_ROWS: u32 = 2_000;

/// One worksheet as read: its cells and, where a cell holds a formula, the formula.
#[derive(Debug)]
pub struct Sheet {
    /// The sheet's name as the workbook shows it.
    pub name: String,
    cells: Range<Data>,
    formulas: Range<String>,
    merged: Vec<calamine::Dimensions>,
}

/// A cell's address as a spreadsheet shows it: `'Sheet name'!E14` (row and column from 0).
pub fn cell_ref(sheet: &str, row: u32, col: u32) -> String {
    format!("'{}'!{}", sheet.replace('\'', "''"), cell_name(row, col))
}

/// `E14` for row 13, column 4 (from 0).
pub fn cell_name(row: u32, col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = col + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(rem).unwrap_or(0)));
        c = (c - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(row + 1).to_string()
}

impl Sheet {
    /// The cell at `(row, col)` (from 0); `Empty` outside the used range.
    pub fn get(&self, row: u32, col: u32) -> &Data {
        self.cells.get_value((row, col)).unwrap_or(&Data::Empty)
    }

    /// The cell's text, trimmed: text as written, numbers as a spreadsheet shows them
    /// (`3` for 3.0), `None` when empty.
    pub fn text(&self, row: u32, col: u32) -> Option<String> {
        let t = match self.get(row, col) {
            Data::Empty => return None,
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            other => other.to_string().trim().to_owned(),
        };
        (!t.is_empty()).then_some(t)
    }

    /// The last used row (from 0), if any cell is used.
    pub fn last_row(&self) -> Option<u32> {
        self.cells.end().map(|(r, _)| r)
    }

    /// The formula in a cell, if it holds one.
    pub fn formula(&self, row: u32, col: u32) -> Option<&str> {
        self.formulas
            .get_value((row, col))
            .map(String::as_str)
            .filter(|f| !f.is_empty())
    }

    /// A problem at a cell of this sheet.
    pub fn error(&self, row: u32, col: u32, message: impl Into<String>) -> FieldError {
        FieldError::new(cell_ref(&self.name, row, col), message)
    }

    /// Problems with how the sheet is built, whatever it holds: merged cells and formulas in
    /// the columns `cols` (values must be typed, not computed).
    pub fn structure_errors(&self, cols: &[u32]) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = self
            .merged
            .iter()
            .map(|d| {
                FieldError::new(
                    cell_ref(&self.name, d.start.0, d.start.1),
                    format!(
                        "cells {}:{} are merged; unmerge them so each value has its own cell",
                        cell_name(d.start.0, d.start.1),
                        cell_name(d.end.0, d.end.1)
                    ),
                )
            })
            .collect();
        for cell in self.formulas.used_cells() {
            let (r, c) = (
                u32::try_from(cell.0).unwrap_or(u32::MAX),
                u32::try_from(cell.1).unwrap_or(u32::MAX),
            );
            let (row, col) = self
                .formulas
                .start()
                .map_or((r, c), |(r0, c0)| (r0 + r, c0 + c));
            if cols.contains(&col) && !cell.2.is_empty() {
                errors.push(self.error(
                    row,
                    col,
                    format!(
                        "holds a formula (={}); type the value itself",
                        cell.2.trim_start_matches('=')
                    ),
                ));
            }
        }
        errors
    }
}

/// The problem for a file that cannot be read as a workbook.
fn unreadable(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("unreadable-workbook", detail)
}

/// Reads every worksheet of an XLSX workbook. Blocking (it parses XML): call it from
/// `spawn_blocking`.
pub fn read(bytes: &[u8]) -> ApiResult<Vec<Sheet>> {
    if bytes.len() > MAX_WORKBOOK_BYTES {
        return Err(ApiError::too_large(
            "workbook-too-large",
            format!(
                "the workbook is {} bytes; the largest accepted is {MAX_WORKBOOK_BYTES} bytes \
                 ({} MiB): split it by office or entity",
                bytes.len(),
                MAX_WORKBOOK_BYTES / (1024 * 1024)
            ),
        ));
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(unreadable(
            "this file is encrypted (saved with a password to open it) or an old .xls \
             workbook: save it as an .xlsx workbook without a password (sheet protection may stay)",
        ));
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(unreadable(
            "this file is not an XLSX workbook; upload the .xlsx file as Excel or LibreOffice \
             saves it",
        ));
    }
    check_unpacked_size(bytes)?;
    let mut book = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| unreadable(format!("this workbook cannot be read: {e}")))?;
    let mut sheets = Vec::new();
    for name in book.sheet_names() {
        let failed = |e: calamine::XlsxError| {
            unreadable(format!(
                "sheet '{name}' of this workbook cannot be read: {e}"
            ))
        };
        let cells = book.worksheet_range(&name).map_err(failed)?;
        if cells.end().is_some_and(|(r, _)| r >= MAX_SHEET_ROWS) {
            return Err(ApiError::too_large(
                "workbook-too-large",
                format!("sheet '{name}' uses more than {MAX_SHEET_ROWS} rows"),
            ));
        }
        let formulas = book.worksheet_formula(&name).map_err(failed)?;
        let merged = book.merge_cells_by_sheet_name(&name).map_err(failed)?;
        sheets.push(Sheet {
            name,
            cells,
            formulas,
            merged,
        });
    }
    Ok(sheets)
}

/// Refuses a workbook whose parts unpack to more than [`MAX_UNPACKED_BYTES`] (as their
/// headers state it; the reader stops at the stated size).
fn check_unpacked_size(bytes: &[u8]) -> ApiResult<()> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| unreadable(format!("this file is not an XLSX workbook: {e}")))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let part = archive
            .by_index_raw(i)
            .map_err(|e| unreadable(format!("this workbook is damaged: {e}")))?;
        total = total.saturating_add(part.size());
    }
    if total > MAX_UNPACKED_BYTES {
        return Err(ApiError::too_large(
            "workbook-too-large",
            format!(
                "the workbook unpacks to {total} bytes; the most accepted is {MAX_UNPACKED_BYTES}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_what_they_wrote() {
        for key in [Key::Cover(2024), Key::Unit(2025, 42)] {
            assert_eq!(Key::parse("assessment", &key.text("assessment")), Some(key));
        }
        assert_eq!(
            Key::parse("surveys", &Key::Cover(2024).text("assessment")),
            None
        );
        assert_eq!(
            Key::parse("assessment", "kepatuhan:assessment:2024:unit:x"),
            None
        );
        assert_eq!(Key::parse("assessment", "Kode indikator"), None);
    }

    #[test]
    fn sheet_names_fit_excel_and_stay_unique() {
        let mut taken = HashSet::new();
        let long = "Dinas Kependudukan dan Pencatatan Sipil: Kantor [Pusat]";
        let entity = "Kab. Bangka (19.01)";
        let a = sheet_name(long, entity, &mut taken);
        let b = sheet_name(long, entity, &mut taken);
        assert!(
            a.chars().count() <= 31 && b.chars().count() <= 31,
            "{a} / {b}"
        );
        assert!(a.starts_with("19.01 Dinas Kependudukan"), "{a}");
        assert!(!a.contains([':', '[', ']']), "{a}");
        assert_ne!(a.to_lowercase(), b.to_lowercase());
        assert!(b.ends_with(" (2)"), "{b}");
    }

    #[test]
    fn cell_names_count_columns_as_spreadsheets_do() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(13, 4), "E14");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(9, 701), "ZZ10");
        assert_eq!(cell_ref("Bu'Ani", 0, 0), "'Bu''Ani'!A1");
    }

    #[test]
    fn files_that_are_not_workbooks_are_refused_with_their_reason() {
        let text = read(b"unit_id,indicator\n1,x\n").unwrap_err();
        assert!(text.to_string().contains("not an XLSX"), "{text}");
        let mut cfb = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        cfb.extend([0; 512]);
        assert!(read(&cfb).unwrap_err().to_string().contains("encrypted"));
        let big = vec![b'x'; MAX_WORKBOOK_BYTES + 1];
        assert!(
            read(&big)
                .unwrap_err()
                .to_string()
                .contains("largest accepted")
        );
        let broken = b"PK\x03\x04 and then nothing a zip reader wants";
        assert!(read(broken).is_err());
    }
}
