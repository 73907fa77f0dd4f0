//! A cycle's integrity flags: the facts gathered from the database, core's rules
//! (`kepatuhan_core::flags`) run on them, and the flags stored so that reviews survive
//! recomputes.
//!
//! Flags are refreshed inside the recompute's transaction: the full recompute (and publication)
//! refreshes every kind; the incremental recompute of one entity refreshes that entity's
//! entity-scoped kinds. A stored flag is keyed by (cycle, kind, subject). When a refresh finds
//! the same fingerprint (kind, subject, evidence), its review (dismissed, escalated) holds; new
//! evidence reopens it. A flag whose rule no longer fires stays, marked not current. Flags never
//! change a score. Only official cycles are flagged.

use std::collections::HashMap;

use kepatuhan_core::Methodology;
use kepatuhan_core::flags::{
    EntityFacts, Flag, FlagKind, FlagSettings, OfficeReviews, ReviewFacts, Subject, UnitFacts,
    cycle_flags, entity_flags,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use crate::cycles::Cycle;
use crate::error::AppResult;
use crate::recompute::{Loaded, VerifiedUnit, load_inputs};

/// What a refresh covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every kind, the whole cycle.
    Cycle,
    /// The entity-scoped kinds of one entity.
    Entity(i64),
}

impl Scope {
    /// The entity of an entity's refresh.
    fn entity(self) -> Option<i64> {
        match self {
            Scope::Cycle => None,
            Scope::Entity(e) => Some(e),
        }
    }
}

/// The flags of a cycle after a refresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlagCounts {
    /// Flags whose rule fires now.
    pub current: i64,
    /// Of those, the ones nobody has dismissed or escalated yet.
    pub open: i64,
}

/// Refreshes the flags of `scope` in the caller's transaction (which holds the cycle's lock and
/// has just written its results), reading the verified inputs and the stored scores itself. A
/// refresh of the whole cycle returns the cycle's counts; one entity's returns none, so that a
/// verification's job does no work in proportion to the cycle. A recompute, which has just
/// loaded the same inputs and computed the scores, calls [`refresh_loaded`] instead.
pub async fn refresh(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    settings: &FlagSettings,
    cycle: &Cycle,
    scope: Scope,
) -> AppResult<Option<FlagCounts>> {
    if !cycle.kind.is_official() {
        return refresh_loaded(tx, m, settings, cycle, scope, None, None).await;
    }
    let (.., loaded) = load_inputs(tx, m, cycle, scope.entity()).await?;
    refresh_loaded(tx, m, settings, cycle, scope, Some(loaded), None).await
}

/// This revision's published scores, of units and of entities, by id.
pub(crate) type Scores = (HashMap<i64, Decimal>, HashMap<i64, Decimal>);

