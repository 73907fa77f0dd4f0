//! Assessment cycles: creating and reading them here; their moves in [`transitions`], their sample
//! in [`sample`], assessors and assignments in [`assignments`], an entity's collection progress in
//! [`progress`].
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles` | admin |
//! | `GET /cycles`, `GET /cycles/{year}` | anyone (public callers see published cycles only) |
//!
//! States: `planning → collecting ⇄ verifying → published` (core's transition table).

pub mod assignments;
pub mod progress;
pub mod sample;
pub mod transitions;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use kepatuhan_core::{CycleYear, methodology::Aggregation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .merge(transitions::router())
        .merge(sample::router())
        .merge(assignments::router())
        .merge(progress::router())
}

/// The state of a cycle. Its moves are decided by the transition table of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CycleState {
    /// Sample and assignments are prepared.
    Planning,
    /// The collection window is open: assessors enter data.
    Collecting,
    /// Collection closed: offices verify.
    Verifying,
    /// Results are published and frozen.
    Published,
}

impl From<kepatuhan_core::CycleState> for CycleState {
    fn from(s: kepatuhan_core::CycleState) -> Self {
        use kepatuhan_core::CycleState as Core;
        match s {
            Core::Planning => CycleState::Planning,
            Core::Collecting => CycleState::Collecting,
            Core::Verifying => CycleState::Verifying,
            Core::Published => CycleState::Published,
        }
    }
}

impl From<CycleState> for kepatuhan_core::CycleState {
    fn from(s: CycleState) -> Self {
        use kepatuhan_core::CycleState as Core;
        match s {
            CycleState::Planning => Core::Planning,
            CycleState::Collecting => Core::Collecting,
            CycleState::Verifying => Core::Verifying,
            CycleState::Published => Core::Published,
        }
    }
}

impl CycleState {
    /// Reads the stored spelling (an unknown one, which the schema's check forbids, reads as
    /// planning: the most restricted state).
    pub fn parse(s: &str) -> Self {
        s.parse::<kepatuhan_core::CycleState>()
            .map_or(CycleState::Planning, CycleState::from)
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        kepatuhan_core::CycleState::from(self).as_str()
    }
}

/// A cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cycle {
    /// The cycle's id (the official cycle of a year is also addressed by its year).
    pub id: i64,
    /// The year.
    #[schema(value_type = i32)]
    pub year: CycleYear,
    /// The methodology code.
    pub methodology: String,
    /// State.
    pub state: CycleState,
    /// First day of the collection window.
    pub opens_on: Option<NaiveDate>,
    /// Last day of the collection window.
    pub closes_on: Option<NaiveDate>,
    /// Current results revision (bumped by corrections after publishing).
    pub results_revision: i32,
    /// Whether this cycle holds imported published scores rather than field data.
    pub imported: bool,
    /// When it was published.
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Units in the sample.
    pub sampled_units: i64,
}

/// Body of `POST /cycles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "year": 2026, "opens_on": "2026-06-01", "closes_on": "2026-10-30" }))]
pub struct NewCycle {
    /// The year, e.g. 2025.
    pub year: i64,
    /// Methodology code; default: the shipped methodology for that year.
    pub methodology: Option<String>,
    /// First day of the collection window.
    pub opens_on: Option<NaiveDate>,
    /// Last day of the collection window.
    pub closes_on: Option<NaiveDate>,
}

/// Parses a year path segment, answering 404 for nonsense.
pub fn year(raw: i64) -> ApiResult<CycleYear> {
    CycleYear::new(raw).map_err(|_| ApiError::NotFound(format!("no cycle {raw}")))
}

/// What the results endpoints need of a cycle.
#[derive(Debug, Clone)]
pub struct CycleHead {
    /// The cycle's id.
    pub id: i64,
    /// The year.
    pub year: CycleYear,
    /// Methodology code.
    pub methodology: String,
    /// Lifecycle state.
    pub state: CycleState,
    /// The current results revision.
    pub results_revision: i32,
}

/// Whether the caller sees cycles that are not published yet: anyone signed in; the public sees
/// published cycles only.
fn sees_unpublished(actor: &Actor) -> bool {
    !matches!(actor, Actor::Public)
}

/// A cycle's state and current results revision, or 404 (public callers see published cycles
/// only): [`load`] without counting the sample, for the results endpoints read on every page
/// of the public rankings.
pub async fn head(state: &AppState, actor: &Actor, year: CycleYear) -> ApiResult<CycleHead> {
    let row = sqlx::query!(
        "SELECT id, methodology_code, state, results_revision FROM cycles WHERE kind = 'official' AND year = $1",
        i32::from(year.get())
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| {
        sees_unpublished(actor) || r.state == kepatuhan_core::CycleState::Published.as_str()
    })
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    Ok(CycleHead {
        id: row.id,
        year,
        methodology: row.methodology_code,
        state: CycleState::parse(&row.state),
        results_revision: row.results_revision,
    })
}

