//! Integrity flags: each rule fires on a small hand-made case and stays quiet on its near miss.

use std::collections::HashMap;
use std::fmt::Write as _;

use kepatuhan_core::Methodology;
use kepatuhan_core::flags::{
    EntityFacts, Flag, FlagKind, FlagSettings, OfficeReviews, ReviewFacts, Severity, Subject,
    UnitFacts, assessor_outliers, bunching, contradictions, cycle_flags, entity_flags,
    fast_reviews, identical_sheets, jumps, never_returned, top_marks_without_evidence,
};
use kepatuhan_core::methodology::QuestionRef;
use kepatuhan_core::scoring::{AnswerInput, Sheet};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// Twelve indicators on a 0–3 scale (`i0` expects evidence, `i1` is linked to the `fees`
/// question), a yes/no survey, and bands at 88 and 78.
fn methodology() -> Methodology {
    let mut lines = String::new();
    for i in 0..12 {
        let extra = match i {
            0 => r#", evidence = "expected""#,
            1 => r#", survey_questions = ["perception.fees"]"#,
            _ => "",
        };
        writeln!(
            lines,
            "  {{ code = \"i{i}\", name = \"I{i}\", weight = 1, source = \"observation\", scale = \"s\"{extra} }},"
        )
        .unwrap();
    }
    Methodology::from_toml(&format!(
        r#"
code = "t"
name = "T"
first_year = 2025
aggregation = "mean_of_units"
[scales.s]
levels = [{{ value = 0, description = "0" }}, {{ value = 1, description = "1" }}, {{ value = 2, description = "2" }}, {{ value = 3, description = "3" }}]
[[dimensions]]
code = "d"
name = "D"
weight = 100
[[dimensions.variables]]
code = "v"
name = "V"
weight = 1
indicators = [
{lines}]
[[dimensions.variables]]
code = "perception"
name = "Persepsi"
weight = 1
[dimensions.variables.survey]
method = "no_maladministration_share"
questions = [{{ code = "fees", text = "Pungutan?" }}]
[[composition]]
kind = "dimensions"
weight = 100
[[bands]]
code = "A"
label = "A"
lower = "88.00"
[[bands]]
code = "B"
label = "B"
lower = "78.00"
[[bands]]
code = "C"
label = "C"
lower = 0
"#
    ))
    .unwrap()
}

/// A unit whose twelve values are `values`, with evidence on every indicator.
fn unit(m: &Methodology, id: i64, values: [u8; 12]) -> UnitFacts {
    let mut sheet = Sheet::new(m);
    for (i, v) in values.iter().enumerate() {
        sheet
            .set(m, &format!("i{i}"), AnswerInput::Value(*v))
            .unwrap();
    }
    UnitFacts {
        unit: id,
        entity: 1,
        office: Some("sumsel".into()),
        province: Some("19".into()),
        assessor: Some(1),
        sheet,
        evidence: vec![true; 12],
        reports: HashMap::new(),
        respondents: HashMap::new(),
        score: None,
        previous: None,
    }
}

fn kinds(flags: &[Flag]) -> Vec<FlagKind> {
    flags.iter().map(|f| f.kind).collect()
}

#[test]
fn a_jump_far_from_the_cycles_changes_is_flagged_and_ordinary_changes_are_not() {
    let m = methodology();
    let s = FlagSettings::default();
    // Twenty units moving −3…+3 points, and one from 60,48 to 95,32.
    let mut units: Vec<UnitFacts> = (0..20)
        .map(|i| {
            let mut u = unit(&m, i, [1; 12]);
            u.previous = Some(dec!(70));
            u.score = Some(dec!(70) + Decimal::from(i % 7) - dec!(3));
            u
        })
        .collect();
    assert!(jumps(&s, &units, &[]).is_empty());
    let mut honest = unit(&m, 99, [1; 12]);
    honest.previous = Some(dec!(60.48));
    honest.score = Some(dec!(95.32));
    units.push(honest);
    let flags = jumps(&s, &units, &[]);
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].subject, Subject::Unit { unit: 99 });
    assert_eq!(flags[0].severity, Severity::High);
    assert_eq!(flags[0].evidence["change"], "34.84");
    // A change within the spread of a cycle where everything moved a lot is not a jump.
    let wide: Vec<EntityFacts> = (0..20)
        .map(|i| EntityFacts {
            entity: i,
            previous: Some(dec!(50)),
            score: Some(dec!(50) + Decimal::from(i * 2)),
        })
        .collect();
    assert!(jumps(&s, &[], &wide).is_empty());
    // Nor is a small change in a cycle where nothing moved.
    let still: Vec<EntityFacts> = (0..20)
        .map(|i| EntityFacts {
            entity: i,
            previous: Some(dec!(50)),
            score: Some(if i == 0 { dec!(58) } else { dec!(50) }),
        })
        .collect();
    assert!(
        jumps(&s, &[], &still).is_empty(),
        "8 points is under the minimum"
    );
}

