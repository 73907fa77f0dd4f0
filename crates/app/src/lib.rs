//! The application layer of kepatuhan, beneath the HTTP service (`kepatuhan-api`) and the
//! background worker (`kepatuhan-worker`): everything both need that is not HTTP.
//!
//! - [`audit`]: the append-only audit trail of every write.
//! - [`config`]: one typed configuration, in layers (defaults, file, `KEPATUHAN_*` variables).
//! - [`telemetry`]: logs and traces, set up once per process; trace context carried into jobs.
//! - [`db`]: the pool and the migrations.
//! - [`cycles`]: a cycle's identity, its row lock, its input revision and the publication of a
//!   results revision: one function each.
//! - [`recompute`]: verified inputs → the core scoring engine → result rows.
//! - [`plans`]: improvement plans and simulations over an entity's stored inputs.
//! - [`jobs`]: job payloads and transactional enqueueing (apalis on Postgres).
//! - [`events`]: webhook events, enqueued for their subscribers.
//! - [`storage`]: object storage for certificate PDFs.
//! - [`egress`]: where the system may send requests of its own (webhooks: public addresses).
//! - [`metrics`]: the process's Prometheus registry.
//!
//! Errors are [`AppError`]: it says what went wrong in the application's terms; the api maps it
//! to problem+json, the worker to a failed job.

pub mod audit;
pub mod clock;
pub mod config;
pub mod cycles;
pub mod db;
pub mod egress;
pub mod error;
pub mod events;
pub mod flags;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod plans;
pub mod recompute;
pub mod storage;
pub mod telemetry;

use std::sync::Arc;

use kepatuhan_core::Methodology;
use sqlx::PgPool;

pub use error::{AppError, AppResult};

/// What the api and the worker share at run time: the database, the shipped methodologies, the
/// certificate store and the public URL. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Database pool.
    pub pool: PgPool,
    /// The methodologies shipped in the binary, validated at start.
    pub methodologies: Arc<Vec<Methodology>>,
    /// Where certificate PDFs are stored.
    pub store: Arc<dyn object_store::ObjectStore>,
    /// Base URL of the public verification pages (printed in certificates' QR codes).
    pub public_base_url: Arc<str>,
    /// Where webhooks may be delivered: public addresses, and the networks configured.
    pub egress: Arc<egress::EgressPolicy>,
    /// The thresholds of the integrity flags.
    pub flag_settings: Arc<kepatuhan_core::flags::FlagSettings>,
    /// The time stamped on submissions and reviews (the system clock, but for tests).
    pub clock: Arc<dyn clock::Clock>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store.to_string())
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application with certificates kept in memory and the default public URL (tests, tools).
    pub fn new(pool: PgPool) -> Result<Self, AppError> {
        let methodologies = kepatuhan_core::methodology::builtin::all().map_err(|(file, e)| {
            AppError::Config(format!("shipped methodology {file} is invalid: {e}"))
        })?;
        Ok(Self {
            pool,
            methodologies: Arc::new(methodologies),
            store: Arc::new(object_store::memory::InMemory::new()),
            public_base_url: Arc::from("http://127.0.0.1:8080"),
            egress: Arc::new(egress::EgressPolicy::default()),
            flag_settings: Arc::default(),
            clock: Arc::new(clock::SystemClock),
        })
    }

    /// The application a process runs with: the configured certificate store and public URL.
    pub fn configured(pool: PgPool, settings: &config::Settings) -> Result<Self, AppError> {
        Ok(Self {
            store: storage::open(&settings.certificate_store, &settings.store_options)
                .map_err(AppError::Config)?,
            public_base_url: Arc::from(settings.public_base_url.as_str()),
            egress: Arc::new(settings.webhook_allowed_networks.clone()),
            flag_settings: Arc::new(settings.flag_settings.clone()),
            ..Self::new(pool)?
        })
    }

    /// A shipped methodology by code.
    pub fn methodology(&self, code: &str) -> Option<&Methodology> {
        self.methodologies.iter().find(|m| m.code() == code)
    }

    /// A shipped methodology by code, or [`AppError::UnknownMethodology`].
    pub fn require_methodology(&self, code: &str) -> AppResult<&Methodology> {
        self.methodology(code)
            .ok_or_else(|| AppError::UnknownMethodology(code.to_owned()))
    }
}

/// Resolves on SIGTERM or Ctrl-C: both processes stop gracefully on it.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
