//! Reference data: provinces, regional offices, entities and their units.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /provinces` | anyone |
//! | `POST /provinces/bulk` | admin |
//! | `GET /offices` | admin, office (its own office only) |
//! | `POST /offices/bulk` | admin |
//! | `GET /entities`, `GET /entities/{code}`, `GET /entities/{code}/units` | admin (all), office (its provinces), assessor (entities of its assigned units in collecting cycles) |
//! | `POST /entities/bulk`, `POST /units/bulk` | admin (all), office (its provinces only) |
//!
//! Entities and their units are in [`entities`].
//!
//! Bulk endpoints take a JSON array or a CSV file, validate every record before writing anything,
//! and upsert by natural key: re-uploading the same file changes nothing.

pub mod entities;

use std::collections::HashSet;

use axum::extract::State;
use kepatuhan_core::EntityKind;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::{Bulk, BulkOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::problem::{FieldError, NAME_MAX, Problem, text_problem};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_provinces))
        .routes(routes!(bulk_provinces))
        .routes(routes!(list_offices))
        .routes(routes!(bulk_offices))
        .merge(entities::router())
}

/// A province.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Province {
    /// Two-digit Kemendagri code, e.g. `19`.
    pub code: String,
    /// Name, e.g. `Kepulauan Bangka Belitung`.
    pub name: String,
}

/// A regional office (Ombudsman RI Perwakilan) and the provinces it covers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// Short code, e.g. `babel`.
    pub code: String,
    /// Name, e.g. `Ombudsman RI Perwakilan Kepulauan Bangka Belitung`.
    pub name: String,
    /// Province codes covered. In CSV: separated by `;`.
    #[serde(deserialize_with = "list_or_semicolons")]
    pub provinces: Vec<String>,
}

/// An entity (ministry, agency, provincial, city or regency government).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Stable code: Kemendagri region code for local governments (`19`, `19.04`), a short code
    /// for ministries and agencies (`KEMENKES`).
    pub code: String,
    /// Kind.
    #[schema(value_type = String, example = "regency")]
    pub kind: EntityKind,
    /// Name, e.g. `Pemerintah Kabupaten Bangka`.
    pub name: String,
    /// Province code for local governments; empty for ministries and agencies.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub province_code: Option<String>,
}

/// A unit of an entity, as uploaded.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    /// The entity's code.
    pub entity_code: String,
    /// Unit name, unique within its entity, e.g. `Dinas Kependudukan dan Pencatatan Sipil`.
    pub name: String,
    /// Kind of unit, e.g. `dukcapil`, `dpmptsp`, `puskesmas`.
    pub kind: String,
    /// Whether it is still active (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A unit as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unit {
    /// Id.
    pub id: i64,
    /// The entity's code.
    pub entity_code: String,
    /// Name.
    pub name: String,
    /// Kind of unit.
    pub kind: String,
    /// Whether it is active.
    pub active: bool,
}

/// An entity with its units.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityDetail {
    /// The entity.
    #[serde(flatten)]
    pub entity: Entity,
    /// Its units.
    pub units: Vec<Unit>,
}

fn list_or_semicolons<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::Text(t) => t
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn is_province_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit())
}

/// List provinces.
///
/// Who may call: anyone.
#[utoipa::path(get, path = "/provinces", operation_id = "list_provinces", tag = "reference", responses((status = 200, description = "Success", body = Vec<Province>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn list_provinces(State(state): State<AppState>) -> ApiResult<Json<Vec<Province>>> {
    let rows = sqlx::query_as!(Province, "SELECT code, name FROM provinces ORDER BY code")
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(rows))
}