#[test]
fn identical_sheets_need_95_percent_of_the_shared_indicators() {
    let m = methodology();
    let s = FlagSettings::default();
    let first = unit(&m, 1, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    let copy = unit(&m, 2, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    let near = unit(&m, 3, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 2]);
    let flags = identical_sheets(&s, &[&near, &first, &copy]);
    // a = b exactly; c differs on one of twelve (91.7 %).
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].subject, Subject::UnitPair { unit: 1, other: 2 });
    assert_eq!(flags[0].severity, Severity::High);
    assert_eq!(flags[0].evidence["agreeing"], 12);
    // Too few indicators answered in both: nothing to compare.
    let lenient = FlagSettings {
        identical_min_indicators: 13,
        ..FlagSettings::default()
    };
    assert!(identical_sheets(&lenient, &[&first, &copy]).is_empty());
}

#[test]
fn top_marks_contradicted_by_the_survey_are_flagged() {
    let m = methodology();
    let s = FlagSettings::default();
    let fees = QuestionRef {
        survey: "perception".into(),
        question: "fees".into(),
    };
    let mut u = unit(&m, 1, [3; 12]);
    u.respondents.insert("perception".into(), 30);
    u.reports.insert(fees.clone(), 9); // 30 % report unofficial fees
    let flag = contradictions(&m, &s, &u).unwrap();
    assert_eq!(flag.kind, FlagKind::SurveyContradiction);
    assert_eq!(flag.evidence["contradictions"][0]["indicator"], "i1");
    assert_eq!(flag.evidence["contradictions"][0]["reported"], 9);
    // 10 % reporting is under the threshold; so is any share of too few respondents; and a
    // unit that did not give top marks contradicts nothing.
    u.reports.insert(fees.clone(), 3);
    assert!(contradictions(&m, &s, &u).is_none());
    u.respondents.insert("perception".into(), 5);
    u.reports.insert(fees.clone(), 5);
    assert!(contradictions(&m, &s, &u).is_none());
    let mut modest = unit(&m, 2, [2; 12]);
    modest.respondents.insert("perception".into(), 30);
    modest.reports.insert(fees, 30);
    assert!(contradictions(&m, &s, &modest).is_none());
}

#[test]
fn top_marks_without_expected_evidence_are_flagged() {
    let m = methodology();
    let mut u = unit(&m, 1, [3; 12]);
    assert!(top_marks_without_evidence(&m, &u).is_none());
    // No evidence on i0 (expected) and i2 (not expected): only i0 counts.
    u.evidence[0] = false;
    u.evidence[2] = false;
    let flag = top_marks_without_evidence(&m, &u).unwrap();
    assert_eq!(flag.evidence["indicators"], serde_json::json!(["i0"]));
    assert_eq!(flag.severity, Severity::Low);
    // Below the top level, missing evidence is not flagged.
    let mut lower = unit(&m, 2, [2; 12]);
    lower.evidence = vec![false; 12];
    assert!(top_marks_without_evidence(&m, &lower).is_none());
}

#[test]
fn verifications_within_minutes_are_flagged() {
    let s = FlagSettings::default();
    let reviews = [
        ReviewFacts {
            unit: 1,
            entity: 1,
            seconds_to_verify: 40,
        },
        ReviewFacts {
            unit: 2,
            entity: 1,
            seconds_to_verify: 4 * 60,
        },
        ReviewFacts {
            unit: 3,
            entity: 1,
            seconds_to_verify: 5 * 60,
        },
    ];
    let flags = fast_reviews(&s, &reviews);
    assert_eq!(
        flags
            .iter()
            .map(|f| (f.unit, f.severity))
            .collect::<Vec<_>>(),
        [(Some(1), Severity::High), (Some(2), Severity::Medium)]
    );
}

#[test]
fn an_office_that_never_returns_is_flagged_only_when_others_do() {
    let s = FlagSettings::default();
    let office = |office: &str, verified, returned| OfficeReviews {
        office: office.into(),
        verified,
        returned,
    };
    let flags = never_returned(
        &s,
        &[office("a", 40, 0), office("b", 40, 6), office("c", 10, 0)],
    );
    assert_eq!(kinds(&flags), [FlagKind::NeverReturned]);
    assert_eq!(flags[0].subject, Subject::Office { office: "a".into() });
    // When nobody returns anything, nobody stands out.
    assert!(never_returned(&s, &[office("a", 40, 0), office("b", 40, 0)]).is_empty());
}

