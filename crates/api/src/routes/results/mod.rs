//! Results: per entity, unit and province, with grades, ranks, year-on-year comparison,
//! breakdown and deficiencies; an entity's history across cycles.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/results/entities`, `…/units`, `…/units/{unit_id}`, `…/provinces` | anyone once published; before that admin and offices (their provinces) |
//! | `GET …/units/{unit_id}/plan`, `…/entities/{code}/plan`, `POST …/units/{unit_id}/simulate` | admin, office (its provinces), government (its entity); see [`plans`] |
//! | `GET /results/entities/{code}/history` | anyone (published cycles); admin and offices also see unpublished ones in scope |

mod follow_up;
mod plans;

use std::collections::HashMap;

use axum::extract::State;
use kepatuhan_core::scoring::{BandMovement, year_on_year};
use kepatuhan_core::{CycleYear, PublishedScore};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{self, Page};
use crate::problem::Problem;
use crate::routes::cycles::{self, CycleState};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(entities))
        .routes(routes!(units))
        .routes(routes!(unit))
        .routes(routes!(provinces))
        .routes(routes!(history))
        .merge(follow_up::router())
        .merge(plans::router())
}

/// The results of a cycle a caller may read.
struct Visible {
    /// The cycle.
    id: i64,
    /// Its year.
    year: CycleYear,
    /// Its current results revision.
    revision: i32,
    /// The provinces whose results the caller sees: `None` = all.
    provinces: Option<Vec<String>>,
    /// Its methodology code.
    methodology: String,
}

/// Who sees which results of a cycle.
async fn visible(state: &AppState, actor: &Actor, raw: i64) -> ApiResult<Visible> {
    let cycle = cycles::head(state, actor, cycles::year(raw)?).await?;
    let provinces = if cycle.state == CycleState::Published {
        None
    } else {
        match actor {
            Actor::Admin { .. } => None,
            Actor::Office { provinces, .. } => Some(provinces.clone()),
            // Assessors and the public see published results only.
            _ => {
                return Err(ApiError::NotFound(format!(
                    "the results of {} are not published yet",
                    cycle.year
                )));
            }
        }
    };
    Ok(Visible {
        id: cycle.id,
        year: cycle.year,
        revision: cycle.results_revision,
        provinces,
        methodology: cycle.methodology,
    })
}

/// A grade as shown with results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GradeView {
    /// Grade code, e.g. `A`.
    pub code: String,
    /// Label, e.g. `Kualitas Tertinggi`.
    pub label: String,
    /// Zone (`green`, `yellow`, `red`), where the methodology has zones.
    pub zone: Option<String>,
}

/// A rank.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct RankView {
    /// Position (1 is best; ties share a rank).
    pub rank: i32,
    /// Out of.
    pub of: i32,
}

/// Comparison with the previous cycle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviousView {
    /// Previous cycle year.
    pub year: i32,
    /// Previous score.
    #[schema(value_type = String)]
    pub score: Decimal,
    /// Previous grade.
    pub grade: GradeView,
    /// Current minus previous.
    #[schema(value_type = String)]
    pub delta: Decimal,
    /// `up`, `same`, `down` or `incomparable`.
    #[schema(value_type = String)]
    pub movement: BandMovement,
}

/// An entity's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityResultView {
    /// Entity code.
    pub code: String,
    /// Entity name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Province.
    pub province_code: Option<String>,
    /// Published score (2 decimals).
    #[schema(value_type = String)]
    pub score: Decimal,
    /// Grade.
    pub grade: GradeView,
    /// Whether the result earns an award and a certificate.
    pub award_eligible: bool,
    /// Rank among entities of its kind nationally.
    pub national_rank: RankView,
    /// Rank among the cities and regencies of its province.
    pub provincial_rank: Option<RankView>,
    /// Units with a score.
    pub units_scored: i32,
    /// Mean of the units' score per dimension (empty for imported cycles).
    #[schema(value_type = Object)]
    pub dimensions: serde_json::Value,
    /// The previous cycle's result, where there is one.
    pub previous: Option<PreviousView>,
    /// When computed.
    pub computed_at: chrono::DateTime<chrono::Utc>,
    /// Input revision the result reflects.
    pub input_revision: i64,
}

