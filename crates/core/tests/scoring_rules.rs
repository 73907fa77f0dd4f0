//! One test (or more) per scoring rule of DOMAIN.md, including its worked example.

use kepatuhan_core::methodology::{Zone, builtin};
use kepatuhan_core::scoring::{
    AnswerInput::{NotApplicable, Value},
    BandMovement, CycleInput, DeficiencySource, EntityInput, FollowUpStatus, Rank, RankInput,
    ScoringError, Sheet, SurveyAnswer, SurveyResponse, SurveyTally, UnitInput, aggregate_entity,
    deficiencies, grade, mean_published, rank, rank_entities, score_cycle, score_unit,
    year_on_year,
};
use kepatuhan_core::{CycleYear, EntityKind, Methodology, PublishedScore, Score};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// The two-dimension methodology of DOMAIN.md's worked example, with 2022+ bands.
const WORKED: &str = r#"
code = "worked-example"
name = "Worked example"
first_year = 2022
aggregation = "mean_of_units"
[scales.s]
levels = [
  { value = 0, description = "nol" }, { value = 1, description = "satu" },
  { value = 2, description = "dua" }, { value = 3, description = "tiga" },
]
[[dimensions]]
code = "d1"
name = "D1"
weight = 60
[[dimensions.variables]]
code = "v1"
name = "V1"
weight = 1
indicators = [
  { code = "i1", name = "I1", weight = 2, source = "observation", scale = "s" },
  { code = "i2", name = "I2", weight = 1, source = "observation", scale = "s" },
]
[[dimensions]]
code = "d2"
name = "D2"
weight = 40
[[dimensions.variables]]
code = "v2"
name = "V2"
weight = 1
indicators = [
  { code = "i3", name = "I3", weight = 1, source = "document", scale = "s" },
  { code = "i4", name = "I4", weight = 1, source = "document", scale = "s" },
]
[[composition]]
kind = "dimensions"
weight = 100
[[bands]]
code = "A"
label = "Kualitas Tertinggi"
zone = "green"
lower = "88.00"
[[bands]]
code = "B"
label = "Kualitas Tinggi"
zone = "green"
lower = "78.00"
[[bands]]
code = "C"
label = "Kualitas Sedang"
zone = "yellow"
lower = "54.00"
[[bands]]
code = "D"
label = "Kualitas Rendah"
zone = "red"
lower = "32.00"
[[bands]]
code = "E"
label = "Kualitas Terendah"
zone = "red"
lower = "0"
"#;

fn worked() -> Methodology {
    Methodology::from_toml(WORKED).expect("worked example methodology is valid")
}

fn year(y: i64) -> CycleYear {
    CycleYear::new(y).unwrap()
}

fn published(d: Decimal) -> PublishedScore {
    PublishedScore::new(d).unwrap()
}

fn worked_unit(
    m: &Methodology,
    answers: &[(&str, kepatuhan_core::scoring::AnswerInput)],
) -> UnitInput {
    UnitInput::new(m, Sheet::from_answers(m, answers.iter().copied()).unwrap())
}

#[test]
fn worked_example_unit_score() {
    let m = worked();
    let unit = worked_unit(
        &m,
        &[
            ("i1", Value(3)),
            ("i2", Value(1)),
            ("i3", Value(2)),
            ("i4", NotApplicable),
        ],
    );
    let s = score_unit(&m, &unit).unwrap();
    let sheet = &s.sheets[0];
    // V1 = (2·1 + 1·⅓)/3 × 100 = 77.777…; V2 = 66.666… (I4 not applicable, its weight goes to I3).
    let v1 = sheet.dimensions[0].variables[0].score.unwrap().value();
    let v2 = sheet.dimensions[1].variables[0].score.unwrap().value();
    assert_eq!(v1.round_dp(20), dec!(77.77777777777777777778));
    assert_eq!(v2.round_dp(20), dec!(66.66666666666666666667));
    // unit = 0.6 · 77.777… + 0.4 · 66.666… = 73.333… → 73.33
    assert_eq!(s.score.value().round_dp(20), dec!(73.33333333333333333333));
    assert_eq!(s.published.value().to_string(), "73.33");
    let g = grade(&m, year(2023), s.published, None);
    assert_eq!(
        (g.code.as_str(), g.label.as_str(), g.zone),
        ("C", "Kualitas Sedang", Some(Zone::Yellow))
    );
}

