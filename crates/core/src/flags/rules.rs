//! The flag rules, one function each. Every rule is pure and reads only what it is given.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;

use super::stats::{median, robust_spread, text};
use super::{
    EntityFacts, Flag, FlagKind, FlagSettings, OfficeReviews, ReviewFacts, Severity, Subject,
    UnitFacts,
};
use crate::methodology::Methodology;
use crate::scoring::input::Answer;

/// The position of each answered indicator of a sheet (`None`: unanswered or not applicable).
fn levels(u: &UnitFacts) -> impl Iterator<Item = Option<u8>> + '_ {
    u.sheet.answers.iter().map(|a| match a {
        Some(Answer::Level(p)) => Some(*p),
        _ => None,
    })
}

/// Whether the indicator at `index` is at the top of its scale in `u`'s sheet.
fn at_top(m: &Methodology, u: &UnitFacts, index: usize) -> bool {
    let id = crate::methodology::IndicatorId(u32::try_from(index).unwrap_or(u32::MAX));
    let top = m.indicator(id).scale.levels.len().saturating_sub(1);
    matches!(u.sheet.answers.get(index), Some(Some(Answer::Level(p))) if usize::from(*p) == top)
}

/// Year-on-year jumps of units and of entities: a change is a jump when it lies more than
/// `jump_spread_factor` robust standard deviations from the cycle's median change (of units, or
/// of entities) and is at least `jump_min_points`. Twice that distance is high severity.
pub fn jumps(settings: &FlagSettings, units: &[UnitFacts], entities: &[EntityFacts]) -> Vec<Flag> {
    let unit_changes = units.iter().filter_map(|u| {
        Some((
            Subject::Unit { unit: u.unit },
            Some(u.unit),
            Some(u.entity),
            u.previous?,
            u.score?,
        ))
    });
    let entity_changes = entities.iter().filter_map(|e| {
        Some((
            Subject::Entity { entity: e.entity },
            None,
            Some(e.entity),
            e.previous?,
            e.score?,
        ))
    });
    let mut out = jump_rule(settings, unit_changes.collect());
    out.extend(jump_rule(settings, entity_changes.collect()));
    out
}

type Change = (Subject, Option<i64>, Option<i64>, Decimal, Decimal);

fn jump_rule(settings: &FlagSettings, items: Vec<Change>) -> Vec<Flag> {
    let changes: Vec<Decimal> = items.iter().map(|(.., prev, now)| *now - *prev).collect();
    let Some(centre) = median(&changes) else {
        return Vec::new();
    };
    let spread = robust_spread(&changes, centre);
    let threshold = settings.jump_spread_factor * spread;
    let compared = changes.len();
    let mut out = Vec::new();
    for ((subject, unit, entity, previous, score), change) in items.into_iter().zip(changes) {
        let distance = (change - centre).abs();
        if distance <= threshold || change.abs() < settings.jump_min_points {
            continue;
        }
        out.push(Flag {
            kind: FlagKind::YearOnYearJump,
            subject,
            severity: if distance > threshold * Decimal::TWO {
                Severity::High
            } else {
                Severity::Medium
            },
            unit,
            entity,
            evidence: json!({
                "previous": text(previous, 2),
                "score": text(score, 2),
                "change": text(change, 2),
            }),
            context: json!({
                "median_change": text(centre, 2),
                "spread": text(spread, 2),
                "threshold": text(threshold, 2),
                "compared": compared,
            }),
        });
    }
    out
}

/// Unanswered (or not applicable) indicators a sheet may have and still be found through the
/// band index of [`candidate_pairs`]; a sheet with more is compared with every other one.
const INDEXED_GAPS: usize = 2;

