//! Property tests: invariants of scoring that must hold for every input.

use kepatuhan_core::methodology::{Aggregation, builtin};
use kepatuhan_core::score::round_published;
use kepatuhan_core::scoring::{
    AnswerInput, RankInput, Sheet, UnitInput, aggregate_entity, deficiencies, rank, rank_entities,
    score_unit,
};
use kepatuhan_core::synthetic::{self, Quality, Rng};
use kepatuhan_core::{EntityKind, Methodology, PublishedScore};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::sync::LazyLock;

static METHODOLOGIES: LazyLock<Vec<Methodology>> = LazyLock::new(|| builtin::all().unwrap());

/// Per indicator: a level choice (taken modulo the scale) or not applicable (1 in 8).
fn answers() -> impl Strategy<Value = Vec<(u8, bool)>> {
    prop::collection::vec((any::<u8>(), prop::bool::weighted(0.125)), 40)
}

/// A complete unit under methodology `mi` from answer choices and a survey seed. Under the
/// product-scored methodology the unit gets a second, synthetic product sheet.
fn unit(mi: usize, choices: &[(u8, bool)], seed: u64) -> UnitInput {
    let m = &METHODOLOGIES[mi];
    let mut sheet = Sheet::for_product(m, "Produk 1");
    for (id, (choice, na)) in m.indicator_ids().zip(choices.iter().cycle()) {
        let levels = &m.indicator(id).scale.levels;
        let answer = if *na {
            AnswerInput::NotApplicable
        } else {
            AnswerInput::Value(levels[usize::from(*choice) % levels.len()].value)
        };
        sheet.set_by_id(m, id, answer).unwrap();
    }
    let mut rng = Rng::new(seed);
    let mut sheets = vec![sheet];
    if m.aggregation() == Aggregation::MeanOfProducts {
        let q = Quality(rng.below(1001));
        sheets.push(synthetic::sheet(m, &mut rng, q, Some("Produk 2".into())));
    } else {
        sheets[0].label = None;
    }
    let mut input = UnitInput::with_sheets(m, sheets);
    for id in m.survey_ids() {
        let q = Quality(rng.below(1001));
        let respondents = 1 + rng.below(40);
        input.set_survey(id, synthetic::survey_tally(m, id, &mut rng, q, respondents));
    }
    input
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_score_is_within_0_and_100(mi in 0usize..3, choices in answers(), seed in any::<u64>()) {
        let m = &METHODOLOGIES[mi];
        let input = unit(mi, &choices, seed);
        // Very rarely every indicator is not applicable; that is an error, not a score.
        if let Ok(s) = score_unit(m, &input) {
            let in_range = |d: Decimal| (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&d);
            prop_assert!(in_range(s.score.value()) && in_range(s.published.value()));
            for sheet in &s.sheets {
                for d in &sheet.dimensions {
                    prop_assert!(d.score.is_none_or(|x| in_range(x.value())));
                    for v in &d.variables {
                        prop_assert!(v.score.is_none_or(|x| in_range(x.value())));
                    }
                }
            }
        }
    }

    #[test]
    fn raising_one_indicator_never_lowers_the_unit_score(
        mi in 0usize..3, choices in answers(), seed in any::<u64>(), pick in any::<prop::sample::Index>()
    ) {
        let m = &METHODOLOGIES[mi];
        let before_input = unit(mi, &choices, seed);
        let Ok(before) = score_unit(m, &before_input) else { return Ok(()) };
        let id = m.indicator_ids().nth(pick.index(m.indicator_count())).unwrap();
        let levels = &m.indicator(id).scale.levels;
        let Some(AnswerInput::Value(v)) = before_input.sheets[0].answer(m, id) else { return Ok(()) };
        let Some(higher) = levels.iter().find(|l| l.value > v) else { return Ok(()) };
        let mut after_input = before_input.clone();
        after_input.sheets[0].set_by_id(m, id, AnswerInput::Value(higher.value)).unwrap();
        let after = score_unit(m, &after_input).unwrap();
        prop_assert!(after.score >= before.score, "{} < {}", after.score, before.score);
        prop_assert!(after.published >= before.published);
    }

    #[test]
    fn the_entity_score_does_not_depend_on_the_order_of_its_units(
        mi in 0usize..3, seed in any::<u64>(), n in 1usize..9, rotate in 0usize..9
    ) {
        let m = &METHODOLOGIES[mi];
        let mut rng = Rng::new(seed);
        let units: Vec<_> = (0..n).map(|_| { let q = Quality::realistic(&mut rng); synthetic::unit(m, &mut rng, q) }).collect();
        let scores: Vec<_> = units.iter().map(|u| score_unit(m, u)).collect::<Result<_, _>>().unwrap();
        let mut refs: Vec<_> = scores.iter().collect();
        let forward = aggregate_entity(m, &refs).unwrap();
        refs.reverse();
        let reversed = aggregate_entity(m, &refs).unwrap();
        refs.rotate_left(rotate % n);
        let rotated = aggregate_entity(m, &refs).unwrap();
        prop_assert_eq!(forward, reversed);
        prop_assert_eq!(forward, rotated);
    }

    #[test]
    fn publishing_rounding_is_idempotent_and_two_decimals(mantissa in 0i64..=100_000_000_000, keep in 0u32..=9) {
        // 0–100 with 9 decimals, truncated to `keep` of them.
        let value = Decimal::new(mantissa, 9).trunc_with_scale(keep);
        let once = round_published(value);
        prop_assert_eq!(round_published(once), once);
        prop_assert_eq!(once.scale(), 2);
        prop_assert!((once - value).abs() <= Decimal::new(5, 3));
    }

    #[test]
    fn ranks_are_consistent_with_scores(cents in prop::collection::vec(0u32..=10_000, 0..60)) {
        let scores: Vec<PublishedScore> = cents.iter().map(|c| PublishedScore::new(Decimal::new(i64::from(*c), 2)).unwrap()).collect();
        let ranks = rank(&scores);
        for (i, r) in ranks.iter().enumerate() {
            let better = scores.iter().filter(|s| **s > scores[i]).count();
            prop_assert_eq!(r.rank as usize, better + 1, "competition rank = 1 + number strictly better");
            for (j, q) in ranks.iter().enumerate() {
                if scores[i] > scores[j] { prop_assert!(r.rank < q.rank); }
                if scores[i] == scores[j] { prop_assert_eq!(r.rank, q.rank); }
            }
        }
        let inputs: Vec<RankInput<'_>> = scores.iter().enumerate().map(|(i, s)| RankInput {
            kind: if i % 2 == 0 { EntityKind::Regency } else { EntityKind::City },
            province: Some(if i % 3 == 0 { "19" } else { "31" }),
            score: *s,
        }).collect();
        for (i, r) in rank_entities(&inputs).iter().enumerate() {
            let peers = inputs.iter().filter(|x| x.kind == inputs[i].kind);
            prop_assert_eq!(r.national.rank as usize, 1 + peers.filter(|x| x.score > inputs[i].score).count());
            let local = inputs.iter().filter(|x| x.province == inputs[i].province);
            prop_assert_eq!(r.provincial.unwrap().rank as usize, 1 + local.filter(|x| x.score > inputs[i].score).count());
        }
    }

    #[test]
    fn lost_points_and_score_add_up_to_100(mi in 0usize..3, choices in answers(), seed in any::<u64>()) {
        let m = &METHODOLOGIES[mi];
        let input = unit(mi, &choices, seed);
        let Ok(s) = score_unit(m, &input) else { return Ok(()) };
        let d = deficiencies(m, &input, &s);
        prop_assert!(d.windows(2).all(|w| w[0].lost_points >= w[1].lost_points), "largest loss first");
        prop_assert!(d.iter().all(|x| x.lost_points > Decimal::ZERO));
        let lost: Decimal = d.iter().map(|x| x.lost_points).sum();
        let total = lost + s.score.value();
        // For product-scored units the unit score is the mean of *published* product scores,
        // so the sum is exact only up to that rounding.
        let tolerance = if mi == 0 { Decimal::new(5, 3) } else { Decimal::new(1, 18) };
        prop_assert!((total - Decimal::ONE_HUNDRED).abs() <= tolerance, "{total}");
    }
}
