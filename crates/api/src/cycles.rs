//! Assessment cycles, their state machine, the sample of units and assessor assignments.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles` | admin |
//! | `GET /cycles`, `GET /cycles/{year}` | anyone (public callers see published cycles only) |
//! | `POST /cycles/{year}/transitions` | admin |
//! | `POST /cycles/{year}/sample/bulk` | admin (any unit), office (units of its provinces) |
//! | `GET /cycles/{year}/sample` | admin, office (its provinces), assessor (its assigned units, open cycles) |
//! | `POST /cycles/{year}/assignments/bulk` | admin, office (its provinces and its own assessors) |
//! | `GET /assessors` | admin (all), office (its own) |
//!
//! States: `planning → collecting ⇄ verifying → published`. Every other move is refused with a
//! `409 invalid-transition` problem that lists the allowed ones.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use kepatuhan_core::{CycleYear, methodology::Aggregation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Actor, Scope};
use crate::bulk::{Bulk, BulkOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};
use crate::{jobs, recompute};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(transition))
        .routes(routes!(recompute))
        .routes(routes!(list_sample))
        .routes(routes!(bulk_sample))
        .routes(routes!(bulk_assignments))
        .routes(routes!(list_assessors))
}

/// The state of a cycle.
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

impl CycleState {
    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleState::Planning => "planning",
            CycleState::Collecting => "collecting",
            CycleState::Verifying => "verifying",
            CycleState::Published => "published",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "collecting" => CycleState::Collecting,
            "verifying" => CycleState::Verifying,
            "published" => CycleState::Published,
            _ => CycleState::Planning,
        }
    }

    /// States reachable in one move.
    pub fn allowed_next(self) -> &'static [CycleState] {
        match self {
            CycleState::Planning => &[CycleState::Collecting],
            CycleState::Collecting => &[CycleState::Verifying],
            CycleState::Verifying => &[CycleState::Collecting, CycleState::Published],
            CycleState::Published => &[],
        }
    }
}

/// A cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cycle {
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

/// Body of `POST /cycles/{year}/transitions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The state to move to.
    pub to: CycleState,
}

/// Parses a year path segment, answering 404 for nonsense.
pub fn year(raw: i64) -> ApiResult<CycleYear> {
    CycleYear::new(raw).map_err(|_| ApiError::NotFound(format!("no cycle {raw}")))
}

/// What the results endpoints need of a cycle.
#[derive(Debug, Clone)]
pub struct CycleHead {
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
        "SELECT methodology_code, state, results_revision FROM cycles WHERE year = $1",
        i32::from(year.get())
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| sees_unpublished(actor) || r.state == "published")
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    Ok(CycleHead {
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
        r#"SELECT c.year, c.methodology_code, c.state, c.opens_on, c.closes_on, c.results_revision, c.imported,
                  c.published_at, (SELECT count(*) FROM cycle_units cu WHERE cu.cycle_year = c.year) AS "sampled!"
           FROM cycles c WHERE c.year = $1"#,
        y
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| sees_unpublished(actor) || r.state == "published")
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    Ok(Cycle {
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
#[utoipa::path(post, path = "/cycles", tag = "cycles", request_body(content = NewCycle, content_type = "application/json"), responses((status = 201, description = "Success", body = Cycle), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
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
    sqlx::query!(
        "INSERT INTO cycles (year, methodology_code, opens_on, closes_on) VALUES ($1, $2, $3, $4)",
        i32::from(year.get()),
        m.code(),
        body.opens_on,
        body.closes_on
    )
    .execute(&state.pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cycles_pkey") => {
            ApiError::conflict("cycle-exists", format!("a cycle for {year} already exists"))
        }
        _ => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(load(&state, &actor, year).await?)))
}

