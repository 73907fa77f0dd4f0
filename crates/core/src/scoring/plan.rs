//! Improvement plans: what exactly a unit (or an entity) fixes to reach a grade, at the least
//! effort.
//!
//! **A unit.** Raising an applicable indicator from its level to a higher one costs the
//! indicator's `effort` per level (1 unless the methodology weights it). With the set of
//! not-applicable indicators fixed, the unit's exact score is a sum of one term per indicator
//! (rules 1–3 are weighted means with fixed divisors), so the points a raise gains do not depend
//! on the other raises. The gain of each raise is measured by scoring the raised sheet
//! ([`score_unit`]), never by a second copy of the rules; the plan is then a multiple-choice
//! knapsack: per indicator keep it or pick one higher level, reaching the goal's lower bound at
//! the least total effort, ties going to the plan that changes the fewest indicators. Efforts
//! are whole numbers, so the search is an exact dynamic programme over effort:
//! 1. over effort alone, the most points each total effort can buy, which gives the least
//!    effort that reaches the goal;
//! 2. over effort up to that least effort and the number of indicators changed, the fewest
//!    changes at that effort.
//!
//! The steps are listed by points gained per unit of effort, and each carries the exact score
//! once it and the steps before it are done, scored again from the raised sheet. When every
//! applicable indicator at its highest level still misses the goal (the survey's share of the
//! final score caps it), the plan says so and gives the best score indicators alone reach.
//!
//! **An entity** ([`plan_entity`]). Its score is the mean of its units' published scores. Each
//! unit's frontier (the best published score each total effort buys it) is combined by a second
//! knapsack over the units: the least total effort whose units' mean reaches the goal.
//!
//! Product-scored methodologies (2013–2021 imports) are not planned: a unit's score there is a
//! mean of rounded product scores, which is not a sum of terms.

use rust_decimal::Decimal;
use serde::Serialize;

use super::input::{Answer, Sheet, UnitInput};
use super::unit::{ScoringError, score_unit};
use crate::methodology::{Aggregation, Band, IndicatorId, Methodology};
use crate::score::{PublishedScore, Score};

/// The grade a plan aims at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// The band just above the current one.
    NextBand,
    /// A band of the methodology, by code.
    Band(String),
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The unit cannot be scored (an incomplete sheet, a missing survey…).
    #[error(transparent)]
    Scoring(#[from] ScoringError),
    /// The methodology scores service products; plans are made for unit-scored methodologies.
    #[error("plans are made for methodologies that score units, not service products")]
    ProductScored,
    /// The goal names no band of the methodology.
    #[error("no grade `{0}` in this methodology")]
    UnknownBand(String),
    /// The current grade is already the highest: there is no next one.
    #[error("already in the highest grade")]
    AtTop,
    /// An entity plan needs at least one scored unit.
    #[error("the entity has no scored unit")]
    NoUnits,
}

/// One step of a plan: raise one indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    /// Indicator code.
    pub indicator: String,
    /// Indicator name (Indonesian).
    pub name: String,
    /// Dimension code.
    pub dimension: String,
    /// Variable code.
    pub variable: String,
    /// The level today.
    pub from: u8,
    /// The level to reach.
    pub to: u8,
    /// What the raise to `to` means (the level's description).
    pub to_description: String,
    /// Its effort: the indicator's effort per level × levels raised.
    pub effort: u32,
    /// Points of the final score it gains (exact).
    pub points: Decimal,
    /// The exact score once this step and those before it are done.
    pub score_after: Score,
    /// The published score then.
    pub published_after: PublishedScore,
}

/// What a unit's plan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PlanOutcome {
    /// The unit already has the goal's grade or a higher one.
    AlreadyReached,
    /// The steps that reach the goal at the least effort.
    Reachable {
        /// The steps, most points per unit of effort first.
        steps: Vec<PlanStep>,
        /// Their total effort.
        effort: u32,
        /// The exact score after every step.
        score: Score,
        /// The published score after every step.
        published: PublishedScore,
        /// The grade then.
        band: String,
    },
    /// Indicators alone cannot reach the goal.
    Unreachable {
        /// The best published score with every applicable indicator at its highest level.
        best: PublishedScore,
        /// The grade of that score.
        best_band: String,
        /// What keeps it below the goal, in words.
        reason: String,
    },
}

/// A unit's improvement plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitPlan {
    /// The published score today.
    pub current: PublishedScore,
    /// The grade today.
    pub current_band: String,
    /// The grade aimed at.
    pub target_band: String,
    /// Its lower bound (published score).
    pub target_lower: Decimal,
    /// What was found.
    #[serde(flatten)]
    pub outcome: PlanOutcome,
}

