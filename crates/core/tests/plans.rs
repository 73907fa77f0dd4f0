//! Improvement plans: what a plan promises is what scoring gives, and no cheaper plan exists.

use std::fmt::Write;
use std::sync::LazyLock;

use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::{Aggregation, builtin};
use kepatuhan_core::scoring::{
    AnswerInput, Goal, PlanOutcome, Sheet, SurveyTally, UnitInput, apply_steps, plan_entity,
    plan_unit, score_unit,
};
use kepatuhan_core::synthetic::{self, Quality, Rng};
use proptest::prelude::*;

static UNIT_SCORED: LazyLock<Vec<Methodology>> = LazyLock::new(|| {
    builtin::all()
        .unwrap()
        .into_iter()
        .filter(|m| m.aggregation() == Aggregation::MeanOfUnits)
        .collect()
});

/// A complete unit of a shipped methodology: levels chosen per indicator, 1 in 10 not
/// applicable, surveys tallied from a seed.
fn shipped_unit(m: &Methodology, choices: &[(u8, bool)], seed: u64) -> UnitInput {
    let mut sheet = Sheet::new(m);
    for (id, (choice, na)) in m.indicator_ids().zip(choices.iter().cycle()) {
        let levels = &m.indicator(id).scale.levels;
        let answer = if *na {
            AnswerInput::NotApplicable
        } else {
            AnswerInput::Value(levels[usize::from(*choice) % levels.len()].value)
        };
        sheet.set_by_id(m, id, answer).unwrap();
    }
    let mut input = UnitInput::new(m, sheet);
    let mut rng = Rng::new(seed);
    for id in m.survey_ids() {
        let q = Quality(rng.below(1001));
        let respondents = 1 + rng.below(40);
        input.set_survey(id, synthetic::survey_tally(m, id, &mut rng, q, respondents));
    }
    input
}

