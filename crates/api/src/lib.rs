//! The kepatuhan REST service: reference data, assessment cycles, submissions, survey responses,
//! results and jobs over Postgres, with bearer-token access control and problem+json errors.
//!
//! One file per concern: [`config`] (settings), [`startup`] (pool, migrations, router),
//! [`auth`] (who is calling), [`error`] and [`problem`] (error responses), [`extract`]
//! (extractors with problem+json rejections), then one module per resource.

pub mod auth;
pub mod bulk;
pub mod config;
pub mod cycles;
pub mod demo;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod methodologies;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod recompute;
pub mod reference;
pub mod results;
pub mod startup;
pub mod submissions;
pub mod surveys;

use std::sync::Arc;

use kepatuhan_core::Methodology;
use sqlx::PgPool;

pub use startup::{build_router, connect, migrate};

/// Shared application state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Database pool.
    pub pool: PgPool,
    /// The methodologies shipped in the binary, validated at start.
    pub methodologies: Arc<Vec<Methodology>>,
}

impl AppState {
    /// Builds the state: loads and validates the shipped methodologies.
    pub fn new(pool: PgPool) -> Result<Self, String> {
        let methodologies = kepatuhan_core::methodology::builtin::all()
            .map_err(|(file, e)| format!("shipped methodology {file} is invalid: {e}"))?;
        Ok(Self {
            pool,
            methodologies: Arc::new(methodologies),
        })
    }

    /// A shipped methodology by code.
    pub fn methodology(&self, code: &str) -> Option<&Methodology> {
        self.methodologies.iter().find(|m| m.code() == code)
    }
}
