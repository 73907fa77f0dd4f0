//! Service-user survey responses per sampled unit, aggregated by the core into survey-based
//! variables and components.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/units/{unit_id}/survey-responses` | assessor (assigned unit, collecting), office (its provinces), admin — while collecting or verifying |
//! | `GET /cycles/{year}/units/{unit_id}/survey-responses` | same: counts and the current score per survey |
//!
//! JSON: `{ "survey": "maladministration_perception", "responses": [{ "respondent": "R-001",
//! "answers": { "undue_delay": false } }] }`. CSV: a `survey` column, a `respondent` column and
//! one column per question code (`ya`/`tidak`, `yes`/`no`, `true`/`false`, `1`/`0`, or a Likert
//! level; empty = unanswered). Responses are keyed by respondent: re-uploading a file changes
//! nothing, and a corrected row replaces the earlier answers of that respondent. Once the unit's
//! submission is verified its responses are final (`409 inputs-final`): they count in the
//! results.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::SurveyMethod;
use kepatuhan_core::scoring::{SurveyAnswer, SurveyResponse, SurveyTally};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::BulkOutcome;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, bytes_problem, media_type, parse_json};
use crate::problem::{CODE_MAX, FieldError, Problem, text_problem};
use crate::routes::cycles::{self, CycleState};
use kepatuhan_app::cycles as app_cycles;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload, summary))
}

/// One response as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// The respondent's reference (unique per unit and survey), e.g. a questionnaire number.
    pub respondent: String,
    /// Answers by question code: `true`/`false` for yes/no questions, a number for Likert ones.
    #[schema(value_type = Object)]
    pub answers: BTreeMap<String, SurveyAnswer>,
}

/// A batch of responses to one survey.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "survey": "maladministration_perception", "responses": [{ "respondent": "R-001", "answers": { "undue_delay": false, "unofficial_fees": false } }] }))]
pub struct ResponseBatch {
    /// Survey code (a survey variable's or component's code in the cycle's methodology).
    pub survey: String,
    /// The responses.
    pub responses: Vec<ResponseInput>,
}

/// Responses in JSON or CSV, normalised to batches.
pub struct Batches {
    rows: Vec<(String, String, BTreeMap<String, SurveyAnswer>)>,
    csv: bool,
}

impl<S: Send + Sync> FromRequest<S> for Batches {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mt = media_type(&req);
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|e| bytes_problem(&e).into_response())?;
        match mt.as_str() {
            "application/json" => {
                let batch: ResponseBatch = parse_json(&raw).map_err(IntoResponse::into_response)?;
                let survey = batch.survey;
                Ok(Batches {
                    rows: batch
                        .responses
                        .into_iter()
                        .map(|r| (survey.clone(), r.respondent, r.answers))
                        .collect(),
                    csv: false,
                })
            }
            "text/csv" => parse_csv(&raw)
                .map(|rows| Batches { rows, csv: true })
                .map_err(IntoResponse::into_response),
            other => Err(crate::extract::BodyRejection::ContentType(format!(
                "{} (send application/json or text/csv)",
                if other.is_empty() { "none" } else { other }
            ))
            .into_response()),
        }
    }
}

/// An answer as typed: `ya`/`tidak` (or yes/no, true/false), or a Likert level.
pub(crate) fn parse_answer(raw: &str) -> Option<SurveyAnswer> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "ya" | "yes" | "true" | "y" => Some(SurveyAnswer::YesNo(true)),
        "tidak" | "no" | "false" | "t" | "n" => Some(SurveyAnswer::YesNo(false)),
        other => other.parse::<u8>().ok().map(SurveyAnswer::Likert),
    }
}

/// One response row: survey code, respondent, answers.
pub(crate) type Row = (String, String, BTreeMap<String, SurveyAnswer>);

fn parse_csv(raw: &[u8]) -> Result<Vec<Row>, ApiError> {
    crate::extract::refuse_nul(raw)?;
    let text = crate::bulk::csv_text(raw);
    let mut reader = crate::bulk::csv_reader(&text);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::field("line 1", e.to_string()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(survey_col), Some(respondent_col)) = (col("survey"), col("respondent")) else {
        return Err(ApiError::field(
            "line 1",
            "the header needs `survey` and `respondent` columns, then one column per question",
        ));
    };
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(FieldError::new(format!("line {line}"), e.to_string()));
                continue;
            }
        };
        let mut answers = BTreeMap::new();
        for (k, value) in record.iter().enumerate() {
            if k == survey_col || k == respondent_col || value.is_empty() {
                continue;
            }
            let question = headers.get(k).unwrap_or_default().to_owned();
            match parse_answer(value) {
                Some(a) => {
                    answers.insert(question, a);
                }
                None => errors.push(FieldError::new(
                    format!("line {line}: {question}"),
                    format!("`{value}` is not ya/tidak or a Likert level"),
                )),
            }
        }
        rows.push((
            record.get(survey_col).unwrap_or_default().to_owned(),
            record.get(respondent_col).unwrap_or_default().to_owned(),
            answers,
        ));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Survey responses are taken only while the cycle is collecting or verifying.
