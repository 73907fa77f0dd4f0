//! `Idempotency-Key` on POST requests: a replay with the same key and the same request returns
//! the original response (with `Idempotent-Replayed: true`) without doing the work again; the same
//! key with a different request answers `422 idempotency-key-reused`. Keys are scoped to the
//! caller and kept with the response (non-5xx responses only, so a failed attempt can be retried).

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::actor_for_token;
use crate::problem::Problem;

/// Largest response body remembered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What the caller sent, identified.
struct Attempt {
    actor_id: i64,
    key: String,
    path: String,
    fingerprint: Vec<u8>,
}

/// The middleware.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .cloned()
        .filter(|_| req.method() == Method::POST)
    else {
        return next.run(req).await;
    };
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .map(str::to_owned)
    else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            "Idempotency-Key must be 1–255 visible ASCII characters",
        )
        .into_response();
    };
    // Without a valid caller there is nothing to scope the key to: the handler answers 401.
    let token = bearer(&req);
    let Some(actor_id) = caller(&state, token).await else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, state.max_body_bytes).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the server accepts",
        )
        .into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let attempt = Attempt {
        actor_id,
        key,
        fingerprint: fingerprint(&parts, &path, &bytes),
        path,
    };
    match replay(&state, &attempt).await {
        Ok(Some(response)) => return response,
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "idempotency lookup failed");
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "try again shortly",
            )
            .into_response();
        }
    }
    let method = parts.method.clone();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        return response;
    }
    let (res_parts, res_body) = response.into_parts();
    let Ok(res_bytes) = to_bytes(res_body, MAX_RESPONSE_BYTES).await else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the response could not be read",
        )
        .into_response();
    };
    let content_type = res_parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if let Err(e) = remember(
        &state,
        &attempt,
        &method,
        res_parts.status,
        &res_bytes,
        content_type,
    )
    .await
    {
        tracing::warn!(error = %e, "could not remember idempotency key");
    }
    Response::from_parts(res_parts, Body::from(res_bytes))
}

/// The bearer token of a request, if any.
fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ")?.trim().to_owned())
}

async fn caller(state: &AppState, token: Option<String>) -> Option<i64> {
    actor_for_token(&state.pool, &token?).await.ok()?.id()
}

/// SHA-256 over method, path with query, content type and body.
fn fingerprint(parts: &Parts, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default(),
    );
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// The remembered answer for this key, or a 422 when the key was used for another request.
async fn replay(state: &AppState, a: &Attempt) -> Result<Option<Response>, sqlx::Error> {
    let saved = sqlx::query!(
        "SELECT request_hash, status, body, content_type FROM idempotency_keys WHERE actor_id = $1 AND key = $2",
        a.actor_id,
        a.key
    )
    .fetch_optional(&state.pool)
    .await?;
    Ok(saved.map(|saved| {
        if saved.request_hash != a.fingerprint {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was already used for a different request; use a new key for a new request",
            )
            .into_response();
        }
        let status = u16::try_from(saved.status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
        let mut response = (status, Bytes::from(saved.body)).into_response();
        if let Ok(ct) = HeaderValue::from_str(&saved.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }))
}

async fn remember(
    state: &AppState,
    a: &Attempt,
    method: &Method,
    status: StatusCode,
    body: &[u8],
    content_type: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (actor_id, key, method, path, request_hash, status, body, content_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        a.actor_id,
        a.key,
        method.as_str(),
        a.path,
        a.fingerprint,
        i16::try_from(status.as_u16()).unwrap_or(200),
        body,
        content_type
    )
    .execute(&state.pool)
    .await?;
    Ok(())
}
