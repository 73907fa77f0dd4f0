//! Turns a raw methodology file into a [`Methodology`], collecting every problem with its path.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rust_decimal::Decimal;

use super::file::{
    RawBand, RawComponent, RawDimension, RawFollowUp, RawIndicator, RawLevel, RawMethodology,
    RawNumber, RawSurvey, RawVariable,
};
use super::{
    Aggregation, Band, BandTable, Component, Dimension, EvidenceSource, FollowUpRule, Indicator,
    IndicatorId, IndicatorSlot, Level, LikertLevel, Methodology, QuestionRef, Scale, Survey,
    SurveyId, SurveyMethod, SurveyQuestion, SurveySlot, Variable, VariableMeasure, Zone,
};
use crate::cycle::CycleYear;
use crate::score::{PUBLISHED_DECIMALS, Weight};

/// One problem in a methodology file, located by its path
/// (e.g. `dimensions[2].variables[0].indicators[3].weight`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where the problem is.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one methodology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<Problem>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in methodology:", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Why a methodology could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is not well-formed TOML/JSON, or has a key or value of the wrong type.
    #[error("methodology file is malformed: {0}")]
    Syntax(String),
    /// The file is well-formed but breaks the methodology's rules.
    #[error("{0}")]
    Invalid(ValidationErrors),
}

impl LoadError {
    /// The individual problems (a syntax error is one problem at the document's root).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Syntax(msg) => vec![Problem {
                path: String::new(),
                message: msg.clone(),
            }],
            LoadError::Invalid(errors) => errors.0.clone(),
        }
    }
}

impl Methodology {
    /// Loads and validates a methodology written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        let raw: RawMethodology =
            toml::from_str(text).map_err(|e| LoadError::Syntax(e.to_string().trim().to_owned()))?;
        build(raw)
    }

    /// Loads and validates a methodology written in JSON.
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        let raw: RawMethodology =
            serde_json::from_str(text).map_err(|e| LoadError::Syntax(e.to_string()))?;
        build(raw)
    }
}

/// Collects problems while building.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn text(&mut self, path: &str, value: Option<String>) -> Option<String> {
        match value {
            Some(v) if !v.trim().is_empty() => Some(v),
            Some(_) => {
                self.report(path, "must not be empty");
                None
            }
            None => {
                self.report(path, "is required");
                None
            }
        }
    }

    /// A stable code: lower-case ASCII letters, digits, `_` and `-`, starting with a letter.
    fn code(&mut self, path: &str, value: Option<String>) -> Option<String> {
        let v = self.text(path, value)?;
        let ok = v.starts_with(|c: char| c.is_ascii_lowercase())
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Some(v)
        } else {
            self.report(path, format!("`{v}` is not a valid code (lower-case letters, digits, `_`, `-`; starts with a letter)"));
            None
        }
    }

    fn decimal(&mut self, path: &str, value: Option<RawNumber>) -> Option<Decimal> {
        match value {
            None => {
                self.report(path, "is required");
                None
            }
            Some(RawNumber::Int(i)) => Some(Decimal::from(i)),
            Some(RawNumber::Text(t)) => match t.trim().parse::<Decimal>() {
                Ok(d) => Some(d),
                Err(_) => {
                    self.report(path, format!("`{t}` is not a decimal number"));
                    None
                }
            },
            Some(RawNumber::Float(f)) => {
                self.report(
                    path,
                    format!("write decimals as text (\"{f}\") so they stay exact; binary floating point is not accepted"),
                );
                None
            }
        }
    }

    fn weight(&mut self, path: &str, value: Option<RawNumber>) -> Option<Weight> {
        let d = self.decimal(path, value)?;
        match Weight::new(d) {
            Ok(w) => Some(w),
            Err(_) => {
                self.report(path, format!("must be > 0, got {d}"));
                None
            }
        }
    }

    fn year(&mut self, path: &str, value: Option<i64>) -> Option<CycleYear> {
        let Some(y) = value else {
            self.report(path, "is required");
            return None;
        };
        match CycleYear::new(y) {
            Ok(y) => Some(y),
            Err(e) => {
                self.report(path, e.to_string());
                None
            }
        }
    }

    fn unique<'a>(
        &mut self,
        seen: &mut HashMap<String, String>,
        code: &'a str,
        path: &str,
        what: &str,
    ) -> Option<&'a str> {
        if let Some(first) = seen.get(code) {
            self.report(
                path,
                format!("duplicate {what} code `{code}` (first used at {first})"),
            );
            None
        } else {
            seen.insert(code.to_owned(), path.to_owned());
            Some(code)
        }
    }

    fn weights_sum_to_100(&mut self, path: &str, weights: &[Option<Weight>], what: &str) {
        if weights.iter().all(Option::is_some) && !weights.is_empty() {
            let sum: Decimal = weights.iter().flatten().map(|w| w.value()).sum();
            if sum != Decimal::ONE_HUNDRED {
                self.report(
                    path,
                    format!("{what} weights must sum to 100, they sum to {sum}"),
                );
            }
        }
    }
}

