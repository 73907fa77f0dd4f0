-- An integrity flag escalated after publication waits for a correction of the unit's verified
-- inputs; the correction that names it marks it `corrected`.
ALTER TABLE flags DROP CONSTRAINT flags_status_check;
ALTER TABLE flags ADD CONSTRAINT flags_status_check
    CHECK (status IN ('open', 'dismissed', 'escalated', 'corrected'));

-- The flags' refresh counts each office's returns; the audit trail holds one row per value
-- written, so the returns get an index of their own.
CREATE INDEX audit_log_returns ON audit_log (submission_id) WHERE action = 'returned';
