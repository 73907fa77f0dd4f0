//! The sample of a cycle: the units assessed.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/sample/bulk` | admin (any unit), office (units of its provinces) |
//! | `GET /cycles/{year}/sample` | admin, office (its provinces), assessor (its assigned units, open cycles) |
//! | `POST /cycles/{year}/sample/{unit_id}/exclusion` | admin, office (units of its provinces); until publication |
//!
//! A unit that cannot be assessed is excluded with a reason: it no longer blocks publication,
//! counts in no result, and takes no new data; the sample keeps showing it, excluded.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::{Bulk, BulkOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};

use kepatuhan_app::cycles as app_cycles;

use super::{Cycle, CycleState, load, year};
use crate::auth::Scope;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sample))
        .routes(routes!(bulk_sample))
        .routes(routes!(exclude))
}

/// One sampled unit, as uploaded.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "entity_code": "19.01", "unit_name": "Dinas Kependudukan dan Pencatatan Sipil" }))]
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
    /// Why the unit was excluded from the sample, when it was.
    pub excluded_reason: Option<String>,
}

/// Body of an exclusion.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// Why the unit cannot be assessed (kept with the sample).
    pub reason: String,
}

/// Add units to the sample (JSON or CSV `entity_code,unit_name,office`).
///
/// Who may call: admin, office (units of its provinces it runs).
#[utoipa::path(post, path = "/cycles/{year}/sample/bulk", operation_id = "bulk_upsert_sample", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<SampleInput> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_sample(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    body: Bulk<SampleInput>,
) -> ApiResult<Json<BulkOutcome>> {
    let actor_id = actor.require_staff()?;
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
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO cycle_units (cycle_id, unit_id, office_code)
           SELECT $1, * FROM UNNEST($2::bigint[], $3::text[])
           ON CONFLICT (cycle_id, unit_id) DO UPDATE SET office_code = excluded.office_code
           WHERE cycle_units.office_code IS DISTINCT FROM excluded.office_code
           RETURNING (xmax = 0) AS "inserted!""#,
        cycle.id,
        &ids,
        &offices as &[Option<String>]
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("cycle_units_office_code_fkey") => {
            ApiError::field("office", "unknown office")
        }
        _ => e.into(),
    })?;
    let created = inserted.iter().filter(|x| **x).count();
    let updated = inserted.len() - created;
    crate::routes::audit::bulk_uploaded(
        &mut tx,
        actor_id,
        "sample",
        None,
        inserted.len(),
        serde_json::json!({ "year": cycle.year.get(), "units": ids, "changed": inserted.len() }),
    )
    .await?;
    crate::error::commit(tx).await?;
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
           WHERE cu.cycle_id = $1 AND cu.unit_id = $2 AND cu.excluded_at IS NULL
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM assignments a WHERE a.cycle_id = $1 AND a.unit_id = $2 AND a.actor_id = $4))"#,
        cycle.id,
        unit_id,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(found.is_some())
}

/// Which of `unit_ids` are sampled (and not excluded) in `cycle` and visible to `scope`: the
/// check of [`sampled_unit_in_scope`] for many units in one query.
pub async fn sampled_units_in_scope(
    state: &AppState,
    scope: &Scope,
    cycle: &Cycle,
    unit_ids: &[i64],
) -> ApiResult<std::collections::HashSet<i64>> {
    if scope.assessor.is_some() && cycle.state != CycleState::Collecting {
        return Ok(std::collections::HashSet::new());
    }
    let found = sqlx::query_scalar!(
        r#"SELECT cu.unit_id FROM cycle_units cu JOIN units u ON u.id = cu.unit_id JOIN entities e ON e.id = u.entity_id
           WHERE cu.cycle_id = $1 AND cu.unit_id = ANY($2) AND cu.excluded_at IS NULL
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM assignments a WHERE a.cycle_id = $1 AND a.unit_id = cu.unit_id AND a.actor_id = $4))"#,
        cycle.id,
        unit_ids,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(found.into_iter().collect())
}

