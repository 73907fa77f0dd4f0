//! Self-assessments and pre-evaluations: unofficial cycles beside the official one of a year. A
//! government assesses itself, or an office pre-evaluates (*pra-evaluasi*) a government of its
//! provinces, with the same instrument (the year's methodology) and the same scoring core. They
//! are never ranked, published, exported or certified, and only the entity and its office see
//! them. There is no review: every value entered counts, and the results are computed when read,
//! so they are always current. Once the official results of the year are out, a calibration
//! report compares the two, indicator by indicator.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /self-assessments` | government (its entity: a self-assessment), office (entities of its provinces: a pre-evaluation), admin (a pre-evaluation) |
//! | `GET /self-assessments`, `GET /self-assessments/{id}` | the entity's government, its office, admin; others get 404 |
//! | `POST /self-assessments/{id}/units` | as above: adds a unit of the entity (an existing one, or a new one by name) |
//! | `PUT /self-assessments/{id}/units/{unit_id}/values` | as above |
//! | `POST /self-assessments/{id}/units/{unit_id}/survey-responses` | as above (JSON or CSV, as for official cycles) |
//! | `GET /self-assessments/{id}/calibration` | as above, once the year's official results are published |

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kepatuhan_app::cycles::{self as app_cycles, CycleId, CycleKey, CycleKind};
use kepatuhan_app::plans::{self, Calibration};
use kepatuhan_core::scoring::AnswerInput;
use kepatuhan_core::{CycleYear, PublishedScore};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::BulkOutcome;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::problem::{FieldError, NAME_MAX, Problem, text_problem};
use crate::routes::results::GradeView;
use crate::routes::submissions::ValueInput;
use crate::routes::submissions::values::{insert_draft, validate_values, write_values};
use crate::routes::surveys::Batches;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(add_unit))
        .routes(routes!(put_values))
        .routes(routes!(upload_survey))
        .routes(routes!(calibration))
}

/// Body of `POST /self-assessments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "entity_code": "19.04", "year": 2025, "name": "Penilaian mandiri triwulan II" }))]
pub struct NewSelfAssessment {
    /// The entity assessed.
    pub entity_code: String,
    /// The year whose instrument is used.
    pub year: i64,
    /// A name telling it apart from the entity's other self-assessments of the year.
    pub name: String,
}

/// A unit of a self-assessment, with its result when its sheet is complete.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelfAssessedUnit {
    /// The unit.
    pub unit_id: i64,
    /// Its name.
    pub unit_name: String,
    /// Indicators answered.
    pub answered: i64,
    /// Its published score, once every indicator is answered and its surveys are in.
    #[schema(value_type = Option<String>)]
    pub score: Option<Decimal>,
    /// Its grade then.
    pub grade: Option<GradeView>,
    /// Why there is no score yet.
    pub missing: Option<String>,
}

/// A self-assessment or pre-evaluation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelfAssessment {
    /// Its id.
    pub id: i64,
    /// `self_assessment` (by the government) or `pre_evaluation` (by an office).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The year whose instrument it uses.
    pub year: i32,
    /// The methodology code.
    pub methodology: String,
    /// The entity assessed.
    pub entity_code: String,
    /// The entity's name.
    pub entity_name: String,
    /// When it was opened.
    pub opened_at: chrono::DateTime<chrono::Utc>,
    /// The entity's score from the units scored so far (mean of their published scores).
    #[schema(value_type = Option<String>)]
    pub score: Option<Decimal>,
    /// Its grade then (with the follow-up rule of the official cycle, where recorded).
    pub grade: Option<GradeView>,
    /// The units assessed.
    pub units: Vec<SelfAssessedUnit>,
}

/// Filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SelfAssessmentFilter {
    /// Only this entity.
    pub entity: Option<String>,
    /// Only this year.
    pub year: Option<i32>,
}

