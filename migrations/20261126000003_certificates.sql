-- Certificates (piagam penghargaan): one valid certificate per recipient (an entity, or a unit of
-- it) per cycle. Certificates are never deleted: revoked or superseded ones keep answering the
-- public verification page, with the replacement's code.
CREATE TABLE certificates (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code              text NOT NULL UNIQUE,
    cycle_year        integer NOT NULL REFERENCES cycles (year),
    revision          integer NOT NULL,
    entity_id         bigint NOT NULL REFERENCES entities (id),
    unit_id           bigint REFERENCES units (id),
    recipient         text NOT NULL,
    recipient_detail  text,
    score             numeric(5, 2) NOT NULL,
    grade_code        text NOT NULL,
    grade_label       text NOT NULL,
    zone              text,
    rank_text         text,
    status            text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked', 'superseded')),
    replaced_by       bigint REFERENCES certificates (id),
    revoke_reason     text,
    sha256            bytea NOT NULL CHECK (length(sha256) = 32),
    object_key        text NOT NULL,
    size_bytes        integer NOT NULL,
    issued_at         timestamptz NOT NULL DEFAULT now(),
    status_changed_at timestamptz
);
CREATE UNIQUE INDEX certificates_one_valid ON certificates (cycle_year, entity_id, COALESCE(unit_id, 0)) WHERE status = 'valid';
CREATE INDEX certificates_recipient ON certificates (cycle_year, entity_id, unit_id);

CREATE FUNCTION certificates_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'certificates are revoked, never deleted';
END $$;
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION certificates_are_kept();