fn build(raw: RawMethodology) -> Result<Methodology, LoadError> {
    let mut c = Checker::default();
    let code = c.code("code", raw.code);
    let name = c.text("name", raw.name);
    let first_year = c.year("first_year", raw.first_year);
    let last_year = raw.last_year.and_then(|y| c.year("last_year", Some(y)));
    if let (Some(first), Some(last)) = (first_year, last_year)
        && last < first
    {
        c.report(
            "last_year",
            format!("must not be before first_year ({first}), got {last}"),
        );
    }
    let aggregation = match raw.aggregation.as_deref() {
        Some("mean_of_units") => Some(Aggregation::MeanOfUnits),
        Some("mean_of_products") => Some(Aggregation::MeanOfProducts),
        Some(other) => {
            c.report(
                "aggregation",
                format!("unknown rule `{other}` (expected mean_of_units or mean_of_products)"),
            );
            None
        }
        None => {
            c.report("aggregation", "is required");
            None
        }
    };

    let scales: HashMap<String, Option<Scale>> = raw
        .scales
        .into_iter()
        .map(|(name, s)| {
            let scale = build_scale(&mut c, &format!("scales.{name}.levels"), s.levels);
            (name, scale)
        })
        .collect();

    let mut codes = HashMap::new();
    let mut dimension_codes = HashMap::new();
    if raw.dimensions.is_empty() {
        c.report("dimensions", "a methodology needs at least one dimension");
    }
    let (dim_weights, dimensions): (Vec<Option<Weight>>, Vec<Option<Dimension>>) = raw
        .dimensions
        .into_iter()
        .enumerate()
        .map(|(d, dim)| {
            let path = format!("dimensions[{d}]");
            build_dimension(
                &mut c,
                &mut codes,
                &mut dimension_codes,
                &scales,
                &path,
                dim,
            )
        })
        .unzip();
    c.weights_sum_to_100("dimensions", &dim_weights, "dimension");

    let composition = build_composition(&mut c, &mut codes, raw.composition);
    let bands = build_bands(&mut c, raw.bands);
    let follow_up = raw.follow_up.and_then(|f| build_follow_up(&mut c, f));
    check_award_band(&mut c, raw.award_minimum_band.as_deref(), bands.as_ref());
    check_survey_links(&mut c, &dimensions, composition.as_deref());

    if !c.problems.is_empty() {
        return Err(LoadError::Invalid(ValidationErrors(c.problems)));
    }
    // No problem was reported, so every optional above is present.
    let (
        Some(code),
        Some(name),
        Some(first_year),
        Some(aggregation),
        Some(composition),
        Some(bands),
    ) = (code, name, first_year, aggregation, composition, bands)
    else {
        unreachable!("every missing part was reported as a problem");
    };
    let dimensions: Vec<Dimension> = dimensions.into_iter().flatten().collect();
    Ok(index(Methodology {
        code,
        name,
        description: raw.description,
        first_year,
        last_year,
        dimensions,
        composition,
        aggregation,
        bands,
        award_minimum_band: raw.award_minimum_band,
        follow_up,
        indicators: Vec::new(),
        surveys: Vec::new(),
        indicator_index: HashMap::new(),
        survey_index: HashMap::new(),
    }))
}

