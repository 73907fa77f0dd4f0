//! Assessors and their assignments to sampled units.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/assignments/bulk` | admin, office (its provinces and its own assessors) |
//! | `GET /assessors` | admin (all), office (its own) |

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::{Bulk, BulkOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};

use super::{CycleState, load, year};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_assignments))
        .routes(routes!(list_assessors))
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
#[utoipa::path(post, path = "/cycles/{year}/assignments/bulk", operation_id = "bulk_assign_assessors", tag = "cycles", params(("year" = i64, Path, description = "Cycle year")), request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<AssignmentInput> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_assignments(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    body: Bulk<AssignmentInput>,
) -> ApiResult<Json<BulkOutcome>> {
    let actor_id = actor.require_staff()?;
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
    let y = cycle.id;
    let mut errors = Vec::new();
    for (i, a) in body.rows.iter().enumerate() {
        let unit = sqlx::query_scalar!(
            "SELECT e.province_code FROM cycle_units cu JOIN units u ON u.id = cu.unit_id JOIN entities e ON e.id = u.entity_id
             WHERE cu.cycle_id = $1 AND cu.unit_id = $2",
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
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO assignments (cycle_id, unit_id, actor_id) SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[])
           ON CONFLICT DO NOTHING RETURNING true AS "inserted!""#,
        y,
        &units,
        &assessors
    )
    .fetch_all(&mut *tx)
    .await?;
    crate::routes::audit::bulk_uploaded(
        &mut tx,
        actor_id,
        "assignment",
        None,
        inserted.len(),
        serde_json::json!({ "year": cycle.year.get(), "units": units, "assessors": assessors }),
    )
    .await?;
    crate::error::commit(tx).await?;
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
#[utoipa::path(get, path = "/assessors", operation_id = "list_assessors", tag = "cycles", responses((status = 200, description = "Success", body = Vec<Assessor>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
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