/// Assessor `assessor`'s unit `id` of entity `entity`.
fn assessed(m: &Methodology, id: i64, entity: i64, assessor: i64, values: [u8; 12]) -> UnitFacts {
    let mut u = unit(m, id, values);
    u.entity = entity;
    u.assessor = Some(assessor);
    u
}

/// Three assessors with middling, varied sheets: ten entities of three units each, a whole
/// entity to one assessor.
fn middling_province(m: &Methodology) -> Vec<UnitFacts> {
    (0..30)
        .map(|i| {
            let v = u8::try_from(i % 3).unwrap();
            assessed(
                m,
                i,
                i / 3,
                1 + (i / 3) % 3,
                [1, 2, v, 1, 2, v, 1, 3, 1, 2, 3, 2],
            )
        })
        .collect()
}

#[test]
fn an_assessor_at_the_top_almost_everywhere_is_flagged() {
    let m = methodology();
    let s = FlagSettings::default();
    let mut units = middling_province(&m);
    assert!(assessor_outliers(&m, &s, &units).is_empty());
    // Assessor 9 gives the top level on 11 of 12 indicators to six units of six governments.
    for i in 30..36 {
        units.push(assessed(
            &m,
            i,
            20 + i,
            9,
            [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2],
        ));
    }
    let flags = assessor_outliers(&m, &s, &units);
    assert_eq!(flags.len(), 1);
    assert_eq!(
        flags[0].subject,
        Subject::Assessor {
            assessor: 9,
            province: "19".into()
        }
    );
    // All of theirs against none of the others': twice the gap.
    assert_eq!(flags[0].severity, Severity::High);
    assert_eq!(flags[0].evidence["units_near_top"], "6");
    assert_eq!(flags[0].evidence["entities"], 6);
    assert_eq!(flags[0].context["others_median_share_near_top"], "0");
}

#[test]
fn a_harsh_assessor_and_a_round_of_excellent_governments_are_not_flagged() {
    let m = methodology();
    let s = FlagSettings::default();
    // Assessor 9 gives the lowest level everywhere: a harsh round inflates no score.
    let mut units = middling_province(&m);
    for i in 30..36 {
        units.push(assessed(&m, i, 20 + i, 9, [0; 12]));
    }
    assert!(assessor_outliers(&m, &s, &units).is_empty());
    // In a province where most governments are excellent, at the top almost everywhere
    // whoever of the three assesses them, assessor 9's round of six more is not an outlier.
    let excellent = [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2];
    let mut units = middling_province(&m);
    units.extend((30..42).map(|i| assessed(&m, i, 10 + i, 1 + i % 3, excellent)));
    units.extend((42..48).map(|i| assessed(&m, i, 10 + i, 9, excellent)));
    assert!(assessor_outliers(&m, &s, &units).is_empty());
}

#[test]
fn units_bunched_just_above_a_boundary_are_flagged() {
    let m = methodology();
    let s = FlagSettings::default();
    let scored = |id, score: Decimal| {
        let mut u = unit(&m, id, [1; 12]);
        u.score = Some(score);
        u
    };
    // Spread evenly: nothing.
    let even: Vec<UnitFacts> = (0..40)
        .map(|i| scored(i, dec!(60) + Decimal::from(i)))
        .collect();
    assert!(bunching(&m, &s, &even).is_empty());
    // Six units in 88,00–88,49 (seven with the 88 of the even spread) and none in 87,50–87,99,
    // in one office of one province; two points either side hold four units, half a unit per
    // window.
    let mut bunched = even;
    for (i, sc) in [
        dec!(88.00),
        dec!(88.10),
        dec!(88.20),
        dec!(88.30),
        dec!(88.40),
        dec!(88.49),
    ]
    .into_iter()
    .enumerate()
    {
        bunched.push(scored(100 + i64::try_from(i).unwrap(), sc));
    }
    let flags = bunching(&m, &s, &bunched);
    assert_eq!(
        flags.iter().map(|f| f.subject.key()).collect::<Vec<_>>(),
        ["office:sumsel", "province:19"]
    );
    assert_eq!(
        flags[0].evidence["boundaries"][0],
        serde_json::json!({ "boundary": "88", "just_above": 7, "just_below": 0, "expected": "0.5" })
    );
}