/// Pairs of units in `group` (one entity's, or one assessor's in one province) that give the
/// same value on at least `identical_share` of the indicators answered in both (and at least
/// `identical_min_indicators` of them). Exactly the same sheet is high severity.
pub fn identical_sheets(settings: &FlagSettings, group: &[&UnitFacts]) -> Vec<Flag> {
    let mut out = Vec::new();
    let sheets: Vec<Vec<Option<u8>>> = group.iter().map(|u| levels(u).collect()).collect();
    for (i, j) in candidate_pairs(settings, &sheets) {
        let (mut compared, mut agreeing) = (0usize, 0usize);
        for (a, b) in sheets[i].iter().zip(&sheets[j]) {
            if let (Some(a), Some(b)) = (a, b) {
                compared += 1;
                agreeing += usize::from(a == b);
            }
        }
        if compared < settings.identical_min_indicators
            || Decimal::from(agreeing) < settings.identical_share * Decimal::from(compared)
        {
            continue;
        }
        let (a, b) = if group[i].unit <= group[j].unit {
            (group[i], group[j])
        } else {
            (group[j], group[i])
        };
        out.push(Flag {
            kind: FlagKind::IdenticalSheets,
            subject: Subject::UnitPair {
                unit: a.unit,
                other: b.unit,
            },
            severity: if agreeing == compared {
                Severity::High
            } else {
                Severity::Medium
            },
            unit: Some(a.unit),
            entity: (a.entity == b.entity).then_some(a.entity),
            evidence: json!({
                "agreeing": agreeing,
                "compared": compared,
                "same_entity": a.entity == b.entity,
                "same_assessor": a.assessor.is_some() && a.assessor == b.assessor,
            }),
            context: json!({ "share": text(Decimal::from(agreeing) / Decimal::from(compared), 4) }),
        });
    }
    out
}

/// A band index: (band, the band's values) → the sheets with the fewer gaps, and those with the
/// more (empty when both sides have the same count).
type Buckets = HashMap<(usize, Vec<u8>), (Vec<usize>, Vec<usize>)>;