/// List cycles.
///
/// Who may call: anyone (public: published cycles only).
#[utoipa::path(get, path = "/cycles", tag = "cycles", responses((status = 200, description = "Success", body = Vec<Cycle>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn list(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Cycle>>> {
    let years = sqlx::query_scalar!(
        "SELECT year FROM cycles WHERE $1 OR state = 'published' ORDER BY year DESC",
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
#[utoipa::path(get, path = "/cycles/{year}", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Cycle), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Cycle>> {
    Ok(Json(load(&state, &actor, year(raw)?).await?))
}

/// The body of a transition's answer: the cycle and, where one was enqueued, the recompute job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionOutcome {
    /// The cycle after the move.
    pub cycle: Cycle,
    /// The job enqueued by the move: closing the collection window enqueues a full recompute,
    /// publishing enqueues the issue of certificates.
    pub job_id: Option<String>,
}

/// Move a cycle to another state.
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles/{year}/transitions", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Transition, content_type = "application/json"), responses((status = 200, description = "Success", body = TransitionOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn transition(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    Json(body): Json<Transition>,
) -> ApiResult<Json<TransitionOutcome>> {
    actor.require_admin()?;
    let year = year(raw)?;
    let y = i32::from(year.get());
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query!(
        "SELECT state, imported FROM cycles WHERE year = $1 FOR UPDATE",
        y
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    let from = CycleState::parse(&row.state);
    if row.imported || !from.allowed_next().contains(&body.to) {
        let allowed: Vec<&str> = if row.imported {
            vec![]
        } else {
            from.allowed_next().iter().map(|s| s.as_str()).collect()
        };
        let why = if from == CycleState::Published || row.imported {
            "published results are frozen; corrections create a new results revision".to_owned()
        } else {
            format!(
                "allowed from {}: {}",
                from.as_str(),
                if allowed.is_empty() {
                    "none".into()
                } else {
                    allowed.join(", ")
                }
            )
        };
        return Err(ApiError::conflict(
            "invalid-transition",
            format!(
                "cannot move cycle {year} from {} to {}: {why}",
                from.as_str(),
                body.to.as_str()
            ),
        ));
    }
    check_preconditions(&mut tx, year, body.to).await?;
    sqlx::query!(
        "UPDATE cycles SET state = $2, updated_at = now(), published_at = CASE WHEN $2 = 'published' THEN now() END WHERE year = $1",
        y,
        body.to.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let mut job_id = None;
    match body.to {
        // Publishing freezes results computed from exactly the verified inputs: the stored
        // ones when they reflect every input (the usual case, after the recompute that closing
        // the collection enqueued), else freshly recomputed ones.
        CycleState::Published => {
            let summary = match recompute::current_results_in(&mut tx, year).await? {
                Some(current) => current,
                None => recompute::recompute_cycle_in(&mut tx, &state, year).await?,
            };
            // Certificates for the frozen results, once per revision.
            let job = jobs::IssueCertificates {
                year: year.get(),
                revision: summary.revision,
                traceparent: crate::telemetry::current_traceparent(),
            };
            let key = format!("certificates-{}-{}", year.get(), summary.revision);
            job_id = Some(jobs::enqueue(&mut tx, &job, Some(&key)).await?);
            let data = serde_json::json!({ "year": year.get(), "revision": summary.revision, "entities": summary.entities_scored, "units": summary.units_scored });
            crate::webhooks::emit(&mut tx, "results.published", None, data).await?;
        }
        // Closing the collection window enqueues a full recompute, once per closing.
        CycleState::Verifying => {
            job_id = Some(jobs::enqueue(&mut tx, &jobs::Recompute::full(year), None).await?);
        }
        _ => {}
    }
    tx.commit().await?;
    Ok(Json(TransitionOutcome {
        cycle: load(&state, &actor, year).await?,
        job_id,
    }))
}

/// What must hold before entering a state: a sample to collect, verified submissions to publish.
async fn check_preconditions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    year: CycleYear,
    to: CycleState,
) -> ApiResult<()> {
    let y = i32::from(year.get());
    match to {
        CycleState::Collecting => {
            let sampled = sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM cycle_units WHERE cycle_year = $1"#,
                y
            )
            .fetch_one(&mut **tx)
            .await?;
            if sampled == 0 {
                return Err(ApiError::conflict(
                    "empty-sample",
                    format!("cycle {year} has no units in its sample yet"),
                ));
            }
        }
        CycleState::Published => {
            let pending = sqlx::query!(
                r#"SELECT count(*) FILTER (WHERE s.id IS NULL) AS "missing!",
                          count(*) FILTER (WHERE s.state IS DISTINCT FROM 'verified' AND s.id IS NOT NULL) AS "unverified!"
                   FROM cycle_units cu LEFT JOIN submissions s ON s.cycle_year = cu.cycle_year AND s.unit_id = cu.unit_id
                   WHERE cu.cycle_year = $1"#,
                y
            )
            .fetch_one(&mut **tx)
            .await?;
            if pending.missing + pending.unverified > 0 {
                return Err(ApiError::conflict(
                    "unverified-submissions",
                    format!(
                        "cannot publish {year}: {} sampled unit(s) have no submission and {} submission(s) are not verified",
                        pending.missing, pending.unverified
                    ),
                ));
            }
        }
        CycleState::Verifying | CycleState::Planning => {}
    }
    Ok(())
}