/// Sampled units visible to a scope.
pub async fn sample_rows(
    state: &AppState,
    scope: &Scope,
    cycle_id: i64,
) -> ApiResult<Vec<SampledUnit>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.name AS unit_name, e.code AS entity_code, e.name AS entity_name, e.province_code,
                  cu.office_code,
                  COALESCE(array_agg(a.actor_id ORDER BY a.actor_id) FILTER (WHERE a.actor_id IS NOT NULL), '{}') AS "assessors!",
                  s.state AS "submission_state?", cu.exclusion_reason
           FROM cycle_units cu
           JOIN units u ON u.id = cu.unit_id
           JOIN entities e ON e.id = u.entity_id
           JOIN cycles c ON c.id = cu.cycle_id
           LEFT JOIN assignments a ON a.cycle_id = cu.cycle_id AND a.unit_id = cu.unit_id
           LEFT JOIN submissions s ON s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id
           WHERE cu.cycle_id = $1
             AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR (c.state = 'collecting' AND EXISTS (
                   SELECT 1 FROM assignments a2 WHERE a2.cycle_id = cu.cycle_id AND a2.unit_id = cu.unit_id AND a2.actor_id = $3)))
           GROUP BY u.id, e.id, cu.office_code, cu.exclusion_reason, s.state
           ORDER BY e.code, u.name"#,
        cycle_id,
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
            excluded_reason: r.exclusion_reason,
        })
        .collect())
}

/// The sampled units.
///
/// Who may call: admin, office (its provinces), assessor (its assigned units, collecting).
#[utoipa::path(get, path = "/cycles/{year}/sample", operation_id = "list_sample", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), responses((status = 200, description = "Success", body = Vec<SampledUnit>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_sample(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
) -> ApiResult<Json<Vec<SampledUnit>>> {
    let scope = actor.scope()?;
    let cycle = load(&state, &actor, year(raw)?).await?;
    Ok(Json(sample_rows(&state, &scope, cycle.id).await?))
}

/// Exclude a unit from the sample, with the reason: it no longer blocks publication and counts
/// in no result (when it was verified, the results are recomputed without it).
///
/// Who may call: admin, office (units of its provinces); until the cycle is published.
#[utoipa::path(post, path = "/cycles/{year}/sample/{unit_id}/exclusion", operation_id = "exclude_sample_unit", tag = "cycles", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), request_body(content = Exclusion, content_type = "application/json"), responses((status = 200, description = "Excluded", body = SampledUnit), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn exclude(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
    Json(body): Json<Exclusion>,
) -> ApiResult<Json<SampledUnit>> {
    let actor_id = actor.require_staff()?;
    let scope = actor.scope()?;
    let year = year(raw)?;
    let reason = body.reason.trim();
    if let Some(problem) = crate::problem::text_problem("reason".to_owned(), reason, 1_000) {
        return Err(ApiError::fields(vec![problem]));
    }
    let mut tx = state.pool.begin().await?;
    let mut cycle = app_cycles::lock(&mut tx, year).await?;
    cycle.require_open()?;
    let excluded = sqlx::query!(
        r#"UPDATE cycle_units cu SET excluded_at = now(), excluded_by = $3, exclusion_reason = $4
           FROM units u JOIN entities e ON e.id = u.entity_id
           WHERE cu.cycle_id = $1 AND cu.unit_id = $2 AND u.id = cu.unit_id AND cu.excluded_at IS NULL
             AND ($5::text[] IS NULL OR e.province_code = ANY($5))
           RETURNING (SELECT s.state = 'verified' FROM submissions s
                      WHERE s.cycle_id = cu.cycle_id AND s.unit_id = cu.unit_id) AS "verified?""#,
        cycle.id.get(),
        unit_id,
        actor_id,
        reason,
        scope.provinces.as_deref()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "unit {unit_id} is not an included unit of the sample of {year}"
        ))
    })?;
    if excluded.verified == Some(true) {
        // Its verified values counted: the results are recomputed without it.
        app_cycles::inputs_changed(&mut tx, &mut cycle, app_cycles::InputChange::Unit(unit_id))
            .await?;
    }
    let province = crate::routes::audit::unit_province(&mut tx, unit_id).await?;
    crate::routes::audit::write(
        &mut tx,
        Some(actor_id),
        ("sample", format!("{year}/{unit_id}")),
        province.as_deref(),
        "excluded",
        serde_json::json!({ "reason": reason }),
    )
    .await?;
    crate::error::commit(tx).await?;
    sample_rows(&state, &scope, cycle.id.get())
        .await?
        .into_iter()
        .find(|u| u.unit_id == unit_id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("unit {unit_id}")))
}
