//! Webhooks: entities and regional offices register endpoints; events are delivered by the
//! worker, signed with HMAC-SHA256, retried with backoff, and every attempt is recorded.
//!
//! | endpoint | who may call |
//! |---|---|
//! | `POST /webhooks`, `GET /webhooks`, `DELETE /webhooks/{id}`, `POST /webhooks/{id}/rotate-secret`, `GET /webhooks/{id}/deliveries` | admin (any endpoint), office (endpoints of its office and of entities in its provinces), government (its entity's endpoints) |
//!
//! Events: `results.published`, `certificate.issued`, `certificate.reissued`,
//! `certificate.revoked`, `certificate.withdrawn`. Each request carries `Kepatuhan-Event`, `Kepatuhan-Delivery` (the
//! event id) and `Kepatuhan-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
//! see `docs/worker.md` for how a receiver verifies it.

use axum::extract::State;
use axum::http::StatusCode;
use kepatuhan_app::events::EVENTS;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::problem::{FieldError, Problem};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(deactivate))
        .routes(routes!(rotate))
        .routes(routes!(deliveries))
}

/// Body of `POST /webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where events are sent with POST (an http or https URL).
    pub url: String,
    /// Owner: an entity (its code)…
    pub entity_code: Option<String>,
    /// …or a regional office (its code).
    pub office: Option<String>,
    /// Events to receive; default all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// An endpoint as listed (the secret is never shown again).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    /// Id.
    pub id: i64,
    /// URL.
    pub url: String,
    /// Owning entity's code.
    pub entity_code: Option<String>,
    /// Owning office.
    pub office: Option<String>,
    /// Subscribed events.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub active: bool,
}

/// An endpoint with its signing secret, answered once at registration or rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The HMAC-SHA256 signing secret. Shown once: store it now.
    pub secret: String,
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// Register a webhook endpoint.
///
/// Who may call: admin (any owner), office (its own office, or entities in its provinces),
/// government (its entity).
#[utoipa::path(post, path = "/webhooks", operation_id = "create_webhook", tag = "webhooks", request_body(content = NewEndpoint, content_type = "application/json"), responses((status = 201, description = "Registered; the secret is shown once", body = EndpointWithSecret), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointWithSecret>)> {
    let actor_id = match &actor {
        Actor::Government { id, .. } => *id,
        _ => actor.require_staff()?,
    };
    let mut errors = Vec::new();
    let url = body.url.trim();
    if url.contains(char::is_whitespace) || url.len() > 2000 {
        errors.push(FieldError::new(
            "url",
            "must be an http(s) URL of at most 2,000 characters",
        ));
    } else if let Err(e) = state.egress.check_url(url) {
        // Checked again, after resolution, at every delivery.
        errors.push(FieldError::new("url", e.to_string()));
    }
    let events = if body.events.is_empty() {
        EVENTS.iter().map(|e| (*e).to_owned()).collect()
    } else {
        body.events.clone()
    };
    for (i, e) in events.iter().enumerate() {
        if !EVENTS.contains(&e.as_str()) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!("unknown event `{e}` ({})", EVENTS.join(", ")),
            ));
        }
    }
    let (entity_id, office) = owner(&state, &actor, &body, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let secret = new_secret();
    let mut tx = state.pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO webhook_endpoints (url, secret, entity_id, office_code, events, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        url,
        secret,
        entity_id,
        office,
        &events,
        actor_id
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("webhook_endpoints_office_code_fkey") => ApiError::field("office", "unknown office"),
        _ => e.into(),
    })?;
    audit(&mut tx, Some(actor_id), id, "created", serde_json::json!({ "url": url, "entity_id": entity_id, "office": office, "events": events })).await?;
    crate::error::commit(tx).await?;
    let endpoint = load(&state, &actor, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret { endpoint, secret }),
    ))
}

/// The owner an endpoint is registered for: an entity the caller covers, or the caller's own
/// office; problems are added to `errors`.
async fn owner(
    state: &AppState,
    actor: &Actor,
    body: &NewEndpoint,
    errors: &mut Vec<FieldError>,
) -> ApiResult<(Option<i64>, Option<String>)> {
    Ok(match (&body.entity_code, &body.office) {
        (Some(code), None) => {
            let found = sqlx::query!(
                "SELECT id, province_code FROM entities WHERE code = $1",
                code.trim()
            )
            .fetch_optional(&state.pool)
            .await?;
            match found {
                Some(e) if actor.covers_entity(e.id, e.province_code.as_deref()) => {
                    (Some(e.id), None)
                }
                _ => {
                    errors.push(FieldError::new(
                        "entity_code",
                        format!("no entity `{code}` you can register for"),
                    ));
                    (None, None)
                }
            }
        }
        (None, Some(o)) => match actor {
            Actor::Government { .. } => {
                errors.push(FieldError::new(
                    "office",
                    "a government registers endpoints for its entity (entity_code)",
                ));
                (None, None)
            }
            Actor::Office { office, .. } if office != o => {
                errors.push(FieldError::new(
                    "office",
                    "an office registers endpoints for itself",
                ));
                (None, None)
            }
            _ => (None, Some(o.trim().to_owned())),
        },
        _ => {
            errors.push(FieldError::new(
                "entity_code",
                "give exactly one owner: entity_code or office",
            ));
            (None, None)
        }
    })
}

