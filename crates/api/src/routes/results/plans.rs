//! What a unit or an entity fixes to reach a grade, and what hypothetical values would have
//! given, over a published cycle's verified inputs (the rules live in the core:
//! `kepatuhan_core::scoring::plan_unit`, `plan_entity`).
//!
//! | endpoint | who may call |
//! |---|---|
//! | `GET /cycles/{year}/results/units/{unit_id}/plan` | admin, office (its provinces), government (its entity); published cycles |
//! | `GET /cycles/{year}/results/entities/{code}/plan` | as above |
//! | `POST /cycles/{year}/results/units/{unit_id}/simulate` | as above |
//!
//! Never public: a plan shows the unit's values indicator by indicator.

use axum::extract::State;
use kepatuhan_app::plans::{self, PlanFailure, Simulation};
use kepatuhan_core::CycleKey;
use kepatuhan_core::scoring::{
    AnswerInput, EntityPlan, Goal, PlanError, PlanOutcome, PlanStep, UnitPlan,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{GradeView, RankView};
use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::problem::{FieldError, Problem};
use crate::routes::cycles::{self, CycleState};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unit_plan))
        .routes(routes!(entity_plan))
        .routes(routes!(simulate))
}

/// The grade a plan aims at.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// A grade code of the cycle's methodology (e.g. `B`); default: the grade just above the
    /// current one.
    pub grade: Option<String>,
}

/// One step of a plan: raise one indicator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanStepView {
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
    /// What that level means.
    pub to_description: String,
    /// Effort of the step (the indicator's effort per level × levels raised).
    pub effort: u32,
    /// Points of the final score the step gains (exact).
    #[schema(value_type = String)]
    pub points: Decimal,
    /// The exact score once this step and those before it are done.
    #[schema(value_type = String)]
    pub score_after: Decimal,
    /// The published score then.
    #[schema(value_type = String)]
    pub published_after: Decimal,
}

impl From<PlanStep> for PlanStepView {
    fn from(s: PlanStep) -> Self {
        Self {
            indicator: s.indicator,
            name: s.name,
            dimension: s.dimension,
            variable: s.variable,
            from: s.from,
            to: s.to,
            to_description: s.to_description,
            effort: s.effort,
            points: s.points,
            score_after: s.score_after.value(),
            published_after: s.published_after.value(),
        }
    }
}

/// A unit's improvement plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitPlanView {
    /// The unit.
    pub unit_id: i64,
    /// Its published score today.
    #[schema(value_type = String)]
    pub current: Decimal,
    /// Its grade today.
    pub current_grade: String,
    /// The grade aimed at.
    pub target_grade: String,
    /// That grade's lower bound.
    #[schema(value_type = String)]
    pub target_lower: Decimal,
    /// `already_reached`, `reachable` or `unreachable` (indicators alone cannot reach it).
    pub outcome: String,
    /// The steps, most points per unit of effort first (empty unless reachable).
    pub steps: Vec<PlanStepView>,
    /// Their total effort.
    pub effort: u32,
    /// The published score after every step (reachable), or the best indicators alone reach
    /// (unreachable), or today's.
    #[schema(value_type = String)]
    pub published: Decimal,
    /// The grade of that score.
    pub grade: String,
    /// Why the goal is out of reach, when it is.
    pub reason: Option<String>,
}

impl UnitPlanView {
    fn new(unit_id: i64, plan: UnitPlan) -> Self {
        let mut view = Self {
            unit_id,
            current: plan.current.value(),
            current_grade: plan.current_band.clone(),
            target_grade: plan.target_band,
            target_lower: plan.target_lower,
            outcome: "already_reached".into(),
            steps: Vec::new(),
            effort: 0,
            published: plan.current.value(),
            grade: plan.current_band,
            reason: None,
        };
        match plan.outcome {
            PlanOutcome::AlreadyReached => {}
            PlanOutcome::Reachable {
                steps,
                effort,
                published,
                band,
                ..
            } => {
                view.outcome = "reachable".into();
                view.steps = steps.into_iter().map(PlanStepView::from).collect();
                view.effort = effort;
                view.published = published.value();
                view.grade = band;
            }
            PlanOutcome::Unreachable {
                best,
                best_band,
                reason,
            } => {
                view.outcome = "unreachable".into();
                view.published = best.value();
                view.grade = best_band;
                view.reason = Some(reason);
            }
        }
        view
    }
}