/// Filters and order of result lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultFilter {
    /// Only this entity kind.
    #[param(value_type = Option<KindParam>, inline)]
    pub kind: Option<String>,
    /// Only this province.
    pub province: Option<String>,
    /// Only this grade code (the bands of the cycle's methodology: `A`–`E`, or the zones
    /// `hijau`, `kuning`, `merah` up to 2021).
    #[param(value_type = Option<GradeParam>, inline)]
    pub grade: Option<String>,
    /// Only this entity (unit lists).
    pub entity: Option<String>,
    /// `rank` (default: best first), `score_asc`, `name` or `code`.
    #[param(value_type = Option<SortParam>, inline)]
    pub sort: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// `json` (a page, the default), or every matching row as `csv` or `xlsx`: entity results
    /// as a workbook with one sheet per kind; unit results as a workbook with the units and
    /// their dimension scores, and their deficiencies. Without it, the `Accept` header chooses
    /// (`text/csv`, or the XLSX media type).
    #[param(value_type = Option<FormatParam>, inline)]
    pub format: Option<String>,
    /// Unit results as CSV only: `units` (the default: one row per unit and product, with its
    /// dimension scores) or `deficiencies` (one row per deficiency, largest loss first).
    pub table: Option<String>,
}

/// The formats of a result list.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the parameter; the handler checks the text itself
pub enum FormatParam {
    /// A page of JSON.
    Json,
    /// Every matching row, comma-separated.
    Csv,
    /// Every matching row, an XLSX workbook.
    Xlsx,
}

/// The kinds of entity, as the `kind` filter takes them.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the parameter; the handler checks the text itself
pub enum KindParam {
    /// A ministry.
    Ministry,
    /// A non-ministerial agency.
    Agency,
    /// A provincial government.
    Province,
    /// A regency.
    Regency,
    /// A city.
    City,
}

/// The grade codes of the shipped methodologies, as the `grade` filter takes them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the parameter; the handler checks the text itself
pub enum GradeParam {
    /// Opinion A.
    A,
    /// Opinion B.
    B,
    /// Opinion C.
    C,
    /// Opinion D.
    D,
    /// Opinion E.
    E,
    /// Green zone (up to 2021).
    #[schema(rename = "hijau")]
    Hijau,
    /// Yellow zone (up to 2021).
    #[schema(rename = "kuning")]
    Kuning,
    /// Red zone (up to 2021).
    #[schema(rename = "merah")]
    Merah,
}

/// The orders of result lists.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the parameter; the handler checks the text itself
pub enum SortParam {
    /// Best first (the default).
    Rank,
    /// Lowest score first.
    ScoreAsc,
    /// By name.
    Name,
    /// By code.
    Code,
}

fn sort_key(sort: Option<&str>) -> ApiResult<&'static str> {
    match sort.unwrap_or("rank") {
        "rank" => Ok("rank"),
        "score_asc" => Ok("score_asc"),
        "name" => Ok("name"),
        "code" => Ok("code"),
        other => Err(ApiError::field(
            "sort",
            format!("unknown sort `{other}` (rank, score_asc, name, code)"),
        )),
    }
}

