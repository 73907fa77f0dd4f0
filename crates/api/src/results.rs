//! Results: per entity, unit and province, with grades, ranks, year-on-year comparison,
//! breakdown and deficiencies; an entity's history across cycles.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/results/entities`, `…/units`, `…/units/{unit_id}`, `…/provinces` | anyone once published; before that admin and offices (their provinces) |
//! | `GET /results/entities/{code}/history` | anyone (published cycles); admin and offices also see unpublished ones in scope |

use std::collections::HashMap;

use axum::extract::State;
use kepatuhan_core::scoring::{BandMovement, year_on_year};
use kepatuhan_core::{CycleYear, PublishedScore};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;

/// Anonymous answers about published results, kept in memory by URI for a short time.
///
/// Published results are the same for every caller and change only through a new results
/// revision (a correction), so the public rankings, which every local government refreshes on
/// publication day, are answered from memory: a correction shows within the time to live.
/// Only requests without credentials are served from or stored in the cache, so a caller with a
/// token is always authenticated and sees the database.
///
/// Nobody waits for an expiry under steady traffic: once an answer is older than half its time
/// to live, the next request still gets it and starts one refresh in the background, so a busy
/// answer is replaced before it expires. When an answer has expired (a quiet key), concurrent
/// requests for it wait for one computation instead of all asking the database at once.
#[derive(Clone)]
pub struct PublicCache {
    /// Behind an `Arc`: the state is cloned several times per request, and cloning a moka
    /// cache itself (its handles and channels) took a quarter of the api's CPU under load.
    answers: std::sync::Arc<moka::future::Cache<String, Cached>>,
    /// Age after which a served answer is refreshed in the background.
    refresh_after: std::time::Duration,
}

/// A kept answer, with when it was computed and whether a refresh is under way.
#[derive(Clone, Debug)]
struct Cached {
    answer: Buffered,
    at: std::time::Instant,
    refreshing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Cached {
    fn new(answer: Buffered) -> Self {
        Self {
            answer,
            at: std::time::Instant::now(),
            refreshing: std::sync::Arc::default(),
        }
    }
}

impl std::fmt::Debug for PublicCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicCache").finish_non_exhaustive()
    }
}

impl PublicCache {
    /// A cache whose answers live `ttl` (`None` when `ttl` is zero: no cache).
    pub fn new(ttl: std::time::Duration) -> Option<Self> {
        (!ttl.is_zero()).then(|| Self {
            answers: std::sync::Arc::new(
                moka::future::Cache::builder()
                    .max_capacity(2_000)
                    .time_to_live(ttl)
                    .build(),
            ),
            refresh_after: ttl / 2,
        })
    }
}

/// An answer read into memory.
#[derive(Clone, Debug)]
pub struct Buffered {
    status: axum::http::StatusCode,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
}

impl Buffered {
    /// Reads an answer's body into memory.
    async fn read(response: axum::response::Response) -> Self {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, PUBLIC_CACHE_MAX_BYTES).await {
            Ok(body) => Self {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            Err(_) => Self {
                status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                headers: axum::http::HeaderMap::new(),
                body: axum::body::Bytes::new(),
            },
        }
    }
}

impl axum::response::IntoResponse for Buffered {
    fn into_response(self) -> axum::response::Response {
        (self.status, self.headers, self.body).into_response()
    }
}

/// Largest answer read into memory (a page of results is far smaller).
const PUBLIC_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Middleware: serves anonymous `GET`s of results (`…/results/…`) from [`PublicCache`] and keeps
/// their successful answers. Anonymous callers only ever see published results, so a `200` for
/// one is a `200` for all; other answers are shared with requests waiting at the same moment but
/// not kept.
pub async fn public_cache(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let cacheable = req.method() == axum::http::Method::GET
        && !req
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
        && req.uri().path().contains("/results/");
    let Some(cache) = state.public_cache.as_ref().filter(|_| cacheable) else {
        return next.run(req).await;
    };
    let key = req.uri().to_string();
    if let Some(kept) = cache.answers.get(&key).await {
        if kept.at.elapsed() >= cache.refresh_after && !kept.refreshing.swap(true, Ordering::AcqRel)
        {
            // This request answers from memory and refreshes the answer for the next ones.
            let answers = cache.answers.clone();
            tokio::spawn(async move {
                let fresh = Buffered::read(next.run(req).await).await;
                if fresh.status == axum::http::StatusCode::OK {
                    answers.insert(key, Cached::new(fresh)).await;
                } else {
                    // No longer public (or failing): let the next request compute it afresh.
                    answers.invalidate(&key).await;
                }
            });
        }
        return kept.answer.into_response();
    }
    let answer = cache
        .answers
        .try_get_with(key, async move {
            let buffered = Buffered::read(next.run(req).await).await;
            if buffered.status == axum::http::StatusCode::OK {
                Ok(Cached::new(buffered))
            } else {
                Err(buffered)
            }
        })
        .await;
    match answer {
        Ok(hit) => hit.answer.into_response(),
        Err(other) => (*other).clone().into_response(),
    }
}