/// One possible raise of one indicator.
#[derive(Debug, Clone, Copy)]
struct Raise {
    /// Level position to reach.
    to: u8,
    /// Effort of the raise.
    cost: usize,
    /// Exact points gained.
    gain: Decimal,
}

/// An indicator that can be raised, with its possible raises (cheapest first).
#[derive(Debug, Clone)]
struct Group {
    id: IndicatorId,
    from: u8,
    raises: Vec<Raise>,
}

/// The scored starting point of a unit, and what each raise of each indicator gains.
struct Frontier<'a> {
    m: &'a Methodology,
    input: &'a UnitInput,
    base: Score,
    groups: Vec<Group>,
}

impl<'a> Frontier<'a> {
    fn new(m: &'a Methodology, input: &'a UnitInput) -> Result<Self, PlanError> {
        if m.aggregation == Aggregation::MeanOfProducts || input.sheets.len() != 1 {
            return Err(PlanError::ProductScored);
        }
        let base = score_unit(m, input)?.score;
        let sheet = &input.sheets[0];
        let mut groups = Vec::new();
        for id in m.indicator_ids() {
            let Some(Answer::Level(from)) = sheet.answers[id.index()] else {
                continue;
            };
            let indicator = m.indicator(id);
            let top = indicator.scale.levels.len() - 1;
            let mut raises = Vec::new();
            for to in usize::from(from) + 1..=top {
                let to = u8::try_from(to).unwrap_or(u8::MAX);
                let one_raised = with_levels(input, &[(id, to)]);
                let gain = score_unit(m, &one_raised)?.score.value() - base.value();
                let levels = usize::from(to - from);
                raises.push(Raise {
                    to,
                    cost: levels * indicator.effort as usize,
                    gain,
                });
            }
            if !raises.is_empty() {
                groups.push(Group { id, from, raises });
            }
        }
        Ok(Self {
            m,
            input,
            base,
            groups,
        })
    }