/// Entity results with grades, ranks and year-on-year: a page of JSON, or every matching row as
/// CSV or an XLSX workbook (`format`, or `Accept`).
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/entities", operation_id = "list_entity_results", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ResultFilter), responses((status = 200, description = "A page of results; with `format=csv` or `format=xlsx` (or `Accept`), every matching row as a file", content((Page<EntityResultView> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn entities(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    headers: axum::http::HeaderMap,
    Query(f): Query<ResultFilter>,
) -> ApiResult<axum::response::Response> {
    let format = crate::export::Format::negotiate(f.format.as_deref(), &headers)?;
    if f.table.is_some() {
        return Err(ApiError::field(
            "table",
            "only unit results have tables (units, deficiencies)",
        ));
    }
    let Visible {
        id,
        year,
        revision,
        provinces,
        methodology,
    } = visible(&state, &actor, raw).await?;
    // An export is every matching row, in the asked order; a page is a page.
    let (limit, offset) = if format.is_export() {
        (crate::export::MAX_EXPORT_ROWS, 0)
    } else {
        (
            pagination::limit(f.limit)?,
            pagination::offset(f.cursor.as_deref())?,
        )
    };
    let sort = sort_key(f.sort.as_deref())?;
    let rows = sqlx::query!(
        r#"SELECT e.code, e.name, e.kind, e.province_code, r.score, r.grade_code, r.grade_label, r.zone, r.award_eligible,
                  r.national_rank, r.national_of, r.provincial_rank, r.provincial_of, r.units_scored, r.computed_at, r.input_revision, r.breakdown
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           WHERE r.cycle_id = $1 AND r.revision = $2
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::text IS NULL OR e.kind = $4)
             AND ($5::text IS NULL OR e.province_code = $5)
             AND ($6::text IS NULL OR r.grade_code = $6)
           ORDER BY CASE WHEN $7 = 'rank' THEN -r.score END, CASE WHEN $7 = 'score_asc' THEN r.score END,
                    CASE WHEN $7 = 'name' THEN e.name END, e.code
           LIMIT $8 OFFSET $9"#,
        id,
        revision,
        provinces.as_deref(),
        f.kind,
        f.province,
        f.grade,
        sort,
        limit + 1,
        offset
    )
    .fetch_all(&state.pool)
    .await?;
    let codes: Vec<String> = rows.iter().map(|r| r.code.clone()).collect();
    let previous = previous_results(&state, year, &methodology, &codes).await?;
    let items: Vec<EntityResultView> = rows
        .into_iter()
        .map(|r| {
            let prev = previous.get(&r.code).cloned().map(|p| p(r.score));
            EntityResultView {
                code: r.code,
                name: r.name,
                kind: r.kind,
                province_code: r.province_code,
                score: r.score,
                grade: GradeView {
                    code: r.grade_code,
                    label: r.grade_label,
                    zone: r.zone,
                },
                award_eligible: r.award_eligible,
                national_rank: RankView {
                    rank: r.national_rank,
                    of: r.national_of,
                },
                provincial_rank: r
                    .provincial_rank
                    .zip(r.provincial_of)
                    .map(|(rank, of)| RankView { rank, of }),
                units_scored: r.units_scored,
                dimensions: r.breakdown,
                previous: prev,
                computed_at: r.computed_at,
                input_revision: r.input_revision,
            }
        })
        .collect();
    if format.is_export() {
        return crate::export::entity_results(format, year.get(), &items);
    }
    // The same address answers CSV or a workbook to another `Accept`.
    Ok(crate::export::json(pagination::offset_page(
        items, limit, offset,
    )))
}

type PreviousFn = std::sync::Arc<dyn Fn(Decimal) -> PreviousView + Send + Sync>;

/// The previous published cycle's results for these entities, as functions of the current score.
async fn previous_results(
    state: &AppState,
    year: CycleYear,
    methodology: &str,
    codes: &[String],
) -> ApiResult<HashMap<String, PreviousFn>> {
    let Some(prev_year) = year.previous() else {
        return Ok(HashMap::new());
    };
    let py = i32::from(prev_year.get());
    let Some(prev_cycle) = sqlx::query!("SELECT id, methodology_code, results_revision FROM cycles WHERE kind = 'official' AND year = $1 AND state = 'published'", py)
        .fetch_optional(&state.pool)
        .await?
    else {
        return Ok(HashMap::new());
    };
    let (Some(prev_m), Some(cur_m)) = (
        state.methodology(&prev_cycle.methodology_code),
        state.methodology(methodology),
    ) else {
        return Ok(HashMap::new());
    };
    let rows = sqlx::query!(
        "SELECT e.code, r.score FROM entity_results r JOIN entities e ON e.id = r.entity_id
         WHERE r.cycle_id = $1 AND r.revision = $2 AND e.code = ANY($3)",
        prev_cycle.id,
        prev_cycle.results_revision,
        codes
    )
    .fetch_all(&state.pool)
    .await?;
    let prev_bands = std::sync::Arc::new(prev_m.bands().clone());
    let cur_bands = std::sync::Arc::new(cur_m.bands().clone());
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let before = PublishedScore::new(r.score).ok()?;
            let (pb, cb) = (prev_bands.clone(), cur_bands.clone());
            let f: PreviousFn = std::sync::Arc::new(move |current: Decimal| {
                let now = PublishedScore::new(current).unwrap_or(before);
                let y = year_on_year(before, &pb, now, &cb);
                PreviousView {
                    year: py,
                    score: before.value(),
                    grade: GradeView {
                        code: y.previous_band.code.clone(),
                        label: y.previous_band.label.clone(),
                        zone: y.previous_band.zone.map(|z| z.to_string()),
                    },
                    delta: y.delta,
                    movement: y.movement,
                }
            });
            Some((r.code, f))
        })
        .collect())
}