#[test]
fn worked_example_entity_score_uses_published_unit_scores() {
    // Units 73.33, 88.00 and 87.995 (published 88.00) → mean of 73.33, 88.00, 88.00 = 83.11.
    let third = Score::new(dec!(87.995)).unwrap().published();
    assert_eq!(third.value(), dec!(88.00));
    let entity = mean_published(&[published(dec!(73.33)), published(dec!(88.00)), third]).unwrap();
    assert_eq!(entity.value().to_string(), "83.11");
    // The mean of the exact scores would differ in the last digit: 83.10833… → 83.11 too, but
    // 73.33 + 88 + 87.994 = 249.324 / 3 = 83.108 shows the rounding happens on published figures.
    let low = Score::new(dec!(87.994)).unwrap().published();
    assert_eq!(
        mean_published(&[published(dec!(73.33)), published(dec!(88.00)), low])
            .unwrap()
            .value(),
        dec!(83.11)
    );
}

#[test]
fn indicator_points_are_value_over_max_level() {
    let m = worked();
    for (v, expected) in [
        (0u8, dec!(0)),
        (1, dec!(33.33)),
        (2, dec!(66.67)),
        (3, dec!(100)),
    ] {
        let unit = worked_unit(
            &m,
            &[
                ("i1", Value(v)),
                ("i2", Value(v)),
                ("i3", Value(v)),
                ("i4", Value(v)),
            ],
        );
        let s = score_unit(&m, &unit).unwrap();
        assert_eq!(s.published.value(), expected, "all indicators at level {v}");
    }
}

#[test]
fn not_applicable_weight_is_shared_in_proportion() {
    let m = worked();
    // I2 not applicable: V1 = I1 alone. I1 = 3 → V1 = 100 whatever I2 would have been.
    let unit = worked_unit(
        &m,
        &[
            ("i1", Value(3)),
            ("i2", NotApplicable),
            ("i3", Value(0)),
            ("i4", Value(3)),
        ],
    );
    let s = score_unit(&m, &unit).unwrap();
    assert_eq!(s.sheets[0].dimensions[0].score.unwrap().value(), dec!(100));
    assert_eq!(s.sheets[0].dimensions[1].score.unwrap().value(), dec!(50));
    assert_eq!(s.published.value(), dec!(80.00));
}

#[test]
fn a_dimension_without_applicable_indicators_passes_its_weight_on() {
    let m = worked();
    let unit = worked_unit(
        &m,
        &[
            ("i1", Value(3)),
            ("i2", Value(0)),
            ("i3", NotApplicable),
            ("i4", NotApplicable),
        ],
    );
    let s = score_unit(&m, &unit).unwrap();
    assert_eq!(s.sheets[0].dimensions[1].score, None);
    assert_eq!(s.sheets[0].dimensions[1].variables[0].score, None);
    // Only D1 applies: the unit score is D1's score, 66.666…
    assert_eq!(s.published.value(), dec!(66.67));
}

#[test]
fn nothing_applicable_and_missing_values_are_errors() {
    let m = worked();
    let all_na = worked_unit(
        &m,
        &[
            ("i1", NotApplicable),
            ("i2", NotApplicable),
            ("i3", NotApplicable),
            ("i4", NotApplicable),
        ],
    );
    assert_eq!(
        score_unit(&m, &all_na),
        Err(ScoringError::NothingApplicable)
    );
    let partial = worked_unit(&m, &[("i1", Value(3)), ("i3", Value(2))]);
    assert_eq!(
        score_unit(&m, &partial),
        Err(ScoringError::Incomplete {
            missing: vec!["i2".into(), "i4".into()]
        })
    );
}