    /// The most effort any plan can spend (every indicator to its highest level).
    fn max_cost(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.raises.last().map_or(0, |r| r.cost))
            .sum()
    }

    /// The published score the base plus `gain` points gives.
    fn published(&self, gain: Decimal) -> PublishedScore {
        Score::saturating(self.base.value() + gain).published()
    }

    /// For each total effort 0..=max, the most points it buys, with the raise chosen per group
    /// (`None`: kept) to rebuild the plan: `best[c]`, and `choice[g][c]` for group `g`.
    fn best_by_effort(&self) -> (Vec<Option<Decimal>>, Vec<Vec<Option<u8>>>) {
        let max = self.max_cost();
        let mut best: Vec<Option<Decimal>> = vec![None; max + 1];
        best[0] = Some(Decimal::ZERO);
        let mut choices = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let mut next = best.clone();
            let mut choice: Vec<Option<u8>> = vec![None; max + 1];
            for (c, gain) in best.iter().enumerate() {
                let Some(gain) = gain else { continue };
                for (r, raise) in group.raises.iter().enumerate() {
                    let at = c + raise.cost;
                    if at > max {
                        continue;
                    }
                    let candidate = *gain + raise.gain;
                    if next[at].is_none_or(|g| candidate > g) {
                        next[at] = Some(candidate);
                        choice[at] = Some(u8::try_from(r).unwrap_or(u8::MAX));
                    }
                }
            }
            best = next;
            choices.push(choice);
        }
        (best, choices)
    }

    /// Rebuilds the raises of the plan with total effort `cost` from [`Self::best_by_effort`].
    fn rebuild(&self, choices: &[Vec<Option<u8>>], mut cost: usize) -> Vec<(usize, Raise)> {
        let mut picked = Vec::new();
        for (g, choice) in choices.iter().enumerate().rev() {
            if let Some(r) = choice[cost] {
                let raise = self.groups[g].raises[usize::from(r)];
                picked.push((g, raise));
                cost -= raise.cost;
            }
        }
        picked
    }

    /// Among plans of effort exactly `cost` reaching `lower`, the one changing the fewest
    /// indicators (then the most points), as (group, raise) pairs.
    fn fewest_changes(&self, cost: usize, lower: Decimal) -> Vec<(usize, Raise)> {
        let groups = self.groups.len();
        // state[c][k]: the most points with effort exactly c and k indicators raised.
        let mut state: Vec<Vec<Option<Decimal>>> = vec![vec![None; groups + 1]; cost + 1];
        state[0][0] = Some(Decimal::ZERO);
        let mut choices: Vec<Vec<Vec<Option<u8>>>> = Vec::with_capacity(groups);
        for (g, group) in self.groups.iter().enumerate() {
            let mut next = state.clone();
            let mut choice = vec![vec![None; groups + 1]; cost + 1];
            for (c, row) in state.iter().enumerate() {
                for (k, gain) in row.iter().enumerate().take(g + 1) {
                    let Some(gain) = *gain else { continue };
                    for (r, raise) in group.raises.iter().enumerate() {
                        let at = c + raise.cost;
                        if at > cost {
                            break;
                        }
                        let candidate = gain + raise.gain;
                        if next[at][k + 1].is_none_or(|x| candidate > x) {
                            next[at][k + 1] = Some(candidate);
                            choice[at][k + 1] = Some(u8::try_from(r).unwrap_or(u8::MAX));
                        }
                    }
                }
            }
            state = next;
            choices.push(choice);
        }
        let Some(k) = (0..=groups)
            .find(|k| state[cost][*k].is_some_and(|gain| self.published(gain).value() >= lower))
        else {
            return Vec::new();
        };
        let (mut c, mut k) = (cost, k);
        let mut picked = Vec::new();
        for g in (0..groups).rev() {
            if let Some(r) = choices[g][c][k] {
                let raise = self.groups[g].raises[usize::from(r)];
                picked.push((g, raise));
                c -= raise.cost;
                k -= 1;
            }
        }
        picked
    }

    /// The plan's steps in order (most points per effort first), each scored again from the
    /// sheet with it and the steps before it done.
    fn steps(&self, picked: &[(usize, Raise)]) -> Result<Vec<PlanStep>, PlanError> {
        let mut ordered: Vec<&(usize, Raise)> = picked.iter().collect();
        // gain_a / cost_a > gain_b / cost_b, compared without dividing.
        ordered.sort_by(|(ga, a), (gb, b)| {
            (b.gain * Decimal::from(a.cost))
                .cmp(&(a.gain * Decimal::from(b.cost)))
                .then(self.groups[*ga].id.cmp(&self.groups[*gb].id))
        });
        let mut done = Vec::with_capacity(ordered.len());
        let mut steps = Vec::with_capacity(ordered.len());
        for (g, raise) in ordered {
            let group = &self.groups[*g];
            done.push((group.id, raise.to));
            let after = score_unit(self.m, &with_levels(self.input, &done))?;
            let indicator = self.m.indicator(group.id);
            let (dimension, variable) = self.m.indicator_place(group.id);
            steps.push(PlanStep {
                indicator: indicator.code.clone(),
                name: indicator.name.clone(),
                dimension: dimension.to_owned(),
                variable: variable.to_owned(),
                from: indicator.scale.levels[usize::from(group.from)].value,
                to: indicator.scale.levels[usize::from(raise.to)].value,
                to_description: indicator.scale.levels[usize::from(raise.to)]
                    .description
                    .clone(),
                effort: u32::try_from(raise.cost).unwrap_or(u32::MAX),
                points: raise.gain,
                score_after: after.score,
                published_after: after.published,
            });
        }
        Ok(steps)
    }
}

/// `input` with some indicators of its (only) sheet set to other level positions.
fn with_levels(input: &UnitInput, levels: &[(IndicatorId, u8)]) -> UnitInput {
    let mut raised = input.clone();
    for (id, to) in levels {
        raised.sheets[0].answers[id.index()] = Some(Answer::Level(*to));
    }
    raised
}

/// The band a goal names, given the current band.
fn target_band<'m>(m: &'m Methodology, current: &Band, goal: &Goal) -> Result<&'m Band, PlanError> {
    let bands = m.bands().bands();
    match goal {
        Goal::Band(code) => bands
            .iter()
            .find(|b| &b.code == code)
            .ok_or_else(|| PlanError::UnknownBand(code.clone())),
        Goal::NextBand => {
            let at = m.bands().position(&current.code).unwrap_or(0);
            at.checked_sub(1).map(|i| &bands[i]).ok_or(PlanError::AtTop)
        }
    }
}