/// Answer of `POST /cycles/{year}/recompute`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enqueued {
    /// The job to follow at `GET /jobs/{id}`.
    pub job_id: String,
}

/// Enqueue a full recompute of a cycle from its verified inputs.
///
/// Who may call: admin. Published cycles are frozen: use corrections.
#[utoipa::path(post, path = "/cycles/{year}/recompute", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 202, description = "Enqueued", body = Enqueued), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn recompute(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    actor.require_admin()?;
    let year = year(raw)?;
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query!(
        "SELECT state, imported FROM cycles WHERE year = $1 FOR UPDATE",
        i32::from(year.get())
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no cycle {year}")))?;
    if row.state == "published" || row.imported {
        return Err(ApiError::conflict(
            "results-frozen",
            format!(
                "the results of {year} are published and frozen; correct them with POST /cycles/{year}/corrections"
            ),
        ));
    }
    let job_id = jobs::enqueue(&mut tx, &jobs::Recompute::full(year), None).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { job_id })))
}

/// One sampled unit, as uploaded.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleInput {
    /// The entity's code.
    pub entity_code: String,
    /// The unit's name within the entity.
    pub unit_name: String,
    /// The regional office running the assessment; default: the office covering the entity's
    /// province (none for ministries and agencies, which HQ runs).
    #[serde(default)]
    pub office: Option<String>,
}

/// One sampled unit, as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SampledUnit {
    /// Unit id.
    pub unit_id: i64,
    /// Unit name.
    pub unit_name: String,
    /// Entity code.
    pub entity_code: String,
    /// Entity name.
    pub entity_name: String,
    /// Province of the entity.
    pub province_code: Option<String>,
    /// Office running the assessment.
    pub office: Option<String>,
    /// Assigned assessors' actor ids.
    pub assessors: Vec<i64>,
    /// State of the unit's submission, if any.
    pub submission_state: Option<String>,
}

