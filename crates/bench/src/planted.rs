//! Integrity anomalies planted into the national dataset (the specification is in
//! `docs/benchmarks.md`, "Planted anomalies"), the truth written beside the data as
//! `planted.json`, and the flags a run raised scored against that truth.
//!
//! Each planted unit carries one anomaly only, and planting one kind does not plant another:
//! where a sheet is changed, the unit's earlier scores are drawn around its new quality, so the
//! change is not also a year-on-year jump.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use kepatuhan_core::Methodology;
use kepatuhan_core::PublishedScore;
use kepatuhan_core::flags::{self, EntityFacts, FlagKind, FlagSettings, Subject, UnitFacts};
use kepatuhan_core::methodology::{IndicatorId, QuestionRef, SurveyMethod};
use kepatuhan_core::scoring::{
    AnswerInput, Sheet, SurveyResponse, SurveyTally, UnitInput, mean_published, score_unit,
};
use kepatuhan_core::synthetic::{Quality, Rng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::national::{Assessor, Dataset, Unit, office_code};

/// The kinds the generator plants. Review speed and offices that never return cannot be planted
/// through the API (it stamps times itself); tests cover them.
pub const PLANTED_KINDS: [FlagKind; 6] = [
    FlagKind::YearOnYearJump,
    FlagKind::IdenticalSheets,
    FlagKind::SurveyContradiction,
    FlagKind::TopMarksWithoutEvidence,
    FlagKind::AssessorOutlier,
    FlagKind::CutoffBunching,
];

/// One planted anomaly, named as the loader names things.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    /// The flag that should find it.
    pub kind: FlagKind,
    /// The entity's code (unit anomalies and pairs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The unit's name within the entity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The pair's other unit (identical sheets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    /// The assessor's name (assessor outliers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessor: Option<String>,
    /// The province's code (assessor outliers, bunching).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
}

impl Planted {
    fn unit(kind: FlagKind, entity: &str, unit: &str) -> Self {
        Self {
            kind,
            entity: Some(entity.to_owned()),
            unit: Some(unit.to_owned()),
            other: None,
            assessor: None,
            province: None,
        }
    }
}

/// The published score of `u` as the worker computes it (its sheet and survey responses).
pub fn unit_score(m: &Methodology, u: &Unit) -> Option<PublishedScore> {
    let mut sheet = Sheet::new(m);
    for (id, answer) in m.indicator_ids().zip(&u.answers) {
        sheet.set_by_id(m, id, *answer).ok()?;
    }
    let mut input = UnitInput::new(m, sheet);
    for id in m.survey_ids() {
        let survey = m.survey(id);
        let (_, raw) = u.surveys.iter().find(|(code, _)| *code == survey.code)?;
        let responses: Vec<SurveyResponse> = raw
            .iter()
            .map(|r| serde_json::from_value(r.clone()))
            .collect::<Result<_, _>>()
            .ok()?;
        input.set_survey(id, SurveyTally::from_responses(survey, &responses).ok()?);
    }
    Some(score_unit(m, &input).ok()?.published)
}

/// Where a unit is: (entity index, unit index).
type At = (usize, usize);

/// Random picks of units not yet carrying an anomaly.
struct Picker<'a> {
    data: &'a mut Dataset,
    rng: &'a mut Rng,
    used: HashSet<At>,
}