/// A small methodology: `weights.len()` indicators (levels 0–3) in two dimensions, with the
/// given weights and efforts, and a survey component of `survey_share` percent when non-zero.
fn small_methodology(weights: &[u8], efforts: &[u8], survey_share: u8) -> Methodology {
    let mut toml = String::from(
        "code = \"small\"\nname = \"Kecil\"\ndescription = \"Uji\"\nfirst_year = 2025\naggregation = \"mean_of_units\"\n\
         [scales.s]\nlevels = [{ value = 0, description = \"nol\" }, { value = 1, description = \"satu\" }, { value = 2, description = \"dua\" }, { value = 3, description = \"tiga\" }]\n",
    );
    let half = weights.len().div_ceil(2);
    for (d, range) in [(0, 0..half), (1, half..weights.len())] {
        if range.is_empty() {
            continue;
        }
        let weight = if weights.len() == 1 { 100 } else { 40 + 20 * d };
        write!(
            toml,
            "[[dimensions]]\ncode = \"d{d}\"\nname = \"D{d}\"\nweight = {weight}\n[[dimensions.variables]]\ncode = \"v{d}\"\nname = \"V{d}\"\nweight = 1\nindicators = [\n"
        ).unwrap();
        for i in range {
            writeln!(
                toml,
                "  {{ code = \"i{i}\", name = \"I{i}\", weight = {}, effort = {}, source = \"observation\", scale = \"s\" }},",
                weights[i], efforts[i]
            ).unwrap();
        }
        toml.push_str("]\n");
    }
    if survey_share == 0 {
        toml.push_str("[[composition]]\nkind = \"dimensions\"\nweight = 100\n");
    } else {
        write!(
            toml,
            "[[composition]]\nkind = \"dimensions\"\nweight = {}\n[[composition]]\nkind = \"survey\"\nname = \"Survei\"\nweight = {survey_share}\n\
             [composition.survey]\ncode = \"trust\"\nmethod = \"likert\"\nlikert = [{{ value = 1, label = \"rendah\", points = 0 }}, {{ value = 2, label = \"tinggi\", points = 100 }}]\n\
             questions = [{{ code = \"q\", text = \"Percaya?\" }}]\n",
            100 - survey_share
        ).unwrap();
    }
    toml.push_str(
        "[[bands]]\ncode = \"A\"\nlabel = \"A\"\nlower = \"88.00\"\n[[bands]]\ncode = \"B\"\nlabel = \"B\"\nlower = \"78.00\"\n\
         [[bands]]\ncode = \"C\"\nlabel = \"C\"\nlower = \"54.00\"\n[[bands]]\ncode = \"D\"\nlabel = \"D\"\nlower = \"0\"\n",
    );
    Methodology::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

/// A unit of the small methodology at the given level positions, its survey half convinced.
fn small_unit(m: &Methodology, levels: &[u8], trust: (u64, u64)) -> UnitInput {
    let mut sheet = Sheet::new(m);
    for (id, level) in m.indicator_ids().zip(levels) {
        sheet.set_by_id(m, id, AnswerInput::Value(*level)).unwrap();
    }
    let mut input = UnitInput::new(m, sheet);
    for id in m.survey_ids() {
        let tally = SurveyTally::from_counts(m.survey(id), vec![trust.0, trust.1]).unwrap();
        input.set_survey(id, tally);
    }
    input
}

/// Every way to raise the indicators (each to any level at or above its own): the least effort
/// that reaches `lower`, with the fewest indicators changed at that effort.
fn brute_force(
    m: &Methodology,
    input: &UnitInput,
    levels: &[u8],
    lower: rust_decimal::Decimal,
) -> Option<(u32, usize)> {
    let efforts: Vec<u32> = m.indicator_ids().map(|id| m.indicator(id).effort).collect();
    let mut best: Option<(u32, usize)> = None;
    let mut choice: Vec<u8> = levels.to_vec();
    loop {
        let mut sheet = Sheet::new(m);
        for (id, level) in m.indicator_ids().zip(&choice) {
            sheet.set_by_id(m, id, AnswerInput::Value(*level)).unwrap();
        }
        let mut raised = input.clone();
        raised.sheets[0] = sheet;
        if score_unit(m, &raised).unwrap().published.value() >= lower {
            let cost: u32 = choice
                .iter()
                .zip(levels)
                .zip(&efforts)
                .map(|((c, l), e)| u32::from(c - l) * e)
                .sum();
            let changed = choice.iter().zip(levels).filter(|(c, l)| c != l).count();
            if best.is_none_or(|b| (cost, changed) < b) {
                best = Some((cost, changed));
            }
        }
        // Next combination (odometer over levels ≥ the unit's own).
        let mut i = 0;
        loop {
            if i == choice.len() {
                return best;
            }
            if choice[i] < 3 {
                choice[i] += 1;
                break;
            }
            choice[i] = levels[i];
            i += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Scoring the plan's modified sheet gives exactly the plan's score, each step's score is
    /// the score with it and the steps before it done, and the plan reaches its grade.
    #[test]
    fn a_plan_scores_what_it_promises(
        mi in 0usize..2,
        choices in prop::collection::vec((any::<u8>(), prop::bool::weighted(0.1)), 40),
        seed in any::<u64>(),
        goal in prop::sample::select(vec!["next", "A", "B", "C"]),
    ) {
        let m = &UNIT_SCORED[mi % UNIT_SCORED.len()];
        let input = shipped_unit(m, &choices, seed);
        prop_assume!(score_unit(m, &input).is_ok());
        let goal = if goal == "next" { Goal::NextBand } else { Goal::Band(goal.to_owned()) };
        let Ok(plan) = plan_unit(m, &input, &goal) else { return Ok(()) };
        if let PlanOutcome::Reachable { steps, score, published, band, effort } = &plan.outcome {
            let mut done = Vec::new();
            for step in steps {
                done.push(step.clone());
                let mut raised = input.clone();
                raised.sheets[0] = apply_steps(m, &input.sheets[0], &done);
                let scored = score_unit(m, &raised).unwrap();
                prop_assert_eq!(scored.score, step.score_after);
                prop_assert_eq!(scored.published, step.published_after);
            }
            prop_assert_eq!(steps.last().map(|s| s.score_after), Some(*score));
            prop_assert!(published.value() >= plan.target_lower);
            prop_assert!(m.bands().at_least(band, Some(&plan.target_band)));
            prop_assert_eq!(*effort, steps.iter().map(|s| s.effort).sum::<u32>());
            // Most points per unit of effort first.
            for pair in steps.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                prop_assert!(a.points * rust_decimal::Decimal::from(b.effort) >= b.points * rust_decimal::Decimal::from(a.effort));
            }
        }
    }

    /// On small methodologies (up to 8 indicators of 4 levels, efforts 1–5, a survey share of
    /// up to 40 %), brute force over every way to raise the indicators finds no cheaper plan,
    /// and no plan at all exactly when the planner says the goal is out of reach.
    #[test]
    fn brute_force_finds_no_cheaper_plan(
        spec in prop::collection::vec((1u8..=4, 1u8..=5, 0u8..=3), 1..=8),
        survey_share in prop::sample::select(vec![0u8, 10, 25, 40]),
        trust in (0u64..5, 1u64..5),
        goal in prop::sample::select(vec!["next", "A", "B", "C"]),
    ) {
        let weights: Vec<u8> = spec.iter().map(|s| s.0).collect();
        let efforts: Vec<u8> = spec.iter().map(|s| s.1).collect();
        let levels: Vec<u8> = spec.iter().map(|s| s.2).collect();
        let m = small_methodology(&weights, &efforts, survey_share);
        let input = small_unit(&m, &levels, trust);
        let goal = if goal == "next" { Goal::NextBand } else { Goal::Band(goal.to_owned()) };
        let Ok(plan) = plan_unit(&m, &input, &goal) else { return Ok(()) };
        let brute = brute_force(&m, &input, &levels, plan.target_lower);
        match &plan.outcome {
            PlanOutcome::AlreadyReached => prop_assert_eq!(brute, Some((0, 0))),
            PlanOutcome::Reachable { steps, effort, .. } => {
                prop_assert_eq!(brute, Some((*effort, steps.len())));
            }
            PlanOutcome::Unreachable { best, .. } => {
                prop_assert_eq!(brute, None);
                prop_assert!(best.value() < plan.target_lower);
            }
        }
    }
}

#[test]
fn the_survey_share_can_put_a_grade_out_of_reach() {
    // Two indicators at 0, a survey worth 40 % that nobody trusts: indicators alone reach 60.
    let m = small_methodology(&[1, 1], &[1, 1], 40);
    let input = small_unit(&m, &[0, 0], (3, 0));
    let plan = plan_unit(&m, &input, &Goal::Band("A".into())).unwrap();
    let PlanOutcome::Unreachable {
        best,
        best_band,
        reason,
    } = plan.outcome
    else {
        panic!("{plan:?}")
    };
    assert_eq!(best.value().to_string(), "60.00");
    assert_eq!(best_band, "C");
    assert!(reason.contains("survey"), "{reason}");
}

#[test]
fn effort_weights_choose_the_cheaper_fix() {
    // i0 carries 40 % of the score, i1 60 %, but i1 (a ramp) costs five times as much per level
    // as i0 (a printed service standard). From 33.33 to grade C (54): i0 from 1 to 3 gains
    // 26.67 points for an effort of 2; one level of i1 gains 20 for 5.
    let m = small_methodology(&[1, 1], &[1, 5], 0);
    let input = small_unit(&m, &[1, 1], (0, 0));
    let plan = plan_unit(&m, &input, &Goal::Band("C".into())).unwrap();
    let PlanOutcome::Reachable {
        steps,
        effort,
        published,
        ..
    } = plan.outcome
    else {
        panic!("{plan:?}")
    };
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].indicator.as_str(), steps[0].from, steps[0].to),
        ("i0", 1, 3)
    );
    assert_eq!(effort, 2);
    assert_eq!(published.value().to_string(), "60.00");
}