#[test]
fn input_is_checked_against_the_scale() {
    let m = worked();
    let errors = Sheet::from_answers(&m, [("i1", Value(4)), ("nope", Value(1)), ("i2", Value(3))])
        .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "indicator `i1`: value 4 is not on its scale (allowed: [0, 1, 2, 3])",
            "unknown indicator `nope`",
        ]
    );
}

fn response(pairs: &[(&str, SurveyAnswer)]) -> SurveyResponse {
    SurveyResponse {
        answers: pairs.iter().map(|(q, a)| ((*q).to_owned(), *a)).collect(),
    }
}

#[test]
fn survey_variable_is_the_share_of_responses_without_maladministration() {
    let m = builtin::by_code("ori-2022").unwrap();
    let id = m.survey_id("maladministration_perception").unwrap();
    let survey = m.survey(id);
    let mut responses = vec![
        response(&[
            ("undue_delay", SurveyAnswer::YesNo(false)),
            ("unofficial_fees", SurveyAnswer::YesNo(false))
        ]);
        27
    ];
    responses.push(response(&[("undue_delay", SurveyAnswer::YesNo(true))]));
    responses.push(response(&[
        ("unofficial_fees", SurveyAnswer::YesNo(true)),
        ("discrimination", SurveyAnswer::YesNo(true)),
    ]));
    responses.push(response(&[("no_service", SurveyAnswer::YesNo(true))]));
    let tally = SurveyTally::from_responses(survey, &responses).unwrap();
    assert_eq!(tally.counts(), [27, 3]);

    let mut unit = UnitInput::new(&m, full_sheet(&m, 3));
    unit.set_survey(id, tally);
    let s = score_unit(&m, &unit).unwrap();
    let output = s.sheets[0]
        .dimensions
        .iter()
        .find(|d| d.code == "output")
        .unwrap();
    assert_eq!(output.score.unwrap().value(), dec!(90));
    // Every other dimension is perfect: 100 − 24.24 % × 10 = 97.576 → 97.58.
    assert_eq!(s.published.value(), dec!(97.58));
}