/// A unit's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitResultView {
    /// Unit id.
    pub unit_id: i64,
    /// Unit name.
    pub unit_name: String,
    /// Entity code.
    pub entity_code: String,
    /// Entity name.
    pub entity_name: String,
    /// Province.
    pub province_code: Option<String>,
    /// Published score.
    #[schema(value_type = String)]
    pub score: Decimal,
    /// Grade code.
    pub grade: String,
    /// Per-dimension and per-variable breakdown.
    #[schema(value_type = Object)]
    pub breakdown: serde_json::Value,
    /// Indicators that lost the most points, largest first.
    #[schema(value_type = Object)]
    pub deficiencies: serde_json::Value,
    /// When computed.
    pub computed_at: chrono::DateTime<chrono::Utc>,
}

/// Unit results with breakdown and deficiencies: a page of JSON, or every matching unit as CSV
/// (`table=units` or `deficiencies`) or as a workbook with both (`format`, or `Accept`).
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/units", operation_id = "list_unit_results", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ResultFilter), responses((status = 200, description = "A page of results; with `format=csv` or `format=xlsx` (or `Accept`), every matching unit as a file", content((Page<UnitResultView> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn units(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    headers: axum::http::HeaderMap,
    Query(f): Query<ResultFilter>,
) -> ApiResult<axum::response::Response> {
    let format = crate::export::Format::negotiate(f.format.as_deref(), &headers)?;
    let table = crate::export::UnitTable::parse(f.table.as_deref())?;
    let Visible {
        id,
        year,
        revision,
        provinces,
        methodology,
    } = visible(&state, &actor, raw).await?;
    // An export is every matching row, in the asked order; a page is a page.
    let (limit, offset) = if format.is_export() {
        (crate::export::MAX_EXPORT_ROWS, 0)
    } else {
        (
            pagination::limit(f.limit)?,
            pagination::offset(f.cursor.as_deref())?,
        )
    };
    let sort = sort_key(f.sort.as_deref())?;
    let rows = sqlx::query_as!(
        UnitResultView,
        r#"SELECT u.id AS unit_id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  r.score, r.grade_code AS grade, r.breakdown, r.deficiencies, r.computed_at
           FROM unit_results r JOIN units u ON u.id = r.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE r.cycle_id = $1 AND r.revision = $2
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::text IS NULL OR e.kind = $4)
             AND ($5::text IS NULL OR e.province_code = $5)
             AND ($6::text IS NULL OR r.grade_code = $6)
             AND ($7::text IS NULL OR e.code = $7)
           ORDER BY CASE WHEN $8 = 'rank' THEN -r.score END, CASE WHEN $8 = 'score_asc' THEN r.score END,
                    CASE WHEN $8 = 'name' THEN u.name END, e.code, u.name
           LIMIT $9 OFFSET $10"#,
        id,
        revision,
        provinces.as_deref(),
        f.kind,
        f.province,
        f.grade,
        f.entity,
        sort,
        limit + 1,
        offset
    )
    .fetch_all(&state.pool)
    .await?;
    if format.is_export() {
        let m = state.require_methodology(&methodology)?;
        return crate::export::unit_results(format, table, year.get(), m, &rows);
    }
    Ok(crate::export::json(pagination::offset_page(
        rows, limit, offset,
    )))
}

/// One unit's result.
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/units/{unit_id}", operation_id = "get_unit_result", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), responses((status = 200, description = "Success", body = UnitResultView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn unit(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
) -> ApiResult<Json<UnitResultView>> {
    let Visible {
        id,
        year,
        revision,
        provinces,
        ..
    } = visible(&state, &actor, raw).await?;
    let row = sqlx::query_as!(
        UnitResultView,
        r#"SELECT u.id AS unit_id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  r.score, r.grade_code AS grade, r.breakdown, r.deficiencies, r.computed_at
           FROM unit_results r JOIN units u ON u.id = r.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE r.cycle_id = $1 AND r.revision = $2 AND r.unit_id = $3
             AND ($4::text[] IS NULL OR e.province_code = ANY($4))"#,
        id,
        revision,
        unit_id,
        provinces.as_deref()
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no result for unit {unit_id} in {year}")))?;
    Ok(Json(row))
}

/// A province's summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvinceSummary {
    /// Province code.
    pub code: String,
    /// Province name.
    pub name: String,
    /// Entities with a score (the provincial government, cities and regencies).
    pub entities: i64,
    /// Mean of their published scores, rounded half-up to 2 decimals.
    #[schema(value_type = Option<String>)]
    pub mean_score: Option<Decimal>,
    /// Entities per grade code.
    #[schema(value_type = Object)]
    pub grades: serde_json::Value,
}

/// The format of a list that has no other parameter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (the default), `csv` or `xlsx`; without it, the `Accept` header chooses.
    #[param(value_type = Option<FormatParam>, inline)]
    pub format: Option<String>,
}

