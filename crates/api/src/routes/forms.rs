//! Offline field collection: the cycle's methodology as an XLSForm, the spreadsheet form
//! definition that ODK Collect and KoboCollect run (hosted unchanged in KoboToolbox or ODK
//! Central).
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/forms/assessment.xlsx` | admin, office (its provinces), assessor (assigned units, collecting) |
//!
//! The form (sheets `survey`, `choices`, `settings`): first the unit, chosen from the caller's
//! sample (list `units`, names `u{id}`); then a group per dimension and, inside it, a group per
//! variable; per indicator a `select_one` of its levels (labels in Bahasa Indonesia: `2 — …`),
//! preceded by a "not applicable?" question where the methodology allows it (the level is then
//! `relevant` only when the answer is no), an evidence note, and a photo (`image`) where the
//! methodology expects evidence. Field names are the indicator codes (`knows_duties`,
//! `na_knows_duties`, `note_knows_duties`, `photo_knows_duties`), so a submission maps back to
//! the indicator without a lookup table.

use axum::extract::State;
use axum::response::Response;
use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::VariableMeasure;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::ApiResult;
use crate::extract::{Path, Query};
use crate::problem::Problem;
use crate::routes::cycles::sample::SampledUnit;
use crate::workbook::{self as book, TemplateQuery};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assessment_form))
}

/// The answer "yes" in the form's yes/no list.
pub const YES: &str = "ya";

/// One row of the `survey` sheet.
#[derive(Debug, Default)]
struct Question {
    kind: String,
    name: String,
    label: String,
    hint: &'static str,
    required: &'static str,
    relevant: String,
    parameters: &'static str,
}

impl Question {
    fn new(kind: impl Into<String>, name: impl Into<String>, label: impl Into<String>) -> Self {
        Question {
            kind: kind.into(),
            name: name.into(),
            label: label.into(),
            ..Question::default()
        }
    }
}

/// The XLSForm of an assessment, as its three sheets' rows.
struct Form {
    survey: Vec<Question>,
    /// `(list_name, name, label)`.
    choices: Vec<(String, String, String)>,
}

/// The form of methodology `m` for the sampled `units`.
fn form(m: &Methodology, units: &[SampledUnit]) -> Form {
    let mut survey = Vec::new();
    let mut choices = vec![
        ("yesno".to_owned(), YES.to_owned(), "Ya".to_owned()),
        ("yesno".to_owned(), "tidak".to_owned(), "Tidak".to_owned()),
    ];
    let mut unit = Question::new("select_one units", "unit", "Unit layanan yang dinilai");
    unit.required = "yes";
    unit.hint = "Pilih dari daftar unit yang ditugaskan kepada Anda.";
    survey.push(unit);
    choices.extend(units.iter().map(|u| {
        (
            "units".to_owned(),
            format!("u{}", u.unit_id),
            format!("{} — {} ({})", u.unit_name, u.entity_name, u.entity_code),
        )
    }));
    for d in m.dimensions() {
        let indicators: Vec<_> = d
            .variables
            .iter()
            .filter_map(|v| match &v.measure {
                VariableMeasure::Indicators { indicators, .. } => Some((v, indicators)),
                VariableMeasure::Survey(_) => None,
            })
            .collect();
        if indicators.is_empty() {
            continue;
        }
        survey.push(Question::new(
            "begin_group",
            format!("dim_{}", d.code),
            format!("Dimensi {}", d.name),
        ));
        for (v, list) in indicators {
            survey.push(Question::new(
                "begin_group",
                format!("var_{}", v.code),
                v.name.clone(),
            ));
            for ind in list {
                let mut level = Question::new(
                    format!("select_one lvl_{}", ind.code),
                    ind.code.clone(),
                    ind.name.clone(),
                );
                level.required = "yes";
                if ind.not_applicable_allowed {
                    let na = format!("na_{}", ind.code);
                    let mut ask = Question::new(
                        "select_one yesno",
                        na.clone(),
                        format!("Tidak berlaku untuk unit ini: {}?", ind.name),
                    );
                    ask.required = "yes";
                    survey.push(ask);
                    level.relevant = format!("${{{na}}} != '{YES}'");
                }
                let relevant = level.relevant.clone();
                survey.push(level);
                let mut note = Question::new(
                    "text",
                    format!("note_{}", ind.code),
                    "Catatan bukti (apa yang diamati atau dokumen yang diperiksa)",
                );
                note.relevant.clone_from(&relevant);
                survey.push(note);
                if ind.evidence_expected {
                    let mut photo = Question::new(
                        "image",
                        format!("photo_{}", ind.code),
                        format!("Foto bukti: {}", ind.name),
                    );
                    photo.relevant = relevant;
                    // Photos are shrunk on the phone: enough to read a posted standard, small
                    // enough to send from a weak signal.
                    photo.parameters = "max-pixels=1600";
                    survey.push(photo);
                }
                choices.extend(ind.scale.levels.iter().map(|l| {
                    (
                        format!("lvl_{}", ind.code),
                        l.value.to_string(),
                        format!("{} — {}", l.value, l.description),
                    )
                }));
            }
            survey.push(Question::new("end_group", "", ""));
        }
        survey.push(Question::new("end_group", "", ""));
    }
    Form { survey, choices }
}

/// The form as an XLSForm workbook.
fn write(form: &Form, year: u16, m: &Methodology) -> ApiResult<Vec<u8>> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let sheet = wb.add_worksheet();
    sheet.set_name("survey")?;
    for (c, title) in (0u16..).zip([
        "type",
        "name",
        "label",
        "hint",
        "required",
        "relevant",
        "parameters",
    ]) {
        sheet.write_string_with_format(0, c, title, &bold)?;
    }
    for (r, q) in (1u32..).zip(&form.survey) {
        for (c, text) in (0u16..).zip([
            q.kind.as_str(),
            &q.name,
            &q.label,
            q.hint,
            q.required,
            &q.relevant,
            q.parameters,
        ]) {
            if !text.is_empty() {
                sheet.write_string(r, c, text)?;
            }
        }
    }
    sheet.set_column_width(0, 28.0)?;
    sheet.set_column_width(1, 30.0)?;
    sheet.set_column_width(2, 60.0)?;
    let sheet = wb.add_worksheet();
    sheet.set_name("choices")?;
    for (c, title) in (0u16..).zip(["list_name", "name", "label"]) {
        sheet.write_string_with_format(0, c, title, &bold)?;
    }
    for (r, (list, name, label)) in (1u32..).zip(&form.choices) {
        sheet.write_string(r, 0, list)?;
        sheet.write_string(r, 1, name)?;
        sheet.write_string(r, 2, label)?;
    }
    let sheet = wb.add_worksheet();
    sheet.set_name("settings")?;
    for (c, (title, value)) in (0u16..).zip([
        ("form_title", format!("Penilaian kepatuhan {year}")),
        ("form_id", format!("kepatuhan_assessment_{year}")),
        ("version", format!("{}-{year}", m.code())),
        ("instance_name", "concat(${unit}, ' ', today())".to_owned()),
    ]) {
        sheet.write_string_with_format(0, c, title, &bold)?;
        sheet.write_string(1, c, &value)?;
    }
    Ok(wb.save_to_buffer()?)
}

/// The assessment as an XLSForm for ODK Collect and KoboCollect.
///
/// Generated from the cycle's methodology: the unit is chosen from your sample (narrowed by
/// `office`, `entity` or `units`), then one group per dimension and variable, a `select_one` of
/// levels per indicator (labels in Bahasa Indonesia), "not applicable?" where the methodology
/// allows it, an evidence note, and a photo where evidence is expected. Host it unchanged in
/// KoboToolbox or ODK Central.
///
/// Who may call: admin, office (its provinces), assessor (assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/forms/assessment.xlsx", operation_id = "get_assessment_xlsform", tag = "submissions", params(("year" = i64, Path, description = "Cycle year"), TemplateQuery), responses((status = 200, description = "The XLSForm", content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn assessment_form(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(query): Query<TemplateQuery>,
) -> ApiResult<Response> {
    let (cycle, units) = book::template_units(&state, &actor, raw, &query).await?;
    let m = state.require_methodology(&cycle.methodology)?.clone();
    let year = cycle.year.get();
    let bytes = crate::workbook::blocking(move || write(&form(&m, &units), year, &m)).await?;
    Ok(book::download(
        bytes,
        &format!("formulir-penilaian-{year}.xlsx"),
    ))
}