/// One unit of an entity's plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityUnitPlanView {
    /// The unit.
    pub unit_id: i64,
    /// Its published score today.
    #[schema(value_type = String)]
    pub current: Decimal,
    /// Its published score after its steps.
    #[schema(value_type = String)]
    pub published: Decimal,
    /// Its steps, most points per unit of effort first.
    pub steps: Vec<PlanStepView>,
    /// Their total effort.
    pub effort: u32,
}

/// An entity's improvement plan: which units to improve, and how.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityPlanView {
    /// Entity code.
    pub entity_code: String,
    /// Its published score today (the mean of its scored units').
    #[schema(value_type = String)]
    pub current: Decimal,
    /// Its grade today (without the follow-up suffix).
    pub current_grade: String,
    /// The grade aimed at.
    pub target_grade: String,
    /// That grade's lower bound.
    #[schema(value_type = String)]
    pub target_lower: Decimal,
    /// Whether the goal is reached, already or by the plan.
    pub reachable: bool,
    /// The entity's published score after the plan (the best reachable when it is not).
    #[schema(value_type = String)]
    pub published: Decimal,
    /// Total effort.
    pub effort: u32,
    /// The units to improve, most points first; units left as they are are not listed.
    pub units: Vec<EntityUnitPlanView>,
}

impl EntityPlanView {
    fn new(entity_code: String, plan: EntityPlan<i64>) -> Self {
        Self {
            entity_code,
            current: plan.current.value(),
            current_grade: plan.current_band,
            target_grade: plan.target_band,
            target_lower: plan.target_lower,
            reachable: plan.reachable,
            published: plan.published.value(),
            effort: plan.effort,
            units: plan
                .units
                .into_iter()
                .map(|u| EntityUnitPlanView {
                    unit_id: u.unit,
                    current: u.current.value(),
                    published: u.published.value(),
                    steps: u.steps.into_iter().map(PlanStepView::from).collect(),
                    effort: u.effort,
                })
                .collect(),
        }
    }
}

/// Body of a simulation: hypothetical values for some indicators of the unit (the others keep
/// their verified values).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "values": [{ "indicator": "complaint_channel_available", "value": 3 }] }))]
pub struct SimulationRequest {
    /// The hypothetical values.
    pub values: Vec<HypotheticalValue>,
}

/// One hypothetical value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HypotheticalValue {
    /// Indicator code of the cycle's methodology.
    pub indicator: String,
    /// A level of the indicator's scale; omit when not applicable.
    pub value: Option<i64>,
    /// The indicator does not apply.
    #[serde(default)]
    pub not_applicable: bool,
}

/// What hypothetical values would have given in the published cycle.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SimulationView {
    /// The unit's published score with the hypothetical values.
    #[schema(value_type = String)]
    pub unit_score: Decimal,
    /// Its published score with its verified values.
    #[schema(value_type = String)]
    pub unit_score_before: Decimal,
    /// The unit's grade.
    pub unit_grade: GradeView,
    /// The entity's published score with the unit's new score.
    #[schema(value_type = String)]
    pub entity_score: Decimal,
    /// The entity's published score in the current results.
    #[schema(value_type = String)]
    pub entity_score_before: Decimal,
    /// The entity's grade (with the follow-up rule).
    pub entity_grade: GradeView,
    /// Its national rank among its kind.
    pub national_rank: RankView,
    /// Its rank among the regencies and cities of its province, for those.
    pub provincial_rank: Option<RankView>,
}