fn closed() -> ApiError {
    ApiError::conflict(
        "cycle-closed",
        "survey responses can be uploaded only while the cycle is collecting or verifying",
    )
}

/// Checks that the unit is sampled and visible, and data entry is open. Returns the methodology.
async fn open_unit<'a>(
    state: &'a AppState,
    actor: &Actor,
    raw: i64,
    unit_id: i64,
    writing: bool,
) -> ApiResult<(i64, &'a Methodology)> {
    let scope = actor.scope()?;
    let cycle = cycles::load(state, actor, cycles::year(raw)?).await?;
    let y = cycle.id;
    let visible = cycles::sample::sampled_unit_in_scope(state, &scope, &cycle, unit_id).await?;
    if !visible {
        return Err(ApiError::NotFound(format!(
            "unit {unit_id} is not in the sample of {}",
            cycle.year
        )));
    }
    if writing && !matches!(cycle.state, CycleState::Collecting | CycleState::Verifying) {
        return Err(closed());
    }
    let m = state.methodology(&cycle.methodology).ok_or_else(|| {
        ApiError::conflict(
            "unknown-methodology",
            "the cycle's methodology is not shipped in this build",
        )
    })?;
    Ok((y, m))
}

/// Locks the cycle (in the caller's transaction) and checks, under the lock, that the window is
/// still open and that the unit's inputs are not final (its submission is not verified).
async fn lock_open_unit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    y: i64,
    unit_id: i64,
) -> ApiResult<()> {
    let cycle = app_cycles::lock_shared(tx, app_cycles::CycleId(y)).await?;
    if !matches!(
        cycle.state,
        kepatuhan_core::CycleState::Collecting | kepatuhan_core::CycleState::Verifying
    ) {
        return Err(closed());
    }
    let submission = sqlx::query_scalar!(
        "SELECT state FROM submissions WHERE cycle_id = $1 AND unit_id = $2 FOR SHARE",
        y,
        unit_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    if submission.as_deref() == Some(kepatuhan_core::SubmissionState::Verified.as_str()) {
        return Err(ApiError::conflict(
            "inputs-final",
            format!(
                "unit {unit_id}'s submission is verified: its survey responses are final and count in the results"
            ),
        ));
    }
    Ok(())
}

/// Checks survey rows against the methodology: known survey, a respondent named once per survey
/// within the stated length, and answers that the survey accepts. Problems are located by CSV
/// `at(row, field)`, e.g. `line 4: answers` or `responses[3].answers`.
pub(crate) fn check_rows(
    m: &Methodology,
    rows: &[Row],
    at: impl Fn(usize, &str) -> String,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, (survey, respondent, answers)) in rows.iter().enumerate() {
        let Some(id) = m.survey_id(survey) else {
            errors.push(FieldError::new(
                at(i, "survey"),
                format!("unknown survey `{survey}` in methodology {}", m.code()),
            ));
            continue;
        };
        if let Some(problem) = text_problem(at(i, "respondent"), respondent, CODE_MAX) {
            errors.push(problem);
        } else if !seen.insert((survey.as_str(), respondent.trim())) {
            errors.push(FieldError::new(
                at(i, "respondent"),
                format!("`{}` appears more than once", respondent.trim()),
            ));
        }
        let one = SurveyResponse {
            answers: answers.clone(),
        };
        if let Err(e) = SurveyTally::from_responses(m.survey(id), std::slice::from_ref(&one)) {
            let message = match e {
                kepatuhan_core::scoring::InputError::BadResponse { message, .. } => message,
                other => other.to_string(),
            };
            errors.push(FieldError::new(at(i, "answers"), message));
        }
    }
    errors
}

/// The surveys that rows touch, for the audit entry.
pub(crate) fn surveys_of(rows: &[Row]) -> std::collections::BTreeSet<&str> {
    rows.iter().map(|r| r.0.as_str()).collect()
}

