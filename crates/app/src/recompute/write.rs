//! Writing scored results: unit and entity rows of a revision, and ranks that moved.

use std::collections::HashMap;

use kepatuhan_core::scoring::{CycleInput, CycleResult, Grade, RankInput, Ranks, deficiencies};
use kepatuhan_core::{EntityKind, Methodology, PublishedScore};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

use super::load::UnitRow;
use crate::error::{AppError, AppResult};

/// Unit rows written per statement: bounds the memory taken by their JSON (≈ 5 KB a unit).
const UNIT_ROWS_PER_INSERT: usize = 500;

/// A scored cycle (or entity) with where each of its units sits.
pub(super) struct Scored<'a> {
    pub(super) m: &'a Methodology,
    pub(super) input: &'a CycleInput,
    pub(super) result: &'a CycleResult,
    pub(super) unit_rows: &'a [UnitRow],
}

impl Scored<'_> {
    /// Writes the scored units' result rows, [`UNIT_ROWS_PER_INSERT`] at a time, with their
    /// breakdown and deficiency lists serialized straight to JSON text; returns how many units
    /// have a score.
    ///
    /// `stored` holds the digests of the revision's rows before the write ([`stored_digests`]).
    /// A unit whose result has the digest stored for it is left alone: a full recompute that
    /// changes little writes little. Every scored unit is taken out of `stored`, so what is left
    /// afterwards are the rows of units no longer scored ([`delete_units`]).
    pub(super) async fn write_units(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        y: i64,
        revision: i32,
        input_revision: i64,
        stored: &mut HashMap<i64, Option<Vec<u8>>>,
    ) -> AppResult<usize> {
        let mut with_score = 0;
        let mut chunk = UnitColumns::default();
        let mut position_in_entity: HashMap<usize, usize> = HashMap::new();
        let (mut breakdown, mut deficiency_list) = (Vec::new(), Vec::new());
        for row in self.unit_rows {
            let k = position_in_entity.entry(row.entity_index).or_insert(0);
            let unit_result = &self.result.entities[row.entity_index].units[*k];
            let unit_input = &self.input.entities[row.entity_index].units[*k];
            *k += 1;
            let (Some(score), Some(grade)) = (&unit_result.score, &unit_result.grade) else {
                continue;
            };
            with_score += 1;
            breakdown.clear();
            json_into(&mut breakdown, &score.sheets);
            deficiency_list.clear();
            json_into(
                &mut deficiency_list,
                &deficiencies(self.m, unit_input, score),
            );
            let (published, exact) = (score.published.value(), score.score.value());
            let digest = digest_of(&[
                published.to_string().as_bytes(),
                exact.to_string().as_bytes(),
                grade.code.as_bytes(),
                &breakdown,
                &deficiency_list,
            ]);
            if stored.remove(&row.unit_id).flatten().as_deref() == Some(digest.as_slice()) {
                continue;
            }
            chunk.ids.push(row.unit_id);
            chunk.scores.push(published);
            chunk.exact.push(exact);
            chunk.grades.push(grade.code.clone());
            chunk.breakdown.push(json_text(&breakdown));
            chunk.deficiencies.push(json_text(&deficiency_list));
            chunk.digests.push(digest);
            if chunk.ids.len() == UNIT_ROWS_PER_INSERT {
                std::mem::take(&mut chunk)
                    .upsert(tx, y, revision, input_revision)
                    .await?;
            }
        }
        if !chunk.ids.is_empty() {
            chunk.upsert(tx, y, revision, input_revision).await?;
        }
        Ok(with_score)
    }
}

/// Serializes a value as JSON into `buffer` (`null` if it cannot be serialized, which our result
/// types always can).
fn json_into<T: Serialize>(buffer: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *buffer, value).is_err() {
        buffer.clear();
        buffer.extend_from_slice(b"null");
    }
}

/// JSON serialized by [`json_into`] as text.
fn json_text(json: &[u8]) -> String {
    String::from_utf8_lossy(json).into_owned()
}

/// The SHA-256 digest of a row's parts, each prefixed by its length so that no two different
/// rows share the bytes hashed.
fn digest_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// The digests of the unit rows of one revision of a cycle, by unit (`None` for rows that carry
/// none, such as imported scores).
pub(super) async fn stored_digests(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    revision: i32,
) -> AppResult<HashMap<i64, Option<Vec<u8>>>> {
    Ok(sqlx::query!(
        "SELECT unit_id, digest FROM unit_results WHERE cycle_id = $1 AND revision = $2",
        y,
        revision
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.unit_id, r.digest))
    .collect())
}

/// Unit result rows, column by column.
#[derive(Default)]
struct UnitColumns {
    ids: Vec<i64>,
    scores: Vec<Decimal>,
    exact: Vec<Decimal>,
    grades: Vec<String>,
    breakdown: Vec<String>,
    deficiencies: Vec<String>,
    digests: Vec<Vec<u8>>,
}

