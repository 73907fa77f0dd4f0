//! `GET /api/v1/methodologies`: the shipped methodologies, public.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kepatuhan_core::{CycleYear, Methodology};
use serde::Serialize;

use crate::AppState;
use crate::problem::Problem;

/// Routes of this module. Who may call: anyone (methodologies are public documents).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/methodologies", get(list))
        .route("/methodologies/{code}", get(show))
}

/// One line of the methodology list.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Stable code.
    pub code: String,
    /// Human name.
    pub name: String,
    /// First cycle year.
    pub first_year: CycleYear,
    /// Last cycle year, if closed.
    pub last_year: Option<CycleYear>,
    /// Number of assessed indicators.
    pub indicators: usize,
}

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
