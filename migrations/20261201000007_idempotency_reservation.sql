-- An Idempotency-Key is reserved while its request runs (a row without a status yet), so
-- concurrent requests with one key run once: the others wait for the answer or get 409. Keys
-- expire after 24 hours; the worker's schedule sweeps them.
ALTER TABLE idempotency_keys
    ALTER COLUMN status DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL,
    ALTER COLUMN content_type DROP NOT NULL;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