/// Create or update provinces (JSON array or CSV `code,name`).
///
/// Who may call: admin.
#[utoipa::path(post, path = "/provinces/bulk", operation_id = "bulk_upsert_provinces", tag = "reference", request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<Province> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_provinces(
    State(state): State<AppState>,
    actor: Actor,
    body: Bulk<Province>,
) -> ApiResult<Json<BulkOutcome>> {
    let actor_id = actor.require_admin()?;
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in body.rows.iter().enumerate() {
        if !is_province_code(&p.code) {
            errors.push(FieldError::new(
                body.at(i, "code"),
                "must be a two-digit Kemendagri code such as `19`",
            ));
        } else if !seen.insert(p.code.as_str()) {
            errors.push(FieldError::new(
                body.at(i, "code"),
                format!("`{}` appears more than once", p.code),
            ));
        }
        errors.extend(text_problem(body.at(i, "name"), &p.name, NAME_MAX));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let codes: Vec<String> = body.rows.iter().map(|p| p.code.clone()).collect();
    let names: Vec<String> = body.rows.iter().map(|p| p.name.trim().to_owned()).collect();
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO provinces (code, name) SELECT * FROM UNNEST($1::text[], $2::text[])
           ON CONFLICT (code) DO UPDATE SET name = excluded.name, updated_at = now()
           WHERE provinces.name IS DISTINCT FROM excluded.name
           RETURNING (xmax = 0) AS "inserted!""#,
        &codes,
        &names
    )
    .fetch_all(&mut *tx)
    .await?;
    crate::routes::audit::bulk_uploaded(
        &mut tx,
        actor_id,
        "province",
        None,
        inserted.len(),
        serde_json::json!({ "codes": codes, "changed": inserted.len() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(outcome(body.rows.len(), &inserted)))
}

fn outcome(total: usize, inserted: &[bool]) -> BulkOutcome {
    let created = inserted.iter().filter(|x| **x).count();
    let updated = inserted.len() - created;
    BulkOutcome {
        created,
        updated,
        unchanged: total - created - updated,
    }
}

/// List regional offices.
///
/// Who may call: admin (all), office (its own).
#[utoipa::path(get, path = "/offices", operation_id = "list_offices", tag = "reference", responses((status = 200, description = "Success", body = Vec<Office>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list_offices(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Office>>> {
    let only = match &actor {
        Actor::Admin { .. } => None,
        Actor::Office { office, .. } => Some(office.clone()),
        Actor::Public => return Err(ApiError::Unauthenticated),
        Actor::Assessor { .. } | Actor::Government { .. } => {
            return Err(ApiError::Forbidden(
                "only HQ and the offices list offices".into(),
            ));
        }
    };
    let rows = sqlx::query!(
        r#"SELECT o.code, o.name,
                  COALESCE(array_agg(op.province_code ORDER BY op.province_code)
                           FILTER (WHERE op.province_code IS NOT NULL), '{}') AS "provinces!"
           FROM offices o LEFT JOIN office_provinces op ON op.office_code = o.code
           WHERE $1::text IS NULL OR o.code = $1
           GROUP BY o.code ORDER BY o.code"#,
        only
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| Office {
                code: r.code,
                name: r.name,
                provinces: r.provinces,
            })
            .collect(),
    ))
}

/// Create or update regional offices (JSON or CSV `code,name,provinces` with `;` between provinces).
///
/// Who may call: admin.
#[utoipa::path(post, path = "/offices/bulk", operation_id = "bulk_upsert_offices", tag = "reference", request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<Office> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = BulkOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn bulk_offices(
    State(state): State<AppState>,
    actor: Actor,
    body: Bulk<Office>,
) -> ApiResult<Json<BulkOutcome>> {
    actor.require_admin()?;
    let known = known_provinces(&state).await?;
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, o) in body.rows.iter().enumerate() {
        let valid = o.code.starts_with(|c: char| c.is_ascii_lowercase())
            && o.code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            errors.push(FieldError::new(
                body.at(i, "code"),
                "must be lower-case letters, digits and `-`, e.g. `babel`",
            ));
        } else if !seen.insert(o.code.as_str()) {
            errors.push(FieldError::new(
                body.at(i, "code"),
                format!("`{}` appears more than once", o.code),
            ));
        }
        errors.extend(text_problem(body.at(i, "name"), &o.name, NAME_MAX));
        if o.provinces.is_empty() {
            errors.push(FieldError::new(
                body.at(i, "provinces"),
                "an office covers at least one province",
            ));
        }
        for p in o.provinces.iter().filter(|p| !known.contains(p.as_str())) {
            errors.push(FieldError::new(
                body.at(i, "provinces"),
                format!("unknown province `{p}`"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let mut tx = state.pool.begin().await?;
    let mut result = BulkOutcome::default();
    for o in &body.rows {
        let before = sqlx::query!(
            r#"SELECT o.name, COALESCE(array_agg(op.province_code ORDER BY op.province_code)
                      FILTER (WHERE op.province_code IS NOT NULL), '{}') AS "provinces!"
               FROM offices o LEFT JOIN office_provinces op ON op.office_code = o.code
               WHERE o.code = $1 GROUP BY o.code"#,
            o.code
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut provinces = o.provinces.clone();
        provinces.sort();
        provinces.dedup();
        match before {
            Some(b) if b.name == o.name.trim() && b.provinces == provinces => {
                result.unchanged += 1;
                continue;
            }
            Some(_) => result.updated += 1,
            None => result.created += 1,
        }
        sqlx::query!(
            "INSERT INTO offices (code, name) VALUES ($1, $2)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, updated_at = now()",
            o.code,
            o.name.trim()
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM office_provinces WHERE office_code = $1",
            o.code
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO office_provinces (office_code, province_code) SELECT $1, UNNEST($2::text[])",
            o.code,
            &provinces
        )
        .execute(&mut *tx)
        .await?;
    }
    crate::routes::audit::write(
        &mut tx,
        actor.id(),
        ("office", "bulk".to_owned()),
        None,
        "uploaded",
        serde_json::json!({ "codes": body.rows.iter().map(|o| o.code.as_str()).collect::<Vec<_>>() }),
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(result))
}

async fn known_provinces(state: &AppState) -> ApiResult<HashSet<String>> {
    Ok(sqlx::query_scalar!("SELECT code FROM provinces")
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .collect())
}

pub(crate) use entities::kemendagri_problem;
pub use entities::{entity_for, visible_entity};
