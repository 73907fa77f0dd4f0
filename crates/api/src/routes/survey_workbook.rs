//! The survey responses workbook: for each sampled unit a sheet of respondents × questions of
//! every survey in the cycle's methodology, answers chosen from lists, and its upload, which
//! stores the responses by the same rules as the survey endpoint.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/templates/surveys.xlsx` | admin, office (its provinces), assessor (assigned units, collecting) |
//! | `POST /cycles/{year}/survey-responses/import` | admin, office (its provinces), assessor (assigned units, collecting) — while collecting or verifying |
//!
//! A unit's sheet keeps its key in the hidden cell `A1` and each column's question in a hidden
//! row (row 4: `survey.question`), so renamed sheets and moved columns still map back. One row
//! per respondent from row 6: the respondent's reference (a questionnaire number) and their
//! answers (`Ya`/`Tidak` for yes/no questions, a level for Likert ones); a respondent who
//! answered only one survey leaves the other's cells empty. Responses are keyed by unit, survey
//! and respondent: re-uploading a file changes nothing, a changed row replaces that
//! respondent's answers, and a file never deletes a response. A verified unit's responses are
//! final: rows equal to them pass, changed ones are refused.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::SurveyMethod;
use kepatuhan_core::scoring::SurveyAnswer;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::BulkOutcome;
use crate::error::{ApiError, ApiResult};
use crate::export::XLSX;
use crate::extract::{BodyRejection, Json, Path, Query, bytes_problem, media_type};
use crate::problem::{FieldError, Problem};
use crate::routes::cycles::{self, CycleState, sample};
use crate::routes::surveys::{Batches, Row, check_rows, parse_answer};
use crate::workbook::{self as book, Key, MAX_UNITS, Styles, TemplateQuery, cell_ref};
use kepatuhan_app::cycles as app_cycles;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(template))
        .routes(routes!(import))
}

/// The form name in the sheets' keys.
const FORM: &str = "surveys";
/// Row (from 0) of the hidden question codes, of the column titles, and of the first respondent.
const CODE_ROW: u32 = 3;
const HEADER_ROW: u32 = 4;
const FIRST_ROW: u32 = 5;
/// Column of the respondent's reference; questions follow.
const RESPONDENT: u16 = 1;
/// Empty rows offered below a unit's stored responses.
const BLANK_ROWS: u32 = 100;

/// A question's column: its survey and question codes, and how it is answered.
struct Column {
    survey: String,
    question: String,
    title: String,
    /// The answers offered in its list.
    choices: Vec<String>,
    /// What the choices mean (Likert labels), for the cell's input message.
    help: String,
}