#[test]
fn survey_responses_are_validated() {
    let m = builtin::by_code("ori-2022").unwrap();
    let survey = m.survey(m.survey_id("maladministration_perception").unwrap());
    let bad = [
        (
            response(&[("telepathy", SurveyAnswer::YesNo(true))]),
            "unknown question `telepathy`",
        ),
        (
            response(&[("undue_delay", SurveyAnswer::Likert(3))]),
            "takes a yes/no answer",
        ),
        (response(&[]), "at least one question"),
    ];
    for (r, expected) in bad {
        let err = SurveyTally::from_responses(survey, &[r])
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
    let trust_m = builtin::by_code("ori-2025").unwrap();
    let trust = trust_m.survey(trust_m.survey_id("public_trust").unwrap());
    let err = SurveyTally::from_responses(
        trust,
        &[response(&[("trust_on_time", SurveyAnswer::Likert(5))])],
    )
    .unwrap_err();
    assert!(err.to_string().contains("5 is not a level"), "{err}");
}

#[test]
fn a_survey_without_responses_cannot_be_scored() {
    let m = builtin::by_code("ori-2022").unwrap();
    let unit = UnitInput::new(&m, full_sheet(&m, 3));
    assert_eq!(
        score_unit(&m, &unit),
        Err(ScoringError::MissingSurvey(
            "maladministration_perception".into()
        ))
    );
}

/// A sheet with every indicator at `level` (capped at each scale's maximum).
fn full_sheet(m: &Methodology, level: u8) -> Sheet {
    let mut sheet = Sheet::new(m);
    for id in m.indicator_ids() {
        let v = level.min(m.indicator(id).scale.max());
        sheet.set_by_id(m, id, Value(v)).unwrap();
    }
    sheet
}

#[test]
fn final_score_composes_dimensions_and_public_trust() {
    let m = builtin::by_code("ori-2025").unwrap();
    let mut unit = UnitInput::new(&m, full_sheet(&m, 3));
    let mal = m.survey_id("maladministration_perception").unwrap();
    unit.set_survey(
        mal,
        SurveyTally::from_counts(m.survey(mal), vec![30, 0]).unwrap(),
    );
    let trust = m.survey_id("public_trust").unwrap();
    // 4 questions × 30 respondents: 60 "Percaya" (75) and 60 "Sangat percaya" (100) → 87.5.
    unit.set_survey(
        trust,
        SurveyTally::from_counts(m.survey(trust), vec![0, 0, 60, 60]).unwrap(),
    );
    let s = score_unit(&m, &unit).unwrap();
    let components: Vec<(String, Decimal)> = s.sheets[0]
        .components
        .iter()
        .map(|c| (c.code.clone(), c.score.value()))
        .collect();
    assert_eq!(
        components,
        [
            ("dimensions".into(), dec!(100)),
            ("public_trust".into(), dec!(87.5))
        ]
    );
    // 70 % × 100 + 30 % × 87.5 = 96.25
    assert_eq!(s.published.value(), dec!(96.25));
}

#[test]
fn product_scored_entities_average_products_not_units() {
    let m = builtin::by_code("ori-2021").unwrap();
    let perfect = |label: &str| {
        let mut s = full_sheet(&m, 2);
        s.label = Some(label.into());
        s
    };
    let half = {
        // Every indicator at 0 except the standards dimension at the top: 60.
        let mut s = Sheet::for_product(&m, "KTP-el");
        for id in m.indicator_ids() {
            let ind = m.indicator(id);
            let in_standards = m.dimensions()[0]
                .variables
                .iter()
                .any(|v| match &v.measure {
                    kepatuhan_core::methodology::VariableMeasure::Indicators {
                        indicators, ..
                    } => indicators.iter().any(|i| i.code == ind.code),
                    kepatuhan_core::methodology::VariableMeasure::Survey(_) => false,
                });
            s.set_by_id(
                &m,
                id,
                Value(if in_standards { ind.scale.max() } else { 0 }),
            )
            .unwrap();
        }
        s
    };
    let unit_a = UnitInput::with_sheets(&m, vec![perfect("Akta kelahiran"), half]);
    let unit_b = UnitInput::with_sheets(&m, vec![perfect("Izin usaha")]);
    let a = score_unit(&m, &unit_a).unwrap();
    let b = score_unit(&m, &unit_b).unwrap();
    assert_eq!(a.published.value(), dec!(80.00)); // (100 + 60) / 2
    assert_eq!(b.published.value(), dec!(100.00));
    // Mean of products: (100 + 60 + 100) / 3 = 86.666… → 86.67, not the mean of units (90.00).
    assert_eq!(
        aggregate_entity(&m, &[&a, &b]).unwrap().value(),
        dec!(86.67)
    );
    assert_eq!(grade(&m, year(2021), a.published, None).code, "kuning");
    // A unit-scored methodology refuses several sheets.
    let m22 = builtin::by_code("ori-2022").unwrap();
    let two = UnitInput::with_sheets(&m22, vec![full_sheet(&m22, 3), full_sheet(&m22, 3)]);
    assert!(matches!(
        score_unit(&m22, &two),
        Err(ScoringError::SheetCount { got: 2, .. })
    ));
}

#[test]
fn band_boundaries_2022_onwards() {
    let m = builtin::by_code("ori-2022").unwrap();
    let cases = [
        (dec!(100), "A"),
        (dec!(88.00), "A"),
        (dec!(87.99), "B"),
        (dec!(78.00), "B"),
        (dec!(77.99), "C"),
        (dec!(54.00), "C"),
        (dec!(53.99), "D"),
        (dec!(32.00), "D"),
        (dec!(31.99), "E"),
        (dec!(0), "E"),
    ];
    for (score, code) in cases {
        assert_eq!(m.bands().band_of(published(score)).code, code, "{score}");
    }
    assert_eq!(
        m.bands().band_of(published(dec!(78))).zone,
        Some(Zone::Green)
    );
    assert_eq!(
        m.bands().band_of(published(dec!(77.99))).zone,
        Some(Zone::Yellow)
    );
    assert_eq!(
        m.bands().band_of(published(dec!(53.99))).zone,
        Some(Zone::Red)
    );
    // Compared after rounding: 87.995 publishes as 88.00, so A.
    assert_eq!(
        m.bands()
            .band_of(Score::new(dec!(87.995)).unwrap().published())
            .code,
        "A"
    );
    assert_eq!(
        m.bands()
            .band_of(Score::new(dec!(87.9949)).unwrap().published())
            .code,
        "B"
    );
}

#[test]
fn band_boundaries_up_to_2021_and_from_2025() {
    let m21 = builtin::by_code("ori-2021").unwrap();
    for (score, code) in [
        (dec!(81.00), "hijau"),
        (dec!(80.99), "kuning"),
        (dec!(51.00), "kuning"),
        (dec!(50.99), "merah"),
        (dec!(0), "merah"),
    ] {
        assert_eq!(m21.bands().band_of(published(score)).code, code, "{score}");
    }
    let m25 = builtin::by_code("ori-2025").unwrap();
    for (score, code, category) in [
        (dec!(88), "A", "Baik"),
        (dec!(87.99), "B", "Baik"),
        (dec!(77.99), "C", "Cukup"),
        (dec!(53.99), "D", "Kurang"),
        (dec!(31.99), "E", "Kurang"),
    ] {
        let band = m25.bands().band_of(published(score));
        assert_eq!(
            (band.code.as_str(), band.category.as_deref(), band.zone),
            (code, Some(category), None),
            "{score}"
        );
    }
}

#[test]
fn follow_up_rule_withholds_awards_and_suffixes_opinions() {
    let m22 = builtin::by_code("ori-2022").unwrap();
    let incomplete = Some(FollowUpStatus {
        findings: 3,
        followed_up: 1,
    });
    let complete = Some(FollowUpStatus {
        findings: 3,
        followed_up: 3,
    });
    let score = published(dec!(90));
    assert!(
        grade(&m22, year(2022), score, incomplete).award_eligible,
        "the rule applies from 2023"
    );
    assert!(!grade(&m22, year(2023), score, incomplete).award_eligible);
    assert!(grade(&m22, year(2023), score, complete).award_eligible);
    assert!(
        grade(&m22, year(2023), score, None).award_eligible,
        "no findings, nothing to follow up"
    );
    assert_eq!(
        grade(&m22, year(2023), score, complete).label,
        "Kualitas Tertinggi"
    );

    let m25 = builtin::by_code("ori-2025").unwrap();
    assert_eq!(
        grade(&m25, year(2025), published(dec!(60)), complete).label,
        "Kualitas Sedang Tanpa Maladministrasi"
    );
    let g = grade(&m25, year(2025), published(dec!(60)), incomplete);
    assert_eq!(
        (g.label.as_str(), g.award_eligible),
        ("Kualitas Sedang", false)
    );
}

#[test]
fn competition_ranking_shares_ranks_and_skips() {
    let scores: Vec<PublishedScore> = [dec!(90), dec!(85.5), dec!(85.5), dec!(70), dec!(95)]
        .map(published)
        .into();
    let ranks: Vec<u32> = rank(&scores).iter().map(|r| r.rank).collect();
    assert_eq!(ranks, [2, 3, 3, 5, 1]);
    assert!(rank(&scores).iter().all(|r| r.of == 5));
    assert!(rank(&[]).is_empty());
}

#[test]
fn entities_are_ranked_per_kind_and_cities_with_regencies_per_province() {
    let e = |kind, province: Option<&'static str>, s| RankInput {
        kind,
        province,
        score: published(s),
    };
    let inputs = [
        e(EntityKind::Province, Some("19"), dec!(91)), // 0: Bangka Belitung province
        e(EntityKind::Regency, Some("19"), dec!(80)),  // 1
        e(EntityKind::City, Some("19"), dec!(95)),     // 2: Pangkalpinang
        e(EntityKind::Regency, Some("19"), dec!(80)),  // 3
        e(EntityKind::Regency, Some("31"), dec!(99)),  // 4: elsewhere
        e(EntityKind::Province, Some("31"), dec!(85)), // 5
        e(EntityKind::Ministry, None, dec!(70)),       // 6
    ];
    let r = rank_entities(&inputs);
    assert_eq!(r[0].national, Rank { rank: 1, of: 2 });
    assert_eq!(
        r[0].provincial, None,
        "the provincial government is ranked with provinces"
    );
    assert_eq!(r[2].provincial, Some(Rank { rank: 1, of: 3 }));
    assert_eq!(r[1].provincial, Some(Rank { rank: 2, of: 3 }));
    assert_eq!(r[3].provincial, Some(Rank { rank: 2, of: 3 }));
    assert_eq!(
        r[1].national,
        Rank { rank: 2, of: 3 },
        "regencies nationally"
    );
    assert_eq!(r[4].national, Rank { rank: 1, of: 3 });
    assert_eq!(r[4].provincial, Some(Rank { rank: 1, of: 1 }));
    assert_eq!(
        r[2].national,
        Rank { rank: 1, of: 1 },
        "cities are their own national kind"
    );
    assert_eq!(
        (r[6].national, r[6].provincial),
        (Rank { rank: 1, of: 1 }, None)
    );
}

