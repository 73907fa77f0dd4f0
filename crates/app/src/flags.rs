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
use kepatuhan_core::methodology::{QuestionRef, SurveyMethod};
use kepatuhan_core::scoring::{AnswerInput, Sheet};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use crate::cycles::Cycle;
use crate::error::AppResult;
use crate::recompute::{VerifiedUnit, verified_units};

/// What a refresh covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every kind, the whole cycle.
    Cycle,
    /// The entity-scoped kinds of one entity.
    Entity(i64),
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
/// has just written its results). A refresh of the whole cycle returns the cycle's counts; one
/// entity's returns none, so that a verification's job does no work in proportion to the cycle.
pub async fn refresh(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    settings: &FlagSettings,
    cycle: &Cycle,
    scope: Scope,
) -> AppResult<Option<FlagCounts>> {
    let whole_cycle = scope == Scope::Cycle;
    if !cycle.kind.is_official() {
        return Ok(if whole_cycle {
            Some(counts(tx, cycle.id.get()).await?)
        } else {
            None
        });
    }
    let y = cycle.id.get();
    let entity = match scope {
        Scope::Cycle => None,
        Scope::Entity(e) => Some(e),
    };
    let started = std::time::Instant::now();
    let places = verified_units(tx, y, entity, false).await?;
    let mut units = unit_facts(tx, m, cycle, &places, entity.is_some()).await?;
    // The whole cycle's rules also read scores (now and last year) and the offices' reviews.
    let cycle_facts = match scope {
        Scope::Cycle => Some((
            scores(tx, cycle, &mut units).await?,
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
    store(tx, y, entity, &flags, &places_by_unit).await?;
    tracing::debug!(
        cycle_id = y,
        entity,
        flags = flags.len(),
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

/// The facts of each verified unit: values with their evidence, and survey reports on the
/// questions the methodology links to indicators.
async fn unit_facts(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle: &Cycle,
    places: &[VerifiedUnit],
    one_entity: bool,
) -> AppResult<Vec<UnitFacts>> {
    let submission_ids: Vec<i64> = places.iter().map(|p| p.submission_id).collect();
    let unit_ids: Vec<i64> = places.iter().map(|p| p.unit_id).collect();
    let rows = sqlx::query!(
        r#"SELECT submission_id, indicator_code, value, not_applicable,
                  (evidence_note <> '' OR attachments <> '[]'::jsonb) AS "has_evidence!"
           FROM submission_values WHERE submission_id = ANY($1)"#,
        &submission_ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut sheets: HashMap<i64, (Sheet, Vec<bool>)> = HashMap::new();
    for r in rows {
        let Some(id) = m.indicator_id(&r.indicator_code) else {
            continue;
        };
        let (sheet, evidence) = sheets
            .entry(r.submission_id)
            .or_insert_with(|| (Sheet::new(m), vec![false; m.indicator_count()]));
        let answer = match (r.not_applicable, r.value) {
            (false, Some(v)) => AnswerInput::Value(u8::try_from(v).unwrap_or(u8::MAX)),
            _ => AnswerInput::NotApplicable,
        };
        // Stored values were checked on entry; one the methodology refuses now is left out.
        let _ = sheet.set_by_id(m, id, answer);
        evidence[id.index()] = r.has_evidence;
    }
    let (reports, respondents) = survey_reports(
        tx,
        m,
        cycle.id.get(),
        one_entity.then_some(unit_ids.as_slice()),
    )
    .await?;
    Ok(places
        .iter()
        .map(|p| {
            let (sheet, evidence) = sheets
                .remove(&p.submission_id)
                .unwrap_or_else(|| (Sheet::new(m), vec![false; m.indicator_count()]));
            UnitFacts {
                unit: p.unit_id,
                entity: p.entity_id,
                office: p.office_code.clone(),
                province: p.province_code.clone(),
                assessor: Some(p.created_by),
                sheet,
                evidence,
                reports: reports.get(&p.unit_id).cloned().unwrap_or_default(),
                respondents: respondents.get(&p.unit_id).cloned().unwrap_or_default(),
                score: None,
                previous: None,
            }
        })
        .collect())
}

/// Per unit: respondents reporting each linked yes/no question, and respondents of each such
/// survey. The database groups the responses of each unit by their answers (a handful of
/// patterns a unit), so only counts leave it. `units`: only these units (one entity's); `None`:
/// the whole cycle, which needs no list of ids.
type Reports = (
    HashMap<i64, HashMap<QuestionRef, u64>>,
    HashMap<i64, HashMap<String, u64>>,
);

/// How many of a unit's respondents gave the same answers.
struct AnswerPattern {
    unit_id: i64,
    answers: serde_json::Value,
    respondents: i64,
}

async fn survey_reports(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle_id: i64,
    units: Option<&[i64]>,
) -> AppResult<Reports> {
    let mut linked: HashMap<String, Vec<String>> = HashMap::new();
    for id in m.indicator_ids() {
        for q in &m.indicator(id).survey_questions {
            let questions = linked.entry(q.survey.clone()).or_default();
            if !questions.contains(&q.question) {
                questions.push(q.question.clone());
            }
        }
    }
    let (mut reports, mut respondents): Reports = (HashMap::new(), HashMap::new());
    for (survey, questions) in linked {
        let yes_no = m
            .survey_id(&survey)
            .is_some_and(|s| matches!(m.survey(s).method, SurveyMethod::NoMaladministrationShare));
        if !yes_no {
            continue;
        }
        let patterns = match units {
            None => {
                sqlx::query_as!(
                    AnswerPattern,
                    r#"SELECT unit_id, answers, count(*) AS "respondents!" FROM survey_responses
                       WHERE cycle_id = $1 AND survey_code = $2 GROUP BY unit_id, answers"#,
                    cycle_id,
                    survey
                )
                .fetch_all(&mut **tx)
                .await?
            }
            Some(units) => {
                sqlx::query_as!(
                    AnswerPattern,
                    r#"SELECT unit_id, answers, count(*) AS "respondents!" FROM survey_responses
                       WHERE cycle_id = $1 AND survey_code = $2 AND unit_id = ANY($3) GROUP BY unit_id, answers"#,
                    cycle_id,
                    survey,
                    units
                )
                .fetch_all(&mut **tx)
                .await?
            }
        };
        for p in patterns {
            let n = u64::try_from(p.respondents).unwrap_or(0);
            *respondents
                .entry(p.unit_id)
                .or_default()
                .entry(survey.clone())
                .or_default() += n;
            let unit_reports = reports.entry(p.unit_id).or_default();
            for q in &questions {
                let reported = p.answers.get(q) == Some(&serde_json::Value::Bool(true));
                *unit_reports
                    .entry(QuestionRef {
                        survey: survey.clone(),
                        question: q.clone(),
                    })
                    .or_default() += if reported { n } else { 0 };
            }
        }
    }
    Ok((reports, respondents))
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

/// Sets each unit's published score now and in the previous official cycle (each revision read
/// on its own: a join of the two was planned as a scan a unit), and returns every scored
/// entity's.
async fn scores(
    tx: &mut Transaction<'_, Postgres>,
    cycle: &Cycle,
    units: &mut [UnitFacts],
) -> AppResult<Vec<EntityFacts>> {
    let current = (cycle.id.get(), cycle.results_revision);
    let previous = previous_revision(tx, cycle).await?;
    let (now, before) = (
        unit_scores(tx, current).await?,
        match previous {
            Some(p) => unit_scores(tx, p).await?,
            None => HashMap::new(),
        },
    );
    for u in units {
        u.score = now.get(&u.unit).copied();
        u.previous = before.get(&u.unit).copied();
    }
    let (now, before) = (
        entity_scores(tx, current).await?,
        match previous {
            Some(p) => entity_scores(tx, p).await?,
            None => HashMap::new(),
        },
    );
    let mut entities: Vec<EntityFacts> = now
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
           LEFT JOIN (SELECT submission_id, count(*) AS returns FROM audit_log WHERE action = 'return' GROUP BY submission_id) r
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

/// Stores the flags of a refresh: new ones inserted, known ones updated (their review kept when
/// the fingerprint is the same, reopened otherwise), and those of the scope that no longer fire
/// marked not current.
async fn store(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    entity: Option<i64>,
    flags: &[Flag],
    places: &HashMap<i64, &VerifiedUnit>,
) -> AppResult<()> {
    let mut cols = FlagColumns::default();
    for f in flags {
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
        cols.kinds.push(f.kind.code().to_owned());
        cols.keys.push(f.subject.key());
        cols.subjects
            .push(serde_json::to_value(&f.subject).unwrap_or_default());
        cols.severities.push(f.severity.code().to_owned());
        cols.units.push(f.unit);
        cols.entities.push(f.entity);
        cols.offices.push(office);
        cols.provinces.push(province);
        cols.evidence.push(f.evidence.clone());
        cols.context.push(f.context.clone());
        cols.fingerprints.push(f.fingerprint());
    }
    sqlx::query!(
        "INSERT INTO flags (cycle_id, kind, subject_key, subject, severity, unit_id, entity_id, office_code, province_code, evidence, context, fingerprint)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::jsonb[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::jsonb[], $11::jsonb[], $12::text[])
         ON CONFLICT (cycle_id, kind, subject_key) DO UPDATE SET
             subject = excluded.subject, severity = excluded.severity, unit_id = excluded.unit_id,
             entity_id = excluded.entity_id, office_code = excluded.office_code, province_code = excluded.province_code,
             evidence = excluded.evidence, context = excluded.context, current = true, refreshed_at = now(),
             status = CASE WHEN flags.fingerprint = excluded.fingerprint THEN flags.status ELSE 'open' END,
             decision_note = CASE WHEN flags.fingerprint = excluded.fingerprint THEN flags.decision_note END,
             decided_by = CASE WHEN flags.fingerprint = excluded.fingerprint THEN flags.decided_by END,
             decided_at = CASE WHEN flags.fingerprint = excluded.fingerprint THEN flags.decided_at END,
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
    // Flags of the scope that this refresh did not write no longer fire. One entity's are found
    // through the (cycle, entity) index; a statement for both scopes would be planned for the
    // whole cycle.
    match entity {
        None => {
            sqlx::query!(
                "UPDATE flags SET current = false WHERE cycle_id = $1 AND current AND refreshed_at <> now()",
                y
            )
            .execute(&mut **tx)
            .await?;
        }
        Some(entity) => {
            let kinds: Vec<String> = FlagKind::ALL
                .into_iter()
                .filter(|k| k.is_entity_scoped())
                .map(|k| k.code().to_owned())
                .collect();
            sqlx::query!(
                "UPDATE flags SET current = false
                 WHERE cycle_id = $1 AND entity_id = $2 AND current AND kind = ANY($3) AND refreshed_at <> now()",
                y,
                entity,
                &kinds
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
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