impl Picker<'_> {
    /// Up to `n` distinct unused units satisfying `keep`, at random; marked used.
    fn pick(&mut self, n: usize, keep: impl Fn(&Dataset, At) -> bool) -> Vec<At> {
        let mut candidates: Vec<At> = self
            .data
            .entities
            .iter()
            .enumerate()
            .flat_map(|(e, entity)| (0..entity.units.len()).map(move |u| (e, u)))
            .filter(|at| !self.used.contains(at) && keep(self.data, *at))
            .collect();
        let mut out = Vec::new();
        while out.len() < n && !candidates.is_empty() {
            let i = self.index(candidates.len());
            let at = candidates.swap_remove(i);
            self.used.insert(at);
            out.push(at);
        }
        out
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.rng.below(len as u64)).unwrap_or(0)
    }

    fn between(&mut self, low: u64, high: u64) -> usize {
        usize::try_from(self.rng.between(low, high)).unwrap_or(0)
    }

    fn unit(&mut self, at: At) -> &mut Unit {
        &mut self.data.entities[at.0].units[at.1]
    }

    /// Province codes with at least `assessors` assessors, shuffled.
    fn provinces(&mut self, assessors: usize, exclude: &[String]) -> Vec<String> {
        let mut codes: Vec<String> = self
            .data
            .provinces
            .iter()
            .map(|(c, _)| c.clone())
            .filter(|c| !exclude.contains(c))
            .filter(|c| {
                self.data
                    .assessors
                    .iter()
                    .filter(|a| a.province.as_deref() == Some(c))
                    .count()
                    >= assessors
            })
            .collect();
        for i in (1..codes.len()).rev() {
            let j = self.index(i + 1);
            codes.swap(i, j);
        }
        codes
    }
}

fn in_province(data: &Dataset, at: At, province: &str) -> bool {
    data.entities[at.0].province.as_deref() == Some(province)
}

/// Plants every kind into `data` (`scale`: the dataset's units per entity over the national
/// shape's) and returns the truth.
pub fn plant(m: &Methodology, data: &mut Dataset, rng: &mut Rng, scale: u64) -> Vec<Planted> {
    let mut p = Picker {
        data,
        rng,
        used: HashSet::new(),
    };
    let mut truth = Vec::new();
    let outlier_provinces = assessor_outliers(m, &mut p, &mut truth);
    bunching(m, &mut p, &mut truth, scale, &outlier_provinces);
    identical_sheets(m, &mut p, &mut truth);
    contradictions(m, &mut p, &mut truth);
    top_marks_without_evidence(m, &mut p, &mut truth);
    jumps(&mut p, &mut truth);
    truth
}

fn top_value(m: &Methodology, id: IndicatorId) -> u8 {
    m.indicator(id).scale.levels.last().map_or(0, |l| l.value)
}

/// 5 assessors, one per province with at least two others: 8–12 of the province's units each,
/// at the top level on about 88 % of the indicators (never fewer than 80 %), the rest a level
/// below.
fn assessor_outliers(m: &Methodology, p: &mut Picker<'_>, truth: &mut Vec<Planted>) -> Vec<String> {
    let provinces: Vec<String> = p.provinces(2, &[]).into_iter().take(5).collect();
    for province in &provinces {
        let count = p.between(8, 12);
        let units = p.pick(count, |d, at| in_province(d, at, province));
        let taken = p
            .data
            .assessors
            .iter()
            .filter(|a| a.province.as_deref() == Some(province))
            .count();
        let name = format!("Asesor {province} {}", taken + 1);
        p.data.assessors.push(Assessor {
            name: name.clone(),
            province: Some(province.clone()),
        });
        let assessor = p.data.assessors.len() - 1;
        for at in units {
            let below: Vec<bool> = m.indicator_ids().map(|_| p.rng.below(100) < 12).collect();
            let quality = Quality(p.rng.between(930, 980));
            let unit = p.unit(at);
            unit.assessor = assessor;
            let answered = unit
                .answers
                .iter()
                .filter(|a| matches!(a, AnswerInput::Value(_)))
                .count();
            let mut kept = 0;
            for (id, below) in m.indicator_ids().zip(below) {
                let levels = &m.indicator(id).scale.levels;
                if let AnswerInput::Value(v) = &mut unit.answers[id.index()] {
                    // About one in eight a level below the top (never more than a fifth), each
                    // unit its own: the assessor is generous, not copying.
                    *v = if below && (kept + 1) * 5 <= answered && levels.len() > 1 {
                        kept += 1;
                        levels[levels.len() - 2].value
                    } else {
                        top_value(m, id)
                    };
                }
            }
            unit.quality = quality;
            redraw(m, p, at);
        }
        truth.push(Planted {
            kind: FlagKind::AssessorOutlier,
            entity: None,
            unit: None,
            other: None,
            assessor: Some(name),
            province: Some(province.clone()),
        });
    }
    provinces
}