/// Every survey question of the methodology as a column, survey by survey.
fn columns(m: &Methodology) -> Vec<Column> {
    let mut out = Vec::new();
    for id in m.survey_ids() {
        let survey = m.survey(id);
        let name = crate::export::survey_name(m, &survey.code);
        let (choices, help) = match &survey.method {
            SurveyMethod::NoMaladministrationShare => (
                vec!["Ya".to_owned(), "Tidak".to_owned()],
                "Ya: responden mengalaminya; Tidak: tidak mengalaminya.".to_owned(),
            ),
            SurveyMethod::Likert { levels } => (
                levels.iter().map(|l| l.value.to_string()).collect(),
                levels
                    .iter()
                    .map(|l| format!("{} = {}", l.value, l.label))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        for q in &survey.questions {
            out.push(Column {
                survey: survey.code.clone(),
                question: q.code.clone(),
                title: format!("{name}: {}", q.text),
                choices: choices.clone(),
                help: help.clone(),
            });
        }
    }
    out
}

/// A unit's sheet as the template writes it.
struct UnitSheet {
    unit_id: i64,
    unit_name: String,
    entity: String,
    /// Its submission is verified: the responses are final.
    final_: bool,
    /// Stored answers per respondent, per survey.
    respondents: BTreeMap<String, HashMap<String, BTreeMap<String, SurveyAnswer>>>,
}

/// The survey responses workbook of a cycle, to fill in offline and upload again.
///
/// One sheet per sampled unit (at most 250: choose an office or an entity) after a cover sheet
/// of instructions in Bahasa Indonesia; each with the responses already stored and room for
/// more. An office gets its provinces' sample, an assessor its assigned units.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/templates/surveys.xlsx", operation_id = "get_survey_workbook", tag = "surveys", params(("year" = i64, Path, description = "Cycle year"), TemplateQuery), responses((status = 200, description = "The workbook", content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn template(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(query): Query<TemplateQuery>,
) -> ApiResult<Response> {
    let (cycle, units) = book::template_units(&state, &actor, raw, &query).await?;
    let m = state.require_methodology(&cycle.methodology)?.clone();
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let mut stored = stored_responses(&state.pool, cycle.id, &ids).await?;
    let sheets: Vec<UnitSheet> = units
        .into_iter()
        .map(|u| UnitSheet {
            respondents: stored.remove(&u.unit_id).unwrap_or_default(),
            unit_id: u.unit_id,
            unit_name: u.unit_name,
            entity: format!("{} ({})", u.entity_name, u.entity_code),
            final_: u.submission_state.as_deref() == Some("verified"),
        })
        .collect();
    let year = cycle.year.get();
    let bytes = crate::workbook::blocking(move || write_template(&m, year, &sheets)).await?;
    Ok(book::download(bytes, &format!("survei-{year}.xlsx")))
}

/// Stored answers of the units in a cycle: unit → respondent → survey → answers.
type StoredResponses =
    HashMap<i64, BTreeMap<String, HashMap<String, BTreeMap<String, SurveyAnswer>>>>;

async fn stored_responses<'e>(
    db: impl sqlx::PgExecutor<'e>,
    cycle_id: i64,
    units: &[i64],
) -> ApiResult<StoredResponses> {
    let rows = sqlx::query!(
        "SELECT unit_id, survey_code, respondent, answers FROM survey_responses WHERE cycle_id = $1 AND unit_id = ANY($2)",
        cycle_id,
        units
    )
    .fetch_all(db)
    .await?;
    let mut out: StoredResponses = HashMap::new();
    for r in rows {
        out.entry(r.unit_id)
            .or_default()
            .entry(r.respondent)
            .or_default()
            .insert(
                r.survey_code,
                serde_json::from_value(r.answers).unwrap_or_default(),
            );
    }
    Ok(out)
}

/// An answer as the workbook shows it.
fn answer_text(a: SurveyAnswer) -> String {
    match a {
        SurveyAnswer::YesNo(true) => "Ya".to_owned(),
        SurveyAnswer::YesNo(false) => "Tidak".to_owned(),
        SurveyAnswer::Likert(l) => l.to_string(),
    }
}

