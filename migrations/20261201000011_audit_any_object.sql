-- The audit log records every write, of any object: a submission (as before: `submission_id`),
-- or any other object named by `object_type` and `object_id` (an entity code, a certificate
-- code, a webhook id…), with the province it belongs to when it belongs to one, so an office
-- reads the trail of its provinces. Rows of submissions keep `object_type = 'submission'` and
-- find their province through the submission. The log refuses UPDATE, DELETE and TRUNCATE.
ALTER TABLE audit_log
    ADD COLUMN object_type text NOT NULL DEFAULT 'submission',
    ADD COLUMN object_id text,
    ADD COLUMN province_code text;
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
