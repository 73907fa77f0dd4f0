-- Webhook events wait in an outbox, one row per event and endpoint, and are delivered to each
-- endpoint in order: a delivery job drains its endpoint's pending rows oldest first, one
-- deliverer per endpoint at a time, so a receiver that was down gets every event, in order, once
-- it is back. A row is pending until delivered, or abandoned after its last attempt.
CREATE TABLE webhook_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id),
    event_id        text NOT NULL,
    event           jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    abandoned_at    timestamptz,
    UNIQUE (endpoint_id, event_id),
    CONSTRAINT webhook_outbox_settled_once CHECK (delivered_at IS NULL OR abandoned_at IS NULL)
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (endpoint_id, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
