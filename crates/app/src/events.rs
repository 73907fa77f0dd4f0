//! Webhook events: what happened (`results.published`, `certificate.issued`…), written in the
//! caller's transaction to the outbox of every subscribed endpoint, with one delivery job per
//! endpoint. The worker delivers each endpoint's events in order, signed, with retries;
//! endpoints are registered through the api.

use serde_json::json;
use sqlx::{Postgres, Transaction};

use crate::error::AppResult;
use crate::jobs::{self, DeliverWebhook};

/// The event types.
pub const EVENTS: [&str; 5] = [
    "results.published",
    "certificate.issued",
    "certificate.reissued",
    "certificate.revoked",
    "certificate.withdrawn",
];

/// One event to emit: its type, the entity it is about (`None`: cycle-wide) and its data.
#[derive(Debug, Clone)]
pub struct Event {
    /// One of [`EVENTS`].
    pub event_type: &'static str,
    /// The entity the event is about; `None` for a cycle-wide event.
    pub entity_id: Option<i64>,
    /// The event's `data`.
    pub data: serde_json::Value,
}

/// Enqueues an event for every active endpoint subscribed to it: endpoints of `entity_id` and of
/// the offices covering its province; without an entity (a cycle-wide event), every endpoint.
pub async fn emit(
    tx: &mut Transaction<'_, Postgres>,
    event_type: &'static str,
    entity_id: Option<i64>,
    data: serde_json::Value,
) -> AppResult<usize> {
    emit_many(
        tx,
        vec![Event {
            event_type,
            entity_id,
            data,
        }],
    )
    .await
}

/// Enqueues several events as [`emit`] does each, with one query for their subscribers and one
/// insert for their deliveries; returns the number of deliveries enqueued.
pub async fn emit_many(tx: &mut Transaction<'_, Postgres>, events: Vec<Event>) -> AppResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let entities: Vec<Option<i64>> = events.iter().map(|e| e.entity_id).collect();
    let subscribers = sqlx::query!(
        r#"SELECT x.ord AS "ord!", w.id
           FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS x(event_type, entity_id, ord)
           JOIN webhook_endpoints w ON w.active AND x.event_type = ANY(w.events)
             AND (x.entity_id IS NULL
                  OR w.entity_id = x.entity_id
                  OR w.office_code IN (SELECT op.office_code FROM office_provinces op
                                       JOIN entities e ON e.province_code = op.province_code WHERE e.id = x.entity_id))
           ORDER BY x.ord, w.id"#,
        &types as &[&str],
        &entities as &[Option<i64>]
    )
    .fetch_all(&mut **tx)
    .await?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let bodies: Vec<serde_json::Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "id": format!("evt_{}", ulid::Ulid::new()),
                "type": e.event_type,
                "created_at": now,
                "data": e.data,
            })
        })
        .collect();
    // One outbox row per event and endpoint, in event order (identity values follow the order
    // of the rows inserted), then one drain job per endpoint.
    let (endpoints, events): (Vec<i64>, Vec<serde_json::Value>) = subscribers
        .iter()
        .filter_map(|s| {
            let event = bodies.get(usize::try_from(s.ord).ok()?.checked_sub(1)?)?;
            Some((s.id, event.clone()))
        })
        .unzip();
    sqlx::query!(
        "INSERT INTO webhook_outbox (endpoint_id, event_id, event)
         SELECT e, x ->> 'id', x FROM UNNEST($1::bigint[], $2::jsonb[]) WITH ORDINALITY AS u(e, x, n) ORDER BY n",
        &endpoints,
        &events
    )
    .execute(&mut **tx)
    .await?;
    let mut distinct = endpoints.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let drains: Vec<(DeliverWebhook, Option<String>)> = distinct
        .into_iter()
        .map(|endpoint_id| {
            (
                DeliverWebhook {
                    endpoint_id,
                    event: None,
                },
                None,
            )
        })
        .collect();
    jobs::enqueue_many(tx, &drains).await?;
    Ok(endpoints.len())
}