/// Writes checked rows of one unit, keyed by survey and respondent: a new respondent is inserted,
/// changed answers replace the stored ones, identical rows are left alone. Returns, for each row
/// written, whether it was inserted (`true`) or updated (`false`).
pub(crate) async fn store_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    y: i64,
    unit_id: i64,
    rows: &[Row],
) -> ApiResult<Vec<bool>> {
    let surveys: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let respondents: Vec<String> = rows.iter().map(|r| r.1.trim().to_owned()).collect();
    let answers: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::to_value(&r.2).unwrap_or_default())
        .collect();
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO survey_responses (cycle_id, unit_id, survey_code, respondent, answers)
           SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::jsonb[])
           ON CONFLICT (cycle_id, unit_id, survey_code, respondent) DO UPDATE SET answers = excluded.answers
           WHERE survey_responses.answers IS DISTINCT FROM excluded.answers
           RETURNING (xmax = 0) AS "inserted!""#,
        y,
        unit_id,
        &surveys,
        &respondents,
        &answers
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Upload survey responses (JSON or CSV).
///
/// Who may call: assessor (assigned unit, collecting), office (its provinces), admin.
#[utoipa::path(post, path = "/cycles/{year}/units/{unit_id}/survey-responses", operation_id = "upload_survey_responses", tag = "surveys", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), request_body(description = "A JSON array, or CSV with the same columns and a header row (Content-Type: text/csv)", content((ResponseBatch = "application/json"), (String = "text/csv"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn upload(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
    body: Batches,
) -> ApiResult<(StatusCode, Json<BulkOutcome>)> {
    actor.require_id()?;
    let (y, m) = open_unit(&state, &actor, raw, unit_id, true).await?;
    body.check(m)?;
    let mut tx = state.pool.begin().await?;
    lock_open_unit(&mut tx, y, unit_id).await?;
    // The responses of a unit not yet verified are no input of the results: verifying it
    // records the change (`inputs_changed`) and its recompute reads them then.
    let outcome = body
        .store(&mut tx, actor.id(), (y, &raw.to_string()), unit_id)
        .await?;
    crate::error::commit(tx).await?;
    Ok((StatusCode::OK, Json(outcome)))
}

impl Batches {
    /// Rows of one unit read elsewhere (a workbook), to check and store as an upload's.
    pub(crate) fn from_rows(rows: Vec<Row>) -> Self {
        Batches { rows, csv: true }
    }

    /// Checks every row against the methodology, naming each problem by its line (CSV) or its
    /// place in the JSON body.
    pub(crate) fn check(&self, m: &Methodology) -> ApiResult<()> {
        let errors = check_rows(m, &self.rows, |i, f| match (self.csv, f) {
            (true, f) => format!("line {}: {f}", i + 2),
            (false, "survey") => "survey".to_owned(),
            (false, f) => format!("responses[{i}].{f}"),
        });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(errors))
        }
    }

    /// Stores the checked rows of one unit of the cycle `cycle_id` (named `label` in the audit
    /// trail, e.g. its year) in the caller's transaction, with an audit entry when anything
    /// changed.
    pub(crate) async fn store(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        actor: Option<i64>,
        (cycle_id, label): (i64, &str),
        unit_id: i64,
    ) -> ApiResult<BulkOutcome> {
        let inserted = store_rows(tx, cycle_id, unit_id, &self.rows).await?;
        if !inserted.is_empty() {
            let province = crate::routes::audit::unit_province(tx, unit_id).await?;
            crate::routes::audit::write(
                tx,
                actor,
                ("survey_responses", format!("{label}/{unit_id}")),
                province.as_deref(),
                "uploaded",
                serde_json::json!({ "surveys": surveys_of(&self.rows), "changed": inserted.len() }),
            )
            .await?;
        }
        let created = inserted.iter().filter(|x| **x).count();
        let updated = inserted.len() - created;
        Ok(BulkOutcome {
            created,
            updated,
            unchanged: self.rows.len() - created - updated,
        })
    }
}

/// Responses and the current score of one survey of a unit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveySummary {
    /// Survey code.
    pub survey: String,
    /// How answers become points.
    pub method: String,
    /// Respondents.
    pub respondents: usize,
    /// Counts per outcome (no-maladministration surveys: [none reported, some reported];
    /// Likert surveys: one count per level).
    pub counts: Vec<u64>,
}

/// Survey counts of a unit.
///
/// Who may call: as for uploading.
#[utoipa::path(get, path = "/cycles/{year}/units/{unit_id}/survey-responses", operation_id = "get_survey_summary", tag = "surveys", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), responses((status = 200, description = "Success", body = Vec<SurveySummary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn summary(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
) -> ApiResult<Json<Vec<SurveySummary>>> {
    let (y, m) = open_unit(&state, &actor, raw, unit_id, false).await?;
    let rows = sqlx::query!(
        "SELECT survey_code, answers FROM survey_responses WHERE cycle_id = $1 AND unit_id = $2",
        y,
        unit_id
    )
    .fetch_all(&state.pool)
    .await?;
    let mut out = Vec::new();
    for id in m.survey_ids() {
        let survey = m.survey(id);
        let responses: Vec<SurveyResponse> = rows
            .iter()
            .filter(|r| r.survey_code == survey.code)
            .map(|r| SurveyResponse {
                answers: serde_json::from_value(r.answers.clone()).unwrap_or_default(),
            })
            .collect();
        let counts = SurveyTally::from_responses(survey, &responses)
            .map(|t| t.counts().to_vec())
            .unwrap_or_default();
        out.push(SurveySummary {
            survey: survey.code.clone(),
            method: match survey.method {
                SurveyMethod::NoMaladministrationShare => "no_maladministration_share".into(),
                SurveyMethod::Likert { .. } => "likert".into(),
            },
            respondents: responses.len(),
            counts,
        });
    }
    Ok(Json(out))
}