/// A line of the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelfAssessmentSummary {
    /// Its id.
    pub id: i64,
    /// `self_assessment` or `pre_evaluation`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The year.
    pub year: i32,
    /// The entity assessed.
    pub entity_code: String,
    /// Units in it.
    pub units: i64,
    /// When it was opened.
    pub opened_at: chrono::DateTime<chrono::Utc>,
}

/// A unit to add: one of the entity's units by id, or a new one of the entity by name and kind.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "name": "Puskesmas Koba", "kind": "puskesmas" }))]
pub struct UnitToAdd {
    /// An existing unit of the entity.
    pub unit_id: Option<i64>,
    /// A new unit's name.
    pub name: Option<String>,
    /// A new unit's kind, e.g. `puskesmas`.
    pub kind: Option<String>,
}

/// A self-assessment as its reader may see it.
struct Header {
    id: CycleId,
    entity_id: i64,
    province: Option<String>,
    year: i32,
}

/// Who may work on an entity's self-assessments: its government, the office of its province,
/// admin. Public callers must sign in; assessors may not.
fn require_participant(actor: &Actor) -> ApiResult<()> {
    match actor {
        Actor::Public => Err(ApiError::Unauthenticated),
        Actor::Assessor { .. } => Err(ApiError::Forbidden(
            "self-assessments belong to the governments and their offices".into(),
        )),
        _ => Ok(()),
    }
}

