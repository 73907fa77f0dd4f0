-- Webhook endpoints registered by entities and regional offices, and every delivery attempt.
CREATE TABLE webhook_endpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url          text NOT NULL CHECK (url ~ '^https?://'),
    -- The HMAC-SHA256 signing key. It must be usable to sign, so it is stored as given; it is
    -- shown once at registration and never logged or returned again.
    secret       text NOT NULL CHECK (length(secret) >= 16),
    entity_id    bigint REFERENCES entities (id),
    office_code  text REFERENCES offices (code),
    events       text[] NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_by   bigint NOT NULL REFERENCES actors (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_owner CHECK ((entity_id IS NULL) <> (office_code IS NULL))
);

CREATE TABLE webhook_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id   bigint NOT NULL REFERENCES webhook_endpoints (id),
    event_id      text NOT NULL,
    event_type    text NOT NULL,
    attempt       integer NOT NULL,
    status_code   integer,
    error         text,
    duration_ms   integer NOT NULL,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