fn redraw(m: &Methodology, p: &mut Picker<'_>, at: At) {
    let range = p.data.respondents;
    let u = &mut p.data.entities[at.0].units[at.1];
    u.redraw_surveys(m, p.rng, range);
}

/// The window a bunched score is moved into.
const BUNCH: (Decimal, Decimal) = (
    Decimal::from_parts(8800, 0, 0, false, 2),
    Decimal::from_parts(8850, 0, 0, false, 2),
);

/// 3 provinces (not those of an outlier): 6–8 units each (times `scale`) scoring just below the
/// boundary (84.00–87.99) whose values are raised a level at a time until their score lands in
/// 88.00–88.50, as a unit is nudged over a cut-off.
fn bunching(
    m: &Methodology,
    p: &mut Picker<'_>,
    truth: &mut Vec<Planted>,
    scale: u64,
    exclude: &[String],
) {
    let provinces: Vec<String> = p.provinces(1, exclude).into_iter().take(3).collect();
    for province in provinces {
        let wanted = p.between(6, 8) * usize::try_from(scale).unwrap_or(1);
        let mut done = 0;
        while done < wanted {
            let Some(at) = p
                .pick(1, |d, at| {
                    in_province(d, at, &province)
                        && unit_score(m, &d.entities[at.0].units[at.1]).is_some_and(|s| {
                            s.value() >= Decimal::new(84, 0) && s.value() < BUNCH.0
                        })
                })
                .pop()
            else {
                break;
            };
            if let Some(score) = move_into_window(m, p.unit(at)) {
                // Its earlier scores follow its new score, so the move is not also a jump.
                let hundredths = (score.value() * Decimal::ONE_HUNDRED)
                    .trunc()
                    .try_into()
                    .unwrap_or(8800u64);
                p.unit(at).quality = Quality(hundredths / 10);
                done += 1;
            }
        }
        truth.push(Planted {
            kind: FlagKind::CutoffBunching,
            entity: None,
            unit: None,
            other: None,
            assessor: None,
            province: Some(province),
        });
    }
}

/// Moves one value of `u` a level at a time toward the bunching window (the move that lands in
/// it, or else the one that comes closest to its middle); the score reached, or `None` when no
/// move gets closer.
fn move_into_window(m: &Methodology, u: &mut Unit) -> Option<PublishedScore> {
    let middle = (BUNCH.0 + BUNCH.1) / Decimal::TWO;
    let inside = |s: Decimal| s >= BUNCH.0 && s < BUNCH.1;
    let mut score = unit_score(m, u)?;
    for _ in 0..80 {
        if inside(score.value()) {
            return Some(score);
        }
        let up = score.value() < BUNCH.0;
        let mut best: Option<(Decimal, usize, u8, PublishedScore)> = None;
        for id in m.indicator_ids() {
            let AnswerInput::Value(v) = u.answers[id.index()] else {
                continue;
            };
            let levels = &m.indicator(id).scale.levels;
            let pos = levels.iter().position(|l| l.value == v)?;
            let next = if up {
                levels.get(pos + 1)
            } else {
                pos.checked_sub(1).and_then(|q| levels.get(q))
            };
            let Some(next) = next else { continue };
            u.answers[id.index()] = AnswerInput::Value(next.value);
            let moved = unit_score(m, u);
            u.answers[id.index()] = AnswerInput::Value(v);
            let Some(moved) = moved else { continue };
            let distance = if inside(moved.value()) {
                Decimal::ZERO
            } else {
                (moved.value() - middle).abs()
            };
            if best.as_ref().is_none_or(|b| distance < b.0) {
                best = Some((distance, id.index(), next.value, moved));
            }
        }
        let (distance, index, value, moved) = best?;
        if distance >= (score.value() - middle).abs() {
            return None;
        }
        u.answers[index] = AnswerInput::Value(value);
        score = moved;
    }
    None
}