/// Loads a self-assessment the actor may see, or 404.
async fn header(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Header> {
    require_participant(actor)?;
    let row = sqlx::query!(
        r#"SELECT c.id, c.year, e.id AS entity_id, e.province_code
           FROM cycles c JOIN entities e ON e.id = c.entity_id
           WHERE c.id = $1 AND c.kind <> 'official'"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| actor.covers_entity(r.entity_id, r.province_code.as_deref()))
    .ok_or_else(|| ApiError::NotFound(format!("no self-assessment {id}")))?;
    Ok(Header {
        id: CycleId(row.id),
        entity_id: row.entity_id,
        province: row.province_code,
        year: row.year,
    })
}

/// The self-assessment with its units and their results, computed now.
async fn read(state: &AppState, h: &Header) -> ApiResult<SelfAssessment> {
    let row = sqlx::query!(
        r#"SELECT c.kind, c.name AS "name!", c.methodology_code, c.created_at, e.code, e.name AS entity_name
           FROM cycles c JOIN entities e ON e.id = c.entity_id WHERE c.id = $1"#,
        h.id.get()
    )
    .fetch_one(&state.pool)
    .await?;
    let units = sqlx::query!(
        r#"SELECT u.id, u.name,
                  (SELECT count(*) FROM submissions s JOIN submission_values v ON v.submission_id = s.id
                   WHERE s.cycle_id = cu.cycle_id AND s.unit_id = u.id) AS "answered!"
           FROM cycle_units cu JOIN units u ON u.id = cu.unit_id
           WHERE cu.cycle_id = $1 AND cu.excluded_at IS NULL ORDER BY u.name"#,
        h.id.get()
    )
    .fetch_all(&state.pool)
    .await?;
    let scores = plans::entity_scores(state, CycleKey::Id(h.id), h.entity_id).await?;
    let grade_view = |g: &kepatuhan_core::scoring::Grade| GradeView {
        code: g.code.clone(),
        label: g.label.clone(),
        zone: g.zone.map(|z| z.to_string()),
    };
    let units = units
        .into_iter()
        .map(|u| {
            let result = scores.as_ref().and_then(|s| {
                s.unit_ids
                    .iter()
                    .position(|id| *id == u.id)
                    .map(|at| &s.result.units[at])
            });
            SelfAssessedUnit {
                unit_id: u.id,
                unit_name: u.name,
                answered: u.answered,
                score: result
                    .and_then(|r| r.score.as_ref())
                    .map(|s| s.published.value()),
                grade: result.and_then(|r| r.grade.as_ref()).map(grade_view),
                missing: match result {
                    Some(r) => r.error.clone(),
                    None => Some("no value entered yet".into()),
                },
            }
        })
        .collect();
    Ok(SelfAssessment {
        id: h.id.get(),
        kind: row.kind,
        name: row.name,
        year: h.year,
        methodology: row.methodology_code,
        entity_code: row.code,
        entity_name: row.entity_name,
        opened_at: row.created_at,
        score: scores
            .as_ref()
            .and_then(|s| s.result.score)
            .map(PublishedScore::value),
        grade: scores
            .as_ref()
            .and_then(|s| s.result.grade.as_ref())
            .map(grade_view),
        units,
    })
}

/// Open a self-assessment (a government, of itself) or a pre-evaluation (an office or HQ, of a
/// government of its provinces) for a year. It covers every active unit of the entity.
///
/// Who may call: government (its entity), office (entities of its provinces), admin.
#[utoipa::path(post, path = "/self-assessments", operation_id = "create_self_assessment", tag = "self-assessments", request_body(content = NewSelfAssessment, content_type = "application/json"), responses((status = 201, description = "Created", body = SelfAssessment), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewSelfAssessment>,
) -> ApiResult<Response> {
    require_participant(&actor)?;
    let actor_id = actor.require_id()?;
    let mut errors = Vec::new();
    let year = CycleYear::new(body.year)
        .map_err(|e| errors.push(FieldError::new("year", e.to_string())))
        .ok();
    let methodology = year.and_then(|y| {
        kepatuhan_core::methodology::builtin::for_year(y)
            .filter(|m| m.aggregation() == kepatuhan_core::methodology::Aggregation::MeanOfUnits)
            .or_else(|| {
                errors.push(FieldError::new(
                    "year",
                    format!("no shipped methodology assesses units in {y}"),
                ));
                None
            })
    });
    let name = body.name.trim();
    if let Some(problem) = text_problem("name".to_owned(), name, NAME_MAX) {
        errors.push(problem);
    }
    let entity = sqlx::query!(
        "SELECT id, province_code FROM entities WHERE code = $1",
        body.entity_code.trim()
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|e| actor.covers_entity(e.id, e.province_code.as_deref()));
    if entity.is_none() {
        errors.push(FieldError::new(
            "entity_code",
            format!("no entity `{}` you may assess", body.entity_code.trim()),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (Some(year), Some(m), Some(entity)) = (year, methodology, entity) else {
        unreachable!("reported above")
    };
    let kind = if matches!(actor, Actor::Government { .. }) {
        CycleKind::SelfAssessment
    } else {
        CycleKind::PreEvaluation
    };
    let mut tx = state.pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO cycles (year, methodology_code, state, kind, entity_id, name, opened_by)
         VALUES ($1, $2, 'collecting', $3, $4, $5, $6) RETURNING id",
        i32::from(year.get()),
        m.code(),
        kind.as_str(),
        entity.id,
        name,
        actor_id
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cycles_unofficial_name") => {
            ApiError::conflict(
                "self-assessment-exists",
                format!("the entity already has a self-assessment named `{name}` in {year}"),
            )
        }
        _ => e.into(),
    })?;
    sqlx::query!(
        "INSERT INTO cycle_units (cycle_id, unit_id) SELECT $1, id FROM units WHERE entity_id = $2 AND active",
        id,
        entity.id
    )
    .execute(&mut *tx)
    .await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("self_assessment", id.to_string()),
        entity.province_code.as_deref(),
        "created",
        serde_json::json!({ "kind": kind.as_str(), "year": year.get(), "name": name, "entity": body.entity_code.trim() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    let h = header(&state, &actor, id).await?;
    let mut response = (StatusCode::CREATED, Json(read(&state, &h).await?)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/self-assessments/{id}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// List the self-assessments and pre-evaluations the caller may see.
///
/// Who may call: government (its entity's), office (its provinces'), admin.
#[utoipa::path(get, path = "/self-assessments", operation_id = "list_self_assessments", tag = "self-assessments", params(SelfAssessmentFilter), responses((status = 200, description = "Success", body = Vec<SelfAssessmentSummary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<SelfAssessmentFilter>,
) -> ApiResult<Json<Vec<SelfAssessmentSummary>>> {
    require_participant(&actor)?;
    let (provinces, entity) = match &actor {
        Actor::Government { entity_id, .. } => (None, Some(*entity_id)),
        _ => (actor.scope()?.provinces, None),
    };
    let rows = sqlx::query_as!(
        SelfAssessmentSummary,
        r#"SELECT c.id, c.kind, c.name AS "name!", c.year, e.code AS entity_code, c.created_at AS opened_at,
                  (SELECT count(*) FROM cycle_units cu WHERE cu.cycle_id = c.id AND cu.excluded_at IS NULL) AS "units!"
           FROM cycles c JOIN entities e ON e.id = c.entity_id
           WHERE c.kind <> 'official'
             AND ($1::text[] IS NULL OR e.province_code = ANY($1))
             AND ($2::bigint IS NULL OR e.id = $2)
             AND ($3::text IS NULL OR e.code = $3)
             AND ($4::int IS NULL OR c.year = $4)
           ORDER BY c.year DESC, e.code, c.id"#,
        provinces.as_deref(),
        entity,
        filter.entity.as_deref().map(str::trim),
        filter.year
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// A self-assessment with its units and their results, computed from the values entered so far.
///
/// Who may call: the entity's government, its office, admin; others get 404.
#[utoipa::path(get, path = "/self-assessments/{id}", operation_id = "get_self_assessment", tag = "self-assessments", params(("id" = i64, Path, description = "Self-assessment id")), responses((status = 200, description = "Success", body = SelfAssessment), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<SelfAssessment>> {
    let h = header(&state, &actor, id).await?;
    Ok(Json(read(&state, &h).await?))
}

/// Add a unit to a self-assessment: one of the entity's units, or a new unit of the entity.
///
/// Who may call: the entity's government, its office, admin; others get 404.
#[utoipa::path(post, path = "/self-assessments/{id}/units", operation_id = "add_self_assessment_unit", tag = "self-assessments", params(("id" = i64, Path, description = "Self-assessment id")), request_body(content = UnitToAdd, content_type = "application/json"), responses((status = 200, description = "Success", body = SelfAssessment), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn add_unit(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    Json(body): Json<UnitToAdd>,
) -> ApiResult<Json<SelfAssessment>> {
    let h = header(&state, &actor, id).await?;
    let mut tx = state.pool.begin().await?;
    let unit = match (body.unit_id, body.name.as_deref(), body.kind.as_deref()) {
        (Some(unit), None, None) => sqlx::query_scalar!(
            "SELECT id FROM units WHERE id = $1 AND entity_id = $2",
            unit,
            h.entity_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            ApiError::field(
                "unit_id",
                format!("unit {unit} is not a unit of the entity"),
            )
        })?,
        (None, Some(name), Some(kind)) => {
            let (name, kind) = (name.trim(), kind.trim());
            let problems: Vec<FieldError> = [
                text_problem("name".to_owned(), name, NAME_MAX),
                text_problem("kind".to_owned(), kind, NAME_MAX),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !problems.is_empty() {
                return Err(ApiError::fields(problems));
            }
            sqlx::query_scalar!(
                "INSERT INTO units (entity_id, name, kind) VALUES ($1, $2, $3)
                 ON CONFLICT (entity_id, name) DO UPDATE SET name = excluded.name RETURNING id",
                h.entity_id,
                name,
                kind
            )
            .fetch_one(&mut *tx)
            .await?
        }
        _ => {
            return Err(ApiError::field(
                "unit_id",
                "give either unit_id, or name and kind of a new unit",
            ));
        }
    };
    let added = sqlx::query!(
        "INSERT INTO cycle_units (cycle_id, unit_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        h.id.get(),
        unit
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added > 0 {
        crate::routes::audit::write(
            &mut tx,
            actor.id(),
            ("self_assessment", id.to_string()),
            h.province.as_deref(),
            "unit-added",
            serde_json::json!({ "unit_id": unit }),
        )
        .await?;
    }
    crate::error::commit(tx).await?;
    Ok(Json(read(&state, &h).await?))
}

/// Checks that a unit is in the self-assessment; returns the cycle's methodology.
async fn sampled<'a>(
    state: &'a AppState,
    h: &Header,
    unit_id: i64,
) -> ApiResult<&'a kepatuhan_core::Methodology> {
    let row = sqlx::query!(
        "SELECT c.methodology_code FROM cycle_units cu JOIN cycles c ON c.id = cu.cycle_id
         WHERE cu.cycle_id = $1 AND cu.unit_id = $2 AND cu.excluded_at IS NULL",
        h.id.get(),
        unit_id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        ApiError::NotFound(format!("unit {unit_id} is not in self-assessment {}", h.id))
    })?;
    Ok(state.require_methodology(&row.methodology_code)?)
}

/// Enter or change a unit's values in a self-assessment (the same rows as a submission's).
/// Values already stored are left alone: sending the same sheet again changes nothing.
///
/// Who may call: the entity's government, its office, admin; others get 404.
#[utoipa::path(put, path = "/self-assessments/{id}/units/{unit_id}/values", operation_id = "put_self_assessment_values", tag = "self-assessments", params(("id" = i64, Path, description = "Self-assessment id"), ("unit_id" = i64, Path, description = "Unit id")), request_body(content = Vec<ValueInput>, content_type = "application/json"), responses((status = 200, description = "Success", body = SelfAssessment), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn put_values(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, unit_id)): Path<(i64, i64)>,
    Json(values): Json<Vec<ValueInput>>,
) -> ApiResult<Json<SelfAssessment>> {
    let h = header(&state, &actor, id).await?;
    let actor_id = actor.require_id()?;
    let m = sampled(&state, &h, unit_id).await?;
    validate_values(m, &values, "")?;
    let mut tx = state.pool.begin().await?;
    app_cycles::lock_shared(&mut tx, h.id).await?;
    let existing = sqlx::query_scalar!(
        "SELECT id FROM submissions WHERE cycle_id = $1 AND unit_id = $2 FOR UPDATE",
        h.id.get(),
        unit_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        Some(submission) => {
            write_values(&mut tx, actor_id, submission, &values).await?;
        }
        None => {
            insert_draft(&mut tx, actor_id, h.id.get(), unit_id, &values)
                .await?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "concurrent-change",
                        "the unit's sheet was created meanwhile; send it again",
                    )
                })?;
        }
    }
    crate::error::commit(tx).await?;
    Ok(Json(read(&state, &h).await?))
}