/// The least-effort plan that brings a unit to the goal's grade (see the module's
/// documentation). The unit must be scorable (a complete sheet, its surveys tallied).
pub fn plan_unit(m: &Methodology, input: &UnitInput, goal: &Goal) -> Result<UnitPlan, PlanError> {
    let frontier = Frontier::new(m, input)?;
    let current = frontier.base.published();
    let current_band = m.bands().band_of(current);
    let target = target_band(m, current_band, goal)?;
    let mut plan = UnitPlan {
        current,
        current_band: current_band.code.clone(),
        target_band: target.code.clone(),
        target_lower: target.lower,
        outcome: PlanOutcome::AlreadyReached,
    };
    if current.value() >= target.lower {
        return Ok(plan);
    }
    let (best, choices) = frontier.best_by_effort();
    let Some(cost) = best
        .iter()
        .position(|g| g.is_some_and(|gain| frontier.published(gain).value() >= target.lower))
    else {
        let all_top: Vec<(IndicatorId, u8)> = frontier
            .groups
            .iter()
            .filter_map(|g| g.raises.last().map(|r| (g.id, r.to)))
            .collect();
        let best = score_unit(m, &with_levels(input, &all_top))?.published;
        plan.outcome = PlanOutcome::Unreachable {
            best,
            best_band: m.bands().band_of(best).code.clone(),
            reason: format!(
                "with every applicable indicator at its highest level the unit scores {}, below {}: the rest of the final score comes from the service users' survey",
                best.value(),
                target.lower
            ),
        };
        return Ok(plan);
    };
    let mut picked = frontier.fewest_changes(cost, target.lower);
    if picked.is_empty() {
        // Not reached through the second programme (only if the two disagree on a boundary).
        picked = frontier.rebuild(&choices, cost);
    }
    let steps = frontier.steps(&picked)?;
    let (score, published) = steps.last().map_or((frontier.base, current), |s| {
        (s.score_after, s.published_after)
    });
    plan.outcome = PlanOutcome::Reachable {
        effort: steps.iter().map(|s| s.effort).sum(),
        steps,
        score,
        published,
        band: m.bands().band_of(published).code.clone(),
    };
    Ok(plan)
}

/// One unit of an entity plan: its plan at the effort chosen for it (empty when it is left as
/// it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityUnitPlan<K> {
    /// The caller's key for the unit (its id).
    pub unit: K,
    /// Its published score today.
    pub current: PublishedScore,
    /// Its published score after its steps.
    pub published: PublishedScore,
    /// Its steps, most points per effort first.
    pub steps: Vec<PlanStep>,
    /// Their total effort.
    pub effort: u32,
}

/// What an entity's plan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityPlan<K> {
    /// The entity's published score today (mean of its units').
    pub current: PublishedScore,
    /// The grade today.
    pub current_band: String,
    /// The grade aimed at.
    pub target_band: String,
    /// Its lower bound.
    pub target_lower: Decimal,
    /// Whether the goal is reached: already, or by the plan.
    pub reachable: bool,
    /// The entity's published score after the plan (or the best reachable, when it is not).
    pub published: PublishedScore,
    /// Total effort of the plan.
    pub effort: u32,
    /// The units to improve (those left as they are are not listed), most points first.
    pub units: Vec<EntityUnitPlan<K>>,
}

/// A unit's published score for each total effort spent on it (the best plan at each effort).
struct UnitFrontier<'a> {
    frontier: Frontier<'a>,
    /// Best published score in cents at each effort (monotone: more effort never buys less).
    cents: Vec<i64>,
    choices: Vec<Vec<Option<u8>>>,
    /// For each effort, the effort actually spent by the plan giving `cents` (≤ it).
    spent: Vec<usize>,
}

fn cents(score: PublishedScore) -> i64 {
    (score.value() * Decimal::ONE_HUNDRED)
        .trunc()
        .try_into()
        .unwrap_or(0)
}

impl<'a> UnitFrontier<'a> {
    fn new(m: &'a Methodology, input: &'a UnitInput) -> Result<Self, PlanError> {
        let frontier = Frontier::new(m, input)?;
        let (best, choices) = frontier.best_by_effort();
        let mut cents_at = Vec::with_capacity(best.len());
        let mut spent = Vec::with_capacity(best.len());
        let (mut top, mut at) = (i64::MIN, 0);
        for (c, gain) in best.iter().enumerate() {
            if let Some(gain) = gain {
                let v = cents(frontier.published(*gain));
                if v > top {
                    (top, at) = (v, c);
                }
            }
            cents_at.push(top);
            spent.push(at);
        }
        Ok(Self {
            frontier,
            cents: cents_at,
            choices,
            spent,
        })
    }
}

