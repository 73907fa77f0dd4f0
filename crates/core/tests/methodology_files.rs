//! Loading methodology files: the shipped ones load, and every mistake is named with its path.

use kepatuhan_core::methodology::{Aggregation, LoadError, builtin};
use kepatuhan_core::{CycleYear, Methodology};

#[test]
fn every_shipped_methodology_loads() {
    let all = builtin::all().unwrap_or_else(|(file, e)| panic!("{file}: {e}"));
    let codes: Vec<&str> = all.iter().map(Methodology::code).collect();
    assert_eq!(codes, ["ori-2021", "ori-2022", "ori-2025"]);
    for m in &all {
        assert!(
            m.indicator_count() >= 18,
            "{}: a realistic instrument",
            m.code()
        );
        for id in m.indicator_ids() {
            let ind = m.indicator(id);
            assert!(
                ind.scale.levels.iter().all(|l| !l.description.is_empty()),
                "{}",
                ind.code
            );
        }
    }
    let m22 = &all[1];
    assert_eq!(m22.indicator_count(), 33);
    assert_eq!(
        m22.dimensions()
            .iter()
            .map(|d| d.weight.value().to_string())
            .collect::<Vec<_>>(),
        ["21.85", "32.37", "24.24", "21.54"]
    );
    assert_eq!(all[0].aggregation(), Aggregation::MeanOfProducts);
    assert_eq!(all[2].composition().len(), 2);
}

#[test]
fn shipped_methodologies_are_chosen_by_year() {
    let code = |y| builtin::for_year(CycleYear::new(y).unwrap()).map(|m| m.code().to_owned());
    assert_eq!(code(2019).as_deref(), Some("ori-2021"));
    assert_eq!(code(2021).as_deref(), Some("ori-2021"));
    assert_eq!(code(2022).as_deref(), Some("ori-2022"));
    assert_eq!(code(2024).as_deref(), Some("ori-2022"));
    assert_eq!(code(2025).as_deref(), Some("ori-2025"));
    assert_eq!(code(2027).as_deref(), Some("ori-2025"));
    assert_eq!(code(2010), None);
}

#[test]
fn json_and_toml_describe_the_same_methodology() {
    let json = r#"{
      "code": "tiny", "name": "Tiny", "first_year": 2022, "aggregation": "mean_of_units",
      "dimensions": [{ "code": "d", "name": "D", "weight": 100, "variables": [
        { "code": "v", "name": "V", "weight": 1, "indicators": [
          { "code": "i", "name": "I", "weight": "1.5", "source": "document",
            "levels": [{ "value": 0, "description": "tidak" }, { "value": 1, "description": "ya" }] }
        ] }
      ] }],
      "composition": [{ "kind": "dimensions", "weight": 100 }],
      "bands": [{ "code": "ok", "label": "Baik", "lower": "50" }, { "code": "low", "label": "Kurang", "lower": 0 }]
    }"#;
    let m = Methodology::from_json(json).unwrap();
    assert_eq!(m.indicator_count(), 1);
    assert_eq!(
        m.indicator(m.indicator_id("i").unwrap())
            .weight
            .value()
            .to_string(),
        "1.5"
    );
}