/// Upload a unit's survey responses in a self-assessment (JSON or CSV, as for official cycles).
///
/// Who may call: the entity's government, its office, admin; others get 404.
#[utoipa::path(post, path = "/self-assessments/{id}/units/{unit_id}/survey-responses", operation_id = "upload_self_assessment_survey_responses", tag = "self-assessments", params(("id" = i64, Path, description = "Self-assessment id"), ("unit_id" = i64, Path, description = "Unit id")), request_body(description = "A JSON batch, or CSV with a header row (Content-Type: text/csv)", content((crate::routes::surveys::ResponseBatch = "application/json"), (String = "text/csv"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn upload_survey(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, unit_id)): Path<(i64, i64)>,
    body: Batches,
) -> ApiResult<Json<BulkOutcome>> {
    let h = header(&state, &actor, id).await?;
    let m = sampled(&state, &h, unit_id).await?;
    body.check(m)?;
    let mut tx = state.pool.begin().await?;
    app_cycles::lock_shared(&mut tx, h.id).await?;
    let outcome = body
        .store(
            &mut tx,
            actor.id(),
            (h.id.get(), &format!("#{}", h.id)),
            unit_id,
        )
        .await?;
    crate::error::commit(tx).await?;
    Ok(Json(outcome))
}

/// One indicator on which the entity and the Ombudsman disagree.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndicatorGapView {
    /// Indicator code.
    pub indicator: String,
    /// Indicator name.
    pub name: String,
    /// The level the entity gave itself (`null`: not applicable or not answered).
    pub self_value: Option<u8>,
    /// Whether the entity marked it not applicable.
    pub self_not_applicable: bool,
    /// The level the official assessment gave.
    pub official_value: Option<u8>,
    /// Whether the official assessment marked it not applicable.
    pub official_not_applicable: bool,
    /// Points of the unit's official score the entity's value would have moved it (positive:
    /// optimistic), exact.
    #[schema(value_type = String)]
    pub points: Decimal,
}