/// [`refresh`] from the inputs a recompute loaded (of the scope: the whole cycle, or the
/// entity) and, for the whole cycle, the scores it computed (`None`: read the stored ones).
pub(crate) async fn refresh_loaded(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    settings: &FlagSettings,
    cycle: &Cycle,
    scope: Scope,
    loaded: Option<Loaded>,
    scores: Option<Scores>,
) -> AppResult<Option<FlagCounts>> {
    let whole_cycle = scope == Scope::Cycle;
    let (true, Some(loaded)) = (cycle.kind.is_official(), loaded) else {
        return Ok(if whole_cycle {
            Some(counts(tx, cycle.id.get()).await?)
        } else {
            None
        });
    };
    let y = cycle.id.get();
    let entity = scope.entity();
    let started = std::time::Instant::now();
    let Loaded {
        places,
        sheets,
        evidence,
        mut reports,
        mut respondents,
    } = loaded;
    let mut units: Vec<UnitFacts> = places
        .iter()
        .zip(sheets.into_iter().zip(evidence))
        .map(|(p, (sheet, evidence))| UnitFacts {
            unit: p.unit_id,
            entity: p.entity_id,
            office: p.office_code.clone(),
            province: p.province_code.clone(),
            assessor: Some(p.created_by),
            sheet,
            evidence,
            reports: reports.remove(&p.unit_id).unwrap_or_default(),
            respondents: respondents.remove(&p.unit_id).unwrap_or_default(),
            score: None,
            previous: None,
        })
        .collect();
    // The whole cycle's rules also read scores (now and last year) and the offices' reviews.
    let cycle_facts = match scope {
        Scope::Cycle => Some((
            with_scores(tx, cycle, &mut units, scores).await?,
            office_reviews(tx, y).await?,
        )),
        Scope::Entity(_) => None,
    };
    let facts = started.elapsed();
    let mut flags = Vec::new();
    // Each entity's units (by position in `units`, which follows `places`) and its reviews.
    let mut by_entity: HashMap<i64, (Vec<usize>, Vec<ReviewFacts>)> = HashMap::new();
    for (i, p) in places.iter().enumerate() {
        let (indexes, reviews) = by_entity.entry(p.entity_id).or_default();
        indexes.push(i);
        if let Some(seconds_to_verify) = p.seconds_to_verify {
            reviews.push(ReviewFacts {
                unit: p.unit_id,
                entity: p.entity_id,
                seconds_to_verify,
            });
        }
    }
    for (indexes, reviews) in by_entity.values() {
        let group: Vec<&UnitFacts> = indexes.iter().map(|i| &units[*i]).collect();
        flags.extend(entity_flags(m, settings, &group, reviews));
    }
    if let Some((entities, offices)) = cycle_facts {
        flags.extend(cycle_flags(m, settings, &units, &entities, &offices));
    }
    let ruled = started.elapsed();
    let places_by_unit: HashMap<i64, &VerifiedUnit> =
        places.iter().map(|p| (p.unit_id, p)).collect();
    let written = store(tx, y, entity, &flags, &places_by_unit).await?;
    tracing::debug!(
        cycle_id = y,
        entity,
        flags = flags.len(),
        written,
        facts_ms = facts.as_millis(),
        rules_ms = ruled.saturating_sub(facts).as_millis(),
        store_ms = started.elapsed().saturating_sub(ruled).as_millis(),
        "flags refreshed"
    );
    Ok(if whole_cycle {
        Some(counts(tx, y).await?)
    } else {
        None
    })
}

/// The counts of a cycle's current and open flags.
pub async fn counts(tx: &mut Transaction<'_, Postgres>, cycle_id: i64) -> AppResult<FlagCounts> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE current) AS "current!", count(*) FILTER (WHERE current AND status = 'open') AS "open!"
           FROM flags WHERE cycle_id = $1"#,
        cycle_id
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(FlagCounts {
        current: r.current,
        open: r.open,
    })
}

/// The previous year's official cycle and its current revision, when it is published.
async fn previous_revision(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &Cycle,
) -> AppResult<Option<(i64, i32)>> {
    Ok(sqlx::query!(
        "SELECT id, results_revision FROM cycles WHERE kind = 'official' AND year = $1 - 1 AND state = 'published'",
        i32::from(cycle.year.get())
    )
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| (r.id, r.results_revision)))
}

/// The unit scores of one revision of a cycle, by unit.
async fn unit_scores(
    tx: &mut Transaction<'_, Postgres>,
    (cycle_id, revision): (i64, i32),
) -> AppResult<HashMap<i64, Decimal>> {
    Ok(sqlx::query!(
        "SELECT unit_id, score FROM unit_results WHERE cycle_id = $1 AND revision = $2",
        cycle_id,
        revision
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.unit_id, r.score))
    .collect())
}

/// The entity scores of one revision of a cycle, by entity.
async fn entity_scores(
    tx: &mut Transaction<'_, Postgres>,
    (cycle_id, revision): (i64, i32),
) -> AppResult<HashMap<i64, Decimal>> {
    Ok(sqlx::query!(
        "SELECT entity_id, score FROM entity_results WHERE cycle_id = $1 AND revision = $2",
        cycle_id,
        revision
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.entity_id, r.score))
    .collect())
}

/// Sets each unit's published score now (`scores`, or the stored ones) and in the previous
/// official cycle (each revision read on its own: a join of the two was planned as a scan a
/// unit), and returns every scored entity's.
async fn with_scores(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &Cycle,
    units: &mut [UnitFacts],
    scores: Option<Scores>,
) -> AppResult<Vec<EntityFacts>> {
    let current = (cycle.id.get(), cycle.results_revision);
    let previous = previous_revision(tx, cycle).await?;
    let (now_units, now_entities) = match scores {
        Some(scores) => scores,
        None => (
            unit_scores(tx, current).await?,
            entity_scores(tx, current).await?,
        ),
    };
    let before = match previous {
        Some(p) => unit_scores(tx, p).await?,
        None => HashMap::new(),
    };
    for u in units {
        u.score = now_units.get(&u.unit).copied();
        u.previous = before.get(&u.unit).copied();
    }
    let before = match previous {
        Some(p) => entity_scores(tx, p).await?,
        None => HashMap::new(),
    };
    let mut entities: Vec<EntityFacts> = now_entities
        .into_iter()
        .map(|(entity, score)| EntityFacts {
            entity,
            score: Some(score),
            previous: before.get(&entity).copied(),
        })
        .collect();
    entities.sort_by_key(|e| e.entity);
    Ok(entities)
}

