//! The kepatuhan REST service.
//!
//! For now it serves health checks and the shipped methodologies; the assessment cycle
//! (reference data, submissions, results, access control) is built on this skeleton.

pub mod methodologies;
pub mod problem;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use kepatuhan_core::Methodology;

/// Shared, read-only application state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The methodologies shipped in the binary, validated at start.
    pub methodologies: Arc<Vec<Methodology>>,
}

impl AppState {
    /// Loads and validates the shipped methodologies.
    pub fn load() -> Result<Self, String> {
        let methodologies = kepatuhan_core::methodology::builtin::all()
            .map_err(|(file, e)| format!("shipped methodology {file} is invalid: {e}"))?;
        Ok(Self {
            methodologies: Arc::new(methodologies),
        })
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .nest("/api/v1", methodologies::router())
        .fallback(problem::not_found)
        .with_state(state)
}
