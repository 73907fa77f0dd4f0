-- A certificate whose recipient no longer earns an award in a newer results revision (its
-- eligibility lost, or its result gone) is withdrawn by the system, with the reason in
-- `revoke_reason`: unlike an admin's revocation, it is not a judgement and does not stick.
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('valid', 'revoked', 'superseded', 'withdrawn'));