/// The least-effort plan that brings an entity (the mean of its units' published scores) to the
/// goal's grade: which units to improve, and how (each unit's steps are the most points its
/// share of the effort buys). `units` are the entity's scored units with the
/// caller's key for each.
pub fn plan_entity<K: Clone>(
    m: &Methodology,
    units: &[(K, &UnitInput)],
    goal: &Goal,
) -> Result<EntityPlan<K>, PlanError> {
    if units.is_empty() {
        return Err(PlanError::NoUnits);
    }
    let frontiers = units
        .iter()
        .map(|(_, input)| UnitFrontier::new(m, input))
        .collect::<Result<Vec<_>, _>>()?;
    let n = i64::try_from(units.len()).unwrap_or(i64::MAX);
    let mean = |total_cents: i64| {
        Score::saturating(Decimal::new(total_cents, 2) / Decimal::from(n)).published()
    };
    let today: i64 = frontiers.iter().map(|f| f.cents[0]).sum();
    let current = mean(today);
    let current_band = m.bands().band_of(current);
    let target = target_band(m, current_band, goal)?;
    let mut plan = EntityPlan {
        current,
        current_band: current_band.code.clone(),
        target_band: target.code.clone(),
        target_lower: target.lower,
        reachable: true,
        published: current,
        effort: 0,
        units: Vec::new(),
    };
    if current.value() >= target.lower {
        return Ok(plan);
    }
    // best[c]: the most total cents an effort of exactly c buys across the units seen so far;
    // pick[u][c]: the effort given to unit u in that plan.
    let max: usize = frontiers.iter().map(|f| f.cents.len() - 1).sum();
    let mut best: Vec<Option<i64>> = vec![None; max + 1];
    best[0] = Some(0);
    let mut picks: Vec<Vec<usize>> = Vec::with_capacity(frontiers.len());
    for f in &frontiers {
        let mut next: Vec<Option<i64>> = vec![None; max + 1];
        let mut pick = vec![0usize; max + 1];
        for (c, total) in best.iter().enumerate() {
            let Some(total) = total else { continue };
            for (spend, unit_cents) in f.cents.iter().enumerate() {
                let at = c + spend;
                if at > max {
                    break;
                }
                let candidate = total + unit_cents;
                if next[at].is_none_or(|x| candidate > x) {
                    next[at] = Some(candidate);
                    pick[at] = spend;
                }
            }
        }
        best = next;
        picks.push(pick);
    }
    let reached = best
        .iter()
        .position(|t| t.is_some_and(|t| mean(t).value() >= target.lower));
    let cost = match reached {
        Some(c) => c,
        None => {
            plan.reachable = false;
            max
        }
    };
    let mut c = cost;
    let mut spends = vec![0usize; frontiers.len()];
    for u in (0..frontiers.len()).rev() {
        spends[u] = picks[u][c];
        c -= spends[u];
    }
    let mut total_cents = 0;
    for ((key, _), (f, spend)) in units.iter().zip(frontiers.iter().zip(spends)) {
        let spent = f.spent[spend];
        total_cents += f.cents[spend];
        if spent == 0 {
            continue;
        }
        let picked = f.frontier.rebuild(&f.choices, spent);
        let steps = f.frontier.steps(&picked)?;
        plan.units.push(EntityUnitPlan {
            unit: key.clone(),
            current: f.frontier.base.published(),
            published: steps
                .last()
                .map_or(f.frontier.base.published(), |s| s.published_after),
            effort: steps.iter().map(|s| s.effort).sum(),
            steps,
        });
    }
    plan.units.sort_by(|a, b| {
        (b.published.value() - b.current.value()).cmp(&(a.published.value() - a.current.value()))
    });
    plan.published = mean(total_cents);
    plan.effort = plan.units.iter().map(|u| u.effort).sum();
    Ok(plan)
}

impl Methodology {
    /// The dimension and variable codes of an indicator.
    pub fn indicator_place(&self, id: IndicatorId) -> (&str, &str) {
        let slot = &self.indicators[id.index()];
        let dimension = &self.dimensions[slot.dimension];
        (&dimension.code, &dimension.variables[slot.variable].code)
    }
}

/// A sheet with the levels of a plan's steps applied (indicator code → level value), for
/// checking a plan against the scoring rules or simulating it.
pub fn apply_steps(m: &Methodology, sheet: &Sheet, steps: &[PlanStep]) -> Sheet {
    let mut raised = sheet.clone();
    for step in steps {
        if let Some(id) = m.indicator_id(&step.indicator)
            && let Some(pos) = m.indicator(id).scale.position(step.to)
        {
            raised.answers[id.index()] = Some(Answer::Level(u8::try_from(pos).unwrap_or(u8::MAX)));
        }
    }
    raised
}
