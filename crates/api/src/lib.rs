//! The kepatuhan REST service: HTTP only. Reference data, assessment cycles, submissions, survey
//! responses, results, certificates, webhooks and jobs over the application layer
//! (`kepatuhan-app`), with bearer-token access control and problem+json errors.
//!
//! - [`startup`]: [`build`], the one way to make the HTTP application (used by `main` and the
//!   tests alike), its middleware and health checks.
//! - [`routes`]: one module (or folder) per resource, each with its routes and the rule of who
//!   may call them.
//! - [`auth`] (who is calling), [`error`] and [`problem`] (error responses; the mapping from the
//!   application's error to problem+json is in [`error`]), [`extract`] (extractors with
//!   problem+json rejections), [`bulk`], [`pagination`], [`idempotency`], [`public_cache`]
//!   (anonymous answers about published results, from memory for a moment), [`rate_limit`]
//!   (anonymous callers, per client).

pub mod auth;
pub mod bulk;
pub mod demo;
pub mod error;
pub mod export;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod public_cache;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod workbook;

use kepatuhan_app::App;
use kepatuhan_app::config::Settings;

pub use startup::build;

/// The HTTP service's state: the application, and what only HTTP needs (body limit, the public
/// answers cache). Cheap to clone: axum clones it per request.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application layer: pool, methodologies, certificate store, public URL.
    pub app: App,
    /// Largest accepted request body (also what the idempotency layer buffers at most).
    pub max_body_bytes: usize,
    /// Anonymous answers about published results, by URI, for a moment (`None`: off).
    pub public_cache: Option<public_cache::PublicCache>,
    /// The rate limit of anonymous callers (`None`: off).
    pub anonymous_limit: Option<rate_limit::AnonymousLimit>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl AppState {
    /// The state of a service over `app` with `settings`' body limit and public cache.
    pub fn new(app: App, settings: &Settings) -> Self {
        Self {
            app,
            max_body_bytes: settings.max_body_bytes,
            public_cache: public_cache::PublicCache::new(settings.public_cache),
            anonymous_limit: rate_limit::AnonymousLimit::new(
                settings.anonymous_rate,
                settings.anonymous_burst,
                settings.trusted_proxy_hops,
            ),
        }
    }
}