/// Per office: the cycle's submissions it verified, and the times it returned one.
async fn office_reviews(
    tx: &mut Transaction<'_, Postgres>,
    cycle_id: i64,
) -> AppResult<Vec<OfficeReviews>> {
    Ok(sqlx::query!(
        r#"SELECT op.office_code AS "office!",
                  count(*) FILTER (WHERE s.state = 'verified') AS "verified!",
                  coalesce(sum(r.returns), 0)::bigint AS "returned!"
           FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
           JOIN office_provinces op ON op.province_code = e.province_code
           LEFT JOIN (SELECT submission_id, count(*) AS returns FROM audit_log WHERE action = 'returned' GROUP BY submission_id) r
                  ON r.submission_id = s.id
           WHERE s.cycle_id = $1
           GROUP BY op.office_code"#,
        cycle_id
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| OfficeReviews {
        office: r.office,
        verified: u64::try_from(r.verified).unwrap_or(0),
        returned: u64::try_from(r.returned).unwrap_or(0),
    })
    .collect())
}

/// Stores the flags of a refresh and returns how many rows it wrote. A flag stored with the
/// same fingerprint, severity, context and place (unit, entity, office, province), and still
/// current, is left alone (a recompute that changes nothing writes
/// nothing); a new one is inserted; a known one with new evidence, or one that fires again, is
/// updated: its review kept when the fingerprint is the same, reopened otherwise. An escalated
/// flag whose submissions went back to their office is not current; when its rule fires again
/// (they were verified again), it is open again, whatever its evidence: HQ asked for a second
/// look and decides again. The scope's stored flags that no longer fire are marked not current.
async fn store(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    entity: Option<i64>,
    flags: &[Flag],
    places: &HashMap<i64, &VerifiedUnit>,
) -> AppResult<usize> {
    let mut stored = stored_flags(tx, y, entity).await?;
    let mut cols = FlagColumns::default();
    for f in flags {
        let (kind, key) = (f.kind.code().to_owned(), f.subject.key());
        let fingerprint = f.fingerprint();
        let place = f.unit.and_then(|u| places.get(&u));
        let (office, province) = match &f.subject {
            Subject::Office { office } => (Some(office.clone()), None),
            Subject::Province { province } | Subject::Assessor { province, .. } => {
                (None, Some(province.clone()))
            }
            _ => (
                place.and_then(|p| p.office_code.clone()),
                place.and_then(|p| p.province_code.clone()),
            ),
        };
        // Where a flag belongs decides which office sees it: a unit whose entity moved to
        // another province is written again.
        if let Some(known) = stored.remove(&(kind.clone(), key.clone()))
            && known.current
            && known.fingerprint == fingerprint
            && known.severity == f.severity.code()
            && known.context == f.context
            && (known.unit_id, known.entity_id) == (f.unit, f.entity)
            && (&known.office_code, &known.province_code) == (&office, &province)
        {
            continue;
        }
        cols.kinds.push(kind);
        cols.keys.push(key);
        cols.subjects
            .push(serde_json::to_value(&f.subject).unwrap_or_default());
        cols.severities.push(f.severity.code().to_owned());
        cols.units.push(f.unit);
        cols.entities.push(f.entity);
        cols.offices.push(office);
        cols.provinces.push(province);
        cols.evidence.push(f.evidence.clone());
        cols.context.push(f.context.clone());
        cols.fingerprints.push(fingerprint);
    }
    let written = cols.kinds.len();
    if written > 0 {
        // The review holds when the evidence is the same, unless the flag was escalated and
        // its data sent back (not current): then it fires again and is open again.
        sqlx::query!(
            "INSERT INTO flags (cycle_id, kind, subject_key, subject, severity, unit_id, entity_id, office_code, province_code, evidence, context, fingerprint)
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::jsonb[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::jsonb[], $11::jsonb[], $12::text[])
             ON CONFLICT (cycle_id, kind, subject_key) DO UPDATE SET
                 subject = excluded.subject, severity = excluded.severity, unit_id = excluded.unit_id,
                 entity_id = excluded.entity_id, office_code = excluded.office_code, province_code = excluded.province_code,
                 evidence = excluded.evidence, context = excluded.context, current = true, refreshed_at = now(),
                 status = CASE WHEN flags.fingerprint = excluded.fingerprint AND (flags.current OR flags.status <> 'escalated') THEN flags.status ELSE 'open' END,
                 decision_note = CASE WHEN flags.fingerprint = excluded.fingerprint AND (flags.current OR flags.status <> 'escalated') THEN flags.decision_note END,
                 decided_by = CASE WHEN flags.fingerprint = excluded.fingerprint AND (flags.current OR flags.status <> 'escalated') THEN flags.decided_by END,
                 decided_at = CASE WHEN flags.fingerprint = excluded.fingerprint AND (flags.current OR flags.status <> 'escalated') THEN flags.decided_at END,
                 fingerprint = excluded.fingerprint",
            y,
            &cols.kinds,
            &cols.keys,
            &cols.subjects,
            &cols.severities,
            &cols.units as &[Option<i64>],
            &cols.entities as &[Option<i64>],
            &cols.offices as &[Option<String>],
            &cols.provinces as &[Option<String>],
            &cols.evidence,
            &cols.context,
            &cols.fingerprints
        )
            .execute(&mut **tx)
            .await?;
    }
    // What is left of the stored flags did not fire in this refresh.
    let gone: Vec<i64> = stored
        .into_values()
        .filter(|f| f.current)
        .map(|f| f.id)
        .collect();
    if !gone.is_empty() {
        sqlx::query!("UPDATE flags SET current = false WHERE id = ANY($1)", &gone)
            .execute(&mut **tx)
            .await?;
    }
    Ok(written + gone.len())
}