/// Every indicator's `survey_questions` name a question of a yes/no (maladministration) survey
/// of the methodology.
fn check_survey_links(
    c: &mut Checker,
    dimensions: &[Option<Dimension>],
    composition: Option<&[Component]>,
) {
    let surveys = dimensions
        .iter()
        .flatten()
        .flat_map(|d| &d.variables)
        .filter_map(|v| match &v.measure {
            VariableMeasure::Survey(s) => Some(s),
            VariableMeasure::Indicators { .. } => None,
        })
        .chain(composition.into_iter().flatten().filter_map(|c| match c {
            Component::Survey { survey, .. } => Some(survey),
            Component::Dimensions { .. } => None,
        }));
    let surveys: HashMap<&str, &Survey> = surveys.map(|s| (s.code.as_str(), s)).collect();
    for (d, dimension) in dimensions.iter().enumerate() {
        let Some(dimension) = dimension else { continue };
        for (v, variable) in dimension.variables.iter().enumerate() {
            let VariableMeasure::Indicators { indicators, .. } = &variable.measure else {
                continue;
            };
            for (i, indicator) in indicators.iter().enumerate() {
                for (k, link) in indicator.survey_questions.iter().enumerate() {
                    let path = format!(
                        "dimensions[{d}].variables[{v}].indicators[{i}].survey_questions[{k}]"
                    );
                    match surveys.get(link.survey.as_str()) {
                        None => c.report(path, format!("unknown survey `{}`", link.survey)),
                        Some(s) if !matches!(s.method, SurveyMethod::NoMaladministrationShare) => {
                            c.report(
                                path,
                                format!(
                                    "`{}` is not a yes/no (maladministration) survey",
                                    link.survey
                                ),
                            );
                        }
                        Some(s) if !s.questions.iter().any(|q| q.code == link.question) => {
                            c.report(
                                path,
                                format!(
                                    "survey `{}` has no question `{}`",
                                    link.survey, link.question
                                ),
                            );
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

fn build_scale(c: &mut Checker, path: &str, levels: Vec<RawLevel>) -> Option<Scale> {
    if levels.is_empty() {
        c.report(path, "a scale needs at least two levels");
        return None;
    }
    let before = c.problems.len();
    let mut out = Vec::with_capacity(levels.len());
    let mut previous: Option<i64> = None;
    for (i, level) in levels.into_iter().enumerate() {
        let lpath = format!("{path}[{i}]");
        let Some(value) = level.value else {
            c.report(format!("{lpath}.value"), "is required");
            continue;
        };
        if !(0..=100).contains(&value) {
            c.report(
                format!("{lpath}.value"),
                format!("must be between 0 and 100, got {value}"),
            );
            continue;
        }
        if i == 0 && value != 0 {
            c.report(
                format!("{lpath}.value"),
                format!("the lowest level must be 0, got {value}"),
            );
        }
        if let Some(p) = previous
            && value <= p
        {
            c.report(
                format!("{lpath}.value"),
                format!("levels must be in strictly increasing order ({value} after {p})"),
            );
        }
        if level.description.trim().is_empty() {
            c.report(
                format!("{lpath}.description"),
                "every level needs a description for the assessor",
            );
        }
        previous = Some(value);
        out.push(Level {
            value: u8::try_from(value).unwrap_or(u8::MAX),
            description: level.description,
        });
    }
    if out.len() == 1 {
        c.report(path, "a scale needs at least two levels");
    }
    (c.problems.len() == before && out.len() >= 2).then_some(Scale { levels: out })
}

fn build_dimension(
    c: &mut Checker,
    codes: &mut HashMap<String, String>,
    dimension_codes: &mut HashMap<String, String>,
    scales: &HashMap<String, Option<Scale>>,
    path: &str,
    raw: RawDimension,
) -> (Option<Weight>, Option<Dimension>) {
    let code = c.code(&format!("{path}.code"), raw.code);
    if let Some(code) = &code {
        c.unique(dimension_codes, code, &format!("{path}.code"), "dimension");
    }
    let name = c.text(&format!("{path}.name"), raw.name);
    let weight = c.weight(&format!("{path}.weight"), raw.weight);
    if raw.variables.is_empty() {
        c.report(
            format!("{path}.variables"),
            "a dimension needs at least one variable",
        );
    }
    let variables: Vec<Option<Variable>> = raw
        .variables
        .into_iter()
        .enumerate()
        .map(|(v, var)| build_variable(c, codes, scales, &format!("{path}.variables[{v}]"), var))
        .collect();
    let variables: Option<Vec<Variable>> = variables.into_iter().collect();
    let dimension = (|| {
        Some(Dimension {
            code: code?,
            name: name?,
            weight: weight?,
            variables: variables?,
        })
    })();
    (weight, dimension)
}

fn build_variable(
    c: &mut Checker,
    codes: &mut HashMap<String, String>,
    scales: &HashMap<String, Option<Scale>>,
    path: &str,
    raw: RawVariable,
) -> Option<Variable> {
    let code = c.code(&format!("{path}.code"), raw.code);
    if let Some(code) = &code {
        c.unique(
            codes,
            code,
            &format!("{path}.code"),
            "variable/indicator/survey",
        );
    }
    let name = c.text(&format!("{path}.name"), raw.name);
    let weight = c.weight(&format!("{path}.weight"), raw.weight);
    let measure = match (raw.indicators, raw.survey) {
        (Some(indicators), None) => build_indicators(c, codes, scales, path, indicators),
        (None, Some(survey)) => {
            if survey.code.is_some() {
                c.report(
                    format!("{path}.survey.code"),
                    "a survey variable uses its variable's code; remove this key",
                );
            }
            build_survey(c, &format!("{path}.survey"), code.clone(), survey)
                .map(VariableMeasure::Survey)
        }
        (Some(_), Some(_)) => {
            c.report(
                path,
                "a variable has either `indicators` or `survey`, not both",
            );
            None
        }
        (None, None) => {
            c.report(path, "a variable needs `indicators` or a `survey`");
            None
        }
    };
    Some(Variable {
        code: code?,
        name: name?,
        weight: weight?,
        measure: measure?,
    })
}

fn build_indicators(
    c: &mut Checker,
    codes: &mut HashMap<String, String>,
    scales: &HashMap<String, Option<Scale>>,
    path: &str,
    raw: Vec<RawIndicator>,
) -> Option<VariableMeasure> {
    if raw.is_empty() {
        c.report(
            format!("{path}.indicators"),
            "a variable needs at least one indicator",
        );
        return None;
    }
    let built: Vec<Option<Indicator>> = raw
        .into_iter()
        .enumerate()
        .map(|(i, ind)| build_indicator(c, codes, scales, &format!("{path}.indicators[{i}]"), ind))
        .collect();
    let mut indicators: Vec<Indicator> = built.into_iter().collect::<Option<_>>()?;
    let lcm = indicators
        .iter()
        .fold(1u64, |acc, i| lcm(acc, u64::from(i.scale.max())));
    for ind in &mut indicators {
        let factor = Decimal::from(lcm / u64::from(ind.scale.max()));
        ind.numerators = ind
            .scale
            .levels
            .iter()
            .map(|l| ind.weight.value() * Decimal::from(l.value) * factor)
            .collect();
    }
    Some(VariableMeasure::Indicators {
        indicators,
        lcm: Decimal::from(lcm),
    })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    if a == 0 || b == 0 {
        a.max(b)
    } else {
        a / gcd(a, b) * b
    }
}

fn build_indicator(
    c: &mut Checker,
    codes: &mut HashMap<String, String>,
    scales: &HashMap<String, Option<Scale>>,
    path: &str,
    raw: RawIndicator,
) -> Option<Indicator> {
    let code = c.code(&format!("{path}.code"), raw.code);
    if let Some(code) = &code {
        c.unique(
            codes,
            code,
            &format!("{path}.code"),
            "variable/indicator/survey",
        );
    }
    let name = c.text(&format!("{path}.name"), raw.name);
    let weight = c.weight(&format!("{path}.weight"), raw.weight);
    let source = match raw.source.as_deref() {
        Some("interview") => Some(EvidenceSource::Interview),
        Some("observation") => Some(EvidenceSource::Observation),
        Some("document") => Some(EvidenceSource::Document),
        Some("survey") => Some(EvidenceSource::Survey),
        Some(other) => {
            c.report(format!("{path}.source"), format!("unknown evidence source `{other}` (expected interview, observation, document or survey)"));
            None
        }
        None => {
            c.report(format!("{path}.source"), "is required");
            None
        }
    };
    let scale = match (raw.scale, raw.levels) {
        (Some(name), None) => match scales.get(&name) {
            Some(Some(scale)) => Some(scale.clone()),
            Some(None) => None, // the scale itself was reported
            None => {
                c.report(
                    format!("{path}.scale"),
                    format!("unknown scale `{name}` (not defined under [scales])"),
                );
                None
            }
        },
        (None, Some(levels)) => build_scale(c, &format!("{path}.levels"), levels),
        (Some(_), Some(_)) => {
            c.report(
                path,
                "an indicator has either `scale` or `levels`, not both",
            );
            None
        }
        (None, None) => {
            c.report(path, "an indicator needs a `scale` name or inline `levels`");
            None
        }
    };
    let effort = match raw.effort {
        None => Some(1),
        Some(e) => match u32::try_from(e) {
            Ok(e) if (1..=Indicator::MAX_EFFORT).contains(&e) => Some(e),
            _ => {
                c.report(
                    format!("{path}.effort"),
                    format!(
                        "must be a whole number from 1 to {}, got {e}",
                        Indicator::MAX_EFFORT
                    ),
                );
                None
            }
        },
    };
    let (evidence_expected, survey_questions) = evidence_rules(
        c,
        path,
        source,
        raw.evidence.as_deref(),
        raw.survey_questions,
    );
    Some(Indicator {
        code: code?,
        name: name?,
        weight: weight?,
        source: source?,
        scale: scale?,
        effort: effort?,
        not_applicable_allowed: raw.not_applicable.unwrap_or(true),
        evidence_expected: evidence_expected?,
        survey_questions,
        numerators: Vec::new(),
    })
}

/// An indicator's evidence rule (`expected` by default for document evidence) and its links to
/// survey questions, checked for form (the links resolve in [`check_survey_links`]).
fn evidence_rules(
    c: &mut Checker,
    path: &str,
    source: Option<EvidenceSource>,
    evidence: Option<&str>,
    links: Vec<String>,
) -> (Option<bool>, Vec<QuestionRef>) {
    let evidence_expected = match evidence {
        None => source.map(|s| s == EvidenceSource::Document),
        Some("expected") => Some(true),
        Some("optional") => Some(false),
        Some(other) => {
            c.report(
                format!("{path}.evidence"),
                format!("unknown evidence rule `{other}` (expected `expected` or `optional`)"),
            );
            None
        }
    };
    let mut survey_questions = Vec::with_capacity(links.len());
    for (k, link) in links.into_iter().enumerate() {
        match link.split_once('.') {
            Some((survey, question)) if !survey.is_empty() && !question.is_empty() => {
                survey_questions.push(QuestionRef {
                    survey: survey.to_owned(),
                    question: question.to_owned(),
                });
            }
            _ => c.report(
                format!("{path}.survey_questions[{k}]"),
                format!("`{link}` is not a `survey.question` code"),
            ),
        }
    }
    (evidence_expected, survey_questions)
}

fn build_survey(
    c: &mut Checker,
    path: &str,
    code: Option<String>,
    raw: RawSurvey,
) -> Option<Survey> {
    let before = c.problems.len();
    let method = match (raw.method.as_deref(), raw.likert) {
        (Some("no_maladministration_share"), None) => Some(SurveyMethod::NoMaladministrationShare),
        (Some("no_maladministration_share"), Some(_)) => {
            c.report(
                format!("{path}.likert"),
                "only a `likert` method takes Likert levels",
            );
            None
        }
        (Some("likert"), Some(levels)) => build_likert(c, &format!("{path}.likert"), levels),
        (Some("likert"), None) => {
            c.report(
                format!("{path}.likert"),
                "a Likert survey needs its levels and their points",
            );
            None
        }
        (Some(other), _) => {
            c.report(format!("{path}.method"), format!("unknown survey method `{other}` (expected no_maladministration_share or likert)"));
            None
        }
        (None, _) => {
            c.report(format!("{path}.method"), "is required");
            None
        }
    };
    if raw.questions.is_empty() {
        c.report(
            format!("{path}.questions"),
            "a survey needs at least one question",
        );
    }
    let mut seen = HashMap::new();
    let mut questions = Vec::with_capacity(raw.questions.len());
    for (i, q) in raw.questions.into_iter().enumerate() {
        let qpath = format!("{path}.questions[{i}]");
        let qcode = c.code(&format!("{qpath}.code"), q.code);
        if let Some(qcode) = &qcode {
            c.unique(&mut seen, qcode, &format!("{qpath}.code"), "question");
        }
        if q.text.trim().is_empty() {
            c.report(format!("{qpath}.text"), "must not be empty");
        }
        if let Some(qcode) = qcode {
            questions.push(SurveyQuestion {
                code: qcode,
                text: q.text,
            });
        }
    }
    if c.problems.len() != before {
        return None;
    }
    Some(Survey {
        code: code?,
        questions,
        method: method?,
    })
}

fn build_likert(
    c: &mut Checker,
    path: &str,
    raw: Vec<super::file::RawLikertLevel>,
) -> Option<SurveyMethod> {
    if raw.len() < 2 {
        c.report(path, "a Likert scale needs at least two levels");
        return None;
    }
    let before = c.problems.len();
    let mut levels = Vec::with_capacity(raw.len());
    let mut previous: Option<i64> = None;
    for (i, l) in raw.into_iter().enumerate() {
        let lpath = format!("{path}[{i}]");
        let points = c.decimal(&format!("{lpath}.points"), l.points);
        if let Some(p) = points
            && (p < Decimal::ZERO || p > Decimal::ONE_HUNDRED)
        {
            c.report(
                format!("{lpath}.points"),
                format!("must be between 0 and 100, got {p}"),
            );
        }
        let value = match l.value {
            Some(v) if (0..=100).contains(&v) => Some(v),
            Some(v) => {
                c.report(
                    format!("{lpath}.value"),
                    format!("must be between 0 and 100, got {v}"),
                );
                None
            }
            None => {
                c.report(format!("{lpath}.value"), "is required");
                None
            }
        };
        if let (Some(v), Some(p)) = (value, previous)
            && v <= p
        {
            c.report(
                format!("{lpath}.value"),
                format!("levels must be in strictly increasing order ({v} after {p})"),
            );
        }
        if l.label.trim().is_empty() {
            c.report(format!("{lpath}.label"), "must not be empty");
        }
        previous = value.or(previous);
        if let (Some(v), Some(p)) = (value, points) {
            levels.push(LikertLevel {
                value: u8::try_from(v).unwrap_or(u8::MAX),
                label: l.label,
                points: p,
            });
        }
    }
    (c.problems.len() == before).then_some(SurveyMethod::Likert { levels })
}

fn build_composition(
    c: &mut Checker,
    codes: &mut HashMap<String, String>,
    raw: Vec<RawComponent>,
) -> Option<Vec<Component>> {
    if raw.is_empty() {
        c.report("composition", "the final score needs at least one component (e.g. kind = \"dimensions\", weight = 100)");
        return None;
    }
    let before = c.problems.len();
    let mut dimensions_seen = 0;
    let mut out = Vec::with_capacity(raw.len());
    for (i, comp) in raw.into_iter().enumerate() {
        let path = format!("composition[{i}]");
        let weight = c.weight(&format!("{path}.weight"), comp.weight);
        match comp.kind.as_deref() {
            Some("dimensions") => {
                dimensions_seen += 1;
                if comp.survey.is_some() {
                    c.report(
                        format!("{path}.survey"),
                        "a dimensions component takes no survey",
                    );
                }
                if let Some(weight) = weight {
                    out.push(Component::Dimensions { weight });
                }
            }
            Some("survey") => {
                let name = c.text(&format!("{path}.name"), comp.name);
                let survey = match comp.survey {
                    Some(s) => {
                        let code = c.code(&format!("{path}.survey.code"), s.code.clone());
                        if let Some(code) = &code {
                            c.unique(
                                codes,
                                code,
                                &format!("{path}.survey.code"),
                                "variable/indicator/survey",
                            );
                        }
                        build_survey(c, &format!("{path}.survey"), code, s)
                    }
                    None => {
                        c.report(
                            format!("{path}.survey"),
                            "a survey component needs its survey",
                        );
                        None
                    }
                };
                if let (Some(name), Some(weight), Some(survey)) = (name, weight, survey) {
                    out.push(Component::Survey {
                        name,
                        weight,
                        survey,
                    });
                }
            }
            Some(other) => c.report(
                format!("{path}.kind"),
                format!("unknown component `{other}` (expected dimensions or survey)"),
            ),
            None => c.report(format!("{path}.kind"), "is required"),
        }
    }
    if dimensions_seen != 1 {
        c.report(
            "composition",
            format!("exactly one component must be the dimensions, found {dimensions_seen}"),
        );
    }
    let weights: Vec<Option<Weight>> = out.iter().map(|c| Some(c.weight())).collect();
    if c.problems.len() == before {
        c.weights_sum_to_100("composition", &weights, "component");
    }
    (c.problems.len() == before).then_some(out)
}

fn build_bands(c: &mut Checker, raw: Vec<RawBand>) -> Option<BandTable> {
    if raw.is_empty() {
        c.report(
            "bands",
            "the band table needs at least one band, starting at 0",
        );
        return None;
    }
    let before = c.problems.len();
    let mut seen = HashMap::new();
    let mut bounds = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    let mut previous: Option<Decimal> = None;
    for (i, b) in raw.into_iter().enumerate() {
        let path = format!("bands[{i}]");
        let code = c.text(&format!("{path}.code"), b.code);
        if let Some(code) = &code {
            c.unique(&mut seen, code, &format!("{path}.code"), "band");
        }
        let label = c.text(&format!("{path}.label"), b.label);
        let zone = match b.zone.as_deref() {
            None => None,
            Some("green") => Some(Zone::Green),
            Some("yellow") => Some(Zone::Yellow),
            Some("red") => Some(Zone::Red),
            Some(other) => {
                c.report(
                    format!("{path}.zone"),
                    format!("unknown zone `{other}` (expected green, yellow or red)"),
                );
                None
            }
        };
        let lower = c.decimal(&format!("{path}.lower"), b.lower);
        if let Some(lower) = lower {
            if lower < Decimal::ZERO || lower > Decimal::ONE_HUNDRED {
                c.report(
                    format!("{path}.lower"),
                    format!("must be between 0 and 100, got {lower}"),
                );
            } else if lower.normalize().scale() > PUBLISHED_DECIMALS {
                c.report(format!("{path}.lower"), format!("bounds are compared with published scores, so they have at most 2 decimals, got {lower}"));
            }
            if !bounds.insert(lower.normalize()) {
                c.report(
                    format!("{path}.lower"),
                    format!("overlap: another band already starts at {lower}"),
                );
            } else if let Some(p) = previous
                && lower > p
            {
                c.report(
                    format!("{path}.lower"),
                    format!("bands are listed from the highest to the lowest ({lower} after {p})"),
                );
            }
            previous = Some(lower);
        }
        if let (Some(code), Some(label), Some(lower)) = (code, label, lower) {
            out.push(Band {
                code,
                label,
                zone,
                category: b.category,
                lower,
            });
        }
    }
    if previous.is_some_and(|p| p != Decimal::ZERO) {
        c.report(
            "bands",
            format!(
                "gap: no band covers scores from 0 (the lowest band starts at {})",
                previous.unwrap_or_default()
            ),
        );
    }
    (c.problems.len() == before).then_some(BandTable { bands: out })
}

/// The award's minimum band must be one of the table's bands.
fn check_award_band(c: &mut Checker, minimum: Option<&str>, bands: Option<&BandTable>) {
    if let (Some(minimum), Some(table)) = (minimum, bands)
        && table.position(minimum).is_none()
    {
        c.report(
            "award_minimum_band",
            format!("`{minimum}` is not the code of a band"),
        );
    }
}

fn build_follow_up(c: &mut Checker, raw: RawFollowUp) -> Option<FollowUpRule> {
    let applies_from = c.year("follow_up.applies_from", raw.applies_from)?;
    if let Some(s) = &raw.complete_suffix
        && s.trim().is_empty()
    {
        c.report("follow_up.complete_suffix", "must not be empty when given");
    }
    Some(FollowUpRule {
        applies_from,
        award_requires_complete: raw.award_requires_complete,
        complete_suffix: raw.complete_suffix,
    })
}

/// Fills the flat indexes of a validated methodology.
fn index(mut m: Methodology) -> Methodology {
    let as_u32 = |i: usize| u32::try_from(i).expect("fewer than 4 billion indicators");
    for (d, dim) in m.dimensions.iter().enumerate() {
        for (v, var) in dim.variables.iter().enumerate() {
            match &var.measure {
                VariableMeasure::Indicators { indicators, .. } => {
                    for (i, ind) in indicators.iter().enumerate() {
                        m.indicator_index
                            .insert(ind.code.clone(), IndicatorId(as_u32(m.indicators.len())));
                        m.indicators.push(IndicatorSlot {
                            dimension: d,
                            variable: v,
                            indicator: i,
                        });
                    }
                }
                VariableMeasure::Survey(s) => {
                    m.survey_index
                        .insert(s.code.clone(), SurveyId(as_u32(m.surveys.len())));
                    m.surveys.push(SurveySlot::Variable {
                        dimension: d,
                        variable: v,
                    });
                }
            }
        }
    }
    for (k, comp) in m.composition.iter().enumerate() {
        if let Component::Survey { survey, .. } = comp {
            m.survey_index
                .insert(survey.code.clone(), SurveyId(as_u32(m.surveys.len())));
            m.surveys.push(SurveySlot::Component { component: k });
        }
    }
    m
}