/// Writes the workbook: the cover sheet, then one sheet per unit.
fn write_template(m: &Methodology, year: u16, units: &[UnitSheet]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::DataValidation;
    let mut wb = rust_xlsxwriter::Workbook::new();
    let styles = Styles::new();
    write_cover(&mut wb, m, year, units.len())?;
    let cols = columns(m);
    let mut taken = HashSet::new();
    for unit in units {
        let sheet = wb.add_worksheet();
        sheet.set_name(book::sheet_name(&unit.unit_name, &unit.entity, &mut taken))?;
        sheet.write_string(0, 0, Key::Unit(year, unit.unit_id).text(FORM))?;
        let status = if unit.final_ {
            "terverifikasi (jawaban final, terkunci)"
        } else {
            "terbuka"
        };
        for (r, (label, text)) in (0u32..).zip([
            ("Unit layanan", unit.unit_name.as_str()),
            ("Instansi", unit.entity.as_str()),
            ("Status", status),
        ]) {
            sheet.write_string_with_format(r, RESPONDENT, label, &styles.bold)?;
            sheet.write_string(r, RESPONDENT + 1, text)?;
        }
        sheet.write_string(CODE_ROW, RESPONDENT, "respondent")?;
        sheet.write_string_with_format(HEADER_ROW, RESPONDENT, "Responden", &styles.header)?;
        for (c, col) in (RESPONDENT + 1..).zip(&cols) {
            sheet.write_string(CODE_ROW, c, format!("{}.{}", col.survey, col.question))?;
            sheet.write_string_with_format(HEADER_ROW, c, &col.title, &styles.header)?;
            sheet.set_column_width(c, 18.0)?;
        }
        sheet.set_row_hidden(CODE_ROW)?;
        sheet.set_row_height(HEADER_ROW, 90.0)?;
        let input = if unit.final_ {
            &styles.closed
        } else {
            &styles.open
        };
        let stored = u32::try_from(unit.respondents.len()).unwrap_or(0);
        let last_row = FIRST_ROW + stored + if unit.final_ { 0 } else { BLANK_ROWS } - 1;
        let mut rows = unit.respondents.iter();
        for r in FIRST_ROW..=last_row {
            let given = rows.next();
            match given {
                Some((respondent, _)) => {
                    sheet.write_string_with_format(r, RESPONDENT, respondent, input)?
                }
                None => sheet.write_blank(r, RESPONDENT, input)?,
            };
            for (c, col) in (RESPONDENT + 1..).zip(&cols) {
                let answer = given
                    .and_then(|(_, s)| s.get(&col.survey))
                    .and_then(|a| a.get(&col.question));
                match answer {
                    Some(a) => sheet.write_string_with_format(r, c, answer_text(*a), input)?,
                    None => sheet.write_blank(r, c, input)?,
                };
            }
        }
        if !unit.final_ && last_row >= FIRST_ROW {
            for (c, col) in (RESPONDENT + 1..).zip(&cols) {
                let list = DataValidation::new()
                    .allow_list_strings(&col.choices)?
                    .set_input_message(col.help.chars().take(250).collect::<String>())?
                    .set_error_message(format!("Pilih dari daftar: {}.", col.choices.join(", ")))?;
                sheet.add_data_validation(FIRST_ROW, c, last_row, c, &list)?;
            }
        }
        sheet.set_column_hidden(0)?;
        sheet.set_column_width(RESPONDENT, 16.0)?;
        sheet.set_freeze_panes(FIRST_ROW, RESPONDENT + 1)?;
        sheet.set_landscape();
        sheet.set_print_fit_to_pages(1, 0);
        sheet.protect();
    }
    Ok(wb.save_to_buffer()?)
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
        "Satu baris per responden: tulis nomor kuesioner di kolom \"Responden\", lalu pilih jawabannya dari daftar di setiap kolom pertanyaan (Ya/Tidak, atau tingkat skala). Pertanyaan yang tidak dijawab dibiarkan kosong.".to_owned(),
        "Nomor responden harus unik per unit. Mengunggah ulang berkas yang sama tidak mengubah apa pun; baris yang diubah mengganti jawaban responden itu; menghapus baris tidak menghapus jawaban yang sudah tersimpan.".to_owned(),
        "Unggah berkas ini (.xlsx) ke POST /api/v1/cycles/{tahun}/survey-responses/import. Semua lembar diperiksa lebih dahulu: bila ada kesalahan, tidak ada yang disimpan, dan setiap kesalahan disebut dengan lembar dan selnya.".to_owned(),
        "Jangan mengubah kolom A dan baris 4 yang tersembunyi, jangan menggabungkan sel dan jangan mengisi rumus. Jawaban unit yang sudah terverifikasi bersifat final.".to_owned(),
        format!("Batas: {MAX_UNITS} unit per berkas, {} MB per berkas.", book::MAX_WORKBOOK_BYTES / (1024 * 1024)),
    ];
    book::write_cover(
        wb,
        &Key::Cover(year).text(FORM),
        &format!("Lembar kerja survei pengguna layanan {year}"),
        &lines,
    )
}

