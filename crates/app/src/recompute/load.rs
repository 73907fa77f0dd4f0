//! Loading a cycle's verified inputs (values, survey tallies, follow-up) as core inputs.

use std::collections::{BTreeMap, HashMap};

use kepatuhan_core::methodology::{QuestionRef, SurveyMethod};
use kepatuhan_core::scoring::{
    AnswerInput, CycleInput, EntityInput, FollowUpStatus, Sheet, SurveyTally, UnitInput,
};
use kepatuhan_core::{EntityKind, Methodology};
use sqlx::{Postgres, Transaction};

use crate::cycles::Cycle;
use crate::error::AppResult;

/// Where a loaded unit sits: its id and its entity's position in the cycle input.
pub(crate) struct UnitRow {
    pub(crate) unit_id: i64,
    pub(crate) entity_index: usize,
}

/// The units with a verified submission in the cycle `y` (of one entity, or all), grouped by entity
/// in code order.
///
/// An unofficial cycle (a self-assessment) has no review: every submission of it counts
/// (`any_state`). The integrity flags read the same units (with their office, assessor and
/// review time).
pub(crate) async fn verified_units(
    tx: &mut Transaction<'_, Postgres>,
    y: i64,
    entity: Option<i64>,
    any_state: bool,
) -> AppResult<Vec<VerifiedUnit>> {
    // Units with a verified submission, grouped by entity. One entity's are looked up from the
    // entity's unit ids, so the plan stays a few index probes even when the planner's statistics
    // are stale (as after a national upload, before autovacuum has analyzed the tables).
    Ok(match entity {
        None => {
            sqlx::query_as!(
                VerifiedUnit,
                r#"SELECT s.id AS submission_id, u.id AS unit_id, e.id AS entity_id, e.code, e.kind, e.province_code,
                          (SELECT min(op.office_code) FROM office_provinces op WHERE op.province_code = e.province_code) AS office_code,
                          s.created_by, EXTRACT(EPOCH FROM (s.verified_at - s.submitted_at))::bigint AS seconds_to_verify
                   FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
                   JOIN cycle_units cu ON cu.cycle_id = s.cycle_id AND cu.unit_id = s.unit_id AND cu.excluded_at IS NULL
                   WHERE s.cycle_id = $1 AND (s.state = 'verified' OR $2)
                   ORDER BY e.code, u.id"#,
                y,
                any_state
            )
            .fetch_all(&mut **tx)
            .await?
        }
        Some(entity) => {
            sqlx::query_as!(
                VerifiedUnit,
                r#"SELECT s.id AS submission_id, u.id AS unit_id, e.id AS entity_id, e.code, e.kind, e.province_code,
                          (SELECT min(op.office_code) FROM office_provinces op WHERE op.province_code = e.province_code) AS office_code,
                          s.created_by, EXTRACT(EPOCH FROM (s.verified_at - s.submitted_at))::bigint AS seconds_to_verify
                   FROM submissions s JOIN units u ON u.id = s.unit_id JOIN entities e ON e.id = u.entity_id
                   JOIN cycle_units cu ON cu.cycle_id = s.cycle_id AND cu.unit_id = s.unit_id AND cu.excluded_at IS NULL
                   WHERE s.cycle_id = $1 AND s.unit_id = ANY(ARRAY(SELECT id FROM units WHERE entity_id = $2))
                     AND (s.state = 'verified' OR $3)
                   ORDER BY u.id"#,
                y,
                entity,
                any_state
            )
            .fetch_all(&mut **tx)
            .await?
        }
    })
}

/// A unit with a verified submission, and its entity.
pub(crate) struct VerifiedUnit {
    pub(crate) submission_id: i64,
    pub(crate) unit_id: i64,
    pub(crate) entity_id: i64,
    code: String,
    kind: String,
    pub(crate) province_code: Option<String>,
    /// The regional office covering its province.
    pub(crate) office_code: Option<String>,
    /// Who created the submission (its assessor).
    pub(crate) created_by: i64,
    /// Seconds from its submission to its verification, once verified.
    pub(crate) seconds_to_verify: Option<i64>,
}

