//! `Idempotency-Key` on POST requests: a replay with the same key and the same request returns
//! the original response (with `Idempotent-Replayed: true`) without doing the work again; the same
//! key with a different request answers `422 idempotency-key-reused`. Keys are scoped to the
//! caller.
//!
//! - The key is reserved before the work starts (a row without an answer), so concurrent
//!   requests with one key run once: the others wait for the answer for a moment, then get
//!   `409 idempotency-key-in-use` with `Retry-After`.
//! - The answer is kept for non-5xx responses only, so a failed attempt can be retried; a 5xx, a
//!   cancelled request or a crash frees the reservation (a reservation older than
//!   [`STALE_RESERVATION`] is taken over).
//! - Keys expire after [`KEY_LIFETIME`]: the same key then starts a new request. The worker's
//!   schedule sweeps expired keys.
//! - Secrets never land in the stored answer: a top-level `secret` field (a webhook's signing
//!   secret, shown once) is removed before it is stored, so a replay answers without it.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{actor_for_token, bearer_token};
use crate::problem::Problem;

/// Largest response body remembered.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How long a key is remembered (24 hours).
pub const KEY_LIFETIME: std::time::Duration = kepatuhan_app::db::IDEMPOTENCY_KEY_LIFETIME;

/// A reservation older than this belongs to a request that will not finish (longer than any
/// request may run): the next request with the key takes it over.
pub const STALE_RESERVATION: std::time::Duration = std::time::Duration::from_mins(5);

/// How long a request waits for a concurrent one with the same key to answer, before 409.
const WAIT_FOR_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

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
    match reserve(&state, &attempt).await {
        Ok(Reserved::Mine) => {}
        Ok(Reserved::Answered(response)) => return response,
        Err(e) => return unavailable(&e),
    }
    // Freed if the request is cancelled before it answers (the client went away).
    let mut guard = Release {
        state: Some(state.clone()),
        actor_id: attempt.actor_id,
        key: attempt.key.clone(),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        return response; // the guard frees the key: the request may be tried again
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
    match answer(
        &state,
        &attempt,
        res_parts.status,
        &without_secret(&res_bytes, content_type),
        content_type,
    )
    .await
    {
        Ok(()) => guard.state = None,
        Err(e) => tracing::warn!(error = %e, "could not remember idempotency key"),
    }
    Response::from_parts(res_parts, Body::from(res_bytes))
}

/// 503 when the key cannot be looked up: the request is not run without its guarantee.
fn unavailable(e: &sqlx::Error) -> Response {
    tracing::error!(error = %e, "idempotency lookup failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        "try again shortly",
    )
    .into_response()
}

/// Frees a reservation that got no answer (dropped with the request, or after a 5xx).
struct Release {
    state: Option<AppState>,
    actor_id: i64,
    key: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        let (actor_id, key) = (self.actor_id, std::mem::take(&mut self.key));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let freed = sqlx::query!(
                    "DELETE FROM idempotency_keys WHERE actor_id = $1 AND key = $2 AND status IS NULL",
                    actor_id,
                    key
                )
                .execute(&state.pool)
                .await;
                if let Err(e) = freed {
                    tracing::warn!(error = %e, "could not free an idempotency key");
                }
            });
        }
    }
}

/// The body to store: without a top-level `secret` field (shown once, never kept).
fn without_secret(body: &[u8], content_type: &str) -> Vec<u8> {
    if content_type.starts_with("application/json")
        && let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(body)
        && object.remove("secret").is_some()
    {
        return serde_json::to_vec(&object).unwrap_or_default();
    }
    body.to_vec()
}

/// The bearer token of a request, if any.
fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    bearer_token(value).map(str::to_owned)
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

/// What a key holds for this request.
enum Reserved {
    /// The key is this request's now: do the work.
    Mine,
    /// An answer to give instead: the remembered one, or a problem (another request, or the
    /// same one still running).
    Answered(Response),
}

/// Reserves the key for this request, or finds what it holds: the remembered answer (replayed),
/// a different request (422), or the same request still running (waits for its answer for a
/// moment, then 409).
async fn reserve(state: &AppState, a: &Attempt) -> Result<Reserved, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_ANSWER;
    loop {
        // An expired key, or a reservation whose request will not answer, is free again.
        sqlx::query!(
            "DELETE FROM idempotency_keys
             WHERE actor_id = $1 AND key = $2
               AND (created_at < now() - $3::interval OR (status IS NULL AND created_at < now() - $4::interval))",
            a.actor_id,
            a.key,
            kepatuhan_app::db::interval(KEY_LIFETIME),
            kepatuhan_app::db::interval(STALE_RESERVATION)
        )
        .execute(&state.pool)
        .await?;
        let claimed = sqlx::query_scalar!(
            r#"INSERT INTO idempotency_keys (actor_id, key, method, path, request_hash)
               VALUES ($1, $2, 'POST', $3, $4)
               ON CONFLICT (actor_id, key) DO NOTHING
               RETURNING true AS "claimed!""#,
            a.actor_id,
            a.key,
            a.path,
            a.fingerprint
        )
        .fetch_optional(&state.pool)
        .await?;
        if claimed.is_some() {
            return Ok(Reserved::Mine);
        }
        let saved = sqlx::query!(
            "SELECT request_hash, status, body, content_type FROM idempotency_keys WHERE actor_id = $1 AND key = $2",
            a.actor_id,
            a.key
        )
        .fetch_optional(&state.pool)
        .await?;
        let Some(saved) = saved else {
            continue; // freed or expired meanwhile: claim it again
        };
        if saved.request_hash != a.fingerprint {
            return Ok(Reserved::Answered(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was already used for a different request; use a new key for a new request",
            )
            .into_response()));
        }
        if let (Some(status), Some(body)) = (saved.status, saved.body) {
            return Ok(Reserved::Answered(replayed(
                status,
                body,
                saved.content_type,
            )));
        }
        if tokio::time::Instant::now() >= deadline {
            let mut busy = Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Idempotency-Key in use",
                "a request with this Idempotency-Key is still running; send it again shortly to get its answer",
            )
            .into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(Reserved::Answered(busy));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The remembered answer, marked as replayed.
fn replayed(status: i16, body: Vec<u8>, content_type: Option<String>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(body)).into_response();
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Stores the answer of the request that holds the key.
async fn answer(
    state: &AppState,
    a: &Attempt,
    status: StatusCode,
    body: &[u8],
    content_type: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE idempotency_keys SET status = $3, body = $4, content_type = $5
         WHERE actor_id = $1 AND key = $2 AND status IS NULL",
        a.actor_id,
        a.key,
        i16::try_from(status.as_u16()).unwrap_or(200),
        body,
        content_type
    )
    .execute(&state.pool)
    .await?;
    Ok(())
}