/// One unit's responses as read, with where each row came from.
struct UnitResponses {
    unit_id: i64,
    sheet: String,
    rows: Vec<Row>,
    /// For each row: its sheet row and the column of its survey's first answer.
    origins: Vec<(u32, u32)>,
}

/// The units' responses in a workbook of `year`'s template, or every problem found in it.
fn read_workbook(
    sheets: &[book::Sheet],
    year: u16,
    m: &Methodology,
) -> Result<Vec<UnitResponses>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut units = Vec::new();
    for sheet in sheets {
        match Key::parse(FORM, &sheet.text(0, 0).unwrap_or_default()) {
            Some(Key::Cover(y) | Key::Unit(y, _)) if y != year => errors.push(sheet.error(
                0,
                0,
                format!("this sheet is from the {y} template; download the {year} template and copy the answers into it"),
            )),
            Some(Key::Cover(_)) => {}
            Some(Key::Unit(_, unit_id)) => {
                if let Some(unit) = unit_responses(sheet, unit_id, m, &mut errors) {
                    units.push(unit);
                }
            }
            None => errors.push(sheet.error(
                0,
                0,
                format!("this sheet is not part of the {year} survey template (its hidden cell A1 holds the unit's key); remove it, or copy its answers into the template's sheets"),
            )),
        }
    }
    if units.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "file",
            format!("the workbook has no unit sheet of the {year} survey template"),
        ));
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(errors)
    }
}

/// The responses of one unit's sheet; `None` when its question row is unusable (its problems
/// are then in `errors`).
fn unit_responses(
    sheet: &book::Sheet,
    unit_id: i64,
    m: &Methodology,
    errors: &mut Vec<FieldError>,
) -> Option<UnitResponses> {
    let last_col = (u32::from(RESPONDENT) + 1..200)
        .take_while(|c| sheet.text(CODE_ROW, *c).is_some())
        .last()
        .unwrap_or(u32::from(RESPONDENT));
    errors.extend(
        sheet.structure_errors(&(u32::from(RESPONDENT)..=last_col + 1).collect::<Vec<_>>()),
    );
    let cols = question_columns(sheet, last_col, m, errors)?;
    let mut unit = UnitResponses {
        unit_id,
        sheet: sheet.name.clone(),
        rows: Vec::new(),
        origins: Vec::new(),
    };
    for r in FIRST_ROW..=sheet.last_row().unwrap_or(0) {
        let respondent = sheet.text(r, u32::from(RESPONDENT));
        let mut answers: BTreeMap<&str, (u32, BTreeMap<String, SurveyAnswer>)> = BTreeMap::new();
        for (c, (survey, question)) in &cols {
            let Some(text) = sheet.text(r, *c) else {
                continue;
            };
            match parse_answer(&text) {
                Some(a) => {
                    answers
                        .entry(survey.as_str())
                        .or_insert((*c, BTreeMap::new()))
                        .1
                        .insert(question.clone(), a);
                }
                None => errors.push(sheet.error(
                    r,
                    *c,
                    format!(
                        "`{text}` is not Ya/Tidak or a level of the scale: choose from the list"
                    ),
                )),
            }
        }
        match respondent {
            None if !answers.is_empty() => errors.push(sheet.error(
                r,
                u32::from(RESPONDENT),
                "answers need the respondent's reference (a questionnaire number)",
            )),
            None => {}
            Some(respondent) => {
                for (survey, (c, a)) in answers {
                    unit.rows.push((survey.to_owned(), respondent.clone(), a));
                    unit.origins.push((r, c));
                }
            }
        }
    }
    Some(unit)
}

