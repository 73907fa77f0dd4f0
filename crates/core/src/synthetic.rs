//! Deterministic synthetic data: a seeded generator of realistic unit inputs and of a whole
//! national cycle, for benchmarks, property tests and demo data. Same seed, same data.

use crate::cycle::CycleYear;
use crate::entity::EntityKind;
use crate::methodology::{Methodology, SurveyMethod};
use crate::scoring::{
    AnswerInput, CycleInput, EntityInput, FollowUpStatus, Sheet, SurveyTally, UnitInput,
};

/// A small, fast, seedable pseudo-random generator (`SplitMix64`). Not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `low..=high` (per mille arithmetic keeps this free of floats).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

/// A unit's quality in per mille (0–1000): how close to the top of each scale its answers are.
#[derive(Debug, Clone, Copy)]
pub struct Quality(pub u64);

impl Quality {
    /// A realistic national spread: most units good (green), some middling (yellow), a few poor
    /// (red).
    pub fn realistic(rng: &mut Rng) -> Self {
        match rng.below(100) {
            0..=69 => Quality(rng.between(830, 1000)),
            70..=91 => Quality(rng.between(560, 830)),
            _ => Quality(rng.between(200, 560)),
        }
    }
}

/// A complete sheet: every indicator answered around `quality`, about 3 % not applicable.
pub fn sheet(m: &Methodology, rng: &mut Rng, quality: Quality, label: Option<String>) -> Sheet {
    let mut sheet = match label {
        Some(l) => Sheet::for_product(m, l),
        None => Sheet::new(m),
    };
    for id in m.indicator_ids() {
        let answer = answer(m, id, rng, quality);
        sheet
            .set_by_id(m, id, answer)
            .expect("generated answers are on the scale");
    }
    sheet
}

/// One indicator's answer around `quality`: not applicable 3 % of the time (where the methodology
/// allows it), otherwise a level of its scale.
pub fn answer(
    m: &Methodology,
    id: crate::methodology::IndicatorId,
    rng: &mut Rng,
    quality: Quality,
) -> AnswerInput {
    if rng.below(100) < 3 && m.indicator(id).not_applicable_allowed {
        return AnswerInput::NotApplicable;
    }
    let levels = &m.indicator(id).scale.levels;
    let n = levels.len() as u64;
    // Target position = quality × (n − 1), jittered by up to one level either way.
    let target = quality.0 * (n - 1) * 2 / 1000; // in half-steps
    let jitter = rng.below(4); // 0..=3 half-steps
    let pos = (target + jitter).saturating_sub(1) / 2;
    AnswerInput::Value(levels[usize::try_from(pos.min(n - 1)).unwrap_or(0)].value)
}

/// Survey tallies for `responses` respondents around `quality`.
pub fn survey_tally(
    m: &Methodology,
    survey: crate::methodology::SurveyId,
    rng: &mut Rng,
    quality: Quality,
    responses: u64,
) -> SurveyTally {
    let s = m.survey(survey);
    let counts = match &s.method {
        SurveyMethod::NoMaladministrationShare => {
            let clean = (0..responses)
                .filter(|_| rng.below(1000) < quality.0.max(150))
                .count() as u64;
            vec![clean, responses - clean]
        }
        SurveyMethod::Likert { levels } => {
            let n = levels.len() as u64;
            let mut counts = vec![0u64; levels.len()];
            for _ in 0..responses * s.questions.len() as u64 {
                let target = quality.0 * (n - 1) / 1000;
                let pos = (target + rng.below(2)).min(n - 1);
                counts[usize::try_from(pos).unwrap_or(0)] += 1;
            }
            counts
        }
    };
    SurveyTally::from_counts(s, counts).expect("one count per outcome")
}

/// A complete unit input: one sheet (or 2 product sheets for product-scored methodologies) and
/// 30 survey respondents per survey.
pub fn unit(m: &Methodology, rng: &mut Rng, quality: Quality) -> UnitInput {
    let sheets = match m.aggregation() {
        crate::methodology::Aggregation::MeanOfUnits => vec![sheet(m, rng, quality, None)],
        crate::methodology::Aggregation::MeanOfProducts => (1..=2)
            .map(|p| sheet(m, rng, quality, Some(format!("Produk layanan {p}"))))
            .collect(),
    };
    let mut input = UnitInput::with_sheets(m, sheets);
    for id in m.survey_ids() {
        let tally = survey_tally(m, id, rng, quality, 30);
        input.set_survey(id, tally);
    }
    input
}

/// How many entities of each kind a national cycle has.
#[derive(Debug, Clone, Copy)]
pub struct NationalShape {
    /// Ministries.
    pub ministries: usize,
    /// Agencies.
    pub agencies: usize,
    /// Provinces (each with its provincial government).
    pub provinces: usize,
    /// Cities, spread over the provinces.
    pub cities: usize,
    /// Regencies, spread over the provinces.
    pub regencies: usize,
    /// Units per entity: between these two numbers inclusive.
    pub units_per_entity: (u64, u64),
}

impl NationalShape {
    /// Indonesia today: 25 ministries, 14 agencies, 38 provinces, 98 cities, 415 regencies
    /// (590 entities) with 5–8 units each (≈ 3,800 units).
    pub const INDONESIA: NationalShape = NationalShape {
        ministries: 25,
        agencies: 14,
        provinces: 38,
        cities: 98,
        regencies: 415,
        units_per_entity: (5, 8),
    };
}

/// A whole national cycle: entities with Kemendagri-style codes (`19`, `19.04`), realistic
/// quality spread and complete inputs.
pub fn national_cycle(
    m: &Methodology,
    year: CycleYear,
    seed: u64,
    shape: NationalShape,
) -> CycleInput {
    let mut rng = Rng::new(seed);
    let mut entities = Vec::new();
    let mut push = |rng: &mut Rng, code: String, kind: EntityKind, province: Option<String>| {
        let base = Quality::realistic(rng);
        let n = rng.between(shape.units_per_entity.0, shape.units_per_entity.1);
        let units = (0..n)
            .map(|_| {
                let q = Quality((base.0 + rng.below(120)).saturating_sub(60).min(1000));
                unit(m, rng, q)
            })
            .collect();
        let findings = u32::try_from(rng.below(4)).unwrap_or(0);
        let follow_up = Some(FollowUpStatus {
            findings,
            followed_up: if rng.below(10) < 8 {
                findings
            } else {
                findings / 2
            },
        });
        entities.push(EntityInput {
            code,
            kind,
            province,
            follow_up,
            units,
        });
    };
    for i in 0..shape.ministries {
        push(
            &mut rng,
            format!("K{:02}", i + 1),
            EntityKind::Ministry,
            None,
        );
    }
    for i in 0..shape.agencies {
        push(&mut rng, format!("L{:02}", i + 1), EntityKind::Agency, None);
    }
    let province_code = |p: usize| format!("{}", 11 + p);
    for p in 0..shape.provinces {
        push(
            &mut rng,
            province_code(p),
            EntityKind::Province,
            Some(province_code(p)),
        );
    }
    for i in 0..shape.cities + shape.regencies {
        let p = i % shape.provinces.max(1);
        let (kind, number) = if i < shape.cities {
            (EntityKind::City, 71 + i / shape.provinces.max(1))
        } else {
            (
                EntityKind::Regency,
                1 + (i - shape.cities) / shape.provinces.max(1),
            )
        };
        push(
            &mut rng,
            format!("{}.{number:02}", province_code(p)),
            kind,
            Some(province_code(p)),
        );
    }
    CycleInput { year, entities }
}
