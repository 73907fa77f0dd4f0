//! Import of already-published unit scores of past cycles, so year-on-year comparison works from
//! the first day. Entity scores, grades and ranks are then computed by the same core code as for
//! live cycles (the mean of the units' published scores: only unit scores are imported, also for
//! product-scored years).
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /cycles/{year}/import` | admin |
//! | `GET /cycles/{year}/import/template` | admin, office |
//!
//! Body: CSV with header `entity_code,entity_kind,entity_name,province_code,unit_name,score`
//! (score with a decimal point or comma: `93.71` or `93,71`), or the same records as a JSON
//! array. Missing entities and units are created. Re-importing the same file changes nothing; a
//! different file for an already imported year creates a new results revision, never a silent
//! overwrite.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use kepatuhan_core::scoring::{RankInput, grade, mean_published, rank_entities};
use kepatuhan_core::{EntityKind, PublishedScore};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Actor;
use crate::bulk::Bulk;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::problem::{CODE_MAX, FieldError, NAME_MAX, Problem, text_problem, too_long};
use crate::routes::cycles;
use crate::routes::reference::{Entity, kemendagri_problem};
use kepatuhan_app::recompute::{EntityRow, clear_results, write_entity_results};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(template))
}

/// The columns of an import file, in order.
pub const IMPORT_COLUMNS: [&str; 6] = [
    "entity_code",
    "entity_kind",
    "entity_name",
    "province_code",
    "unit_name",
    "score",
];

/// What each column holds, in Bahasa Indonesia, for the template's instructions sheet.
const IMPORT_HELP: [(&str, &str); 6] = [
    (
        "entity_code",
        "Kode instansi: kode wilayah Kemendagri (19, 19.04, 19.71) atau kode kementerian/lembaga",
    ),
    (
        "entity_kind",
        "Jenis instansi: ministry, agency, province, regency atau city",
    ),
    (
        "entity_name",
        "Nama instansi (dipakai bila instansi belum terdaftar)",
    ),
    (
        "province_code",
        "Kode provinsi; kosongkan untuk kementerian dan lembaga",
    ),
    ("unit_name", "Nama unit layanan (OPD/lokus) yang dinilai"),
    (
        "score",
        "Nilai yang telah diumumkan, 0–100, dua desimal: 93,71 atau 93.71",
    ),
];

/// Query of the import template.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// `xlsx` (the default: a sheet to fill and a sheet of instructions) or `csv` (the header
    /// row).
    #[param(value_type = Option<String>, example = "xlsx")]
    pub format: Option<String>,
}

/// The file to fill with a past cycle's published unit scores, for `POST /cycles/{year}/import`:
/// an XLSX workbook (a sheet with the header row to fill, and one of instructions in Bahasa
/// Indonesia), or the CSV header row. Until workbooks can be imported, save the filled sheet as
/// CSV (`;` or `,`, decimal comma or point) and upload that.
///
/// Who may call: admin, office.
#[utoipa::path(get, path = "/cycles/{year}/import/template", operation_id = "get_import_template", tag = "imports", params(("year" = i64, Path, description = "Cycle year"), TemplateQuery), responses((status = 200, description = "The template", content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (String = "text/csv"))), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn template(
    actor: Actor,
    Path(raw): Path<i64>,
    Query(q): Query<TemplateQuery>,
) -> ApiResult<axum::response::Response> {
    use crate::export::{Cell, Format, Sheet, answer};
    actor.require_staff()?;
    let year = cycles::year(raw)?.get();
    let format = match q.format.as_deref() {
        None | Some("xlsx") => Format::Xlsx,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::field(
                "format",
                format!("unknown format `{other}` (xlsx, csv)"),
            ));
        }
    };
    let columns: Vec<String> = IMPORT_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let fill = Sheet {
        name: format!("Impor {year}"),
        columns,
        rows: Vec::new(),
        widths: vec![13.0, 12.0, 40.0, 13.0, 48.0, 8.0],
    };
    let help = Sheet {
        name: "Petunjuk".to_owned(),
        columns: vec!["Kolom".to_owned(), "Isi".to_owned()],
        rows: IMPORT_HELP
            .iter()
            .map(|(c, h)| vec![Cell::Text((*c).to_owned()), Cell::Text((*h).to_owned())])
            .collect(),
        widths: vec![15.0, 90.0],
    };
    let sheets = if format == Format::Csv {
        vec![fill]
    } else {
        vec![fill, help]
    };
    answer(format, &format!("impor-nilai-{year}"), &sheets)
}

/// One imported unit score.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    /// Entity code.
    pub entity_code: String,
    /// Entity kind.
    #[schema(value_type = String)]
    pub entity_kind: EntityKind,
    /// Entity name (used when the entity is new).
    pub entity_name: String,
    /// Province code; empty for ministries and agencies.
    #[serde(default)]
    pub province_code: Option<String>,
    /// Unit name.
    pub unit_name: String,
    /// Published score, `93.71` or `93,71`.
    pub score: String,
}

/// What an import did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportOutcome {
    /// The cycle year.
    pub year: i32,
    /// Results revision now current.
    pub revision: i32,
    /// Whether the results changed (false when the same file is imported again).
    pub changed: bool,
    /// Entities created.
    pub entities_created: usize,
    /// Units created.
    pub units_created: usize,
    /// Units with an imported score.
    pub units: usize,
    /// Entities scored.
    pub entities: usize,
}

struct Parsed {
    score: PublishedScore,
    entity: Entity,
    unit_name: String,
}

fn parse_rows(body: &Bulk<ImportRow>, known: &HashSet<String>) -> Result<Vec<Parsed>, ApiError> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen_units = HashSet::new();
    let mut entity_defs: HashMap<&str, (EntityKind, Option<&str>)> = HashMap::new();
    for (i, r) in body.rows.iter().enumerate() {
        let code = r.entity_code.trim();
        let province = r
            .province_code
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let entity = Entity {
            code: code.to_owned(),
            kind: r.entity_kind,
            name: r.entity_name.trim().to_owned(),
            province_code: province.map(str::to_owned),
        };
        if let Some((field, message)) = kemendagri_problem(&entity, code, known) {
            errors.push(FieldError::new(body.at(i, field), message));
        }
        if let Some(first) = entity_defs.insert(code, (r.entity_kind, province))
            && first != (r.entity_kind, province)
        {
            errors.push(FieldError::new(
                body.at(i, "entity_kind"),
                format!(
                    "entity `{code}` appears with a different kind or province on another line"
                ),
            ));
        }
        errors.extend(text_problem(
            body.at(i, "entity_name"),
            &entity.name,
            NAME_MAX,
        ));
        errors.extend(too_long(body.at(i, "unit_name"), &r.unit_name, NAME_MAX));
        errors.extend(too_long(body.at(i, "entity_code"), code, CODE_MAX));
        if r.unit_name.trim().is_empty() {
            errors.push(FieldError::new(
                body.at(i, "unit_name"),
                "must not be empty",
            ));
        } else if !seen_units.insert((code, r.unit_name.trim())) {
            errors.push(FieldError::new(
                body.at(i, "unit_name"),
                format!(
                    "unit `{}` of `{code}` appears more than once",
                    r.unit_name.trim()
                ),
            ));
        }
        let score = r
            .score
            .trim()
            .replace(',', ".")
            .parse::<Decimal>()
            .ok()
            .and_then(|d| PublishedScore::new(d).ok());
        match score {
            Some(score) => out.push(Parsed {
                score,
                entity,
                unit_name: r.unit_name.trim().to_owned(),
            }),
            None => errors.push(FieldError::new(
                body.at(i, "score"),
                format!(
                    "`{}` is not a score between 0 and 100 with at most 2 decimals",
                    r.score
                ),
            )),
        }
    }
    if body.rows.is_empty() {
        errors.push(FieldError::new("", "the file has no rows"));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Import published unit scores of a past cycle (CSV or JSON).
///
/// Who may call: admin.
#[utoipa::path(post, path = "/cycles/{year}/import", operation_id = "import_cycle_results", tag = "imports", params(("year" = i64, Path, description = "Cycle year")), request_body(description = "A JSON array; or CSV with the same columns and a header row (text/csv: `,` or `;` between fields, an optional UTF-8 byte-order mark, a decimal comma accepted); or an XLSX workbook whose first sheet holds that table", content((Vec<ImportRow> = "application/json"), (String = "text/csv"), (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), responses((status = 200, description = "Success", body = ImportOutcome), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn import(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<i64>,
    body: Bulk<ImportRow>,
) -> ApiResult<Json<ImportOutcome>> {
    actor.require_admin()?;
    let year = cycles::year(raw)?;
    let y = i32::from(year.get());
    let m = kepatuhan_core::methodology::builtin::for_year(year)
        .and_then(|m| state.methodology(m.code()).cloned())
        .ok_or_else(|| ApiError::field("year", format!("no shipped methodology covers {year}")))?;
    let known: HashSet<String> = sqlx::query_scalar!("SELECT code FROM provinces")
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .collect();
    let rows = parse_rows(&body, &known)?;

    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO cycles (year, methodology_code, state, imported, published_at) VALUES ($1, $2, 'published', true, now())
         ON CONFLICT (year) WHERE kind = 'official' DO NOTHING",
        y,
        m.code()
    )
    .execute(&mut *tx)
    .await?;
    let cycle = kepatuhan_app::cycles::lock(&mut tx, year).await?;
    let cycle_id = cycle.id.get();
    if !cycle.imported {
        return Err(ApiError::conflict(
            "cycle-not-imported",
            format!(
                "cycle {year} holds field data; imports are for years assessed outside this system"
            ),
        ));
    }

    let (entity_ids, entities_created, units_created, scored) =
        upsert_reference(&mut tx, &rows).await?;

    // Same scores as the current revision: nothing changes.
    let mut current: Vec<(i64, Decimal)> = sqlx::query!(
        "SELECT unit_id, score FROM unit_results WHERE cycle_id = $1 AND revision = $2",
        cycle_id,
        cycle.results_revision
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.unit_id, r.score))
    .collect();
    current.sort_unstable();
    let mut incoming: Vec<(i64, Decimal)> =
        scored.iter().map(|(_, u, s)| (*u, s.value())).collect();
    incoming.sort_unstable();
    let changed = current != incoming;
    let revision = if current.is_empty() {
        cycle.results_revision
    } else if changed {
        cycle.results_revision + 1
    } else {
        cycle.results_revision
    };
    let mut entities = 0;
    if changed {
        entities = write_import(
            &mut tx,
            &m,
            (cycle_id, year),
            revision,
            &scored,
            &entity_ids,
        )
        .await?;
        sqlx::query!(
            "UPDATE cycles SET results_revision = $2, updated_at = now() WHERE id = $1",
            cycle_id,
            revision
        )
        .execute(&mut *tx)
        .await?;
    } else {
        entities = entities.max(sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM entity_results WHERE cycle_id = $1 AND revision = $2"#, cycle_id, revision).fetch_one(&mut *tx).await?.try_into().unwrap_or(0));
    }
    if changed {
        crate::routes::audit::write(
            &mut tx,
            actor.id(),
            ("cycle", y.to_string()),
            None,
            "imported",
            serde_json::json!({ "revision": revision, "units": scored.len() }),
        )
        .await?;
    }
    crate::error::commit(tx).await?;
    Ok(Json(ImportOutcome {
        year: y,
        revision,
        changed,
        entities_created,
        units_created,
        units: scored.len(),
        entities,
    }))
}

type EntityIds = BTreeMap<String, (i64, EntityKind, Option<String>)>;

/// Creates missing entities and units (never renames existing ones) and returns entity ids, how
/// many entities and units were created, and (entity id, unit id, score) per row.
async fn upsert_reference(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[Parsed],
) -> ApiResult<(EntityIds, usize, usize, Vec<(i64, i64, PublishedScore)>)> {
    // Entities and units: create what is missing, never rename what exists.
    let mut entities_created = 0;
    let mut entity_ids: BTreeMap<String, (i64, EntityKind, Option<String>)> = BTreeMap::new();
    for p in rows {
        if entity_ids.contains_key(&p.entity.code) {
            continue;
        }
        let existing = sqlx::query!(
            "SELECT id, kind FROM entities WHERE code = $1",
            p.entity.code
        )
        .fetch_optional(&mut **tx)
        .await?;
        let id = match existing {
            Some(e) if e.kind != p.entity.kind.as_str() => {
                return Err(ApiError::field(
                    "entity_kind",
                    format!(
                        "entity `{}` is a {} in the reference data, not a {}",
                        p.entity.code, e.kind, p.entity.kind
                    ),
                ));
            }
            Some(e) => e.id,
            None => {
                entities_created += 1;
                sqlx::query_scalar!(
                    "INSERT INTO entities (code, kind, name, province_code) VALUES ($1, $2, $3, $4) RETURNING id",
                    p.entity.code,
                    p.entity.kind.as_str(),
                    p.entity.name,
                    p.entity.province_code
                )
                .fetch_one(&mut **tx)
                .await?
            }
        };
        entity_ids.insert(
            p.entity.code.clone(),
            (id, p.entity.kind, p.entity.province_code.clone()),
        );
    }
    let mut units_created = 0;
    let mut scored: Vec<(i64, i64, PublishedScore)> = Vec::with_capacity(rows.len());
    for p in rows {
        let entity_id = entity_ids[&p.entity.code].0;
        let unit = sqlx::query_scalar!(
            "SELECT id FROM units WHERE entity_id = $1 AND name = $2",
            entity_id,
            p.unit_name
        )
        .fetch_optional(&mut **tx)
        .await?;
        let unit_id = match unit {
            Some(id) => id,
            None => {
                units_created += 1;
                sqlx::query_scalar!("INSERT INTO units (entity_id, name, kind) VALUES ($1, $2, 'unspecified') RETURNING id", entity_id, p.unit_name)
                    .fetch_one(&mut **tx)
                    .await?
            }
        };
        scored.push((entity_id, unit_id, p.score));
    }

    Ok((entity_ids, entities_created, units_created, scored))
}

/// Writes sample, unit results and entity results (graded and ranked by the core) of a revision.
async fn write_import(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    m: &kepatuhan_core::Methodology,
    (y, year): (i64, kepatuhan_core::CycleYear),
    revision: i32,
    scored: &[(i64, i64, PublishedScore)],
    entity_ids: &EntityIds,
) -> ApiResult<usize> {
    let units: Vec<i64> = scored.iter().map(|s| s.1).collect();
    let unit_scores: Vec<Decimal> = scored.iter().map(|s| s.2.value()).collect();
    let grades: Vec<String> = scored
        .iter()
        .map(|s| m.bands().band_of(s.2).code.clone())
        .collect();
    sqlx::query!("INSERT INTO cycle_units (cycle_id, unit_id) SELECT $1, UNNEST($2::bigint[]) ON CONFLICT DO NOTHING", y, &units).execute(&mut **tx).await?;
    clear_results(tx, y, revision).await?;
    sqlx::query!(
        "INSERT INTO unit_results (cycle_id, revision, unit_id, score, grade_code, input_revision)
         SELECT $1, $2, *, 0 FROM UNNEST($3::bigint[], $4::numeric[], $5::text[])",
        y,
        revision,
        &units,
        &unit_scores as &[Decimal],
        &grades
    )
    .execute(&mut **tx)
    .await?;
    let mut per_entity: BTreeMap<i64, Vec<PublishedScore>> = BTreeMap::new();
    for (e, _, s) in scored {
        per_entity.entry(*e).or_default().push(*s);
    }
    let meta: HashMap<i64, (EntityKind, Option<String>)> = entity_ids
        .values()
        .map(|(id, k, p)| (*id, (*k, p.clone())))
        .collect();
    let mut rows: Vec<(i64, PublishedScore, i32)> = Vec::new();
    for (id, s) in &per_entity {
        if let Ok(mean) = mean_published(s) {
            rows.push((*id, mean, i32::try_from(s.len()).unwrap_or(i32::MAX)));
        }
    }
    let inputs: Vec<RankInput<'_>> = rows
        .iter()
        .map(|(id, s, _)| RankInput {
            kind: meta[id].0,
            province: meta[id].1.as_deref(),
            score: *s,
        })
        .collect();
    let ranks = rank_entities(&inputs);
    let entity_rows: Vec<EntityRow> = rows
        .iter()
        .zip(ranks)
        .map(|((id, s, n), r)| EntityRow {
            entity_id: *id,
            breakdown: serde_json::json!([]),
            score: *s,
            grade: grade(m, year, *s, None),
            ranks: r,
            units_scored: *n,
        })
        .collect();
    Ok(write_entity_results(tx, y, revision, 0, &entity_rows).await?)
}
