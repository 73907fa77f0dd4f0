-- Tokens may expire, and record when they were last used (at most once a minute), so stale
-- ones can be found and revoked.
ALTER TABLE api_tokens
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz;
