//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at `/openapi.json`
//! with an interactive reference at `/docs`, and committed as `docs/openapi.json` (a test fails
//! when the committed file is stale; regenerate with `just openapi`).

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Header, RefOr, Required};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::routes::{
    audit, certificates, cycles, findings, flags, forms, imports, jobs, methodologies, reference,
    results, self_assessments, submissions, survey_workbook, surveys, webhooks,
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
        (name = "audit", description = "The audit trail of every write"),
        (name = "findings", description = "The findings register: the Ombudsman's findings, their follow-up and acceptance"),
        (name = "flags", description = "Integrity flags: what deserves a second look before HQ publishes"),
        (name = "self-assessments", description = "Unofficial cycles: a government's self-assessment, an office's pre-evaluation, and their calibration against the official result")
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

/// What every operation shares, declared once: the `Idempotency-Key` a POST accepts; the
/// `X-Request-Id` of every answer; `Location` of a creation; `Idempotent-Replayed` of a
/// replayed POST; the `ETag` of a submission (sent back in `If-Match`); and the server.
struct Conventions;

impl Conventions {
    fn text() -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        ))
    }

    fn header(description: &str) -> RefOr<Header> {
        let mut header = Header::new(Self::text());
        header.description = Some(description.to_owned());
        RefOr::T(header)
    }

    fn idempotency_key() -> RefOr<Parameter> {
        RefOr::T(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Runs the request once: a retry with the same key (within 24 hours) gets the \
                     first answer again, with `Idempotent-Replayed: true`",
                ))
                .schema(Some(Self::text()))
                .build(),
        )
    }

    fn annotate(path: &str, method: &str, operation: &mut utoipa::openapi::path::Operation) {
        let post = method == "post";
        if post {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(Self::idempotency_key());
        }
        let versioned = path.starts_with("/api/v1/submissions/{id}")
            || (post && path == "/api/v1/cycles/{year}/submissions");
        for (status, response) in &mut operation.responses.responses {
            let RefOr::T(response) = response else {
                continue;
            };
            let headers = &mut response.headers;
            headers.insert(
                "X-Request-Id".to_owned(),
                Self::header(
                    "Identifies the request in the logs: quote it when reporting a problem",
                ),
            );
            if !status.starts_with('2') {
                continue;
            }
            if status == "201" {
                headers.insert(
                    "Location".to_owned(),
                    Self::header("Where the created object is"),
                );
            }
            if post {
                headers.insert(
                    "Idempotent-Replayed".to_owned(),
                    Self::header("`true` when the answer is the replay of an earlier request with the same Idempotency-Key"),
                );
            }
            if versioned {
                headers.insert(
                    "ETag".to_owned(),
                    Self::header(
                        "The submission's version: send it back in `If-Match` to change it",
                    ),
                );
            }
        }
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![Server::new("/")]);
        for (path, item) in &mut openapi.paths.paths {
            for (method, operation) in [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ] {
                if let Some(operation) = operation {
                    Self::annotate(path, method, operation);
                }
            }
        }
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
        .merge(survey_workbook::router())
        .merge(forms::router())
        .merge(results::router())
        .merge(imports::router())
        .merge(jobs::router())
        .merge(certificates::router())
        .merge(webhooks::router())
        .merge(self_assessments::router())
        .merge(findings::router())
        .merge(flags::router())
        .merge(audit::router())
}

/// The complete document.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_router())
        .merge(certificates::verify_router())
        .split_for_parts();
    // After the routes are in: the conventions apply to every operation.
    let mut doc = doc;
    Conventions.modify(&mut doc);
    doc
}

/// The document as committed in `docs/openapi.json`.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
