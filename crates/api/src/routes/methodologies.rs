//! `GET /api/v1/methodologies`: the shipped methodologies, public.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kepatuhan_core::{CycleYear, Methodology};
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this module. Who may call: anyone (methodologies are public documents).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
}

/// One line of the methodology list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Stable code.
    pub code: String,
    /// Human name.
    pub name: String,
    /// First cycle year.
    #[schema(value_type = i32)]
    pub first_year: CycleYear,
    /// Last cycle year, if closed.
    #[schema(value_type = Option<i32>)]
    pub last_year: Option<CycleYear>,
    /// Number of assessed indicators.
    pub indicators: usize,
}

/// List the shipped methodologies.
///
/// Who may call: anyone.
#[utoipa::path(get, path = "/methodologies", operation_id = "list_methodologies", tag = "methodologies", responses((status = 200, description = "Success", body = Vec<Summary>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn list(State(state): State<AppState>) -> Json<Vec<Summary>> {
    Json(
        state
            .methodologies
            .iter()
            .map(|m| Summary {
                code: m.code().to_owned(),
                name: m.name().to_owned(),
                first_year: m.first_year(),
                last_year: m.last_year(),
                indicators: m.indicator_count(),
            })
            .collect(),
    )
}

/// A methodology's full tree.
///
/// Who may call: anyone.
#[utoipa::path(get, path = "/methodologies/{code}", operation_id = "get_methodology", tag = "methodologies", params(("code" = String, Path, description = "Methodology code")), responses((status = 200, description = "Success", body = serde_json::Value), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security((), ("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Methodology>, Problem> {
    state
        .methodologies
        .iter()
        .find(|m| m.code() == code)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no methodology with code `{code}`"),
            )
        })
}
