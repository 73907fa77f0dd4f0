//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at `/openapi.json`
//! with an interactive reference at `/docs`, and committed as `docs/openapi.json` (a test fails
//! when the committed file is stale; regenerate with `just openapi`).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::routes::{
    audit, certificates, cycles, imports, jobs, methodologies, reference, results, submissions,
    surveys, webhooks,
};

/// Document metadata.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kepatuhan API",
        description = "Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik (Ombudsman RI): reference data, \
assessment cycles, submissions, survey responses, results and jobs.\n\n\
Authenticate with `Authorization: Bearer <token>` (tokens are created by `kepatuhan-api token create`). \
Every error is `application/problem+json` (RFC 9457) with a stable `type`, a `detail` and, for invalid input, \
field-level `errors`. Objects outside the caller's scope answer 404. POSTs accept an `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "methodologies", description = "Shipped methodologies"),
        (name = "reference", description = "Provinces, regional offices, entities, units"),
        (name = "cycles", description = "Cycles, their states, sample and assignments"),
        (name = "submissions", description = "Assessors' indicator values, review and audit trail"),
        (name = "surveys", description = "Service-user survey responses"),
        (name = "results", description = "Scores, grades, ranks, year-on-year, deficiencies"),
        (name = "imports", description = "Published scores of past cycles"),
        (name = "jobs", description = "Background jobs"),
        (name = "certificates", description = "Certificates and their public verification"),
        (name = "webhooks", description = "Webhook endpoints and their deliveries"),
        (name = "audit", description = "The audit trail of every write")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// All `/api/v1` routes with their documentation.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(methodologies::router())
        .merge(reference::router())
        .merge(cycles::router())
        .merge(submissions::router())
        .merge(surveys::router())
        .merge(results::router())
        .merge(imports::router())
        .merge(jobs::router())
        .merge(certificates::router())
        .merge(webhooks::router())
        .merge(audit::router())
}

/// The complete document.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_router())
        .merge(certificates::verify_router())
        .split_for_parts();
    doc
}

/// The document as committed in `docs/openapi.json`.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
