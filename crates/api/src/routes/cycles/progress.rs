//! Collection progress in a cycle: how far the assessment of each sampled unit has come, never
//! the values; for one entity, and per regional office (the list HQ asks every office for).
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/entities/{code}/progress` | admin, office (its provinces), government (its entity) |
//! | `GET /cycles/{year}/progress` | admin (every office, and HQ's own units), office (its own) |

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{CycleState, load, year};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::export;
use crate::extract::{Json, Path, Query};
use crate::problem::Problem;
use crate::routes::results::FormatQuery;
use axum::response::Response;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(progress))
        .routes(routes!(office_progress))
}

/// Where one sampled unit's assessment stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitProgress {
    /// The unit.
    pub unit_id: i64,
    /// Its name.
    pub unit_name: String,
    /// `not_started` (no submission yet), `draft`, `submitted`, `returned` or `verified`.
    pub status: String,
    /// Why it was excluded from the sample, when it was.
    pub excluded_reason: Option<String>,
    /// When its submission last changed.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How many sampled units stand where.
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct ProgressCounts {
    /// No submission yet.
    pub not_started: usize,
    /// Being filled in.
    pub draft: usize,
    /// Submitted, awaiting review.
    pub submitted: usize,
    /// Returned to the assessors with a note.
    pub returned: usize,
    /// Verified by the office.
    pub verified: usize,
    /// Excluded from the sample.
    pub excluded: usize,
}

impl ProgressCounts {
    /// Counts one unit: excluded, or by the state of its submission (`None`: not started).
    fn count(&mut self, excluded: bool, state: Option<&str>, units: usize) {
        let slot = match (excluded, state) {
            (true, _) => &mut self.excluded,
            (false, Some("draft")) => &mut self.draft,
            (false, Some("submitted")) => &mut self.submitted,
            (false, Some("returned")) => &mut self.returned,
            (false, Some("verified")) => &mut self.verified,
            _ => &mut self.not_started,
        };
        *slot += units;
    }

    /// Sampled units, excluded ones included.
    fn sampled(&self) -> usize {
        self.not_started
            + self.draft
            + self.submitted
            + self.returned
            + self.verified
            + self.excluded
    }
}

/// An entity's collection progress in a cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// Entity code.
    pub entity_code: String,
    /// The cycle year.
    pub year: i32,
    /// The cycle's state.
    pub state: CycleState,
    /// Counts per status.
    pub counts: ProgressCounts,
    /// Each sampled unit.
    pub units: Vec<UnitProgress>,
}

/// An entity's collection progress: for each of its sampled units, whether its assessment is
/// not started, drafted, submitted, returned or verified. Never the values.
///
/// Who may call: admin, office (its provinces), government (its entity); others get 404.
#[utoipa::path(get, path = "/cycles/{year}/entities/{code}/progress", operation_id = "get_entity_progress", tag = "cycles", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Progress), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn progress(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
) -> ApiResult<Json<Progress>> {
    if matches!(actor, Actor::Assessor { .. }) {
        return Err(ApiError::Forbidden(
            "assessors follow their units through the submissions".into(),
        ));
    }
    let (entity_id, entity, _) =
        crate::routes::reference::entity_for(&state, &actor, &code).await?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    let rows = sqlx::query!(
        r#"SELECT u.id, u.name, s.state AS "state?", s.updated_at AS "updated_at?", cu.exclusion_reason
           FROM cycle_units cu JOIN units u ON u.id = cu.unit_id
           LEFT JOIN submissions s ON s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id
           WHERE cu.cycle_id = $1 AND u.entity_id = $2
           ORDER BY u.name"#,
        cycle.id,
        entity_id
    )
    .fetch_all(&state.pool)
    .await?;
    let mut counts = ProgressCounts::default();
    let units = rows
        .into_iter()
        .map(|r| {
            counts.count(r.exclusion_reason.is_some(), r.state.as_deref(), 1);
            let status = r.state.unwrap_or_else(|| "not_started".to_owned());
            UnitProgress {
                unit_id: r.id,
                unit_name: r.name,
                status,
                excluded_reason: r.exclusion_reason,
                updated_at: r.updated_at,
            }
        })
        .collect();
    Ok(Json(Progress {
        entity_code: entity.code,
        year: i32::from(cycle.year.get()),
        state: cycle.state,
        counts,
        units,
    }))
}

/// One regional office's collection progress (or HQ's, for the ministries' and agencies' units).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfficeProgress {
    /// Office code; `null` for the units of ministries and agencies, which HQ collects.
    pub office: Option<String>,
    /// Office name (`null` for HQ's units).
    pub name: Option<String>,
    /// Sampled units, excluded ones included.
    pub sampled: usize,
    /// Counts per status.
    pub counts: ProgressCounts,
}

/// Collection progress per regional office.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressByOffice {
    /// The cycle year.
    pub year: i32,
    /// The cycle's state.
    pub state: CycleState,
    /// The last day of the collection window, when it has one.
    pub closes_on: Option<chrono::NaiveDate>,
    /// Days from today to the last day of the window (0 on the last day, negative after it);
    /// `null` without a window.
    pub days_left: Option<i64>,
    /// Each office the caller may see, by code (HQ's units last).
    pub offices: Vec<OfficeProgress>,
}

/// Collection progress per regional office: for each office, its sampled units and where their
/// submissions stand (not started, draft, submitted, returned, verified, excluded), and the days
/// left in the collection window. Never the values.
///
/// As JSON, or as the workbook (or CSV) HQ asks every office for (`format`, or `Accept`).
///
/// Who may call: admin (every office, and HQ's own units of ministries and agencies), office
/// (its own).
#[utoipa::path(get, path = "/cycles/{year}/progress", operation_id = "get_progress_by_office", tag = "cycles", params(("year" = i64, Path, description = "Cycle year"), FormatQuery), responses((status = 200, description = "The offices; with `format=csv` or `format=xlsx` (or `Accept`), as a file", content((ProgressByOffice = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn office_progress(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    headers: axum::http::HeaderMap,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    actor.require_staff()?;
    let format = export::Format::negotiate(q.format.as_deref(), &headers)?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    let own = match &actor {
        Actor::Office { office, .. } => Some(office.clone()),
        _ => None,
    };
    // A unit belongs to the office covering its entity's province; ministries' and agencies'
    // units to none (HQ).
    let rows = sqlx::query!(
        r#"SELECT o.code AS "office?", o.name AS "name?", s.state AS "state?",
                  cu.exclusion_reason IS NOT NULL AS "excluded!", count(*) AS "units!"
           FROM cycle_units cu JOIN units u ON u.id = cu.unit_id JOIN entities e ON e.id = u.entity_id
           LEFT JOIN office_provinces op ON op.province_code = e.province_code
           LEFT JOIN offices o ON o.code = op.office_code
           LEFT JOIN submissions s ON s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id
           WHERE cu.cycle_id = $1 AND ($2::text IS NULL OR o.code = $2)
           GROUP BY o.code, o.name, s.state, cu.exclusion_reason IS NOT NULL
           ORDER BY o.code NULLS LAST"#,
        cycle.id,
        own
    )
    .fetch_all(&state.pool)
    .await?;
    // Every office the caller sees is listed, those without sampled units too; HQ's units last.
    let mut offices: Vec<OfficeProgress> = sqlx::query!(
        "SELECT code, name FROM offices WHERE $1::text IS NULL OR code = $1 ORDER BY code",
        own
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|o| OfficeProgress {
        office: Some(o.code),
        name: Some(o.name),
        sampled: 0,
        counts: ProgressCounts::default(),
    })
    .collect();
    if own.is_none() {
        offices.push(OfficeProgress {
            office: None,
            name: None,
            sampled: 0,
            counts: ProgressCounts::default(),
        });
    }
    for r in rows {
        if let Some(o) = offices.iter_mut().find(|o| o.office == r.office) {
            o.counts.count(
                r.excluded,
                r.state.as_deref(),
                usize::try_from(r.units).unwrap_or(0),
            );
            o.sampled = o.counts.sampled();
        }
    }
    let today = state.clock.now().date_naive();
    let progress = ProgressByOffice {
        year: i32::from(cycle.year.get()),
        state: cycle.state,
        closes_on: cycle.closes_on,
        days_left: cycle.closes_on.map(|c| (c - today).num_days()),
        offices,
    };
    if format.is_export() {
        export::progress(format, &progress)
    } else {
        Ok(export::json(progress))
    }
}
