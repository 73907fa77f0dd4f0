-- Whether an entity followed up the Ombudsman's earlier findings, per cycle (2023 onwards this
-- decides award eligibility; from 2025 it also adds "Tanpa Maladministrasi" to the opinion).
CREATE TABLE entity_follow_up (
    cycle_year   integer NOT NULL REFERENCES cycles (year),
    entity_id    bigint NOT NULL REFERENCES entities (id),
    findings     integer NOT NULL CHECK (findings >= 0),
    followed_up  integer NOT NULL CHECK (followed_up >= 0 AND followed_up <= findings),
    updated_by   bigint NOT NULL REFERENCES actors (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cycle_year, entity_id)
);