fn problems(text: &str) -> Vec<String> {
    match Methodology::from_toml(text) {
        Ok(_) => panic!("expected the methodology to be refused"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
code = "Bad Code"
name = ""
first_year = 1999
last_year = 2021
aggregation = "median"

[scales.broken]
levels = [{ value = 1, description = "satu" }, { value = 0, description = "" }]

[[dimensions]]
code = "input"
name = "Input"
weight = "21.85"
[[dimensions.variables]]
code = "competence"
name = "Kompetensi"
weight = 1
indicators = [
  { code = "knows", name = "Tahu", weight = 1, source = "interview", scale = "broken" },
  { code = "ethics", name = "Etika", weight = 0, source = "gossip", scale = "missing" },
  { code = "knows", name = "Tahu lagi", weight = 21.5, source = "interview", levels = [] },
]

[[dimensions]]
code = "input"
name = "Proses"
weight = 40
[[dimensions.variables]]
code = "standards"
name = "Standar"
weight = -1
indicators = []

[[dimensions.variables]]
code = "perception"
name = "Persepsi"
weight = 1
[dimensions.variables.survey]
method = "likert"
questions = [{ code = "q", text = "Apa?" }, { code = "q", text = "" }]

[[composition]]
kind = "survey"
weight = 100

[[bands]]
code = "A"
label = "Tertinggi"
lower = "88.005"
[[bands]]
code = "A"
label = "Tinggi"
zone = "blue"
lower = "88.005"
[[bands]]
code = "C"
label = "Sedang"
lower = "54"
"#;
    let got = problems(text);
    let expected = [
        "code: `Bad Code` is not a valid code (lower-case letters, digits, `_`, `-`; starts with a letter)",
        "name: must not be empty",
        "first_year: cycle year must be between 2000 and 2100, got 1999",
        "aggregation: unknown rule `median` (expected mean_of_units or mean_of_products)",
        "scales.broken.levels[0].value: the lowest level must be 0, got 1",
        "scales.broken.levels[1].value: levels must be in strictly increasing order (0 after 1)",
        "scales.broken.levels[1].description: every level needs a description for the assessor",
        "dimensions[0].variables[0].indicators[1].weight: must be > 0, got 0",
        "dimensions[0].variables[0].indicators[1].source: unknown evidence source `gossip` (expected interview, observation, document or survey)",
        "dimensions[0].variables[0].indicators[1].scale: unknown scale `missing` (not defined under [scales])",
        "dimensions[0].variables[0].indicators[2].code: duplicate variable/indicator/survey code `knows` (first used at dimensions[0].variables[0].indicators[0].code)",
        "dimensions[0].variables[0].indicators[2].weight: write decimals as text (\"21.5\") so they stay exact; binary floating point is not accepted",
        "dimensions[0].variables[0].indicators[2].levels: a scale needs at least two levels",
        "dimensions[1].code: duplicate dimension code `input` (first used at dimensions[0].code)",
        "dimensions[1].variables[0].weight: must be > 0, got -1",
        "dimensions[1].variables[0].indicators: a variable needs at least one indicator",
        "dimensions[1].variables[1].survey.likert: a Likert survey needs its levels and their points",
        "dimensions[1].variables[1].survey.questions[1].code: duplicate question code `q` (first used at dimensions[1].variables[1].survey.questions[0].code)",
        "dimensions[1].variables[1].survey.questions[1].text: must not be empty",
        "dimensions: dimension weights must sum to 100, they sum to 61.85",
        "composition[0].name: is required",
        "composition[0].survey: a survey component needs its survey",
        "composition: exactly one component must be the dimensions, found 0",
        "bands[0].lower: bounds are compared with published scores, so they have at most 2 decimals, got 88.005",
        "bands[1].code: duplicate band code `A` (first used at bands[0].code)",
        "bands[1].zone: unknown zone `blue` (expected green, yellow or red)",
        "bands[1].lower: bounds are compared with published scores, so they have at most 2 decimals, got 88.005",
        "bands[1].lower: overlap: another band already starts at 88.005",
        "bands: gap: no band covers scores from 0 (the lowest band starts at 54)",
    ];
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(g, e, "problem #{i}");
    }
    assert_eq!(got.len(), expected.len(), "all problems: {got:#?}");
}

#[test]
fn syntax_errors_and_unknown_keys_are_refused_with_their_location() {
    let err = Methodology::from_toml("code = \"x\"\nwieght = 3\n").unwrap_err();
    assert!(matches!(err, LoadError::Syntax(_)));
    let text = err.to_string();
    assert!(text.contains("wieght") && text.contains("line 2"), "{text}");
    let err = Methodology::from_json("{\"code\": ").unwrap_err();
    assert!(matches!(err, LoadError::Syntax(_)), "{err}");
}

#[test]
fn bands_must_be_listed_from_highest_to_lowest_and_composition_sum_to_100() {
    let base = builtin::FILES[1].text;
    let reordered = base.replacen("lower = \"88.00\"", "lower = \"20.00\"", 1);
    let got = problems(&reordered);
    assert_eq!(
        got,
        ["bands[1].lower: bands are listed from the highest to the lowest (78.00 after 20.00)"]
    );
    let weights = base.replace(
        "kind = \"dimensions\"\nweight = 100",
        "kind = \"dimensions\"\nweight = 90",
    );
    assert_eq!(
        problems(&weights),
        ["composition: component weights must sum to 100, they sum to 90"]
    );
}

/// A one-dimension methodology with the given indicator lines and a yes/no and a Likert survey.
fn with_indicators(lines: &str) -> String {
    format!(
        r#"
code = "flags"
name = "Flags"
first_year = 2025
aggregation = "mean_of_units"
[[dimensions]]
code = "d"
name = "D"
weight = 100
[[dimensions.variables]]
code = "v"
name = "V"
weight = 1
indicators = [
{lines}
]
[[dimensions.variables]]
code = "perception"
name = "Persepsi"
weight = 1
[dimensions.variables.survey]
method = "no_maladministration_share"
questions = [{{ code = "fees", text = "Pungutan?" }}]
[[composition]]
kind = "dimensions"
weight = 70
[[composition]]
kind = "survey"
name = "Kepercayaan"
weight = 30
[composition.survey]
code = "trust"
method = "likert"
likert = [{{ value = 1, label = "Tidak", points = 0 }}, {{ value = 2, label = "Ya", points = 100 }}]
questions = [{{ code = "fair", text = "Adil?" }}]
[[bands]]
code = "ok"
label = "Baik"
lower = 0
"#
    )
}

#[test]
fn indicators_say_where_not_applicable_evidence_and_survey_questions_apply() {
    let levels =
        r#"levels = [{ value = 0, description = "tidak" }, { value = 1, description = "ya" }]"#;
    let m = Methodology::from_toml(&with_indicators(&format!(
        r#"  {{ code = "doc", name = "Dok", weight = 1, source = "document", {levels} }},
  {{ code = "fees", name = "Biaya", weight = 1, source = "observation", not_applicable = false, survey_questions = ["perception.fees"], {levels} }},
  {{ code = "photo", name = "Foto", weight = 1, source = "observation", evidence = "expected", {levels} }},
  {{ code = "memo", name = "Memo", weight = 1, source = "document", evidence = "optional", {levels} }},"#
    )))
    .unwrap();
    let ind = |code| m.indicator(m.indicator_id(code).unwrap());
    // Document evidence is expected unless the methodology says otherwise; other sources only
    // when it says so.
    assert!(ind("doc").evidence_expected);
    assert!(!ind("fees").evidence_expected);
    assert!(ind("photo").evidence_expected);
    assert!(!ind("memo").evidence_expected);
    assert!(ind("doc").not_applicable_allowed);
    assert!(!ind("fees").not_applicable_allowed);
    assert_eq!(
        ind("fees").survey_questions[0].to_string(),
        "perception.fees"
    );

    // An indicator that applies to every unit refuses "not applicable".
    let mut sheet = kepatuhan_core::scoring::Sheet::new(&m);
    let refused = sheet
        .set(
            &m,
            "fees",
            kepatuhan_core::scoring::AnswerInput::NotApplicable,
        )
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "indicator `fees` applies to every unit: it cannot be marked not applicable"
    );
    sheet
        .set(
            &m,
            "doc",
            kepatuhan_core::scoring::AnswerInput::NotApplicable,
        )
        .unwrap();

    // Links must name a question of a yes/no survey; the rules are named with their paths.
    let bad = problems(&with_indicators(&format!(
        r#"  {{ code = "a", name = "A", weight = 1, source = "observation", evidence = "maybe", survey_questions = ["fees", "nosuch.q", "trust.fair", "perception.nosuch"], {levels} }},"#
    )));
    assert_eq!(
        bad,
        [
            "dimensions[0].variables[0].indicators[0].evidence: unknown evidence rule `maybe` (expected `expected` or `optional`)",
            "dimensions[0].variables[0].indicators[0].survey_questions[0]: `fees` is not a `survey.question` code",
        ]
    );
    let bad = problems(&with_indicators(&format!(
        r#"  {{ code = "a", name = "A", weight = 1, source = "observation", survey_questions = ["nosuch.q", "trust.fair", "perception.nosuch"], {levels} }},"#
    )));
    assert_eq!(
        bad,
        [
            "dimensions[0].variables[0].indicators[0].survey_questions[0]: unknown survey `nosuch`",
            "dimensions[0].variables[0].indicators[0].survey_questions[1]: `trust` is not a yes/no (maladministration) survey",
            "dimensions[0].variables[0].indicators[0].survey_questions[2]: survey `perception` has no question `nosuch`",
        ]
    );
}