#[test]
fn an_entity_plan_improves_the_cheapest_units_until_the_mean_reaches_the_grade() {
    // i0 and i1 share 40 % of the score, i2 and i3 60 %: a level is worth 6.67 or 10 points.
    let m = small_methodology(&[1, 1, 1, 1], &[1, 1, 1, 1], 0);
    // Unit 1 at 0 everywhere (0.00), unit 2 at 2 everywhere (66.67): a mean of 33.34, grade D.
    let low = small_unit(&m, &[0, 0, 0, 0], (0, 0));
    let high = small_unit(&m, &[2, 2, 2, 2], (0, 0));
    let units = [(1, &low), (2, &high)];
    let plan = plan_entity(&m, &units, &Goal::Band("C".into())).unwrap();
    assert_eq!(plan.current.value().to_string(), "33.34");
    assert!(plan.reachable);
    // The mean must reach 53.995: the units' published scores must add up to 107.99, 41.32
    // more than today. Four levels buy at most 40 points; five buy 50.
    assert_eq!(plan.effort, 5, "{plan:?}");
    assert_eq!(plan.published.value().to_string(), "58.34", "{plan:?}");
    let per_unit: Vec<(i32, u32)> = plan.units.iter().map(|u| (u.unit, u.effort)).collect();
    assert_eq!(per_unit, [(1, 3), (2, 2)]);
}