/// One unit of a calibration report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitCalibrationView {
    /// The unit.
    pub unit_id: i64,
    /// Its self-assessed published score, when complete.
    #[schema(value_type = Option<String>)]
    pub self_score: Option<Decimal>,
    /// Its official published score.
    #[schema(value_type = String)]
    pub official_score: Decimal,
    /// Self minus official.
    #[schema(value_type = Option<String>)]
    pub difference: Option<Decimal>,
    /// Where they disagree, most optimistic first.
    pub indicators: Vec<IndicatorGapView>,
}

/// A self-assessment against the official result of the same year.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalibrationView {
    /// The year.
    pub year: i32,
    /// Units assessed in both.
    pub units: Vec<UnitCalibrationView>,
    /// Units the entity scored higher than the Ombudsman did.
    pub optimistic_units: usize,
    /// Mean of self − official over the units scored in both.
    #[schema(value_type = Option<String>)]
    pub mean_difference: Option<Decimal>,
}

fn level(a: Option<AnswerInput>) -> (Option<u8>, bool) {
    match a {
        Some(AnswerInput::Value(v)) => (Some(v), false),
        Some(AnswerInput::NotApplicable) => (None, true),
        None => (None, false),
    }
}

impl From<Calibration> for CalibrationView {
    fn from(c: Calibration) -> Self {
        Self {
            year: i32::from(c.year.get()),
            optimistic_units: c.optimistic_units,
            mean_difference: c.mean_difference,
            units: c
                .units
                .into_iter()
                .map(|u| UnitCalibrationView {
                    unit_id: u.unit_id,
                    self_score: u.self_score.map(PublishedScore::value),
                    official_score: u.official_score.value(),
                    difference: u.difference,
                    indicators: u
                        .gaps
                        .into_iter()
                        .map(|g| {
                            let (self_value, self_not_applicable) = level(g.self_value);
                            let (official_value, official_not_applicable) = level(g.official_value);
                            IndicatorGapView {
                                indicator: g.indicator,
                                name: g.name,
                                self_value,
                                self_not_applicable,
                                official_value,
                                official_not_applicable,
                                points: g.points,
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Compare a self-assessment with the official result of its year, unit by unit and indicator
/// by indicator: where the entity was optimistic, and by how many points.
///
/// Who may call: the entity's government, its office, admin, once the official results of the
/// year are published (`409 not-published` before).
#[utoipa::path(get, path = "/self-assessments/{id}/calibration", operation_id = "get_self_assessment_calibration", tag = "self-assessments", params(("id" = i64, Path, description = "Self-assessment id")), responses((status = 200, description = "Success", body = CalibrationView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn calibration(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<CalibrationView>> {
    let h = header(&state, &actor, id).await?;
    Ok(Json(
        plans::calibration(&state, CycleKey::Id(h.id), h.entity_id)
            .await?
            .into(),
    ))
}
