//! Entities (ministries, agencies, provincial, city and regency governments) and their units.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /entities`, `GET /entities/{code}`, `GET /entities/{code}/units` | admin (all), office (its provinces), assessor (entities of its assigned units in collecting cycles) |
//! | `POST /entities/bulk`, `POST /units/bulk` | admin (all), office (its provinces only) |

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use kepatuhan_core::EntityKind;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Entity, EntityDetail, Unit, UnitInput, known_provinces, outcome};
use crate::AppState;
use crate::auth::{Actor, Scope};
use crate::bulk::{Bulk, BulkOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{self, Page};
use crate::problem::{CODE_MAX, FieldError, NAME_MAX, Problem, text_problem, too_long};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entities))
        .routes(routes!(bulk_entities))
        .routes(routes!(show_entity))
        .routes(routes!(list_units))
        .routes(routes!(bulk_units))
}

/// Filters of the entity list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntityFilter {
    /// Only this kind.
    #[param(value_type = Option<String>)]
    pub kind: Option<EntityKind>,
    /// Only this province.
    pub province: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// List entities.
///
/// Who may call: admin (all), office (its provinces), assessor (entities of its assigned units, collecting cycles).
#[utoipa::path(get, path = "/entities", operation_id = "list_entities", tag = "reference", params(EntityFilter), responses((status = 200, description = "Success", body = Page<Entity>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_entities(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<EntityFilter>,
) -> ApiResult<Json<Page<Entity>>> {
    let scope = actor.scope()?;
    let limit = pagination::limit(filter.limit)?;
    let after: Option<String> = pagination::decode(filter.cursor.as_deref())?;
    let rows = sqlx::query!(
        r#"SELECT e.code, e.kind, e.name, e.province_code FROM entities e
           WHERE ($1::text IS NULL OR e.kind = $1)
             AND ($2::text IS NULL OR e.province_code = $2)
             AND ($3::text[] IS NULL OR e.province_code = ANY($3))
             AND ($4::bigint IS NULL OR EXISTS (
                   SELECT 1 FROM units u JOIN assignments a ON a.unit_id = u.id
                   JOIN cycles c ON c.id = a.cycle_id AND c.state = 'collecting'
                   WHERE u.entity_id = e.id AND a.actor_id = $4))
             AND ($5::text IS NULL OR e.code > $5)
           ORDER BY e.code LIMIT $6"#,
        filter.kind.map(EntityKind::as_str),
        filter.province,
        scope.provinces.as_deref(),
        scope.assessor,
        after,
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?;
    let entities = rows
        .into_iter()
        .map(|r| Entity {
            kind: r.kind.parse().unwrap_or(EntityKind::Regency),
            code: r.code,
            name: r.name,
            province_code: r.province_code,
        })
        .collect();
    Ok(Json(pagination::page(entities, limit, |e: &Entity| {
        e.code.clone()
    })))
}

/// Loads an entity visible to the scope, or 404.
pub async fn visible_entity(
    state: &AppState,
    scope: &Scope,
    code: &str,
) -> ApiResult<(i64, Entity)> {
    let row = sqlx::query!(
        r#"SELECT e.id, e.code, e.kind, e.name, e.province_code FROM entities e
           WHERE e.code = $1
             AND ($2::text[] IS NULL OR e.province_code = ANY($2))
             AND ($3::bigint IS NULL OR EXISTS (
                   SELECT 1 FROM units u JOIN assignments a ON a.unit_id = u.id
                   JOIN cycles c ON c.id = a.cycle_id AND c.state = 'collecting'
                   WHERE u.entity_id = e.id AND a.actor_id = $3))"#,
        code,
        scope.provinces.as_deref(),
        scope.assessor
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no entity with code `{code}`")))?;
    Ok((
        row.id,
        Entity {
            kind: row.kind.parse().unwrap_or(EntityKind::Regency),
            code: row.code,
            name: row.name,
            province_code: row.province_code,
        },
    ))
}

/// An entity as the actor may see it: through its scope, or (a government's token) its own
/// entity only; others get 404. Returns the entity's id, the entity, and the assessor whose
/// assigned units alone are visible.
pub async fn entity_for(
    state: &AppState,
    actor: &Actor,
    code: &str,
) -> ApiResult<(i64, Entity, Option<i64>)> {
    if let Actor::Government { entity, .. } = actor {
        if !entity.eq_ignore_ascii_case(code.trim()) {
            return Err(ApiError::NotFound(format!("no entity with code `{code}`")));
        }
        let (id, found) = visible_entity(state, &Scope::default(), entity).await?;
        return Ok((id, found, None));
    }
    let scope = actor.scope()?;
    let (id, found) = visible_entity(state, &scope, code).await?;
    Ok((id, found, scope.assessor))
}

/// An entity with its units.
///
/// Who may call: as for the entity list, and a government (its own); others get 404.
#[utoipa::path(get, path = "/entities/{code}", operation_id = "get_entity", tag = "reference", params(("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = EntityDetail), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn show_entity(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<EntityDetail>> {
    let (id, entity, assessor) = entity_for(&state, &actor, &code).await?;
    let units = units_of(&state, id, &entity.code, assessor).await?;
    Ok(Json(EntityDetail { entity, units }))
}

/// The units of an entity.
///
/// Who may call: as for the entity list, and a government (its own); others get 404.
#[utoipa::path(get, path = "/entities/{code}/units", operation_id = "list_entity_units", tag = "reference", params(("code" = String, Path, description = "Entity code")), responses((status = 200, description = "Success", body = Vec<Unit>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_units(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> ApiResult<Json<Vec<Unit>>> {
    let (id, entity, assessor) = entity_for(&state, &actor, &code).await?;
    Ok(Json(units_of(&state, id, &entity.code, assessor).await?))
}