#[test]
fn year_on_year_delta_and_band_movement() {
    let m21 = builtin::by_code("ori-2021").unwrap();
    let m22 = builtin::by_code("ori-2022").unwrap();
    let m25 = builtin::by_code("ori-2025").unwrap();
    // The press story: 60.48 yellow to 95.32 green.
    let y = year_on_year(
        published(dec!(60.48)),
        m22.bands(),
        published(dec!(95.32)),
        m22.bands(),
    );
    assert_eq!(
        (y.delta, y.previous_band.code.as_str(), y.movement),
        (dec!(34.84), "C", BandMovement::Up)
    );
    let y = year_on_year(
        published(dec!(88)),
        m22.bands(),
        published(dec!(87.99)),
        m22.bands(),
    );
    assert_eq!((y.delta, y.movement), (dec!(-0.01), BandMovement::Down));
    let y = year_on_year(
        published(dec!(80)),
        m22.bands(),
        published(dec!(87.99)),
        m22.bands(),
    );
    assert_eq!(y.movement, BandMovement::Same);
    // Across schemes: 2021 zones against 2022 grades compare by zone…
    let y = year_on_year(
        published(dec!(82)),
        m21.bands(),
        published(dec!(80)),
        m22.bands(),
    );
    assert_eq!(
        (y.previous_band.code.as_str(), y.movement),
        ("hijau", BandMovement::Same)
    );
    let y = year_on_year(
        published(dec!(60)),
        m21.bands(),
        published(dec!(90)),
        m22.bands(),
    );
    assert_eq!(y.movement, BandMovement::Up);
    // …2024 grades against 2025 grades by position (same codes)…
    let y = year_on_year(
        published(dec!(90)),
        m22.bands(),
        published(dec!(70)),
        m25.bands(),
    );
    assert_eq!(y.movement, BandMovement::Down);
    // …and zones against zone-less labels cannot be compared.
    let y = year_on_year(
        published(dec!(60)),
        m21.bands(),
        published(dec!(90)),
        m25.bands(),
    );
    assert_eq!(y.movement, BandMovement::Incomparable);
}