/// What a recompute loaded that the integrity flags read too, so that they need not read it
/// again: the verified units, and per unit (in the same order) its sheet, which of its values
/// have evidence, and its respondents' reports on the survey questions linked to indicators.
pub(crate) struct Loaded {
    /// The verified units, in the order of the cycle input's units.
    pub(crate) places: Vec<VerifiedUnit>,
    /// Each unit's sheet (its first, for product-scored methodologies).
    pub(crate) sheets: Vec<Sheet>,
    /// Each unit's values with an evidence note or attachment, by indicator index.
    pub(crate) evidence: Vec<Vec<bool>>,
    /// Per unit: respondents reporting each linked yes/no question.
    pub(crate) reports: HashMap<i64, HashMap<QuestionRef, u64>>,
    /// Per unit: respondents of each yes/no survey.
    pub(crate) respondents: HashMap<i64, HashMap<String, u64>>,
}

/// A loaded cycle: the core input (entities in code order with their units), the entities'
/// ids, where each unit sits, and what the flags read besides.
pub(crate) type Inputs = (CycleInput, Vec<i64>, Vec<UnitRow>, Loaded);

/// Loads a cycle's verified values and survey responses as core inputs: entities (in code
/// order) with their units, the entities' ids, where each unit sits, and what the integrity
/// flags read besides.
pub(crate) async fn load_inputs(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle: &Cycle,
    entity: Option<i64>,
) -> AppResult<Inputs> {
    let year = cycle.year;
    let y = cycle.id.get();
    let follow_ups: HashMap<i64, FollowUpStatus> = sqlx::query!(
        r#"SELECT entity_id, count(*)::int AS "findings!", (count(*) FILTER (WHERE status = 'accepted'))::int AS "followed_up!"
           FROM findings WHERE cycle_id = $1 GROUP BY entity_id"#,
        y
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| {
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        (
            r.entity_id,
            FollowUpStatus {
                findings: count(r.findings),
                followed_up: count(r.followed_up),
            },
        )
    })
    .collect();
    let units = verified_units(tx, y, entity, !cycle.kind.is_official()).await?;
    // The verified submissions' values and the units' survey tallies, looked up by the ids just
    // read: one plan serves the whole cycle and one entity alike.
    let submission_ids: Vec<i64> = units.iter().map(|u| u.submission_id).collect();
    let unit_ids: Vec<i64> = units.iter().map(|u| u.unit_id).collect();
    let mut values = unit_values(tx, m, &submission_ids).await?;
    let Surveys {
        tallies,
        reports,
        respondents,
    } = surveys(tx, m, (y, entity.is_none()), &unit_ids).await?;

    let mut entities: Vec<EntityInput> = Vec::new();
    let mut entity_ids: Vec<i64> = Vec::new();
    let mut unit_rows: Vec<UnitRow> = Vec::new();
    let (mut sheets, mut evidence) = (Vec::new(), Vec::new());
    for u in &units {
        if entity_ids.last() != Some(&u.entity_id) {
            entity_ids.push(u.entity_id);
            entities.push(EntityInput {
                code: u.code.clone(),
                kind: u.kind.parse().unwrap_or(EntityKind::Regency),
                province: u.province_code.clone(),
                follow_up: follow_ups.get(&u.entity_id).copied(),
                units: Vec::new(),
            });
        }
        let unit = values
            .remove(&u.submission_id)
            .unwrap_or_else(|| UnitValues::new(m));
        let sheet = Sheet::from_answers(m, unit.answers.iter().map(|(c, a)| (c.as_str(), *a)))
            .unwrap_or_else(|_| Sheet::new(m));
        sheets.push(sheet.clone());
        evidence.push(unit.evidence);
        let mut input = UnitInput::new(m, sheet);
        for id in m.survey_ids() {
            if let Some(t) = tallies.get(&(u.unit_id, m.survey(id).code.clone())) {
                input.set_survey(id, t.clone());
            }
        }
        let entity_index = entities.len() - 1;
        entities[entity_index].units.push(input);
        unit_rows.push(UnitRow {
            unit_id: u.unit_id,
            entity_index,
        });
    }
    Ok((
        CycleInput { year, entities },
        entity_ids,
        unit_rows,
        Loaded {
            places: units,
            sheets,
            evidence,
            reports,
            respondents,
        },
    ))
}