/// 20 pairs, each in one entity: the second unit's sheet copied from the first, with 0 or 1 of
/// its values moved a level.
fn identical_sheets(m: &Methodology, p: &mut Picker<'_>, truth: &mut Vec<Planted>) {
    let mut entities: Vec<usize> = (0..p.data.entities.len()).collect();
    let mut pairs = 0;
    while pairs < 20 && !entities.is_empty() {
        let drawn = p.index(entities.len());
        let entity_index = entities.swap_remove(drawn);
        let two = p.pick(2, |_, at| at.0 == entity_index);
        let [a, b] = two[..] else {
            for at in two {
                p.used.remove(&at);
            }
            continue;
        };
        let source = &p.data.entities[entity_index].units[a.1];
        let (answers, evidence, quality) = (
            source.answers.clone(),
            source.evidence.clone(),
            source.quality,
        );
        let change = p.rng.below(2) == 1;
        let which = p.index(answers.len());
        let up = p.rng.below(2) == 1;
        let target = p.unit(b);
        target.answers = answers;
        target.evidence = evidence;
        target.quality = quality;
        if change && let Some(id) = m.indicator_ids().nth(which) {
            let levels = &m.indicator(id).scale.levels;
            if let AnswerInput::Value(v) = target.answers[which]
                && let Some(pos) = levels.iter().position(|l| l.value == v)
            {
                let pos = if (up && pos + 1 < levels.len()) || pos == 0 {
                    pos + 1
                } else {
                    pos - 1
                };
                if let Some(l) = levels.get(pos) {
                    target.answers[which] = AnswerInput::Value(l.value);
                }
            }
        }
        redraw(m, p, b);
        let entity = &p.data.entities[entity_index];
        truth.push(Planted {
            kind: FlagKind::IdenticalSheets,
            entity: Some(entity.code.clone()),
            unit: Some(entity.units[a.1].name.clone()),
            other: Some(entity.units[b.1].name.clone()),
            assessor: None,
            province: None,
        });
        pairs += 1;
    }
}

/// The yes/no questions linked to an indicator `u` has at the top level.
fn contradictable(m: &Methodology, u: &Unit) -> Vec<QuestionRef> {
    m.indicator_ids()
        .filter(|id| u.at_top(m, *id))
        .flat_map(|id| m.indicator(id).survey_questions.iter().cloned())
        .filter(|q| {
            m.survey_ids().any(|s| {
                m.survey(s).code == q.survey
                    && matches!(m.survey(s).method, SurveyMethod::NoMaladministrationShare)
            })
        })
        .collect()
}

/// Whether respondent `r` (a response object) reported some maladministration.
fn reported(r: &Value) -> bool {
    r["answers"]
        .as_object()
        .is_some_and(|a| a.values().any(|v| v.as_bool() == Some(true)))
}

/// 30 units at the top level on an indicator linked to a yes/no question, whose respondents
/// report that question 25–40 % of the time. Only respondents who already reported something
/// are changed, so the unit's score stays as it was.
fn contradictions(m: &Methodology, p: &mut Picker<'_>, truth: &mut Vec<Planted>) {
    let mut planted = 0;
    let mut tried = HashSet::new();
    while planted < 30 {
        let Some(at) = p
            .pick(1, |d, at| {
                !tried.contains(&at) && !contradictable(m, &d.entities[at.0].units[at.1]).is_empty()
            })
            .pop()
        else {
            break;
        };
        tried.insert(at);
        let questions = contradictable(m, p.unit(at));
        let question = questions[p.index(questions.len())].clone();
        let share = p.rng.between(25, 40);
        let mut order: Vec<u64> = (0..1000).map(|_| p.rng.next_u64()).collect();
        let unit = p.unit(at);
        let Some((_, responses)) = unit
            .surveys
            .iter_mut()
            .find(|(code, _)| *code == question.survey)
        else {
            p.used.remove(&at);
            continue;
        };
        let asked = responses.len();
        let wanted = (asked * usize::try_from(share).unwrap_or(25)).div_ceil(100);
        let mut unclean: Vec<usize> = (0..asked).filter(|i| reported(&responses[*i])).collect();
        if unclean.len() < wanted || asked < 10 {
            p.used.remove(&at);
            continue;
        }
        unclean.sort_by_key(|i| order.get(*i).copied().unwrap_or(0));
        order.clear();
        for (k, i) in unclean.iter().enumerate() {
            responses[*i]["answers"][&question.question] = Value::Bool(k < wanted);
        }
        // Whoever reported only this question still reports something: their first answer.
        for i in unclean.iter().skip(wanted) {
            if !reported(&responses[*i])
                && let Some(first) = responses[*i]["answers"]
                    .as_object_mut()
                    .and_then(|a| a.values_mut().next())
            {
                *first = Value::Bool(true);
            }
        }
        let entity = &p.data.entities[at.0];
        truth.push(Planted::unit(
            FlagKind::SurveyContradiction,
            &entity.code,
            &entity.units[at.1].name,
        ));
        planted += 1;
    }
}