async fn load(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Endpoint> {
    list_rows(state, actor)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no webhook endpoint {id}")))
}

async fn list_rows(state: &AppState, actor: &Actor) -> ApiResult<Vec<Endpoint>> {
    let (office, provinces, entity) = match actor {
        Actor::Government { entity_id, .. } => (None, None, Some(*entity_id)),
        Actor::Office {
            office, provinces, ..
        } => (Some(office.clone()), Some(provinces.clone()), None),
        _ => {
            actor.require_staff()?;
            (None, None, None)
        }
    };
    Ok(sqlx::query_as!(
        Endpoint,
        r#"SELECT w.id, w.url, e.code AS "entity_code?", w.office_code AS office, w.events, w.active
           FROM webhook_endpoints w LEFT JOIN entities e ON e.id = w.entity_id
           WHERE CASE WHEN $3::bigint IS NOT NULL THEN w.entity_id = $3
                      ELSE $1::text IS NULL OR w.office_code = $1 OR e.province_code = ANY($2) END
           ORDER BY w.id"#,
        office,
        provinces.as_deref(),
        entity
    )
    .fetch_all(&state.pool)
    .await?)
}

/// List webhook endpoints.
///
/// Who may call: admin (all), office (its own and its provinces' entities'), government (its
/// entity's).
#[utoipa::path(get, path = "/webhooks", operation_id = "list_webhooks", tag = "webhooks", responses((status = 200, description = "Success", body = Vec<Endpoint>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn list(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Endpoint>>> {
    Ok(Json(list_rows(&state, &actor).await?))
}

/// Deactivate an endpoint (its delivery log is kept).
///
/// Who may call: as for listing.
#[utoipa::path(delete, path = "/webhooks/{id}", operation_id = "deactivate_webhook", tag = "webhooks", params(("id" = i64, Path, description = "Endpoint id")), responses((status = 200, description = "Deactivated", body = Endpoint), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn deactivate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<Endpoint>> {
    load(&state, &actor, id).await?;
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "UPDATE webhook_endpoints SET active = false WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor.id(),
        id,
        "deactivated",
        serde_json::Value::Null,
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(load(&state, &actor, id).await?))
}

/// Replace an endpoint's signing secret; the new one is shown once. For 24 hours deliveries are
/// signed with both the new and the previous secret (two `v1=` in `Kepatuhan-Signature`), so the
/// receiver can switch over without losing an event.
///
/// Who may call: as for listing.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks", params(("id" = i64, Path, description = "Endpoint id")), responses((status = 200, description = "The new secret, shown once", body = EndpointWithSecret), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn rotate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<EndpointWithSecret>> {
    let endpoint = load(&state, &actor, id).await?;
    let secret = new_secret();
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "UPDATE webhook_endpoints
            SET previous_secret = secret, previous_secret_until = now() + interval '24 hours', secret = $2
          WHERE id = $1",
        id,
        secret
    )
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor.id(),
        id,
        "secret-rotated",
        serde_json::Value::Null,
    )
    .await?;
    crate::error::commit(tx).await?;
    Ok(Json(EndpointWithSecret { endpoint, secret }))
}

/// One delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Event id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// Attempt number.
    pub attempt: i32,
    /// HTTP status answered, if any.
    pub status_code: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Round trip.
    pub duration_ms: i32,
    /// When.
    pub attempted_at: chrono::DateTime<chrono::Utc>,
}

/// The latest delivery attempts (at most 200) of an endpoint.
///
/// Who may call: as for listing.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks", params(("id" = i64, Path, description = "Endpoint id")), responses((status = 200, description = "Success", body = Vec<Delivery>), (status = "4XX", description = "A problem (RFC 9457)", body = Problem, content_type = "application/problem+json")), security(("bearer" = [])))]
async fn deliveries(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<Delivery>>> {
    load(&state, &actor, id).await?;
    Ok(Json(
        sqlx::query_as!(
            Delivery,
            "SELECT event_id, event_type, attempt, status_code, error, duration_ms, attempted_at
             FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT 200",
            id
        )
        .fetch_all(&state.pool)
        .await?,
    ))
}

/// Records a change of an endpoint in the audit trail, in the caller's transaction.
async fn audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: Option<i64>,
    id: i64,
    action: &'static str,
    details: serde_json::Value,
) -> ApiResult<()> {
    let entry = kepatuhan_app::audit::Entry {
        object_type: "webhook",
        object_id: id.to_string(),
        province: None,
        action,
        details,
    };
    Ok(kepatuhan_app::audit::record(tx, actor, entry).await?)
}