/// One verified submission's values: the answers by indicator code, and which have evidence
/// (by indicator index).
struct UnitValues {
    answers: Vec<(String, AnswerInput)>,
    evidence: Vec<bool>,
}

impl UnitValues {
    fn new(m: &Methodology) -> Self {
        Self {
            answers: Vec::new(),
            evidence: vec![false; m.indicator_count()],
        }
    }
}

/// The values of the verified submissions `submission_ids`, by submission.
async fn unit_values(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    submission_ids: &[i64],
) -> AppResult<HashMap<i64, UnitValues>> {
    let rows = sqlx::query!(
        r#"SELECT submission_id, indicator_code, value, not_applicable,
                  (evidence_note <> '' OR attachments <> '[]'::jsonb) AS "has_evidence!"
           FROM submission_values WHERE submission_id = ANY($1)"#,
        submission_ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut values: HashMap<i64, UnitValues> = HashMap::new();
    for v in rows {
        let a = match (v.not_applicable, v.value) {
            (true, _) | (false, None) => AnswerInput::NotApplicable,
            (false, Some(x)) => AnswerInput::Value(u8::try_from(x).unwrap_or(u8::MAX)),
        };
        let unit = values
            .entry(v.submission_id)
            .or_insert_with(|| UnitValues::new(m));
        if v.has_evidence
            && let Some(id) = m.indicator_id(&v.indicator_code)
        {
            unit.evidence[id.index()] = true;
        }
        unit.answers.push((v.indicator_code, a));
    }
    Ok(values)
}

/// The survey responses of a cycle's units, counted: the tallies the scores need, and the
/// reports on linked questions the flags need.
struct Surveys {
    tallies: HashMap<(i64, String), SurveyTally>,
    reports: HashMap<i64, HashMap<QuestionRef, u64>>,
    respondents: HashMap<i64, HashMap<String, u64>>,
}

/// Counts the stored survey responses of `units` in the database, per (unit, survey code): for a
/// yes/no (maladministration) survey, the respondents who reported none and those who reported
/// some, with the questions each of those reported (`survey_responses.reported`, computed when
/// the response was stored), which give the reports on the questions linked to indicators; for
/// a Likert survey, the answers at each level. Only counts leave the database, not the ≈ 100,000
/// responses of a national cycle. `whole_cycle`: every response of the cycle is read in key
/// order (no sort; only `units` are counted), else only those of `units`. Responses were checked
/// against the cycle's methodology when they were stored (`surveys::upload`), so counting is all
/// that is left; answers that are not a level of the scale are not counted.
async fn surveys(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    (cycle_id, whole_cycle): (i64, bool),
    units: &[i64],
) -> AppResult<Surveys> {
    let (mut yes_no, mut likert) = (Vec::new(), Vec::new());
    for id in m.survey_ids() {
        let survey = m.survey(id);
        match survey.method {
            SurveyMethod::NoMaladministrationShare => yes_no.push(survey.code.clone()),
            SurveyMethod::Likert { .. } => likert.push(survey.code.clone()),
        }
    }
    // The questions of each survey that indicators link to.
    let mut linked: HashMap<&str, Vec<&QuestionRef>> = HashMap::new();
    for id in m.indicator_ids() {
        for q in &m.indicator(id).survey_questions {
            let questions = linked.entry(q.survey.as_str()).or_default();
            if !questions.contains(&q) {
                questions.push(q);
            }
        }
    }
    let mut out = Surveys {
        tallies: HashMap::new(),
        reports: HashMap::new(),
        respondents: HashMap::new(),
    };
    if !yes_no.is_empty() {
        yes_no_counts(
            tx,
            m,
            (cycle_id, units, whole_cycle),
            &yes_no,
            &linked,
            &mut out,
        )
        .await?;
    }
    if !likert.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT r.unit_id, r.survey_code, a.value::text AS "level!", count(*) AS "answers!"
               FROM survey_responses r CROSS JOIN LATERAL jsonb_each(r.answers) AS a
               WHERE r.cycle_id = $1 AND r.unit_id = ANY($2) AND r.survey_code = ANY($3)
               GROUP BY 1, 2, 3"#,
            cycle_id,
            units,
            &likert
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut counts: BTreeMap<(i64, String), Vec<u64>> = BTreeMap::new();
        for r in rows {
            let Some(id) = m.survey_id(&r.survey_code) else {
                continue;
            };
            let SurveyMethod::Likert { levels } = &m.survey(id).method else {
                continue;
            };
            let position = r
                .level
                .parse::<u8>()
                .ok()
                .and_then(|v| levels.iter().position(|l| l.value == v));
            let Some(position) = position else {
                continue;
            };
            let tally = counts
                .entry((r.unit_id, r.survey_code))
                .or_insert_with(|| vec![0; levels.len()]);
            tally[position] += u64::try_from(r.answers).unwrap_or(0);
        }
        for ((unit, code), tally) in counts {
            if let Some(id) = m.survey_id(&code)
                && let Ok(t) = SurveyTally::from_counts(m.survey(id), tally)
            {
                out.tallies.insert((unit, code), t);
            }
        }
    }
    Ok(out)
}