#[test]
fn deficiencies_name_what_lost_the_most_points() {
    let m = worked();
    let unit = worked_unit(
        &m,
        &[
            ("i1", Value(3)),
            ("i2", Value(1)),
            ("i3", Value(2)),
            ("i4", NotApplicable),
        ],
    );
    let s = score_unit(&m, &unit).unwrap();
    let d = deficiencies(&m, &unit, &s);
    let codes: Vec<&str> = d.iter().map(|x| x.source.code()).collect();
    // I2: 60 × ⅓ (its share of V1) × ⅔ lost = 13.333…; I3: 40 × 1 × ⅓ = 13.333…; tie in tree order.
    assert_eq!(codes, ["i2", "i3"]);
    assert_eq!(d[0].lost_points.round_dp(10), dec!(13.3333333333));
    assert_eq!(d[1].lost_points.round_dp(10), dec!(13.3333333333));
    let total: Decimal = d.iter().map(|x| x.lost_points).sum::<Decimal>() + s.score.value();
    assert_eq!(total.round_dp(20), dec!(100));
}

#[test]
fn deficiencies_include_surveys() {
    let m = builtin::by_code("ori-2025").unwrap();
    let mut unit = UnitInput::new(&m, full_sheet(&m, 3));
    let mal = m.survey_id("maladministration_perception").unwrap();
    unit.set_survey(
        mal,
        SurveyTally::from_counts(m.survey(mal), vec![15, 15]).unwrap(),
    );
    let trust = m.survey_id("public_trust").unwrap();
    unit.set_survey(
        trust,
        SurveyTally::from_counts(m.survey(trust), vec![120, 0, 0, 0]).unwrap(),
    );
    let s = score_unit(&m, &unit).unwrap();
    let d = deficiencies(&m, &unit, &s);
    // Public trust: 30 × (100 − 25)/100 = 22.5; maladministration: 70 % × 24.24 % × 50 = 8.484.
    assert_eq!(d.len(), 2);
    assert_eq!(
        (&d[0].source, d[0].lost_points),
        (
            &DeficiencySource::Survey {
                code: "public_trust".into()
            },
            dec!(22.5)
        )
    );
    assert_eq!(d[1].lost_points.normalize(), dec!(8.484));
}

