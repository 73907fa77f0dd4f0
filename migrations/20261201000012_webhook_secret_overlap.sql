-- Rotating a webhook's secret keeps the previous one for a day: deliveries carry a signature by
-- each, so a receiver can switch to the new secret without losing an event.
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_until timestamptz;