use crate::cycles::{self, CycleState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{self, Page};
use crate::problem::Problem;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(entities))
        .routes(routes!(units))
        .routes(routes!(unit))
        .routes(routes!(provinces))
        .routes(routes!(history))
        .routes(routes!(set_follow_up))
}

/// Who sees which results of a cycle: `None` provinces = all.
async fn visible(
    state: &AppState,
    actor: &Actor,
    raw: i64,
) -> ApiResult<(CycleYear, i32, Option<Vec<String>>, String)> {
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
    Ok((
        cycle.year,
        cycle.results_revision,
        provinces,
        cycle.methodology,
    ))
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
    pub kind: Option<String>,
    /// Only this province.
    pub province: Option<String>,
    /// Only this grade code.
    pub grade: Option<String>,
    /// Only this entity (unit lists).
    pub entity: Option<String>,
    /// `rank` (default: best first), `score_asc`, `name` or `code`.
    pub sort: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
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

/// Entity results with grades, ranks and year-on-year.
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/entities", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ResultFilter), responses((status = 200, description = "Success", body = Page<EntityResultView>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn entities(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(f): Query<ResultFilter>,
) -> ApiResult<Json<Page<EntityResultView>>> {
    let (year, revision, provinces, methodology) = visible(&state, &actor, raw).await?;
    let limit = pagination::limit(f.limit)?;
    let offset = pagination::offset(f.cursor.as_deref())?;
    let sort = sort_key(f.sort.as_deref())?;
    let rows = sqlx::query!(
        r#"SELECT e.code, e.name, e.kind, e.province_code, r.score, r.grade_code, r.grade_label, r.zone, r.award_eligible,
                  r.national_rank, r.national_of, r.provincial_rank, r.provincial_of, r.units_scored, r.computed_at, r.input_revision, r.breakdown
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           WHERE r.cycle_year = $1 AND r.revision = $2
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::text IS NULL OR e.kind = $4)
             AND ($5::text IS NULL OR e.province_code = $5)
             AND ($6::text IS NULL OR r.grade_code = $6)
           ORDER BY CASE WHEN $7 = 'rank' THEN -r.score END, CASE WHEN $7 = 'score_asc' THEN r.score END,
                    CASE WHEN $7 = 'name' THEN e.name END, e.code
           LIMIT $8 OFFSET $9"#,
        i32::from(year.get()),
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
    Ok(Json(pagination::offset_page(items, limit, offset)))
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
    let Some(prev_cycle) = sqlx::query!("SELECT methodology_code, results_revision FROM cycles WHERE year = $1 AND state = 'published'", py)
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
         WHERE r.cycle_year = $1 AND r.revision = $2 AND e.code = ANY($3)",
        py,
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

/// Unit results with breakdown and deficiencies.
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/units", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ResultFilter), responses((status = 200, description = "Success", body = Page<UnitResultView>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn units(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Query(f): Query<ResultFilter>,
) -> ApiResult<Json<Page<UnitResultView>>> {
    let (year, revision, provinces, _) = visible(&state, &actor, raw).await?;
    let limit = pagination::limit(f.limit)?;
    let offset = pagination::offset(f.cursor.as_deref())?;
    let sort = sort_key(f.sort.as_deref())?;
    let rows = sqlx::query_as!(
        UnitResultView,
        r#"SELECT u.id AS unit_id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  r.score, r.grade_code AS grade, r.breakdown, r.deficiencies, r.computed_at
           FROM unit_results r JOIN units u ON u.id = r.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE r.cycle_year = $1 AND r.revision = $2
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::text IS NULL OR e.kind = $4)
             AND ($5::text IS NULL OR e.province_code = $5)
             AND ($6::text IS NULL OR r.grade_code = $6)
             AND ($7::text IS NULL OR e.code = $7)
           ORDER BY CASE WHEN $8 = 'rank' THEN -r.score END, CASE WHEN $8 = 'score_asc' THEN r.score END,
                    CASE WHEN $8 = 'name' THEN u.name END, e.code, u.name
           LIMIT $9 OFFSET $10"#,
        i32::from(year.get()),
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
    Ok(Json(pagination::offset_page(rows, limit, offset)))
}