/// 30 units with 2–6 top-level values on evidence-expected indicators left without an
/// evidence note.
fn top_marks_without_evidence(m: &Methodology, p: &mut Picker<'_>, truth: &mut Vec<Planted>) {
    let expected_tops = |u: &Unit| -> Vec<usize> {
        m.indicator_ids()
            .filter(|id| m.indicator(*id).evidence_expected && u.at_top(m, *id))
            .map(IndicatorId::index)
            .collect()
    };
    for at in p.pick(30, |d, at| {
        expected_tops(&d.entities[at.0].units[at.1]).len() >= 2
    }) {
        let mut tops = expected_tops(p.unit(at));
        let n = p.between(2, 6).min(tops.len());
        for _ in 0..n {
            let i = p.index(tops.len());
            let index = tops.swap_remove(i);
            p.unit(at).evidence[index] = false;
        }
        let entity = &p.data.entities[at.0];
        truth.push(Planted::unit(
            FlagKind::TopMarksWithoutEvidence,
            &entity.code,
            &entity.units[at.1].name,
        ));
    }
}

/// 30 units whose score of the previous cycle is 25–45 points lower than it would be.
fn jumps(p: &mut Picker<'_>, truth: &mut Vec<Planted>) {
    for at in p.pick(30, |d, at| d.entities[at.0].units[at.1].quality.0 >= 600) {
        let drop = p.rng.between(2500, 4500);
        p.unit(at).previous_drop = drop;
        let entity = &p.data.entities[at.0];
        truth.push(Planted::unit(
            FlagKind::YearOnYearJump,
            &entity.code,
            &entity.units[at.1].name,
        ));
    }
}

/// A flag a run raised, named as the dataset names things.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its kind.
    pub kind: FlagKind,
    /// The units it names, as (entity code, unit name): one, two (a pair) or none.
    pub units: Vec<(String, String)>,
    /// The entity it names (an entity's jump).
    pub entity: Option<String>,
    /// The assessor's name (outliers).
    pub assessor: Option<String>,
    /// The province (outliers; bunching, an office's given as its province).
    pub province: Option<String>,
    /// The flag's evidence and context, for a look.
    pub detail: Value,
}

fn matches(p: &Planted, f: &Found) -> bool {
    if p.kind != f.kind {
        return false;
    }
    let named = |unit: &Option<String>| p.entity.clone().zip(unit.clone());
    match p.kind {
        FlagKind::IdenticalSheets => {
            let (Some(a), Some(b)) = (named(&p.unit), named(&p.other)) else {
                return false;
            };
            f.units.len() == 2 && f.units.contains(&a) && f.units.contains(&b)
        }
        FlagKind::AssessorOutlier => f.assessor == p.assessor && f.province == p.province,
        FlagKind::CutoffBunching => f.province == p.province,
        // An entity's jump is the planted unit's, seen in its entity's mean.
        FlagKind::YearOnYearJump if f.units.is_empty() => {
            f.entity.is_some() && f.entity == p.entity
        }
        _ => named(&p.unit).is_some_and(|u| f.units == [u]),
    }
}