/// Every pair of sheets that may satisfy the identical-sheets rule, without comparing every pair.
///
/// Two sheets satisfying the rule disagree on at most `d` = ⌊(1 − share) × indicators⌋
/// positions. For sheets with `ga` and `gb` unanswered indicators (at most [`INDEXED_GAPS`]
/// each), at most `d + ga + gb` positions spoil a band (the indicators dealt into bands by
/// position modulo the band count), so with one band more than that the two share at least one
/// band answered in full and equal, and meet in its bucket. Each pair of gap counts gets its own
/// index with just that many bands: two sheets without gaps need only `d + 1` wide bands, which
/// similar sheets rarely share by chance. Sheets with more gaps, or too few indicators for the
/// bands, are paired with every candidate. No qualifying pair is missed, and the cost grows with
/// the buckets' sizes rather than the square of the group.
fn candidate_pairs(settings: &FlagSettings, sheets: &[Vec<Option<u8>>]) -> Vec<(usize, usize)> {
    let n = sheets.first().map_or(0, Vec::len);
    let disagreements = ((Decimal::ONE - settings.identical_share).max(Decimal::ZERO)
        * Decimal::from(n))
    .floor()
    .to_usize()
    .unwrap_or(n);
    let gaps: Vec<usize> = sheets
        .iter()
        .map(|s| s.iter().filter(|v| v.is_none()).count())
        .collect();
    // Collected, then sorted and deduplicated once (a pair meets in every band it shares).
    let mut pairs = Vec::new();
    for (s, g) in gaps.iter().enumerate() {
        if *g > INDEXED_GAPS {
            pairs.extend(
                (0..sheets.len())
                    .filter(|t| *t != s)
                    .map(|t| (s.min(t), s.max(t))),
            );
        }
    }
    for ga in 0..=INDEXED_GAPS {
        for gb in ga..=INDEXED_GAPS {
            let class = |s: &usize| gaps[*s] == ga || gaps[*s] == gb;
            let members: Vec<usize> = (0..sheets.len()).filter(class).collect();
            let bands = disagreements + ga + gb + 1;
            let mut buckets: Buckets = HashMap::new();
            for s in &members {
                // Too few indicators for the bands: every pair of the class is a candidate.
                let band_count = if bands > n { 1 } else { bands };
                for band in 0..band_count {
                    let key: Option<Vec<u8>> = if bands > n {
                        Some(Vec::new())
                    } else {
                        sheets[*s]
                            .iter()
                            .skip(band)
                            .step_by(bands)
                            .copied()
                            .collect()
                    };
                    if let Some(key) = key {
                        let (fewer_gaps, more_gaps) = buckets.entry((band, key)).or_default();
                        if gaps[*s] == ga {
                            fewer_gaps.push(*s);
                        }
                        if gaps[*s] == gb && ga != gb {
                            more_gaps.push(*s);
                        }
                    }
                }
            }
            for (fewer_gaps, more_gaps) in buckets.values() {
                if ga == gb {
                    for (k, a) in fewer_gaps.iter().enumerate() {
                        pairs.extend(fewer_gaps[k + 1..].iter().map(|b| (*a, *b)));
                    }
                } else {
                    for a in fewer_gaps {
                        pairs.extend(more_gaps.iter().map(|b| (*a.min(b), *a.max(b))));
                    }
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Top marks on an indicator linked to yes/no survey questions while at least
/// `contradiction_share` of the unit's respondents (and at least
/// `contradiction_min_respondents` of them) report that maladministration. One flag per unit,
/// listing every contradiction; high severity for two or more, or twice the share.
pub fn contradictions(m: &Methodology, settings: &FlagSettings, u: &UnitFacts) -> Option<Flag> {
    let mut found = Vec::new();
    let mut strong = false;
    for id in m.indicator_ids() {
        let indicator = m.indicator(id);
        if indicator.survey_questions.is_empty() || !at_top(m, u, id.index()) {
            continue;
        }
        for q in &indicator.survey_questions {
            let respondents = u.respondents.get(&q.survey).copied().unwrap_or(0);
            let reported = u.reports.get(q).copied().unwrap_or(0);
            if respondents < settings.contradiction_min_respondents || respondents == 0 {
                continue;
            }
            let share = Decimal::from(reported) / Decimal::from(respondents);
            if share < settings.contradiction_share {
                continue;
            }
            strong |= share >= settings.contradiction_share * Decimal::TWO;
            found.push(json!({
                "indicator": indicator.code,
                "question": q.to_string(),
                "reported": reported,
                "respondents": respondents,
            }));
        }
    }
    if found.is_empty() {
        return None;
    }
    Some(Flag {
        kind: FlagKind::SurveyContradiction,
        subject: Subject::Unit { unit: u.unit },
        severity: if strong || found.len() > 1 {
            Severity::High
        } else {
            Severity::Medium
        },
        unit: Some(u.unit),
        entity: Some(u.entity),
        evidence: json!({ "contradictions": found }),
        context: json!({ "share_threshold": text(settings.contradiction_share, 2) }),
    })
}

/// The highest level on indicators whose evidence the methodology expects, with no evidence
/// note or attachment. One flag per unit listing the indicators: low for one, medium for two to
/// four, high for five or more.
pub fn top_marks_without_evidence(m: &Methodology, u: &UnitFacts) -> Option<Flag> {
    let missing: Vec<&str> = m
        .indicator_ids()
        .filter(|id| {
            m.indicator(*id).evidence_expected
                && at_top(m, u, id.index())
                && !u.evidence.get(id.index()).copied().unwrap_or(false)
        })
        .map(|id| m.indicator(id).code.as_str())
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(Flag {
        kind: FlagKind::TopMarksWithoutEvidence,
        subject: Subject::Unit { unit: u.unit },
        severity: match missing.len() {
            1 => Severity::Low,
            2..=4 => Severity::Medium,
            _ => Severity::High,
        },
        unit: Some(u.unit),
        entity: Some(u.entity),
        evidence: json!({ "indicators": missing }),
        context: json!({}),
    })
}

/// Submissions verified less than `fast_review_minutes` after they were submitted; under a
/// minute is high severity.
pub fn fast_reviews(settings: &FlagSettings, reviews: &[ReviewFacts]) -> Vec<Flag> {
    reviews
        .iter()
        .filter(|r| r.seconds_to_verify < settings.fast_review_minutes * 60)
        .map(|r| Flag {
            kind: FlagKind::FastReview,
            subject: Subject::Unit { unit: r.unit },
            severity: if r.seconds_to_verify < 60 {
                Severity::High
            } else {
                Severity::Medium
            },
            unit: Some(r.unit),
            entity: Some(r.entity),
            evidence: json!({ "seconds_to_verify": r.seconds_to_verify.max(0) }),
            context: json!({ "minimum_minutes": settings.fast_review_minutes }),
        })
        .collect()
}

/// Offices that verified at least `never_returned_min_verified` submissions and returned none,
/// while the other offices together returned at least `never_returned_others_share` of the
/// submissions they reviewed.
pub fn never_returned(settings: &FlagSettings, offices: &[OfficeReviews]) -> Vec<Flag> {
    let (verified, returned) = offices
        .iter()
        .fold((0u64, 0u64), |(v, r), o| (v + o.verified, r + o.returned));
    offices
        .iter()
        .filter(|o| o.returned == 0 && o.verified >= settings.never_returned_min_verified)
        .filter_map(|o| {
            let others_reviews = verified - o.verified + returned;
            if others_reviews == 0 {
                return None;
            }
            let share = Decimal::from(returned) / Decimal::from(others_reviews);
            (share >= settings.never_returned_others_share).then(|| Flag {
                kind: FlagKind::NeverReturned,
                subject: Subject::Office {
                    office: o.office.clone(),
                },
                severity: Severity::Medium,
                unit: None,
                entity: None,
                evidence: json!({ "verified": o.verified, "returned": 0 }),
                context: json!({ "others_returned_share": text(share, 4) }),
            })
        })
        .collect()
}

/// The mean position of a unit's answered indicators on their scales, from 0 (all lowest) to 1
/// (all highest), and its share of top marks; `None` when nothing is answered.
fn unit_level(m: &Methodology, u: &UnitFacts) -> Option<(Decimal, Decimal)> {
    let (mut sum, mut top, mut n) = (Decimal::ZERO, 0u32, 0u32);
    for id in m.indicator_ids() {
        let Some(Some(Answer::Level(p))) = u.sheet.answers.get(id.index()) else {
            continue;
        };
        let max = m.indicator(id).scale.levels.len().saturating_sub(1).max(1);
        sum += Decimal::from(*p) / Decimal::from(max);
        top += u32::from(usize::from(*p) == max);
        n += 1;
    }
    (n > 0).then(|| {
        (
            sum / Decimal::from(n),
            Decimal::from(top) / Decimal::from(n),
        )
    })
}

/// One unit of an assessor: its entity, mean level, share of top marks, and 1 when that share
/// reaches `outlier_top_share` (0 otherwise).
type AssessedUnit = (i64, Decimal, Decimal, Decimal);

/// Per entity: (how many of its units are at the top almost everywhere, units).
type EntityTotals = BTreeMap<i64, (Decimal, usize)>;

fn entity_totals<'a>(units: impl IntoIterator<Item = &'a AssessedUnit>) -> EntityTotals {
    let mut totals = EntityTotals::new();
    for (entity, _, _, near_top) in units {
        let t = totals.entry(*entity).or_default();
        t.0 += *near_top;
        t.1 += 1;
    }
    totals
}

/// Assessors who give the top level almost everywhere when the other assessors of the province
/// do not: the share of their units at the top on at least `outlier_top_share` of the
/// indicators is at least `outlier_min_gap` above the others', and `outlier_spread_factor`
/// standard errors above it.
///
/// Units of one government share its quality, so the comparison is between governments, not
/// units: the others' units are averaged per entity (the median of those entity shares is the
/// yardstick), and the standard error is the entity shares' robust spread over the square root
/// of the number of entities the assessor's units belong to. Only the generous side is
/// flagged: a harsh assessor inflates no score, and a round of weak governments explains one as
/// a rule (on the national bench, comparing mean levels both ways flagged 15–20 natural
/// assessors per cycle). At least `outlier_min_units` units on each side. Twice the gap is high
/// severity.
pub fn assessor_outliers(
    m: &Methodology,
    settings: &FlagSettings,
    units: &[UnitFacts],
) -> Vec<Flag> {
    // province → assessor → their units
    let mut provinces: BTreeMap<&str, BTreeMap<i64, Vec<AssessedUnit>>> = BTreeMap::new();
    for u in units {
        let (Some(province), Some(assessor)) = (u.province.as_deref(), u.assessor) else {
            continue;
        };
        if let Some((level, top)) = unit_level(m, u) {
            let near_top = if top >= settings.outlier_top_share {
                Decimal::ONE
            } else {
                Decimal::ZERO
            };
            provinces
                .entry(province)
                .or_default()
                .entry(assessor)
                .or_default()
                .push((u.entity, level, top, near_top));
        }
    }
    let mut out = Vec::new();
    for (province, assessors) in &provinces {
        let totals = entity_totals(assessors.values().flatten());
        let all_units: usize = totals.values().map(|t| t.1).sum();
        for (assessor, own) in assessors {
            if own.len() < settings.outlier_min_units
                || all_units - own.len() < settings.outlier_min_units
            {
                continue;
            }
            let mine = entity_totals(own);
            // The others' units, averaged per entity.
            let others: Vec<Decimal> = totals
                .iter()
                .filter_map(|(entity, (sum, count))| {
                    let (own_sum, own_count) = mine.get(entity).copied().unwrap_or_default();
                    (*count > own_count)
                        .then(|| (*sum - own_sum) / Decimal::from(*count - own_count))
                })
                .collect();
            let Some(centre) = median(&others) else {
                continue;
            };
            let spread = robust_spread(&others, centre);
            let n = Decimal::from(own.len());
            let samples = Decimal::from(mine.len());
            let near_top: Decimal = own.iter().map(|l| l.3).sum();
            let share = near_top / n;
            let gap = share - centre;
            let factor = settings.outlier_spread_factor;
            if gap < settings.outlier_min_gap
                || gap * gap * samples < factor * factor * spread * spread
            {
                continue;
            }
            out.push(Flag {
                kind: FlagKind::AssessorOutlier,
                subject: Subject::Assessor {
                    assessor: *assessor,
                    province: (*province).to_owned(),
                },
                severity: if gap >= settings.outlier_min_gap * Decimal::TWO {
                    Severity::High
                } else {
                    Severity::Medium
                },
                unit: None,
                entity: None,
                evidence: json!({
                    "units": own.len(),
                    "entities": mine.len(),
                    "units_near_top": near_top.normalize().to_string(),
                    "share_near_top": text(share, 4),
                    "mean_level": text(own.iter().map(|l| l.1).sum::<Decimal>() / n, 4),
                    "top_share": text(own.iter().map(|l| l.2).sum::<Decimal>() / n, 4),
                }),
                context: json!({
                    "near_top_means": text(settings.outlier_top_share, 2),
                    "others_units": all_units - own.len(),
                    "others_entities": others.len(),
                    "others_median_share_near_top": text(centre, 4),
                    "others_spread": text(spread, 4),
                }),
            });
        }
    }
    out
}

/// Windows on each side of the one just above a boundary whose mean count is what bunching
/// compares with.
const NEIGHBOUR_WINDOWS: u32 = 4;

/// Offices and provinces with at least `bunching_min_units` units scored within
/// `bunching_width` points above a grade boundary of the methodology, and at least
/// `bunching_ratio` × (the units expected there + 1). The units expected are the mean count of
/// the windows of the same width around it: two just below the boundary and two after the
/// window above. Scores thin out or thicken across a boundary, so the windows on both sides
/// follow the slope where the one window below would not. One flag per office or province,
/// listing every boundary.
pub fn bunching(m: &Methodology, settings: &FlagSettings, units: &[UnitFacts]) -> Vec<Flag> {
    let boundaries: Vec<Decimal> = m
        .bands()
        .bands()
        .iter()
        .map(|b| b.lower)
        .filter(|l| *l > Decimal::ZERO)
        .collect();
    let mut groups: BTreeMap<Subject, Vec<Decimal>> = BTreeMap::new();
    for u in units {
        let Some(score) = u.score else { continue };
        if let Some(office) = &u.office {
            groups
                .entry(Subject::Office {
                    office: office.clone(),
                })
                .or_default()
                .push(score);
        }
        if let Some(province) = &u.province {
            groups
                .entry(Subject::Province {
                    province: province.clone(),
                })
                .or_default()
                .push(score);
        }
    }
    let w = settings.bunching_width;
    let mut out = Vec::new();
    for (subject, scores) in groups {
        let mut found = Vec::new();
        for b in &boundaries {
            let above = scores.iter().filter(|s| **s >= *b && **s < *b + w).count();
            let below = scores.iter().filter(|s| **s < *b && **s >= *b - w).count();
            let reach = w * Decimal::from(NEIGHBOUR_WINDOWS);
            let around = scores
                .iter()
                .filter(|s| {
                    (**s < *b && **s >= *b - reach) || (**s >= *b + w && **s < *b + w + reach)
                })
                .count();
            let expected = Decimal::from(around) / Decimal::from(2 * NEIGHBOUR_WINDOWS);
            if above >= settings.bunching_min_units
                && Decimal::from(above) >= settings.bunching_ratio * (expected + Decimal::ONE)
            {
                found.push(json!({
                    "boundary": text(*b, 2),
                    "just_above": above,
                    "just_below": below,
                    "expected": text(expected, 2),
                }));
            }
        }
        if found.is_empty() {
            continue;
        }
        out.push(Flag {
            kind: FlagKind::CutoffBunching,
            subject,
            severity: Severity::Medium,
            unit: None,
            entity: None,
            evidence: json!({ "boundaries": found }),
            context: json!({ "units": scores.len(), "width": text(w, 2) }),
        });
    }
    out
}