/// The question of each answer column (survey and question codes, from the hidden code row up
/// to `last_col`), or `None` when a column is unknown, repeated or missing (its problems are
/// then in `errors`).
fn question_columns(
    sheet: &book::Sheet,
    last_col: u32,
    m: &Methodology,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<(u32, (String, String))>> {
    // The columns: survey and question, from the hidden code row.
    let known: HashSet<(String, String)> = columns(m)
        .into_iter()
        .map(|c| (c.survey, c.question))
        .collect();
    let mut cols = Vec::new();
    let mut seen = HashSet::new();
    let before = errors.len();
    for c in u32::from(RESPONDENT) + 1..=last_col {
        let code = sheet.text(CODE_ROW, c).unwrap_or_default();
        let pair = code
            .split_once('.')
            .map(|(s, q)| (s.to_owned(), q.to_owned()));
        match pair {
            Some(pair) if known.contains(&pair) => {
                if !seen.insert(pair.clone()) {
                    errors.push(sheet.error(
                        CODE_ROW,
                        c,
                        format!("the column of `{code}` appears twice"),
                    ));
                }
                cols.push((c, pair));
            }
            _ => errors.push(sheet.error(
                CODE_ROW,
                c,
                format!(
                    "`{code}` is not a question of methodology {}: download the template again",
                    m.code()
                ),
            )),
        }
    }
    let removed: Vec<String> = known
        .iter()
        .filter(|k| !seen.contains(*k))
        .map(|(s, q)| format!("{s}.{q}"))
        .collect();
    if !removed.is_empty() {
        errors.push(sheet.error(
            CODE_ROW,
            u32::from(RESPONDENT),
            format!(
                "the columns of {} were removed; download the template again",
                removed.join(", ")
            ),
        ));
    }
    (errors.len() == before).then_some(cols)
}

/// What the upload did to one unit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportedResponses {
    /// The unit.
    pub unit_id: i64,
    /// Its sheet in the workbook.
    pub sheet: String,
    /// Responses (one per respondent and survey) created, updated and left as they were.
    #[serde(flatten)]
    pub outcome: BulkOutcome,
}

/// Answer of an upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyImportOutcome {
    /// Responses created in all.
    pub created: usize,
    /// Responses whose answers changed.
    pub updated: usize,
    /// Responses the file left as they were.
    pub unchanged: usize,
    /// Each unit, in the file's order.
    pub units: Vec<ImportedResponses>,
}

/// Upload a filled survey responses workbook.
///
/// All or nothing: every sheet is checked first (its key and question row, every answer
/// against its survey, respondents unique per survey, the unit against your sample) and every
/// problem is named by sheet and cell; nothing is written unless all are valid. Unchanged
/// responses are not written again; a verified unit's responses are final (rows equal to them
/// pass, changed ones are refused). At most 250 units and 8 MiB.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting) — while the
/// cycle is collecting or verifying.
#[utoipa::path(post, path = "/cycles/{year}/survey-responses/import", operation_id = "import_survey_responses", tag = "surveys", params(("year" = i64, Path, description = "Cycle year")), request_body(content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "What the upload did", body = SurveyImportOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn import(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    use axum::extract::FromRequest;
    actor.require_id()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    if !matches!(cycle.state, CycleState::Collecting | CycleState::Verifying) {
        return Err(closed());
    }
    let m = state.require_methodology(&cycle.methodology)?.clone();
    let year = cycle.year.get();
    if media_type(&req) != XLSX {
        let got = media_type(&req);
        return Ok(BodyRejection::ContentType(format!(
            "{} (send the workbook as {XLSX})",
            if got.is_empty() { "none" } else { &got }
        ))
        .into_response());
    }
    let body = match axum::body::Bytes::from_request(req, &()).await {
        Ok(body) => body,
        Err(e) => return Ok(bytes_problem(&e).into_response()),
    };
    let units = crate::workbook::blocking(move || {
        let sheets = book::read(&body)?;
        read_workbook(&sheets, year, &m).map_err(ApiError::fields)
    })
    .await?;
    let m = state.require_methodology(&cycle.methodology)?;
    // Checked before anything is written: units, then every row.
    if units.len() > MAX_UNITS {
        return Err(ApiError::too_large(
            "workbook-too-large",
            format!(
                "the file holds {} units; at most {MAX_UNITS} per upload",
                units.len()
            ),
        ));
    }
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let visible = sample::sampled_units_in_scope(&state, &scope, &cycle, &ids).await?;
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for unit in &units {
        let at = cell_ref(&unit.sheet, 0, 0);
        if !seen.insert(unit.unit_id) {
            errors.push(FieldError::new(
                at,
                format!("unit {} appears twice", unit.unit_id),
            ));
        } else if !visible.contains(&unit.unit_id) {
            errors.push(FieldError::new(
                at,
                format!(
                    "unit {} is not in the sample of {} for you",
                    unit.unit_id, cycle.year
                ),
            ));
        }
        errors.extend(check_rows(m, &unit.rows, |i, f| {
            let (r, c) = unit.origins[i];
            cell_ref(
                &unit.sheet,
                r,
                if f == "respondent" {
                    u32::from(RESPONDENT)
                } else {
                    c
                },
            )
        }));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let outcome = store(&state, &actor, &cycle, &units).await?;
    Ok(Json(outcome).into_response())
}