/// Add units to the sample (JSON or CSV `entity_code,unit_name,office`).
///
/// Who may call: admin, office (units of its provinces it runs).
#[utoipa::path(post, path = "/cycles/{year}/sample/bulk", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Vec<SampleInput>, content_type = "application/json", description = "A JSON array, or CSV with the same columns and a header row (Content-Type: text/csv)"), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_sample(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    body: Bulk<SampleInput>,
) -> ApiResult<Json<BulkOutcome>> {
    actor.require_staff()?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    if !matches!(cycle.state, CycleState::Planning | CycleState::Collecting) || cycle.imported {
        return Err(ApiError::conflict(
            "cycle-closed",
            format!(
                "the sample of cycle {} can change only while planning or collecting",
                cycle.year
            ),
        ));
    }
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (i, s) in body.rows.iter().enumerate() {
        let found = sqlx::query!(
            r#"SELECT u.id, e.province_code,
                      (SELECT op.office_code FROM office_provinces op WHERE op.province_code = e.province_code ORDER BY op.office_code LIMIT 1) AS office
               FROM units u JOIN entities e ON e.id = u.entity_id WHERE e.code = $1 AND u.name = $2"#,
            s.entity_code.trim(),
            s.unit_name.trim()
        )
        .fetch_optional(&state.pool)
        .await?;
        match found {
            Some(r) if actor.covers_province(r.province_code.as_deref()) => {
                let office = s.office.clone().or(r.office);
                if let (Some(o), Actor::Office { office: mine, .. }) = (&office, &actor)
                    && o != mine
                {
                    errors.push(FieldError::new(
                        body.at(i, "office"),
                        "an office can only sample units it runs",
                    ));
                }
                rows.push((r.id, office));
            }
            _ => errors.push(FieldError::new(
                body.at(i, "unit_name"),
                format!(
                    "no unit `{}` in entity `{}`",
                    s.unit_name.trim(),
                    s.entity_code.trim()
                ),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let offices: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO cycle_units (cycle_year, unit_id, office_code)
           SELECT $1, * FROM UNNEST($2::bigint[], $3::text[])
           ON CONFLICT (cycle_year, unit_id) DO UPDATE SET office_code = excluded.office_code
           WHERE cycle_units.office_code IS DISTINCT FROM excluded.office_code
           RETURNING (xmax = 0) AS "inserted!""#,
        i32::from(cycle.year.get()),
        &ids,
        &offices as &[Option<String>]
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cycle_units_office_code_fkey") => {
            ApiError::field("office", "unknown office")
        }
        _ => e.into(),
    })?;
    let created = inserted.iter().filter(|x| **x).count();
    let updated = inserted.len() - created;
    Ok(Json(BulkOutcome {
        created,
        updated,
        unchanged: body.rows.len() - created - updated,
    }))
}

/// Whether a unit is in a cycle's sample and within the scope (an assessor: assigned to it, and
/// only while the cycle is collecting).
pub async fn sampled_unit_in_scope(
    state: &AppState,
    scope: &Scope,
    cycle: &Cycle,
    unit_id: i64,
) -> ApiResult<bool> {
    if scope.assessor.is_some() && cycle.state != CycleState::Collecting {
        return Ok(false);
    }
    let found = sqlx::query_scalar!(
        r#"SELECT cu.unit_id FROM cycle_units cu JOIN units u ON u.id = cu.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE cu.cycle_year = $1 AND cu.unit_id = $2
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM assignments a WHERE a.cycle_year = $1 AND a.unit_id = $2 AND a.actor_id = $4))"#,
        i32::from(cycle.year.get()),
        unit_id,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(found.is_some())
}

/// Sampled units visible to a scope.
pub async fn sample_rows(
    state: &AppState,
    scope: &Scope,
    year: CycleYear,
) -> ApiResult<Vec<SampledUnit>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  cu.office_code,
                  COALESCE(array_agg(a.actor_id ORDER BY a.actor_id) FILTER (WHERE a.actor_id IS NOT NULL), '{}') AS "assessors!",
                  s.state AS "submission_state?"
           FROM cycle_units cu
           JOIN units u ON u.id = cu.unit_id
           JOIN entities e ON e.id = u.entity_id
           JOIN cycles c ON c.year = cu.cycle_year
           LEFT JOIN assignments a ON a.cycle_year = cu.cycle_year AND a.unit_id = cu.unit_id
           LEFT JOIN submissions s ON s.cycle_year = cu.cycle_year AND s.unit_id = cu.unit_id
           WHERE cu.cycle_year = $1
             AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a2 WHERE a2.cycle_year = cu.cycle_year AND a2.unit_id = cu.unit_id AND a2.actor_id = $3)))
           GROUP BY u.id, e.id, cu.office_code, s.state
           ORDER BY e.code, u.name"#,
        i32::from(year.get()),
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SampledUnit {
            unit_id: r.id,
            unit_name: r.unit_name,
            entity_code: r.entity_code,
            entity_name: r.entity_name,
            province_code: r.province_code,
            office: r.office_code,
            assessors: r.assessors,
            submission_state: r.submission_state,
        })
        .collect())
}