impl UnitColumns {
    /// Inserts the rows, or replaces the stored rows of the same units; every row written gets
    /// this write's `input_revision` and `computed_at`.
    async fn upsert(
        self,
        tx: &mut Transaction<'_, Postgres>,
        y: i64,
        revision: i32,
        input_revision: i64,
    ) -> AppResult<()> {
        sqlx::query!(
            "INSERT INTO unit_results (cycle_id, revision, unit_id, score, exact_score, grade_code, breakdown, deficiencies, digest, input_revision)
             SELECT $1, $2, t.unit_id, t.score, t.exact_score, t.grade_code, t.breakdown::jsonb, t.deficiencies::jsonb, t.digest, $8
             FROM UNNEST($3::bigint[], $4::numeric[], $5::numeric[], $6::text[], $7::text[], $9::text[], $10::bytea[])
                  AS t(unit_id, score, exact_score, grade_code, breakdown, deficiencies, digest)
             ON CONFLICT (cycle_id, revision, unit_id) DO UPDATE SET
                 score = excluded.score, exact_score = excluded.exact_score, grade_code = excluded.grade_code,
                 breakdown = excluded.breakdown, deficiencies = excluded.deficiencies, digest = excluded.digest,
                 input_revision = excluded.input_revision, computed_at = now()",
            y,
            revision,
            &self.ids,
            &self.scores as &[Decimal],
            &self.exact as &[Decimal],
            &self.grades,
            &self.breakdown,
            input_revision,
            &self.deficiencies,
            &self.digests
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Records that the cycle's current results reflect `input_revision`.
pub(super) async fn mark_current(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    input_revision: i64,
) -> AppResult<()> {
    sqlx::query!(
        "UPDATE cycles SET results_input_revision = $2 WHERE id = $1",
        y,
        input_revision
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the rows of `units` from one revision of a cycle (the units no longer scored that
/// [`Scored::write_units`] left in its `stored` map); returns how many.
pub(super) async fn delete_units(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    revision: i32,
    units: &[i64],
) -> AppResult<u64> {
    if units.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query!(
        "DELETE FROM unit_results WHERE cycle_id = $1 AND revision = $2 AND unit_id = ANY($3)",
        y,
        revision,
        units
    )
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Deletes the entity rows of one revision of a cycle (before they are written again).
pub(super) async fn clear_entity_results(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
    revision: i32,
) -> AppResult<()> {
    sqlx::query!(
        "DELETE FROM entity_results WHERE cycle_id = $1 AND revision = $2",
        cycle_id,
        revision
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the result rows of one revision of a cycle (before they are written again).
pub async fn clear_results(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
    revision: i32,
) -> AppResult<()> {
    sqlx::query!(
        "DELETE FROM unit_results WHERE cycle_id = $1 AND revision = $2",
        cycle_id,
        revision
    )
    .execute(&mut **tx)
    .await?;
    clear_entity_results(tx, cycle_id, revision).await
}

/// A scored entity, ready to store.
#[derive(Debug, Clone)]
pub struct EntityRow {
    /// The entity.
    pub entity_id: i64,
    /// Per-dimension means of the units' scores: `[{ "code": "input", "score": "81.25" }]`.
    pub breakdown: serde_json::Value,
    /// Its published score.
    pub score: PublishedScore,
    /// Its grade.
    pub grade: Grade,
    /// Its ranks.
    pub ranks: Ranks,
    /// Units with a score.
    pub units_scored: i32,
}

/// The scored entities of a cycle result, with their database ids.
pub(super) fn entity_rows(entity_ids: &[i64], result: &CycleResult) -> Vec<EntityRow> {
    entity_ids
        .iter()
        .zip(&result.entities)
        .filter_map(|(id, e)| {
            Some(EntityRow {
                entity_id: *id,
                breakdown: serde_json::to_value(e.dimension_means())
                    .unwrap_or(serde_json::Value::Null),
                score: e.score?,
                grade: e.grade.clone()?,
                ranks: e.ranks?,
                units_scored: i32::try_from(e.units.iter().filter(|u| u.score.is_some()).count())
                    .unwrap_or(i32::MAX),
            })
        })
        .collect()
}

/// Writes entity result rows (scored entities only) and returns how many.
pub async fn write_entity_results(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
    revision: i32,
    input_revision: i64,
    rows: &[EntityRow],
) -> AppResult<usize> {
    let mut ids = Vec::new();
    let mut scores = Vec::new();
    let mut codes = Vec::new();
    let mut labels = Vec::new();
    let mut zones: Vec<Option<String>> = Vec::new();
    let mut eligible = Vec::new();
    let mut n_rank = Vec::new();
    let mut n_of = Vec::new();
    let mut p_rank: Vec<Option<i32>> = Vec::new();
    let mut p_of: Vec<Option<i32>> = Vec::new();
    let mut units_scored = Vec::new();
    let mut breakdowns = Vec::new();
    for EntityRow {
        entity_id,
        breakdown,
        score,
        grade,
        ranks,
        units_scored: n,
    } in rows
    {
        ids.push(*entity_id);
        scores.push(score.value());
        codes.push(grade.code.clone());
        labels.push(grade.label.clone());
        zones.push(grade.zone.map(|z| z.to_string()));
        eligible.push(grade.award_eligible);
        n_rank.push(i32::try_from(ranks.national.rank).unwrap_or(i32::MAX));
        n_of.push(i32::try_from(ranks.national.of).unwrap_or(i32::MAX));
        p_rank.push(
            ranks
                .provincial
                .map(|r| i32::try_from(r.rank).unwrap_or(i32::MAX)),
        );
        p_of.push(
            ranks
                .provincial
                .map(|r| i32::try_from(r.of).unwrap_or(i32::MAX)),
        );
        units_scored.push(*n);
        breakdowns.push(breakdown.clone());
    }
    sqlx::query!(
        "INSERT INTO entity_results (cycle_id, revision, entity_id, score, grade_code, grade_label, zone, award_eligible,
                                     national_rank, national_of, provincial_rank, provincial_of, units_scored, breakdown, input_revision)
         SELECT $1, $2, *, $14 FROM UNNEST($3::bigint[], $4::numeric[], $5::text[], $6::text[], $7::text[], $8::bool[],
                                            $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $15::jsonb[])",
        cycle_id,
        revision,
        &ids,
        &scores as &[Decimal],
        &codes,
        &labels,
        &zones as &[Option<String>],
        &eligible,
        &n_rank,
        &n_of,
        &p_rank as &[Option<i32>],
        &p_of as &[Option<i32>],
        &units_scored,
        input_revision,
        &breakdowns
    )
    .execute(&mut **tx)
    .await?;
    Ok(ids.len())
}

/// Ranks every entity again from the stored scores of all but `entity_id` and, last, `mine`
/// (that entity's kind, province and new score, if it is scored). Returns the others' stored
/// ranks and the new ranks, in the same order.
pub(super) async fn rerank(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    revision: i32,
    entity_id: i64,
    mine: Option<(EntityKind, Option<&str>, PublishedScore)>,
) -> AppResult<(Vec<StoredRanks>, Vec<Ranks>)> {
    let others = sqlx::query!(
        r#"SELECT r.entity_id, e.kind, e.province_code, r.score, r.national_rank, r.national_of, r.provincial_rank, r.provincial_of
           FROM entity_results r JOIN entities e ON e.id = r.entity_id
           WHERE r.cycle_id = $1 AND r.revision = $2 AND r.entity_id <> $3"#,
        y,
        revision,
        entity_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut inputs = Vec::with_capacity(others.len() + 1);
    for o in &others {
        inputs.push(RankInput {
            kind: o.kind.parse().unwrap_or(EntityKind::Regency),
            province: o.province_code.as_deref(),
            score: PublishedScore::new(o.score)
                .map_err(|e| AppError::Inconsistent(format!("stored score {}: {e}", o.score)))?,
        });
    }
    if let Some((kind, province, score)) = mine {
        inputs.push(RankInput {
            kind,
            province,
            score,
        });
    }
    let ranks = kepatuhan_core::scoring::rank_entities(&inputs);
    let stored = others
        .iter()
        .map(|o| StoredRanks {
            entity_id: o.entity_id,
            national: (o.national_rank, o.national_of),
            provincial: o.provincial_rank.zip(o.provincial_of),
        })
        .collect();
    Ok((stored, ranks))
}

/// An entity's ranks as stored.
pub(super) struct StoredRanks {
    entity_id: i64,
    national: (i32, i32),
    provincial: Option<(i32, i32)>,
}

/// Writes the ranks of the entities (in `stored` order, matching `ranks`) whose rank moved, and
/// returns how many.
pub(super) async fn update_moved_ranks(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    revision: i32,
    stored: &[StoredRanks],
    ranks: &[Ranks],
) -> AppResult<usize> {
    let (mut ids, mut n_rank, mut n_of, mut p_rank, mut p_of) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    for (o, r) in stored.iter().zip(ranks) {
        let national = (as_i32(r.national.rank), as_i32(r.national.of));
        let provincial = r.provincial.map(|p| (as_i32(p.rank), as_i32(p.of)));
        if o.national != national || o.provincial != provincial {
            ids.push(o.entity_id);
            n_rank.push(national.0);
            n_of.push(national.1);
            p_rank.push(provincial.map(|p| p.0));
            p_of.push(provincial.map(|p| p.1));
        }
    }
    if ids.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        "UPDATE entity_results r
            SET national_rank = t.national_rank, national_of = t.national_of,
                provincial_rank = t.provincial_rank, provincial_of = t.provincial_of
           FROM UNNEST($3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[])
                AS t(entity_id, national_rank, national_of, provincial_rank, provincial_of)
          WHERE r.cycle_id = $1 AND r.revision = $2 AND r.entity_id = t.entity_id",
        y,
        revision,
        &ids,
        &n_rank,
        &n_of,
        &p_rank as &[Option<i32>],
        &p_of as &[Option<i32>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(ids.len())
}