/// One unit's responses to one yes/no survey: how many, how many reported something, and
/// what each of those reported.
struct YesNoCounts {
    unit_id: i64,
    respondents: i64,
    reporting: i64,
    reported: Option<serde_json::Value>,
}

/// Counts the responses to the yes/no surveys `yes_no` into `out`: the tallies, and the reports
/// on the `linked` questions. Each survey is read in its primary key's order and grouped by unit
/// without a sort: the whole cycle's (only the `units` counted), or one entity's `units`.
async fn yes_no_counts(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    (cycle_id, units, whole_cycle): (i64, &[i64], bool),
    yes_no: &[String],
    linked: &HashMap<&str, Vec<&QuestionRef>>,
    out: &mut Surveys,
) -> AppResult<()> {
    let wanted: std::collections::HashSet<i64> = units.iter().copied().collect();
    for code in yes_no {
        let rows = if whole_cycle {
            sqlx::query_as!(
                YesNoCounts,
                r#"SELECT unit_id, count(*) AS "respondents!", count(*) FILTER (WHERE reported <> '[]') AS "reporting!",
                          jsonb_agg(reported) FILTER (WHERE reported <> '[]') AS reported
                   FROM survey_responses WHERE cycle_id = $1 AND survey_code = $2 GROUP BY unit_id"#,
                cycle_id,
                code
            )
            .fetch_all(&mut **tx)
            .await?
        } else {
            sqlx::query_as!(
                YesNoCounts,
                r#"SELECT unit_id, count(*) AS "respondents!", count(*) FILTER (WHERE reported <> '[]') AS "reporting!",
                          jsonb_agg(reported) FILTER (WHERE reported <> '[]') AS reported
                   FROM survey_responses WHERE cycle_id = $1 AND survey_code = $2 AND unit_id = ANY($3) GROUP BY unit_id"#,
                cycle_id,
                code,
                units
            )
            .fetch_all(&mut **tx)
            .await?
        };
        let Some(id) = m.survey_id(code) else {
            continue;
        };
        let questions = linked.get(code.as_str());
        for r in rows.into_iter().filter(|r| wanted.contains(&r.unit_id)) {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let (respondents, reporting) = (count(r.respondents), count(r.reporting));
            if let Some(questions) = questions {
                out.respondents
                    .entry(r.unit_id)
                    .or_default()
                    .insert(code.clone(), respondents);
                let unit_reports = out.reports.entry(r.unit_id).or_default();
                for q in questions {
                    let reported = r
                        .reported
                        .iter()
                        .flat_map(|all| all.as_array().into_iter().flatten())
                        .filter(|one| {
                            one.as_array().is_some_and(|keys| {
                                keys.iter().any(|k| k.as_str() == Some(&q.question))
                            })
                        })
                        .count();
                    unit_reports.insert((*q).clone(), u64::try_from(reported).unwrap_or(0));
                }
            }
            if let Ok(t) = SurveyTally::from_counts(
                m.survey(id),
                vec![respondents.saturating_sub(reporting), reporting],
            ) {
                out.tallies.insert((r.unit_id, code.clone()), t);
            }
        }
    }
    Ok(())
}