/// How the flags of one kind fared against the planted truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindFigures {
    /// The kind.
    pub kind: FlagKind,
    /// Anomalies planted.
    pub planted: usize,
    /// Flags raised.
    pub flags: usize,
    /// Flags that match a planted anomaly.
    pub true_flags: usize,
    /// Planted anomalies some flag matches.
    pub found: usize,
}

impl KindFigures {
    /// Matched flags ÷ flags (`None` without flags).
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_flags, self.flags)
    }

    /// Matched anomalies ÷ planted ones (`None` when none was planted).
    pub fn recall(&self) -> Option<f64> {
        ratio(self.found, self.planted)
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The flags matching no planted anomaly, and the anomalies no flag matches.
pub fn misses<'a>(
    planted: &'a [Planted],
    found: &'a [Found],
) -> (Vec<&'a Found>, Vec<&'a Planted>) {
    let planted_kind = |k: FlagKind| PLANTED_KINDS.contains(&k);
    (
        found
            .iter()
            .filter(|f| planted_kind(f.kind) && !planted.iter().any(|p| matches(p, f)))
            .collect(),
        planted
            .iter()
            .filter(|p| !found.iter().any(|f| matches(p, f)))
            .collect(),
    )
}

/// Each planted kind's figures.
pub fn evaluate(planted: &[Planted], found: &[Found]) -> Vec<KindFigures> {
    PLANTED_KINDS
        .iter()
        .map(|kind| {
            let rows: Vec<&Planted> = planted.iter().filter(|p| p.kind == *kind).collect();
            let flags: Vec<&Found> = found.iter().filter(|f| f.kind == *kind).collect();
            KindFigures {
                kind: *kind,
                planted: rows.len(),
                flags: flags.len(),
                true_flags: flags
                    .iter()
                    .filter(|f| rows.iter().any(|p| matches(p, f)))
                    .count(),
                found: rows
                    .iter()
                    .filter(|p| flags.iter().any(|f| matches(p, f)))
                    .count(),
            }
        })
        .collect()
}

/// The flag rules run in memory on the dataset, as the worker would run them (each unit's
/// previous score from the import of the year before), for tuning: the flags found, and the
/// time each rule took.
pub fn in_memory(
    m: &Methodology,
    data: &Dataset,
    seed: u64,
    settings: &FlagSettings,
) -> (Vec<Found>, BTreeMap<&'static str, f64>) {
    let previous = data.earlier_scores(1, seed);
    let mut units = Vec::new();
    let mut names = Vec::new();
    let mut entities = Vec::new();
    for (e, entity) in data.entities.iter().enumerate() {
        let mut now = Vec::new();
        let mut before = Vec::new();
        for (k, u) in entity.units.iter().enumerate() {
            let id = i64::try_from(names.len()).unwrap_or(i64::MAX);
            names.push((entity.code.clone(), u.name.clone()));
            let score = unit_score(m, u);
            let earlier =
                PublishedScore::new(Decimal::new(i64::try_from(previous[e][k]).unwrap_or(0), 2))
                    .ok();
            now.extend(score);
            before.extend(earlier);
            units.push(unit_facts(m, data, u, id, e, score, earlier));
        }
        let e = i64::try_from(e).unwrap_or(i64::MAX);
        entities.push(EntityFacts {
            entity: e,
            score: mean_published(&now).ok().map(PublishedScore::value),
            previous: mean_published(&before).ok().map(PublishedScore::value),
        });
    }
    // Each cycle-wide rule timed on its own (for the profile; its flags are those of
    // `cycle_flags` below), then the whole as the worker runs it, and the unit rules.
    let mut timings = BTreeMap::new();
    let mut timed = |name: &'static str, started: Instant| {
        timings.insert(name, started.elapsed().as_secs_f64() * 1000.0);
    };
    let started = Instant::now();
    flags::jumps(settings, &units, &entities);
    timed("jumps_ms", started);
    let started = Instant::now();
    flags::cycle_identical_sheets(settings, &units);
    timed("identical_sheets_ms", started);
    let started = Instant::now();
    flags::assessor_outliers(m, settings, &units);
    timed("assessor_outliers_ms", started);
    let started = Instant::now();
    flags::bunching(m, settings, &units);
    timed("bunching_ms", started);
    let started = Instant::now();
    let mut found = flags::cycle_flags(m, settings, &units, &entities, &[]);
    timed("cycle_flags_ms", started);
    let started = Instant::now();
    for u in &units {
        found.extend(flags::contradictions(m, settings, u));
        found.extend(flags::top_marks_without_evidence(m, u));
    }
    timed("unit_rules_ms", started);
    (named(data, &names, found), timings)
}