async fn units_of(
    state: &AppState,
    entity_id: i64,
    entity_code: &str,
    assessor: Option<i64>,
) -> ApiResult<Vec<Unit>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.name, u.kind, u.active FROM units u
           WHERE u.entity_id = $1
             AND ($2::bigint IS NULL OR EXISTS (
                   SELECT 1 FROM assignments a JOIN cycles c ON c.id = a.cycle_id AND c.state = 'collecting'
                   WHERE a.unit_id = u.id AND a.actor_id = $2))
           ORDER BY u.name"#,
        entity_id,
        assessor
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Unit {
            id: r.id,
            entity_code: entity_code.to_owned(),
            name: r.name,
            kind: r.kind,
            active: r.active,
        })
        .collect())
}

/// Checks that an office may write rows of these provinces; admins may write all.
fn writable_province(actor: &Actor, province: Option<&str>) -> bool {
    matches!(actor, Actor::Admin { .. }) || actor.covers_province(province)
}

/// Create or update entities (JSON or CSV `code,kind,name,province_code`).
///
/// Who may call: admin (all), office (its provinces).
#[utoipa::path(post, path = "/entities/bulk", operation_id = "bulk_upsert_entities", tag = "reference", request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<Entity> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_entities(
    State(state): State<AppState>,
    actor: Actor,
    body: Bulk<Entity>,
) -> ApiResult<Json<BulkOutcome>> {
    let actor_id = actor.require_staff()?;
    let known = known_provinces(&state).await?;
    let existing: HashMap<String, Option<String>> = sqlx::query!(
        "SELECT code, province_code FROM entities WHERE code = ANY($1)",
        &body.rows.iter().map(|e| e.code.clone()).collect::<Vec<_>>()
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.code, r.province_code))
    .collect();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, e) in body.rows.iter().enumerate() {
        let code = e.code.trim();
        if code.is_empty() || code.contains(char::is_whitespace) {
            errors.push(FieldError::new(
                body.at(i, "code"),
                "must be a code without spaces",
            ));
        } else if let Some(long) = too_long(body.at(i, "code"), code, CODE_MAX) {
            errors.push(long);
        } else if !seen.insert(code) {
            errors.push(FieldError::new(
                body.at(i, "code"),
                format!("`{code}` appears more than once"),
            ));
        }
        errors.extend(text_problem(body.at(i, "name"), &e.name, NAME_MAX));
        let province = e.province_code.as_deref();
        if let Some((field, message)) = kemendagri_problem(e, code, &known) {
            errors.push(FieldError::new(body.at(i, field), message));
        }
        if !writable_province(&actor, province)
            || existing
                .get(code)
                .is_some_and(|p| !writable_province(&actor, p.as_deref()))
        {
            errors.push(FieldError::new(
                body.at(i, "province_code"),
                "outside the provinces you cover",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let codes: Vec<String> = body.rows.iter().map(|e| e.code.trim().to_owned()).collect();
    let kinds: Vec<String> = body
        .rows
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    let names: Vec<String> = body.rows.iter().map(|e| e.name.trim().to_owned()).collect();
    let provinces: Vec<Option<String>> =
        body.rows.iter().map(|e| e.province_code.clone()).collect();
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO entities (code, kind, name, province_code)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT (code) DO UPDATE
             SET kind = excluded.kind, name = excluded.name, province_code = excluded.province_code, updated_at = now()
           WHERE (entities.kind, entities.name, entities.province_code)
                 IS DISTINCT FROM (excluded.kind, excluded.name, excluded.province_code)
           RETURNING (xmax = 0) AS "inserted!""#,
        &codes,
        &kinds,
        &names,
        &provinces as &[Option<String>]
    )
    .fetch_all(&mut *tx)
    .await?;
    crate::routes::audit::bulk_uploaded(
        &mut tx,
        actor_id,
        "entity",
        single_province(&provinces),
        inserted.len(),
        serde_json::json!({ "codes": codes, "changed": inserted.len() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(outcome(body.rows.len(), &inserted)))
}

/// Create or update units (JSON or CSV `entity_code,name,kind,active`).
///
/// Who may call: admin (all), office (its provinces).
#[utoipa::path(post, path = "/units/bulk", operation_id = "bulk_upsert_units", tag = "reference", request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<UnitInput> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_units(
    State(state): State<AppState>,
    actor: Actor,
    body: Bulk<UnitInput>,
) -> ApiResult<Json<BulkOutcome>> {
    let actor_id = actor.require_staff()?;
    let entity_codes: Vec<String> = body
        .rows
        .iter()
        .map(|u| u.entity_code.trim().to_owned())
        .collect();
    let entities: HashMap<String, (i64, Option<String>)> = sqlx::query!(
        "SELECT id, code, province_code FROM entities WHERE code = ANY($1)",
        &entity_codes
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.code, (r.id, r.province_code)))
    .collect();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(body.rows.len());
    for (i, u) in body.rows.iter().enumerate() {
        match entities.get(u.entity_code.trim()) {
            Some((id, province)) if writable_province(&actor, province.as_deref()) => {
                ids.push(*id);
                if !seen.insert((*id, u.name.trim())) {
                    errors.push(FieldError::new(
                        body.at(i, "name"),
                        format!("`{}` appears more than once for this entity", u.name.trim()),
                    ));
                }
            }
            _ => errors.push(FieldError::new(
                body.at(i, "entity_code"),
                format!("no entity with code `{}`", u.entity_code.trim()),
            )),
        }
        errors.extend(text_problem(body.at(i, "name"), &u.name, NAME_MAX));
        errors.extend(too_long(body.at(i, "kind"), &u.kind, CODE_MAX));
        if u.kind.trim().is_empty() {
            errors.push(FieldError::new(
                body.at(i, "kind"),
                "must not be empty (e.g. dukcapil, dpmptsp, puskesmas)",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let names: Vec<String> = body.rows.iter().map(|u| u.name.trim().to_owned()).collect();
    let kinds: Vec<String> = body.rows.iter().map(|u| u.kind.trim().to_owned()).collect();
    let active: Vec<bool> = body.rows.iter().map(|u| u.active).collect();
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO units (entity_id, name, kind, active)
           SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bool[])
           ON CONFLICT ON CONSTRAINT units_entity_name DO UPDATE
             SET kind = excluded.kind, active = excluded.active, updated_at = now()
           WHERE (units.kind, units.active) IS DISTINCT FROM (excluded.kind, excluded.active)
           RETURNING (xmax = 0) AS "inserted!""#,
        &ids,
        &names,
        &kinds,
        &active
    )
    .fetch_all(&mut *tx)
    .await?;
    crate::routes::audit::bulk_uploaded(
        &mut tx,
        actor_id,
        "unit",
        None,
        inserted.len(),
        serde_json::json!({ "rows": body.rows.len(), "changed": inserted.len() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(outcome(body.rows.len(), &inserted)))
}

/// Checks an entity's province and Kemendagri code: ministries and agencies have no province;
/// a province's code is its province code; a city's or regency's is `PP.NN` in its province.
pub(crate) fn kemendagri_problem(
    e: &Entity,
    code: &str,
    known: &HashSet<String>,
) -> Option<(&'static str, String)> {
    match (e.kind.has_province(), e.province_code.as_deref()) {
        (false, Some(_)) => Some(("province_code", format!("a {} has no province", e.kind))),
        (true, None) => Some((
            "province_code",
            format!("a {} needs its province code", e.kind),
        )),
        (true, Some(p)) if !known.contains(p) => {
            Some(("province_code", format!("unknown province `{p}`")))
        }
        (true, Some(p)) => {
            let expected = match e.kind {
                EntityKind::Province => code == p,
                _ => code
                    .strip_prefix(p)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_digit())),
            };
            let hint = if e.kind == EntityKind::Province {
                format!("`{p}`")
            } else {
                format!("`{p}.NN`")
            };
            (!expected).then(|| {
                (
                    "code",
                    format!("a {}'s Kemendagri code in province {p} is {hint}", e.kind),
                )
            })
        }
        (false, None) => None,
    }
}

/// The one province of a bulk upload's rows, if they all belong to the same one.
fn single_province(provinces: &[Option<String>]) -> Option<&str> {
    let first = provinces.first()?.as_deref()?;
    provinces
        .iter()
        .all(|p| p.as_deref() == Some(first))
        .then_some(first)
}