/// Four entities of one province: two scored units, one scored and one incomplete, one unit
/// at zero, and none.
fn four_entities(m: &Methodology) -> CycleInput {
    let unit = |a: u8, b: u8| {
        worked_unit(
            m,
            &[
                ("i1", Value(a)),
                ("i2", Value(b)),
                ("i3", Value(a)),
                ("i4", Value(b)),
            ],
        )
    };
    let incomplete = worked_unit(m, &[("i1", Value(3))]);
    CycleInput {
        year: year(2023),
        entities: vec![
            EntityInput {
                code: "19".into(),
                kind: EntityKind::Province,
                province: Some("19".into()),
                follow_up: None,
                units: vec![unit(3, 3), unit(3, 0)],
            },
            EntityInput {
                code: "19.01".into(),
                kind: EntityKind::Regency,
                province: Some("19".into()),
                follow_up: Some(FollowUpStatus {
                    findings: 2,
                    followed_up: 0,
                }),
                units: vec![unit(3, 3), incomplete],
            },
            EntityInput {
                code: "19.71".into(),
                kind: EntityKind::City,
                province: Some("19".into()),
                follow_up: None,
                units: vec![unit(0, 0)],
            },
            EntityInput {
                code: "19.02".into(),
                kind: EntityKind::Regency,
                province: Some("19".into()),
                follow_up: None,
                units: vec![],
            },
        ],
    }
}