/// Loads a cycle, or 404. Public callers see published cycles only.
pub async fn load(state: &AppState, actor: &Actor, year: CycleYear) -> ApiResult<Cycle> {
    let y = i32::from(year.get());
    let row = sqlx::query!(
        r#"SELECT c.id, c.methodology_code, c.state, c.opens_on, c.closes_on, c.results_revision, c.imported,
                  c.published_at, (SELECT count(*) FROM cycle_units cu WHERE cu.cycle_id = c.id) AS "sampled!"
           FROM cycles c WHERE c.kind = 'official' AND c.year = $1"#,
        y
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| sees_unpublished(actor) || r.state == kepatuhan_core::CycleState::Published.as_str())
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    Ok(Cycle {
        id: row.id,
        year,
        methodology: row.methodology_code,
        state: CycleState::parse(&row.state),
        opens_on: row.opens_on,
        closes_on: row.closes_on,
        results_revision: row.results_revision,
        imported: row.imported,
        published_at: row.published_at,
        sampled_units: row.sampled,
    })
}

/// Create a cycle.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles", operation_id = "create_cycle", tag = "cycles", request_body(content = NewCycle, content_type = "application/json"), responses((status = 201, description = "Success", body = Cycle), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewCycle>,
) -> ApiResult<(StatusCode, Json<Cycle>)> {
    actor.require_admin()?;
    let mut errors = Vec::new();
    let year = CycleYear::new(body.year)
        .map_err(|e| errors.push(FieldError::new("year", e.to_string())))
        .ok();
    let methodology = match (&body.methodology, year) {
        (Some(code), _) => state.methodology(code).cloned().or_else(|| {
            errors.push(FieldError::new(
                "methodology",
                format!("unknown methodology `{code}`"),
            ));
            None
        }),
        (None, Some(y)) => kepatuhan_core::methodology::builtin::for_year(y).or_else(|| {
            errors.push(FieldError::new(
                "methodology",
                format!("no shipped methodology covers {y}; name one"),
            ));
            None
        }),
        (None, None) => None,
    };
    if let (Some(m), Some(y)) = (&methodology, year) {
        if !m.covers(y) {
            errors.push(FieldError::new(
                "methodology",
                format!(
                    "`{}` is meant for {}–{}, not {y}",
                    m.code(),
                    m.first_year(),
                    m.last_year().map_or_else(String::new, |l| l.to_string())
                ),
            ));
        }
        if m.aggregation() == Aggregation::MeanOfProducts {
            errors.push(FieldError::new("methodology", format!("`{}` scores service products; its cycles can only be imported (POST /cycles/{y}/import)", m.code())));
        }
    }
    if let (Some(o), Some(c)) = (body.opens_on, body.closes_on)
        && o > c
    {
        errors.push(FieldError::new("closes_on", "must not be before opens_on"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (Some(year), Some(m)) = (year, methodology) else {
        unreachable!("reported above")
    };
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO cycles (year, methodology_code, opens_on, closes_on) VALUES ($1, $2, $3, $4)",
        i32::from(year.get()),
        m.code(),
        body.opens_on,
        body.closes_on
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cycles_official_year") => {
            ApiError::conflict("cycle-exists", format!("a cycle for {year} already exists"))
        }
        _ => e.into(),
    })?;
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("cycle", year.to_string()),
        None,
        "created",
        serde_json::json!({ "methodology": m.code(), "opens_on": body.opens_on, "closes_on": body.closes_on }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok((StatusCode::CREATED, Json(load(&state, &actor, year).await?)))
}

/// List cycles.
///
/// Who may call: anyone (public: published cycles only).
#[utoipa::path(get, path = "/cycles", operation_id = "list_cycles", tag = "cycles", responses((status = 200, description = "Success", body = Vec<Cycle>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn list(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Cycle>>> {
    let years = sqlx::query_scalar!(
        "SELECT year FROM cycles WHERE kind = 'official' AND ($1 OR state = 'published') ORDER BY year DESC",
        sees_unpublished(&actor)
    )
    .fetch_all(&state.pool)
    .await?;
    let mut out = Vec::with_capacity(years.len());
    for y in years {
        out.push(load(&state, &actor, year(i64::from(y))?).await?);
    }
    Ok(Json(out))
}

/// A cycle.
///
/// Who may call: anyone (public: published cycles only).
#[utoipa::path(get, path = "/cycles/{year}", operation_id = "get_cycle", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Cycle), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Cycle>> {
    Ok(Json(load(&state, &actor, year(raw)?).await?))
}
