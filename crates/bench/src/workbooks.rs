//! The spreadsheet figures: the national rankings exported as a workbook, and a 50-unit
//! assessment workbook uploaded.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Instant;

use calamine::{Data, Reader, Xlsx};
use kepatuhan_core::Methodology;

use crate::BenchResult;
use crate::client::{Api, median};

/// How many times the rankings export is fetched (the median counts).
const EXPORT_RUNS: usize = 10;

/// The XLSX media type.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Milliseconds to export every entity's national ranking of `year` as a workbook (median of
/// [`EXPORT_RUNS`], with a token so the public cache never answers).
pub(crate) async fn export_rankings_ms(api: &Api, year: u16) -> BenchResult<f64> {
    let path = format!("/api/v1/cycles/{year}/results/entities?format=xlsx");
    let mut times = Vec::with_capacity(EXPORT_RUNS);
    for _ in 0..EXPORT_RUNS {
        let started = Instant::now();
        let bytes = api.download(&path).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !bytes.starts_with(b"PK") {
            return Err("the rankings export is not a workbook".into());
        }
    }
    Ok(median(times))
}

/// Uploads the assessment workbook of `units` (drafts) with every value moved to another level
/// of its scale, timed; then uploads the workbook as downloaded, which puts the values back.
/// Returns the values written, the seconds the timed upload took, and each unit's submission
/// version after both uploads (its `ETag` moved on twice).
///
/// The workbook is the server's own template, read with calamine and written again with
/// `rust_xlsxwriter` with the new values (the layout, keys and codes as downloaded).
pub(crate) async fn import_values(
    api: &Api,
    m: &Methodology,
    year: u16,
    units: &[i64],
) -> BenchResult<(usize, f64, HashMap<i64, i64>)> {
    let ids: Vec<String> = units.iter().map(ToString::to_string).collect();
    let template = api
        .download(&format!(
            "/api/v1/cycles/{year}/templates/assessment.xlsx?units={}",
            ids.join(",")
        ))
        .await?;
    let changed = tokio::task::spawn_blocking({
        let template = template.clone();
        let m = m.clone();
        move || moved_values(&template, &m)
    })
    .await??;
    let path = format!("/api/v1/cycles/{year}/submissions/import");
    let started = Instant::now();
    let (_, outcome, _) = api
        .send(reqwest::Method::POST, &path, Some((XLSX, changed)), None)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let written = outcome["values_written"].as_u64().unwrap_or(0);
    if outcome["updated"].as_u64() != Some(units.len() as u64) {
        return Err(format!("the workbook upload updated {outcome}").into());
    }
    let (_, restored, _) = api
        .send(reqwest::Method::POST, &path, Some((XLSX, template)), None)
        .await?;
    let versions = restored["units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| Some((u["unit_id"].as_i64()?, u["version"].as_i64()?)))
        .collect();
    Ok((usize::try_from(written).unwrap_or(0), seconds, versions))
}

/// The workbook with each unit sheet's level (column E, from row 6) moved to another level of
/// the indicator's scale; every other cell as it was.
fn moved_values(template: &[u8], m: &Methodology) -> BenchResult<Vec<u8>> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(template))?;
    let mut out = rust_xlsxwriter::Workbook::new();
    for name in book.sheet_names() {
        let cells = book.worksheet_range(&name)?;
        let sheet = out.add_worksheet();
        sheet.set_name(&name)?;
        let unit_sheet =
            matches!(cells.get_value((0, 0)), Some(Data::String(k)) if k.contains(":unit:"));
        for (r, c, value) in cells.used_cells() {
            let (row, col) = (u32::try_from(r)?, u16::try_from(c)?);
            match value {
                Data::String(s) => {
                    sheet.write_string(row, col, s)?;
                }
                Data::Float(f) if unit_sheet && col == 4 && row >= 5 => {
                    let code = cells
                        .get((r, 0))
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let scale = &m
                        .indicator(m.indicator_id(&code).ok_or("unknown indicator")?)
                        .scale;
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let level = *f as u8;
                    let other = scale
                        .levels
                        .iter()
                        .map(|l| l.value)
                        .find(|v| *v != level)
                        .unwrap_or(level);
                    sheet.write_number(row, col, f64::from(other))?;
                }
                Data::Float(f) => {
                    sheet.write_number(row, col, *f)?;
                }
                Data::Int(i) => {
                    #[allow(clippy::cast_precision_loss)]
                    sheet.write_number(row, col, *i as f64)?;
                }
                _ => {}
            }
        }
    }
    Ok(out.save_to_buffer()?)
}