#[test]
fn a_whole_cycle_is_scored_graded_and_ranked() {
    let m = worked();
    let input = four_entities(&m);
    let r = score_cycle(&m, &input);
    let province = &r.entities[0];
    // Units 100 and 0.6 × (2·1 + 0)/3 × 100 + 0.4 × 50 = 60 → entity 80.00 (B).
    assert_eq!(
        province.units[1].score.as_ref().unwrap().published.value(),
        dec!(60.00)
    );
    assert_eq!(province.score.unwrap().value(), dec!(80.00));
    assert_eq!(province.grade.as_ref().unwrap().code, "B");
    assert_eq!(province.ranks.unwrap().national, Rank { rank: 1, of: 1 });
    let regency = &r.entities[1];
    assert_eq!(
        regency.score.unwrap().value(),
        dec!(100.00),
        "the incomplete unit is left out"
    );
    assert!(
        regency.units[1]
            .error
            .as_deref()
            .unwrap()
            .contains("not yet answered")
    );
    assert!(
        regency.grade.as_ref().unwrap().award_eligible,
        "this methodology has no follow-up rule"
    );
    assert_eq!(
        regency.ranks.unwrap().provincial,
        Some(Rank { rank: 1, of: 2 })
    );
    assert_eq!(
        r.entities[2].ranks.unwrap().provincial,
        Some(Rank { rank: 2, of: 2 })
    );
    assert_eq!((r.entities[3].score, r.entities[3].ranks), (None, None));
}

#[test]
fn an_entitys_dimension_means_average_its_scored_units() {
    let m = worked();
    let r = score_cycle(&m, &four_entities(&m));
    let province = &r.entities[0];
    // Each dimension's mean over the scored units, rounded half-up at the end only:
    // d1 = (100 + 66.666…) / 2 = 83.333… → 83.33; d2 = (100 + 50) / 2 = 75.00.
    let means: Vec<(String, Decimal)> = province
        .dimension_means()
        .into_iter()
        .map(|d| (d.code, d.score))
        .collect();
    assert_eq!(
        means,
        [
            ("d1".to_owned(), dec!(83.33)),
            ("d2".to_owned(), dec!(75.00))
        ]
    );
    assert_eq!(
        means[1].1.to_string(),
        "75.00",
        "two decimals, as published"
    );
    // The incomplete unit counts in no mean; an entity without scored units has none.
    let regency: Vec<Decimal> = r.entities[1]
        .dimension_means()
        .into_iter()
        .map(|d| d.score)
        .collect();
    assert_eq!(regency, [dec!(100.00), dec!(100.00)]);
    assert!(r.entities[3].dimension_means().is_empty());
}

#[test]
fn awards_go_to_the_bands_the_methodology_names() {
    use kepatuhan_core::methodology::builtin;
    let eligible = |code: &str, year: i64, score: Decimal| {
        let m = builtin::by_code(code).unwrap();
        grade(&m, self::year(year), published(score), None).award_eligible
    };
    // Up to 2021: the green zone only.
    assert!(eligible("ori-2021", 2019, dec!(81.00)));
    assert!(
        !eligible("ori-2021", 2019, dec!(80.99)),
        "yellow earns no piagam"
    );
    // 2022 onwards: opinions A and B (the green zone), not C to E.
    assert!(eligible("ori-2022", 2022, dec!(78.00)));
    assert!(!eligible("ori-2022", 2022, dec!(77.99)));
    assert!(
        !eligible("ori-2022", 2022, dec!(10.00)),
        "a red-zone E earns no piagam"
    );
    // A methodology without the field awards every band; an unknown band is refused.
    assert!(grade(&worked(), year(2023), published(dec!(1.00)), None).award_eligible);
    let unknown = WORKED.replacen(
        "aggregation = \"mean_of_units\"",
        "aggregation = \"mean_of_units\"\naward_minimum_band = \"Z\"",
        1,
    );
    let problems = Methodology::from_toml(&unknown).unwrap_err().to_string();
    assert!(
        problems.contains("award_minimum_band: `Z` is not the code of a band"),
        "{problems}"
    );
}
