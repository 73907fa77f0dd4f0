//! The `webhooks` queue: POST each endpoint's events from the outbox, signed, in order, and
//! record every attempt. A failed delivery (network error, timeout, non-2xx answer) schedules the
//! endpoint's next drain with exponential backoff, the events behind it waiting; after the last
//! attempt the event is abandoned, the job that gave up on it is dead (visible through
//! `GET /api/v1/jobs?status=dead`) and the endpoint's later events go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use hmac::{Hmac, Mac};
use kepatuhan_app::App;
use kepatuhan_app::egress::{EgressError, EgressPolicy};
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

/// The class of the advisory locks that make one deliverer per endpoint (the endpoint id is the
/// lock's second key).
const DRAIN_LOCK: i32 = 0x5745_4248; // "WEBH"

/// Delivers an endpoint's pending events, oldest first, holding the endpoint's advisory lock on
/// a connection of its own (detached from the pool: a crash or a cancelled job closes it, which
/// releases the lock). A delivery that fails stops the drain and schedules the next one after the
/// backoff, so later events wait behind it and arrive in order; after the last attempt the
/// event is abandoned and the rest go on.
pub async fn deliver(
    job: DeliverWebhook,
    app: Data<App>,
    config: Data<WorkerConfig>,
    client: Data<WebhookClient>,
) -> Result<(), JobError> {
    if let Some(event) = &job.event {
        sqlx::query!(
            "INSERT INTO webhook_outbox (endpoint_id, event_id, event) VALUES ($1, $2, $3)
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            job.endpoint_id,
            event["id"].as_str().unwrap_or_default(),
            event
        )
        .execute(&app.pool)
        .await?;
    }
    let mut lock = app.pool.acquire().await?.detach();
    let key = i32::try_from(job.endpoint_id).unwrap_or(i32::MAX);
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(DRAIN_LOCK)
        .bind(key)
        .execute(&mut lock)
        .await?;
    let outcome = drain(&app, &config, &client, job.endpoint_id).await;
    // Closing the connection releases the lock even if the unlock cannot be sent.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(DRAIN_LOCK)
        .bind(key)
        .execute(&mut lock)
        .await;
    let _ = sqlx::Connection::close(lock).await;
    outcome
}

/// One pending event of an endpoint.
struct Pending {
    id: i64,
    event_id: String,
    event: serde_json::Value,
    attempts: i32,
    due: bool,
}

/// Delivers pending events until none is left or one fails (see [`deliver`]).
async fn drain(
    app: &App,
    config: &WorkerConfig,
    client: &WebhookClient,
    endpoint_id: i64,
) -> Result<(), JobError> {
    let mut abandoned = Vec::new();
    loop {
        let endpoint = sqlx::query!(
            r#"SELECT url, secret, active,
                      CASE WHEN previous_secret_until > now() THEN previous_secret END AS "previous?"
               FROM webhook_endpoints WHERE id = $1"#,
            endpoint_id
        )
        .fetch_optional(&app.pool)
        .await?;
        let Some(endpoint) = endpoint.filter(|e| e.active) else {
            return Ok(()); // endpoint removed or deactivated: nothing to deliver
        };
        let next = sqlx::query_as!(
            Pending,
            r#"SELECT id, event_id, event, attempts, next_attempt_at <= now() AS "due!"
               FROM webhook_outbox
               WHERE endpoint_id = $1 AND delivered_at IS NULL AND abandoned_at IS NULL
               ORDER BY id LIMIT 1"#,
            endpoint_id
        )
        .fetch_optional(&app.pool)
        .await?;
        let Some(next) = next else { break };
        if !next.due {
            // Waiting for its backoff: the job scheduled with it will drain then.
            break;
        }
        let attempt = next.attempts + 1;
        let signed = Signed {
            url: &endpoint.url,
            secret: &endpoint.secret,
            previous: endpoint.previous.as_deref(),
            event_type: next.event["type"].as_str().unwrap_or_default(),
            event_id: &next.event_id,
            body: serde_json::to_vec(&next.event).map_err(|e| JobError::App(e.into()))?,
        };
        let started = Instant::now();
        let (status, error, retry) = send(client, app, signed).await;
        record_attempt(
            app,
            endpoint_id,
            &next,
            attempt,
            (status, error.as_deref()),
            started,
        )
        .await?;
        let Some(error) = error else { continue };
        tracing::warn!(endpoint = endpoint_id, event = %next.event_id, attempt, error = %error, "webhook delivery failed");
        if !retry || attempt >= i32::try_from(DELIVERY_ATTEMPTS).unwrap_or(i32::MAX) {
            sqlx::query!(
                "UPDATE webhook_outbox SET abandoned_at = now() WHERE id = $1",
                next.id
            )
            .execute(&app.pool)
            .await?;
            abandoned.push(format!("{} ({error}, attempt {attempt})", next.event_id));
            continue;
        }
        // The next attempt after the backoff; the events behind it wait.
        let delay = backoff(
            config.backoff_base,
            usize::try_from(attempt).unwrap_or(usize::MAX),
        );
        let mut tx = app.pool.begin().await?;
        sqlx::query!(
            "UPDATE webhook_outbox SET next_attempt_at = now() + $2 WHERE id = $1",
            next.id,
            kepatuhan_app::db::interval(delay)
        )
        .execute(&mut *tx)
        .await?;
        let again = DeliverWebhook {
            endpoint_id,
            event: None,
        };
        kepatuhan_app::jobs::enqueue_after(&mut tx, &again, None, delay).await?;
        tx.commit().await?;
        break;
    }
    if abandoned.is_empty() {
        Ok(())
    } else {
        Err(JobError::Delivery(format!(
            "gave up on {} after {DELIVERY_ATTEMPTS} attempts or a refused address: {}",
            abandoned.len(),
            abandoned.join("; ")
        )))
    }
}