/// The sampled units.
///
/// Who may call: admin, office (its provinces), assessor (its assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/sample", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Vec<SampledUnit>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_sample(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Vec<SampledUnit>>> {
    let scope = actor.scope()?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    Ok(Json(sample_rows(&state, &scope, cycle.year).await?))
}

/// One assignment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentInput {
    /// The sampled unit.
    pub unit_id: i64,
    /// The assessor's actor id.
    pub assessor_id: i64,
}

/// Assign assessors to sampled units.
///
/// Who may call: admin, office (its provinces and its own assessors).
#[utoipa::path(post, path = "/cycles/{year}/assignments/bulk", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(content = Vec<AssignmentInput>, content_type = "application/json", description = "A JSON array, or CSV with the same columns and a header row (Content-Type: text/csv)"), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_assignments(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    body: Bulk<AssignmentInput>,
) -> ApiResult<Json<BulkOutcome>> {
    actor.require_staff()?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    if !matches!(cycle.state, CycleState::Planning | CycleState::Collecting) {
        return Err(ApiError::conflict(
            "cycle-closed",
            format!(
                "assignments of cycle {} can change only while planning or collecting",
                cycle.year
            ),
        ));
    }
    let y = i32::from(cycle.year.get());
    let mut errors = Vec::new();
    for (i, a) in body.rows.iter().enumerate() {
        let unit = sqlx::query_scalar!(
            "SELECT e.province_code FROM cycle_units cu JOIN units u ON u.id = cu.unit_id JOIN entities e ON e.id = u.entity_id
             WHERE cu.cycle_year = $1 AND cu.unit_id = $2",
            y,
            a.unit_id
        )
        .fetch_optional(&state.pool)
        .await?;
        match unit {
            Some(p) if actor.covers_province(p.as_deref()) => {}
            _ => errors.push(FieldError::new(
                body.at(i, "unit_id"),
                format!("unit {} is not in the sample of {}", a.unit_id, cycle.year),
            )),
        }
        let assessor = sqlx::query!(
            "SELECT role, office_code FROM actors WHERE id = $1",
            a.assessor_id
        )
        .fetch_optional(&state.pool)
        .await?;
        let ok = match (&assessor, &actor) {
            (Some(r), Actor::Office { office, .. }) => {
                r.role == "assessor" && r.office_code.as_deref() == Some(office)
            }
            (Some(r), _) => r.role == "assessor",
            (None, _) => false,
        };
        if !ok {
            errors.push(FieldError::new(
                body.at(i, "assessor_id"),
                format!("no assessor {} you can assign", a.assessor_id),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let units: Vec<i64> = body.rows.iter().map(|a| a.unit_id).collect();
    let assessors: Vec<i64> = body.rows.iter().map(|a| a.assessor_id).collect();
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO assignments (cycle_year, unit_id, actor_id) SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[])
           ON CONFLICT DO NOTHING RETURNING true AS "inserted!""#,
        y,
        &units,
        &assessors
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(BulkOutcome {
        created: inserted.len(),
        updated: 0,
        unchanged: body.rows.len() - inserted.len(),
    }))
}

/// An assessor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assessor {
    /// Actor id (used in assignments).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Office.
    pub office: Option<String>,
}

/// List assessors.
///
/// Who may call: admin (all), office (its own).
#[utoipa::path(get, path = "/assessors", tag = "cycles", responses((status = 200, description = "Success", body = Vec<Assessor>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_assessors(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<Assessor>>> {
    actor.require_staff()?;
    let office = match &actor {
        Actor::Office { office, .. } => Some(office.clone()),
        _ => None,
    };
    let rows = sqlx::query_as!(
        Assessor,
        r#"SELECT id, name, office_code AS office FROM actors WHERE role = 'assessor' AND ($1::text IS NULL OR office_code = $1) ORDER BY id"#,
        office
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}