fn grade_view(g: kepatuhan_core::scoring::Grade) -> GradeView {
    GradeView {
        code: g.code,
        label: g.label,
        zone: g.zone.map(|z| z.to_string()),
    }
}

fn rank_view(r: kepatuhan_core::scoring::Rank) -> RankView {
    RankView {
        rank: i32::try_from(r.rank).unwrap_or(i32::MAX),
        of: i32::try_from(r.of).unwrap_or(i32::MAX),
    }
}

impl From<Simulation> for SimulationView {
    fn from(s: Simulation) -> Self {
        Self {
            unit_score: s.unit_score.value(),
            unit_score_before: s.unit_score_before.value(),
            unit_grade: grade_view(s.unit_grade),
            entity_score: s.entity_score.value(),
            entity_score_before: s.entity_score_before.value(),
            entity_grade: grade_view(s.entity_grade),
            national_rank: rank_view(s.ranks.national),
            provincial_rank: s.ranks.provincial.map(rank_view),
        }
    }
}

/// The published cycle of `raw`, or 404: plans are made over published results.
async fn published_cycle(state: &AppState, actor: &Actor, raw: i64) -> ApiResult<CycleKey> {
    let cycle = cycles::head(state, actor, cycles::year(raw)?).await?;
    if cycle.state != CycleState::Published {
        return Err(ApiError::NotFound(format!(
            "the results of {} are not published yet",
            cycle.year
        )));
    }
    Ok(CycleKey::Official(cycle.year))
}

/// Whether the actor may plan for this entity: admin, the office of its province, its own
/// government. Public callers must sign in; assessors may not.
fn require_planner(actor: &Actor) -> ApiResult<()> {
    match actor {
        Actor::Public => Err(ApiError::Unauthenticated),
        Actor::Assessor { .. } => Err(ApiError::Forbidden(
            "plans are for HQ, the offices and the governments assessed".into(),
        )),
        _ => Ok(()),
    }
}

/// The entity of a unit the actor may plan for, or 404.
async fn unit_entity(state: &AppState, actor: &Actor, unit_id: i64) -> ApiResult<i64> {
    let row = sqlx::query!(
        "SELECT e.id, e.province_code FROM units u JOIN entities e ON e.id = u.entity_id WHERE u.id = $1",
        unit_id
    )
    .fetch_optional(&state.pool)
    .await?
    .filter(|r| actor.covers_entity(r.id, r.province_code.as_deref()))
    .ok_or_else(|| ApiError::NotFound(format!("no unit {unit_id}")))?;
    Ok(row.id)
}

fn goal(query: PlanQuery) -> Goal {
    match query.grade {
        Some(code) => Goal::Band(code.trim().to_owned()),
        None => Goal::NextBand,
    }
}

impl From<PlanFailure> for ApiError {
    fn from(e: PlanFailure) -> Self {
        match e {
            PlanFailure::App(e) => e.into(),
            PlanFailure::NoInputs(unit) => {
                ApiError::NotFound(format!("unit {unit} has no verified values in this cycle"))
            }
            PlanFailure::Plan(PlanError::UnknownBand(code)) => ApiError::field(
                "grade",
                format!("no grade `{code}` in this cycle's methodology"),
            ),
            PlanFailure::Plan(PlanError::AtTop) => ApiError::conflict(
                "top-grade",
                "already in the highest grade: there is no next one",
            ),
            PlanFailure::Plan(PlanError::NoUnits) => {
                ApiError::NotFound("the entity has no scored unit in this cycle".into())
            }
            PlanFailure::Plan(e @ (PlanError::ProductScored | PlanError::Scoring(_))) => {
                ApiError::conflict("not-plannable", e.to_string())
            }
            PlanFailure::NotPublished(year) => ApiError::conflict(
                "not-published",
                format!("the official results of {year} are not published yet"),
            ),
            PlanFailure::Values(refused) => ApiError::fields(
                refused
                    .into_iter()
                    .map(|(i, e)| FieldError::new(format!("values[{i}]"), e.to_string()))
                    .collect(),
            ),
        }
    }
}

