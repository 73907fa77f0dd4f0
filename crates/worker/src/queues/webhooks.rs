//! The `webhooks` queue: POST an event to an endpoint, signed, and record the attempt. A failed
//! delivery (network error, timeout, non-2xx answer) enqueues the next attempt with exponential
//! backoff; after the last one the job is dead, visible through `GET /api/v1/jobs?status=dead`.

use std::time::{Duration, Instant};

use apalis::prelude::*;
use hmac::{Hmac, Mac};
use kepatuhan_app::App;
use kepatuhan_app::egress::EgressError;
use kepatuhan_app::jobs::{DELIVERY_ATTEMPTS, DeliverWebhook};
use sha2::Sha256;

use crate::WorkerConfig;
use crate::error::JobError;
use crate::retry::backoff;

/// The `Kepatuhan-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    signatures(secret, None, timestamp, body)
}

/// The `Kepatuhan-Signature` header value while a rotated secret overlaps: a `v1=` by the
/// current secret, then one by the previous secret; a receiver accepts the event when either
/// verifies with the secret it holds.
pub fn signatures(secret: &str, previous: Option<&str>, timestamp: i64, body: &[u8]) -> String {
    let sign = |key: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    };
    let mut header = format!("t={timestamp},v1={}", sign(secret));
    if let Some(previous) = previous {
        header.push_str(",v1=");
        header.push_str(&sign(previous));
    }
    header
}

/// Delivers one event.
pub async fn deliver(
    job: DeliverWebhook,
    app: Data<App>,
    config: Data<WorkerConfig>,
) -> Result<(), JobError> {
    let endpoint = sqlx::query!(
        r#"SELECT url, secret, active,
                  CASE WHEN previous_secret_until > now() THEN previous_secret END AS "previous?"
           FROM webhook_endpoints WHERE id = $1"#,
        job.endpoint_id
    )
    .fetch_optional(&app.pool)
    .await?;
    let Some(endpoint) = endpoint.filter(|e| e.active) else {
        return Ok(()); // endpoint removed or deactivated: nothing to deliver
    };
    let body = serde_json::to_vec(&job.event).map_err(|e| JobError::App(e.into()))?;
    let event_id = job.event["id"].as_str().unwrap_or_default().to_owned();
    let event_type = job.event["type"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let signed = Signed {
        url: &endpoint.url,
        secret: &endpoint.secret,
        previous: endpoint.previous.as_deref(),
        event_type: &event_type,
        event_id: &event_id,
        body,
    };
    let (status, error, retry) = send(&app, signed).await?;
    let elapsed = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    sqlx::query!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, status_code, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        job.endpoint_id,
        event_id,
        event_type,
        i32::try_from(job.attempt).unwrap_or(i32::MAX),
        status,
        error,
        elapsed
    )
    .execute(&app.pool)
    .await?;
    kepatuhan_app::metrics::record_job("webhooks", error.is_none(), started);
    let Some(error) = error else { return Ok(()) };
    tracing::warn!(endpoint = job.endpoint_id, event = %event_id, attempt = job.attempt, error = %error, "webhook delivery failed");
    if !retry || job.attempt >= DELIVERY_ATTEMPTS {
        return Err(JobError::Delivery(format!(
            "{error} (attempt {} of {DELIVERY_ATTEMPTS}; giving up)",
            job.attempt
        )));
    }
    // The next attempt is its own job, delayed by the backoff.
    let next = DeliverWebhook {
        attempt: job.attempt + 1,
        ..job
    };
    let delay = backoff(
        config.backoff_base,
        usize::try_from(next.attempt - 1).unwrap_or(usize::MAX),
    );
    let mut tx = app.pool.begin().await?;
    kepatuhan_app::jobs::enqueue_after(&mut tx, &next, None, delay).await?;
    tx.commit().await?;
    Ok(())
}

/// A signed event on its way to an endpoint.
struct Signed<'a> {
    url: &'a str,
    secret: &'a str,
    previous: Option<&'a str>,
    event_type: &'a str,
    event_id: &'a str,
    body: Vec<u8>,
}

/// POSTs an event to the addresses its URL resolves to, once every one is checked against the
/// egress policy (`kepatuhan_app::egress`), following no redirect. Returns the answer's status,
/// the error if it failed, and whether another attempt may succeed (not for a refused address).
async fn send(
    app: &App,
    signed: Signed<'_>,
) -> Result<(Option<i32>, Option<String>, bool), JobError> {
    let destination = match app.egress.resolve(signed.url).await {
        Ok(d) => d,
        Err(e @ EgressError::Unresolved(_)) => return Ok((None, Some(e.to_string()), true)),
        Err(e) => return Ok((None, Some(format!("refused: {e}")), false)),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        // Connect to exactly the addresses checked: no second lookup can answer otherwise.
        .resolve_to_addrs(&destination.host, &destination.addresses)
        .build()?
        .post(signed.url)
        .header("content-type", "application/json")
        .header("user-agent", "kepatuhan-webhooks/1")
        .header("kepatuhan-event", signed.event_type)
        .header("kepatuhan-delivery", signed.event_id)
        .header(
            "kepatuhan-signature",
            signatures(signed.secret, signed.previous, timestamp, &signed.body),
        )
        .body(signed.body)
        .send()
        .await;
    Ok(match &sent {
        Ok(r) if r.status().is_success() => (Some(i32::from(r.status().as_u16())), None, true),
        Ok(r) => (
            Some(i32::from(r.status().as_u16())),
            Some(format!("answered {}", r.status())),
            true,
        ),
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "could not connect".to_owned()
            }),
            true,
        ),
    })
}