fn closed() -> ApiError {
    ApiError::conflict(
        "cycle-closed",
        "survey responses can be uploaded only while the cycle is collecting or verifying",
    )
}

/// Stores the checked units' responses in one transaction; a verified unit's only if the file
/// agrees with what is stored (else every differing row is refused and nothing is written).
async fn store(
    state: &AppState,
    actor: &Actor,
    cycle: &cycles::Cycle,
    units: &[UnitResponses],
) -> ApiResult<SurveyImportOutcome> {
    let mut tx = state.pool.begin().await?;
    let locked = app_cycles::lock_shared(&mut tx, app_cycles::CycleId(cycle.id)).await?;
    if !matches!(
        locked.state,
        kepatuhan_core::CycleState::Collecting | kepatuhan_core::CycleState::Verifying
    ) {
        return Err(closed());
    }
    let ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let verified: HashSet<i64> = sqlx::query_scalar!(
        "SELECT unit_id FROM submissions WHERE cycle_id = $1 AND unit_id = ANY($2) AND state = 'verified' FOR SHARE",
        cycle.id,
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let final_ids: Vec<i64> = verified.iter().copied().collect();
    let stored = stored_responses(&mut *tx, cycle.id, &final_ids).await?;
    let mut errors = Vec::new();
    let mut out = SurveyImportOutcome {
        created: 0,
        updated: 0,
        unchanged: 0,
        units: Vec::with_capacity(units.len()),
    };
    let label = cycle.year.to_string();
    for unit in units {
        let outcome = if verified.contains(&unit.unit_id) {
            let held = stored.get(&unit.unit_id);
            for ((survey, respondent, answers), (r, c)) in unit.rows.iter().zip(&unit.origins) {
                let same = held
                    .and_then(|h| h.get(respondent.trim()))
                    .and_then(|s| s.get(survey))
                    == Some(answers);
                if !same {
                    errors.push(FieldError::new(
                        cell_ref(&unit.sheet, *r, *c),
                        format!(
                            "unit {} is verified: its survey responses are final",
                            unit.unit_id
                        ),
                    ));
                }
            }
            BulkOutcome {
                created: 0,
                updated: 0,
                unchanged: unit.rows.len(),
            }
        } else {
            Batches::from_rows(unit.rows.clone())
                .store(&mut tx, actor.id(), (cycle.id, &label), unit.unit_id)
                .await?
        };
        out.created += outcome.created;
        out.updated += outcome.updated;
        out.unchanged += outcome.unchanged;
        out.units.push(ImportedResponses {
            unit_id: unit.unit_id,
            sheet: unit.sheet.clone(),
            outcome,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    crate::error::commit(tx).await?;
    Ok(out)
}