/// The flags of [`in_memory`] named as the dataset names things (`names`: each unit id's
/// entity code and unit name).
fn named(data: &Dataset, names: &[(String, String)], flags: Vec<flags::Flag>) -> Vec<Found> {
    let entity_code = |e: i64| {
        usize::try_from(e)
            .ok()
            .and_then(|e| data.entities.get(e))
            .map(|e| e.code.clone())
    };
    let unit_name = |u: i64| usize::try_from(u).ok().and_then(|u| names.get(u).cloned());
    flags
        .into_iter()
        .map(|f| {
            let (units, assessor, province) = match &f.subject {
                Subject::Unit { unit } => (unit_name(*unit).into_iter().collect(), None, None),
                Subject::UnitPair { unit, other } => (
                    [unit_name(*unit), unit_name(*other)]
                        .into_iter()
                        .flatten()
                        .collect(),
                    None,
                    None,
                ),
                Subject::Assessor { assessor, province } => (
                    Vec::new(),
                    usize::try_from(*assessor)
                        .ok()
                        .and_then(|a| data.assessors.get(a))
                        .map(|a| a.name.clone()),
                    Some(province.clone()),
                ),
                Subject::Office { office } => (
                    Vec::new(),
                    None,
                    data.provinces
                        .iter()
                        .find(|(c, _)| office_code(c) == *office)
                        .map(|(c, _)| c.clone()),
                ),
                Subject::Province { province } => (Vec::new(), None, Some(province.clone())),
                Subject::Entity { .. } => (Vec::new(), None, None),
            };
            Found {
                kind: f.kind,
                detail: serde_json::json!({ "evidence": f.evidence, "context": f.context }),
                units,
                entity: match f.subject {
                    Subject::Entity { entity } => entity_code(entity),
                    _ => None,
                },
                assessor,
                province,
            }
        })
        .collect()
}

fn unit_facts(
    m: &Methodology,
    data: &Dataset,
    u: &Unit,
    id: i64,
    entity: usize,
    score: Option<PublishedScore>,
    previous: Option<PublishedScore>,
) -> UnitFacts {
    let mut sheet = Sheet::new(m);
    for (i, answer) in m.indicator_ids().zip(&u.answers) {
        let _ = sheet.set_by_id(m, i, *answer);
    }
    let province = data.entities[entity].province.clone();
    let mut reports = std::collections::HashMap::new();
    let mut respondents = std::collections::HashMap::new();
    for (survey, responses) in &u.surveys {
        respondents.insert(survey.clone(), responses.len() as u64);
        for i in m.indicator_ids() {
            for q in &m.indicator(i).survey_questions {
                if q.survey == *survey {
                    let n = responses
                        .iter()
                        .filter(|r| r["answers"][&q.question].as_bool() == Some(true))
                        .count() as u64;
                    reports.insert(q.clone(), n);
                }
            }
        }
    }
    UnitFacts {
        unit: id,
        entity: i64::try_from(entity).unwrap_or(i64::MAX),
        office: province.as_deref().map(office_code),
        province,
        assessor: i64::try_from(u.assessor).ok(),
        sheet,
        evidence: u.evidence.clone(),
        reports,
        respondents,
        score: score.map(PublishedScore::value),
        previous: previous.map(PublishedScore::value),
    }
}