#[test]
fn the_two_scopes_and_the_identity_of_a_flag() {
    let m = methodology();
    let s = FlagSettings::default();
    let mut a = unit(&m, 1, [3; 12]);
    a.evidence[0] = false;
    let b = unit(&m, 2, [3; 12]);
    let flags = entity_flags(&m, &s, &[&a, &b], &[]);
    assert_eq!(kinds(&flags), [FlagKind::TopMarksWithoutEvidence]);
    assert!(flags.iter().all(|f| f.kind.is_entity_scoped()));
    let cycle = cycle_flags(&m, &s, &[a.clone(), b.clone()], &[], &[]);
    assert_eq!(kinds(&cycle), [FlagKind::IdenticalSheets]);
    assert!(cycle.iter().all(|f| !f.kind.is_entity_scoped()));
    // The same pair found through the entity and through the assessor is one flag.
    assert_eq!(cycle.len(), 1);
    // Identity: the kind, the subject and the evidence.
    let again = entity_flags(&m, &s, &[&a, &b], &[]);
    assert_eq!(flags[0].fingerprint(), again[0].fingerprint());
    a.evidence[0] = true;
    a.evidence[1] = false;
    assert!(
        entity_flags(&m, &s, &[&a, &b], &[]).is_empty(),
        "i1 expects no evidence"
    );
    for kind in FlagKind::ALL {
        assert_eq!(FlagKind::from_code(kind.code()), Some(kind));
    }
}

#[test]
fn identical_sheets_with_gaps_in_every_band_are_still_compared() {
    let m = methodology();
    let s = FlagSettings {
        identical_min_indicators: 6,
        ..FlagSettings::default()
    };
    // Twelve indicators in five bands; `a` leaves 0–2 unanswered, `b` 3–4: every band has a gap
    // in one of them, and the seven indicators both answered agree.
    let with_gaps = |id, gaps: &[usize]| {
        let mut u = unit(&m, id, [2; 12]);
        for g in gaps {
            u.sheet
                .set(&m, &format!("i{g}"), AnswerInput::NotApplicable)
                .unwrap();
        }
        u
    };
    let (a, b) = (with_gaps(1, &[0, 1, 2]), with_gaps(2, &[3, 4]));
    let flags = identical_sheets(&s, &[&a, &b]);
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].evidence["compared"], 7);
}

/// The pairs the identical-sheets rule accepts, by comparing every pair (the rule's definition).
fn identical_by_brute_force(
    s: &FlagSettings,
    group: &[&UnitFacts],
    m: &Methodology,
) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for (i, a) in group.iter().enumerate() {
        for b in &group[i + 1..] {
            let (mut compared, mut agreeing) = (0usize, 0usize);
            for id in m.indicator_ids() {
                if let (Some(AnswerInput::Value(x)), Some(AnswerInput::Value(y))) =
                    (a.sheet.answer(m, id), b.sheet.answer(m, id))
                {
                    compared += 1;
                    agreeing += usize::from(x == y);
                }
            }
            if compared >= s.identical_min_indicators
                && Decimal::from(agreeing) >= s.identical_share * Decimal::from(compared)
            {
                out.push((a.unit.min(b.unit), a.unit.max(b.unit)));
            }
        }
    }
    out.sort_unstable();
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
    /// The band index finds exactly the pairs a comparison of every pair finds, with gaps (not
    /// applicable, up to six a sheet) and with lower thresholds, on groups made of near copies of a few sheets.
    #[test]
    fn the_band_index_finds_every_identical_pair(
        bases in proptest::collection::vec(proptest::collection::vec(0u8..4, 12), 1..4),
        copies in proptest::collection::vec((0usize..4, proptest::collection::vec((0usize..12, 0u8..5), 0..10)), 2..14),
        share in 80u32..=100,
        minimum in 4usize..=10,
    ) {
        let m = methodology();
        let s = FlagSettings {
            identical_share: Decimal::new(i64::from(share), 2),
            identical_min_indicators: minimum,
            ..FlagSettings::default()
        };
        let units: Vec<UnitFacts> = copies
            .iter()
            .enumerate()
            .map(|(k, (base, edits))| {
                let mut u = unit(&m, i64::try_from(k).unwrap(), [0; 12]);
                let mut sheet = Sheet::new(&m);
                let mut values: Vec<Option<u8>> = bases[base % bases.len()].iter().copied().map(Some).collect();
                for (position, value) in edits {
                    // 4 stands for "not applicable".
                    values[*position] = (*value < 4).then_some(*value);
                }
                for (i, v) in values.iter().enumerate() {
                    let answer = v.map_or(AnswerInput::NotApplicable, AnswerInput::Value);
                    sheet.set(&m, &format!("i{i}"), answer).unwrap();
                }
                u.sheet = sheet;
                u
            })
            .collect();
        let group: Vec<&UnitFacts> = units.iter().collect();
        let mut found: Vec<(i64, i64)> = identical_sheets(&s, &group)
            .iter()
            .map(|f| match f.subject {
                Subject::UnitPair { unit, other } => (unit, other),
                _ => unreachable!("identical sheets name unit pairs"),
            })
            .collect();
        found.sort_unstable();
        proptest::prop_assert_eq!(found, identical_by_brute_force(&s, &group, &m));
    }
}