/// The stored flags of a refresh's scope, by (kind, subject key).
async fn stored_flags(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    entity: Option<i64>,
) -> AppResult<HashMap<(String, String), StoredFlag>> {
    let entity_kinds: Vec<String> = FlagKind::ALL
        .into_iter()
        .filter(|k| k.is_entity_scoped())
        .map(|k| k.code().to_owned())
        .collect();
    // The scope's stored flags: one entity's through the (cycle, entity) index; one statement
    // for both scopes would be planned for the whole cycle.
    let stored: Vec<StoredFlag> = match entity {
        None => {
            sqlx::query_as!(
                StoredFlag,
                "SELECT id, kind, subject_key, fingerprint, severity, context, current, unit_id, entity_id, office_code, province_code
                 FROM flags WHERE cycle_id = $1",
                y
            )
            .fetch_all(&mut **tx)
            .await?
        }
        Some(entity) => {
            sqlx::query_as!(
                StoredFlag,
                "SELECT id, kind, subject_key, fingerprint, severity, context, current, unit_id, entity_id, office_code, province_code
                 FROM flags WHERE cycle_id = $1 AND entity_id = $2 AND kind = ANY($3)",
                y,
                entity,
                &entity_kinds
            )
            .fetch_all(&mut **tx)
            .await?
        }
    };
    Ok(stored
        .into_iter()
        .map(|f| ((f.kind.clone(), f.subject_key.clone()), f))
        .collect())
}

/// A stored flag's identity and state, as a refresh compares it.
struct StoredFlag {
    id: i64,
    kind: String,
    subject_key: String,
    fingerprint: String,
    severity: String,
    context: serde_json::Value,
    current: bool,
    unit_id: Option<i64>,
    entity_id: Option<i64>,
    office_code: Option<String>,
    province_code: Option<String>,
}

/// Flag rows, column by column.
#[derive(Default)]
struct FlagColumns {
    kinds: Vec<String>,
    keys: Vec<String>,
    subjects: Vec<serde_json::Value>,
    severities: Vec<String>,
    units: Vec<Option<i64>>,
    entities: Vec<Option<i64>>,
    offices: Vec<Option<String>>,
    provinces: Vec<Option<String>>,
    evidence: Vec<serde_json::Value>,
    context: Vec<serde_json::Value>,
    fingerprints: Vec<String>,
}