/// One unit's result.
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/units/{unit_id}", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), responses((status = 200, description = "Success", body = UnitResultView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn unit(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
) -> ApiResult<Json<UnitResultView>> {
    let (year, revision, provinces, _) = visible(&state, &actor, raw).await?;
    let row = sqlx::query_as!(
        UnitResultView,
        r#"SELECT u.id AS unit_id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  r.score, r.grade_code AS grade, r.breakdown, r.deficiencies, r.computed_at
           FROM unit_results r JOIN units u ON u.id = r.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE r.cycle_year = $1 AND r.revision = $2 AND r.unit_id = $3
             AND ($4::text[] IS NULL OR e.province_code = ANY($4))"#,
        i32::from(year.get()),
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

/// Per-province summary.
///
/// Who may call: anyone once published; before: admin, office (its provinces).
#[utoipa::path(get, path = "/cycles/{year}/results/provinces", tag = "results", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Vec<ProvinceSummary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn provinces(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Vec<ProvinceSummary>>> {
    let (year, revision, provinces, _) = visible(&state, &actor, raw).await?;
    let rows = sqlx::query!(
        r#"SELECT p.code, p.name, count(r.entity_id) AS "entities!", avg(r.score) AS mean,
                  (SELECT COALESCE(jsonb_object_agg(g.grade_code, g.n), '{}') FROM (
                       SELECT r2.grade_code, count(*) AS n FROM entity_results r2 JOIN entities e2 ON e2.id = r2.entity_id
                       WHERE r2.cycle_year = $1 AND r2.revision = $2 AND e2.province_code = p.code
                       GROUP BY r2.grade_code) g) AS "grades!"
           FROM provinces p
           LEFT JOIN entities e ON e.province_code = p.code
           LEFT JOIN entity_results r ON r.entity_id = e.id AND r.cycle_year = $1 AND r.revision = $2
           WHERE ($3::text[] IS NULL OR p.code = ANY($3))
           GROUP BY p.code ORDER BY p.code"#,
        i32::from(year.get()),
        revision,
        provinces.as_deref()
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .filter(|r| r.entities > 0)
            .map(|r| ProvinceSummary {
                code: r.code,
                name: r.name,
                entities: r.entities,
                mean_score: r.mean.map(kepatuhan_core::score::round_published),
                grades: r.grades,
            })
            .collect(),
    ))
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
#[utoipa::path(get, path = "/results/entities/{code}/history", tag = "results", params(("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Vec<HistoryEntry>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
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
           JOIN cycles c ON c.year = r.cycle_year AND c.results_revision = r.revision
           WHERE e.code = $1 ORDER BY c.year"#,
        code
    )
    .fetch_all(&state.pool)
    .await?;
    let items: Vec<HistoryEntry> = rows
        .into_iter()
        .filter(|r| {
            r.state == "published"
                || staff_provinces.as_ref().is_some_and(|p| {
                    p.as_ref()
                        .is_none_or(|p| r.province_code.as_ref().is_some_and(|c| p.contains(c)))
                })
        })
        .map(|r| HistoryEntry {
            year: r.year,
            published: r.state == "published",
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

/// Body of a follow-up statement.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// Findings and recommendations the Ombudsman addressed to the entity.
    pub findings: i32,
    /// Of which followed up.
    pub followed_up: i32,
}

/// Record whether an entity followed up the Ombudsman's findings in a cycle. From 2023 awards
/// (and certificates) need every finding followed up; from 2025 the opinion then reads
/// "… Tanpa Maladministrasi". Takes effect at the next recompute.
///
/// Who may call: admin, office (entities of its provinces); not once the cycle is published.
#[utoipa::path(put, path = "/cycles/{year}/entities/{code}/follow-up", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), request_body(content = FollowUp, content_type = "application/json"), responses((status = 200, description = "Recorded", body = FollowUp), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn set_follow_up(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
    Json(body): Json<FollowUp>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor_id = actor.require_staff()?;
    let scope = actor.scope()?;
    let cycle = cycles::load(&state, &actor, cycles::year(raw)?).await?;
    if cycle.state == CycleState::Published || cycle.imported {
        return Err(ApiError::conflict(
            "results-frozen",
            format!(
                "the results of {} are published; use corrections",
                cycle.year
            ),
        ));
    }
    let mut errors = Vec::new();
    if body.findings < 0 {
        errors.push(crate::problem::FieldError::new(
            "findings",
            "must be 0 or more",
        ));
    }
    if body.followed_up < 0 || body.followed_up > body.findings {
        errors.push(crate::problem::FieldError::new(
            "followed_up",
            "must be between 0 and findings",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (entity_id, _) = crate::reference::visible_entity(&state, &scope, &code).await?;
    let y = i32::from(cycle.year.get());
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO entity_follow_up (cycle_year, entity_id, findings, followed_up, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (cycle_year, entity_id) DO UPDATE
           SET findings = excluded.findings, followed_up = excluded.followed_up, updated_by = excluded.updated_by, updated_at = now()",
        y,
        entity_id,
        body.findings,
        body.followed_up,
        actor_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE cycles SET input_revision = input_revision + 1 WHERE year = $1",
        y
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(
        serde_json::json!({ "findings": body.findings, "followed_up": body.followed_up }),
    ))
}
