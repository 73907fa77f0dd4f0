//! Loading a cycle's verified inputs (values, survey tallies, follow-up) as core inputs.

use std::collections::{BTreeMap, HashMap};

use kepatuhan_core::methodology::SurveyMethod;
use kepatuhan_core::scoring::{
    AnswerInput, CycleInput, EntityInput, FollowUpStatus, Sheet, SurveyTally, UnitInput,
};
use kepatuhan_core::{EntityKind, Methodology};
use sqlx::{Postgres, Transaction};

use crate::cycles::Cycle;
use crate::error::AppResult;

/// Where a loaded unit sits: its id and its entity's position in the cycle input.
pub(super) struct UnitRow {
    pub(super) unit_id: i64,
    pub(super) entity_index: usize,
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

/// Loads a cycle's verified values and survey responses as core inputs: entities (in code
/// order) with their units, the entities' ids, and where each unit sits.
pub(super) async fn load_inputs(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle: &Cycle,
    entity: Option<i64>,
) -> AppResult<(CycleInput, Vec<i64>, Vec<UnitRow>)> {
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
    let values = sqlx::query!(
        r#"SELECT submission_id, indicator_code, value, not_applicable
           FROM submission_values WHERE submission_id = ANY($1)"#,
        &submission_ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut answers: HashMap<i64, Vec<(String, AnswerInput)>> = HashMap::new();
    for v in values {
        let a = match (v.not_applicable, v.value) {
            (true, _) | (false, None) => AnswerInput::NotApplicable,
            (false, Some(x)) => AnswerInput::Value(u8::try_from(x).unwrap_or(u8::MAX)),
        };
        answers
            .entry(v.submission_id)
            .or_default()
            .push((v.indicator_code, a));
    }
    let tallies = survey_tallies(tx, m, y, &unit_ids).await?;

    let mut entities: Vec<EntityInput> = Vec::new();
    let mut entity_ids: Vec<i64> = Vec::new();
    let mut unit_rows: Vec<UnitRow> = Vec::new();
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
        let sheet = Sheet::from_answers(
            m,
            answers
                .get(&u.submission_id)
                .into_iter()
                .flatten()
                .map(|(c, a)| (c.as_str(), *a)),
        )
        .unwrap_or_else(|_| Sheet::new(m));
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
    Ok((CycleInput { year, entities }, entity_ids, unit_rows))
}

/// Tallies the stored survey responses of `units`, per (unit, survey code), in the database:
/// for a yes/no (maladministration) survey, the respondents who reported none and those who
/// reported some; for a Likert survey, the answers at each level. Only counts leave the
/// database, not the ≈ 100,000 responses of a national cycle. Responses were checked against
/// the cycle's methodology when they were stored (`surveys::upload`), so counting is all that is
/// left; answers that are not a level of the scale are not counted.
async fn survey_tallies(
    tx: &mut Transaction<'_, Postgres>,
    m: &Methodology,
    cycle_id: i64,
    units: &[i64],
) -> AppResult<HashMap<(i64, String), SurveyTally>> {
    let (mut yes_no, mut likert) = (Vec::new(), Vec::new());
    for id in m.survey_ids() {
        let survey = m.survey(id);
        match survey.method {
            SurveyMethod::NoMaladministrationShare => yes_no.push(survey.code.clone()),
            SurveyMethod::Likert { .. } => likert.push(survey.code.clone()),
        }
    }
    let mut out = HashMap::new();
    if !yes_no.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT unit_id, survey_code,
                      count(*) FILTER (WHERE NOT answers @? '$.* ? (@ == true)') AS "clean!",
                      count(*) FILTER (WHERE answers @? '$.* ? (@ == true)') AS "reported!"
               FROM survey_responses
               WHERE cycle_id = $1 AND unit_id = ANY($2) AND survey_code = ANY($3)
               GROUP BY unit_id, survey_code"#,
            cycle_id,
            units,
            &yes_no
        )
        .fetch_all(&mut **tx)
        .await?;
        for r in rows {
            let Some(id) = m.survey_id(&r.survey_code) else {
                continue;
            };
            let counts = [r.clean, r.reported].map(|n| u64::try_from(n).unwrap_or(0));
            if let Ok(t) = SurveyTally::from_counts(m.survey(id), counts.to_vec()) {
                out.insert((r.unit_id, r.survey_code), t);
            }
        }
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
                out.insert((unit, code), t);
            }
        }
    }
    Ok(out)
}