/// The least-effort plan that brings a unit to a grade: which indicators to raise, to which
/// level, with the exact score after each step.
///
/// Who may call: admin, office (its provinces), government (its entity); published cycles.
#[utoipa::path(get, path = "/cycles/{year}/results/units/{unit_id}/plan", operation_id = "get_unit_plan", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id"), PlanQuery), responses((status = 200, description = "Success", body = UnitPlanView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn unit_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
    Query(query): Query<PlanQuery>,
) -> ApiResult<Json<UnitPlanView>> {
    require_planner(&actor)?;
    let entity = unit_entity(&state, &actor, unit_id).await?;
    let key = published_cycle(&state, &actor, raw).await?;
    let plan = plans::unit_plan(&state, key, entity, unit_id, &goal(query)).await?;
    Ok(Json(UnitPlanView::new(unit_id, plan)))
}

/// The least-effort plan that brings an entity's mean to a grade: which units to improve, and
/// how.
///
/// Who may call: admin, office (its provinces), government (its entity); published cycles.
#[utoipa::path(get, path = "/cycles/{year}/results/entities/{code}/plan", operation_id = "get_entity_plan", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("code" = String, Path, description = "Entity code"), PlanQuery), responses((status = 200, description = "Success", body = EntityPlanView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn entity_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, code)): Path<(i64, String)>,
    Query(query): Query<PlanQuery>,
) -> ApiResult<Json<EntityPlanView>> {
    require_planner(&actor)?;
    let (entity_id, entity, _) =
        crate::routes::reference::entity_for(&state, &actor, &code).await?;
    let key = published_cycle(&state, &actor, raw).await?;
    let plan = plans::entity_plan(&state, key, entity_id, &goal(query)).await?;
    Ok(Json(EntityPlanView::new(entity.code, plan)))
}

/// What hypothetical values of a unit would have given in the published cycle: the unit's score
/// and grade, and its entity's score, grade and ranks. Nothing is stored.
///
/// Who may call: admin, office (its provinces), government (its entity); published cycles.
#[utoipa::path(post, path = "/cycles/{year}/results/units/{unit_id}/simulate", operation_id = "simulate_unit", tag = "results", params(("year" = i64, Path, description = "Cycle year"), ("unit_id" = i64, Path, description = "Unit id")), request_body(content = SimulationRequest, content_type = "application/json"), responses((status = 200, description = "Success", body = SimulationView), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn simulate(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, unit_id)): Path<(i64, i64)>,
    Json(body): Json<SimulationRequest>,
) -> ApiResult<Json<SimulationView>> {
    require_planner(&actor)?;
    let mut errors = Vec::new();
    let mut changes = Vec::with_capacity(body.values.len());
    for (i, v) in body.values.iter().enumerate() {
        let answer = match (v.value, v.not_applicable) {
            (None, true) => AnswerInput::NotApplicable,
            (Some(x), false) => match u8::try_from(x) {
                Ok(x) => AnswerInput::Value(x),
                Err(_) => {
                    errors.push(FieldError::new(
                        format!("values[{i}].value"),
                        format!("{x} is not a level of any scale"),
                    ));
                    continue;
                }
            },
            _ => {
                errors.push(FieldError::new(
                    format!("values[{i}]"),
                    "give either a value or not_applicable",
                ));
                continue;
            }
        };
        changes.push((v.indicator.clone(), answer));
    }
    if body.values.is_empty() {
        errors.push(FieldError::new("values", "give at least one value"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let entity = unit_entity(&state, &actor, unit_id).await?;
    let key = published_cycle(&state, &actor, raw).await?;
    let simulation = plans::simulate(&state, key, entity, unit_id, &changes).await?;
    Ok(Json(simulation.into()))
}
