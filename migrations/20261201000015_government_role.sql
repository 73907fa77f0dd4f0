-- The assessed governments get a role: a liaison of one entity reads its own results,
-- certificates and collection progress, plans its improvements and follows up findings.
ALTER TABLE actors DROP CONSTRAINT actors_role_check;
ALTER TABLE actors DROP CONSTRAINT actors_office_by_role;
ALTER TABLE actors
    ADD COLUMN entity_id bigint REFERENCES entities (id),
    ADD CONSTRAINT actors_role_check CHECK (role IN ('admin', 'office', 'assessor', 'government')),
    ADD CONSTRAINT actors_office_by_role CHECK (
        (role = 'admin' AND office_code IS NULL) OR (role = 'office' AND office_code IS NOT NULL)
        OR role = 'assessor' OR (role = 'government' AND office_code IS NULL)
    ),
    ADD CONSTRAINT actors_entity_by_role CHECK ((role = 'government') = (entity_id IS NOT NULL));