/// Records one delivery attempt (in `webhook_deliveries`, and on the outbox row) and counts it.
async fn record_attempt(
    app: &App,
    endpoint_id: i64,
    pending: &Pending,
    attempt: i32,
    (status, error): (Option<i32>, Option<&str>),
    started: Instant,
) -> Result<(), JobError> {
    let elapsed = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let mut tx = app.pool.begin().await?;
    sqlx::query!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, status_code, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        endpoint_id,
        pending.event_id,
        pending.event["type"].as_str().unwrap_or_default(),
        attempt,
        status,
        error,
        elapsed
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE webhook_outbox SET attempts = $2,
                delivered_at = CASE WHEN $3 THEN now() END
         WHERE id = $1",
        pending.id,
        attempt,
        error.is_none()
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    kepatuhan_app::metrics::record_job("webhooks", error.is_none(), started);
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

/// The one HTTP client of webhook deliveries, shared by every delivery: no redirects, a 10 s
/// limit, and a DNS resolver that refuses a name resolving to any address the egress policy
/// forbids, so the addresses connected to are exactly the ones checked (literal addresses are
/// checked before sending, as hyper does not resolve them).
#[derive(Clone)]
pub struct WebhookClient(reqwest::Client);

impl WebhookClient {
    /// A client enforcing `egress`.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(egress: Arc<EgressPolicy>) -> Result<Self, reqwest::Error> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("kepatuhan-webhooks/1")
            .dns_resolver(Arc::new(PolicyResolver(egress)))
            .build()
            .map(Self)
    }
}

/// Resolves through [`EgressPolicy::resolve_host`].
struct PolicyResolver(Arc<EgressPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = policy.resolve_host(&host, 0).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The egress refusal behind a failed request, if that is why it failed.
fn egress_error(e: &reqwest::Error) -> Option<&EgressError> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refusal) = s.downcast_ref::<EgressError>() {
            return Some(refusal);
        }
        source = s.source();
    }
    None
}

/// POSTs an event through the shared client, following no redirect. Returns the answer's
/// status, the error if it failed, and whether another attempt may succeed (not for a refused
/// address).
async fn send(
    client: &WebhookClient,
    app: &App,
    signed: Signed<'_>,
) -> (Option<i32>, Option<String>, bool) {
    if let Err(e) = app.egress.check_url(signed.url) {
        return (None, Some(format!("refused: {e}")), false);
    }
    let timestamp = chrono::Utc::now().timestamp();
    let sent = client
        .0
        .post(signed.url)
        .header("content-type", "application/json")
        .header("kepatuhan-event", signed.event_type)
        .header("kepatuhan-delivery", signed.event_id)
        .header(
            "kepatuhan-signature",
            signatures(signed.secret, signed.previous, timestamp, &signed.body),
        )
        .body(signed.body)
        .send()
        .await;
    match &sent {
        Ok(r) if r.status().is_success() => (Some(i32::from(r.status().as_u16())), None, true),
        Ok(r) => (
            Some(i32::from(r.status().as_u16())),
            Some(format!("answered {}", r.status())),
            true,
        ),
        Err(e) => match egress_error(e) {
            Some(refusal @ EgressError::Unresolved(_)) => (None, Some(refusal.to_string()), true),
            Some(refusal) => (None, Some(format!("refused: {refusal}")), false),
            None if e.is_timeout() => (None, Some("timed out".to_owned()), true),
            None => (None, Some("could not connect".to_owned()), true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name of this machine's `/etc/hosts` (not `localhost`, which registration already
    /// refuses by name) that resolves to a loopback address.
    fn loopback_name() -> String {
        std::fs::read_to_string("/etc/hosts")
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| {
                let mut fields = l.split_whitespace();
                let address: std::net::IpAddr = fields.next()?.parse().ok()?;
                address
                    .is_loopback()
                    .then(|| fields.find(|n| !n.contains("localhost")))
                    .flatten()
                    .map(str::to_owned)
            })
            .expect("/etc/hosts names this machine with a loopback address")
    }

    #[tokio::test]
    async fn the_shared_client_refuses_a_name_that_resolves_to_a_private_address() {
        let client = WebhookClient::new(Arc::new(EgressPolicy::default())).unwrap();
        let name = loopback_name();
        let err = client
            .0
            .get(format!("http://{name}:9/hook"))
            .send()
            .await
            .unwrap_err();
        let refusal = egress_error(&err).unwrap_or_else(|| panic!("{name}: {err:?}"));
        assert!(
            matches!(refusal, EgressError::Forbidden { .. }),
            "{refusal}"
        );
        // Allowed explicitly, the same name is resolved (and nothing listens on port 9).
        let allowed = EgressPolicy::parse("127.0.0.0/8,::1/128").unwrap();
        let client = WebhookClient::new(Arc::new(allowed)).unwrap();
        let err = client
            .0
            .get(format!("http://{name}:9/hook"))
            .send()
            .await
            .unwrap_err();
        assert!(egress_error(&err).is_none(), "{err:?}");
    }
}
