//! The kepatuhan REST service: reference data, assessment cycles, submissions, survey responses,
//! results and jobs over Postgres, with bearer-token access control and problem+json errors.
//!
//! One file per concern: [`config`] (settings), [`startup`] (pool, migrations, router),
//! [`auth`] (who is calling), [`error`] and [`problem`] (error responses), [`extract`]
//! (extractors with problem+json rejections), then one module per resource.

pub mod auth;
pub mod bulk;
pub mod certificates;
pub mod config;
pub mod cycles;
pub mod demo;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod methodologies;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod recompute;
pub mod reference;
pub mod results;
pub mod startup;
pub mod storage;
pub mod submissions;
pub mod surveys;
pub mod telemetry;
pub mod webhooks;

use std::sync::Arc;

use kepatuhan_core::Methodology;
use sqlx::PgPool;

pub use startup::{build_router, connect, migrate};

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub pool: PgPool,
    /// The methodologies shipped in the binary, validated at start.
    pub methodologies: Arc<Vec<Methodology>>,
    /// Where certificate PDFs are stored.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// Base URL of the public verification pages (shared: the state is cloned per request).
    pub public_base_url: Arc<str>,
    /// Largest accepted request body (also what the idempotency layer buffers at most).
    pub max_body_bytes: usize,
    /// Anonymous answers about published results, by URI, for a moment (`None`: off).
    pub public_cache: Option<results::PublicCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.to_string())
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds a state with certificates kept in memory and the default public URL (tests, tools).
    pub fn new(pool: PgPool) -> Result<Self, String> {
        let methodologies = kepatuhan_core::methodology::builtin::all()
            .map_err(|(file, e)| format!("shipped methodology {file} is invalid: {e}"))?;
        Ok(Self {
            pool,
            methodologies: Arc::new(methodologies),
            store: Arc::new(object_store::memory::InMemory::new()),
            public_base_url: Arc::from("http://127.0.0.1:8080"),
            max_body_bytes: 16 * 1024 * 1024,
            public_cache: None,
        })
    }

    /// Builds the state a process runs with: the configured certificate store and public URL.
    pub fn configured(pool: PgPool, settings: &config::Settings) -> Result<Self, String> {
        Ok(Self {
            store: storage::open(&settings.certificate_store)?,
            public_base_url: Arc::from(settings.public_base_url.as_str()),
            max_body_bytes: settings.max_body_bytes,
            public_cache: results::PublicCache::new(settings.public_cache),
            ..Self::new(pool)?
        })
    }

    /// A shipped methodology by code.
    pub fn methodology(&self, code: &str) -> Option<&Methodology> {
        self.methodologies.iter().find(|m| m.code() == code)
    }
}