/// Per-province summary: as JSON, or as CSV or an XLSX workbook (`format`, or `Accept`).
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/provinces", operation_id = "list_province_results", tag = "results", params(("year" = i64, Path, description = "Cycle year"), FormatQuery), responses((status = 200, description = "The provinces; with `format=csv` or `format=xlsx` (or `Accept`), as a file", content((Vec<ProvinceSummary> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn provinces(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    headers: axum::http::HeaderMap,
    Query(q): Query<FormatQuery>,
) -> ApiResult<axum::response::Response> {
    let format = crate::export::Format::negotiate(q.format.as_deref(), &headers)?;
    let Visible {
        id,
        year,
        revision,
        provinces,
        ..
    } = visible(&state, &actor, raw).await?;
    let rows = sqlx::query!(
        r#"SELECT p.code, p.name, count(r.entity_id) AS "entities!", avg(r.score) AS mean,
                  (SELECT COALESCE(jsonb_object_agg(g.grade_code, g.n), '{}') FROM (
                       SELECT r2.grade_code, count(*) AS n FROM entity_results r2 JOIN entities e2 ON e2.id = r2.entity_id
                       WHERE r2.cycle_id = $1 AND r2.revision = $2 AND e2.province_code = p.code
                       GROUP BY r2.grade_code) g) AS "grades!"
           FROM provinces p
           LEFT JOIN entities e ON e.province_code = p.code
           LEFT JOIN entity_results r ON r.entity_id = e.id AND r.cycle_id = $1 AND r.revision = $2
           WHERE ($3::text[] IS NULL OR p.code = ANY($3))
           GROUP BY p.code ORDER BY p.code"#,
        id,
        revision,
        provinces.as_deref()
    )
    .fetch_all(&state.pool)
    .await?;
    let summaries: Vec<ProvinceSummary> = rows
        .into_iter()
        .filter(|r| r.entities > 0)
        .map(|r| ProvinceSummary {
            code: r.code,
            name: r.name,
            entities: r.entities,
            mean_score: r.mean.map(kepatuhan_core::score::round_published),
            grades: r.grades,
        })
        .collect();
    if format.is_export() {
        return crate::export::province_summaries(format, year.get(), &summaries);
    }
    Ok(crate::export::json(summaries))
}

/// One cycle of an entity's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Cycle year.
    pub year: i32,
    /// Whether the cycle is published.
    pub published: bool,
    /// Published score.
    #[schema(value_type = String)]
    pub score: Decimal,
    /// Grade.
    pub grade: GradeView,
    /// National rank within kind.
    pub national_rank: RankView,
    /// Provincial rank.
    pub provincial_rank: Option<RankView>,
}

/// An entity's results across cycles.
///
/// Who may call: anyone (published cycles); admin and offices also unpublished ones in scope.
#[utoipa::path(get, path = "/results/entities/{code}/history", operation_id = "get_entity_history", tag = "results", params(("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Vec<HistoryEntry>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn history(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let staff_provinces: Option<Option<Vec<String>>> = match &actor {
        Actor::Admin { .. } => Some(None),
        Actor::Office { provinces, .. } => Some(Some(provinces.clone())),
        _ => None,
    };
    let rows = sqlx::query!(
        r#"SELECT c.year, c.state, r.score, r.grade_code, r.grade_label, r.zone, r.national_rank, r.national_of,
                  r.provincial_rank, r.provincial_of, e.province_code
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision AND c.kind = 'official'
           WHERE e.code = $1 ORDER BY c.year"#,
        code
    )
    .fetch_all(&state.pool)
    .await?;
    let items: Vec<HistoryEntry> = rows
        .into_iter()
        .filter(|r| {
            CycleState::parse(&r.state) == CycleState::Published
                || staff_provinces.as_ref().is_some_and(|p| {
                    p.as_ref()
                        .is_none_or(|p| r.province_code.as_ref().is_some_and(|c| p.contains(c)))
                })
        })
        .map(|r| HistoryEntry {
            year: r.year,
            published: CycleState::parse(&r.state) == CycleState::Published,
            score: r.score,
            grade: GradeView {
                code: r.grade_code,
                label: r.grade_label,
                zone: r.zone,
            },
            national_rank: RankView {
                rank: r.national_rank,
                of: r.national_of,
            },
            provincial_rank: r
                .provincial_rank
                .zip(r.provincial_of)
                .map(|(rank, of)| RankView { rank, of }),
        })
        .collect();
    if items.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no results for entity `{code}`"
        )));
    }
    Ok(Json(items))
}
