-- Cycles get an identity of their own. The year no longer identifies a cycle: beside the official
-- cycle of a year stand unofficial ones (a government's self-assessment, an office's
-- pre-evaluation of a government), each named and owned by one entity. Every table keyed by
-- `cycle_year` is keyed by `cycle_id` instead; the official cycle of a year stays unique.

ALTER TABLE cycles
    ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN kind text NOT NULL DEFAULT 'official'
        CHECK (kind IN ('official', 'self_assessment', 'pre_evaluation')),
    -- The entity an unofficial cycle assesses, its name, and who opened it.
    ADD COLUMN entity_id bigint REFERENCES entities (id),
    ADD COLUMN name text CHECK (name IS NULL OR length(trim(name)) > 0),
    ADD COLUMN opened_by bigint REFERENCES actors (id),
    ADD CONSTRAINT cycles_unofficial_owner CHECK (
        (kind = 'official') = (entity_id IS NULL) AND (kind = 'official') = (name IS NULL)
    ),
    ADD CONSTRAINT cycles_id_key UNIQUE (id);

-- Each table that held `cycle_year` gets `cycle_id`, filled from the official cycle of that year.
ALTER TABLE cycle_units ADD COLUMN cycle_id bigint;
ALTER TABLE assignments ADD COLUMN cycle_id bigint;
ALTER TABLE submissions ADD COLUMN cycle_id bigint;
ALTER TABLE survey_responses ADD COLUMN cycle_id bigint;
ALTER TABLE unit_results ADD COLUMN cycle_id bigint;
ALTER TABLE entity_results ADD COLUMN cycle_id bigint;
ALTER TABLE certificates ADD COLUMN cycle_id bigint;
ALTER TABLE entity_follow_up ADD COLUMN cycle_id bigint;

UPDATE cycle_units t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE assignments t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE submissions t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE survey_responses t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE unit_results t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE entity_results t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE certificates t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;
UPDATE entity_follow_up t SET cycle_id = c.id FROM cycles c WHERE c.year = t.cycle_year;

-- The year's keys, constraints and indexes go with the column (CASCADE: the foreign keys of
-- assignments, submissions and survey responses into the sample go with the sample's key).
ALTER TABLE cycle_units DROP COLUMN cycle_year CASCADE;
ALTER TABLE assignments DROP COLUMN cycle_year;
ALTER TABLE submissions DROP COLUMN cycle_year;
ALTER TABLE survey_responses DROP COLUMN cycle_year;
ALTER TABLE unit_results DROP COLUMN cycle_year;
ALTER TABLE entity_results DROP COLUMN cycle_year;
ALTER TABLE certificates DROP COLUMN cycle_year;
ALTER TABLE entity_follow_up DROP COLUMN cycle_year;

ALTER TABLE cycles DROP CONSTRAINT cycles_pkey;
ALTER TABLE cycles DROP CONSTRAINT cycles_id_key;
ALTER TABLE cycles ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX cycles_official_year ON cycles (year) WHERE kind = 'official';
CREATE INDEX cycles_unofficial_entity ON cycles (entity_id, year) WHERE kind <> 'official';

ALTER TABLE cycle_units
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, unit_id),
    ADD FOREIGN KEY (cycle_id) REFERENCES cycles (id);

ALTER TABLE assignments
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, unit_id, actor_id),
    ADD FOREIGN KEY (cycle_id, unit_id) REFERENCES cycle_units (cycle_id, unit_id) ON DELETE CASCADE;
CREATE INDEX assignments_actor ON assignments (actor_id, cycle_id);

ALTER TABLE submissions
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD CONSTRAINT submissions_one_per_unit UNIQUE (cycle_id, unit_id),
    ADD FOREIGN KEY (cycle_id, unit_id) REFERENCES cycle_units (cycle_id, unit_id);

ALTER TABLE survey_responses
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, unit_id, survey_code, respondent),
    ADD FOREIGN KEY (cycle_id, unit_id) REFERENCES cycle_units (cycle_id, unit_id);

ALTER TABLE unit_results
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, revision, unit_id),
    ADD FOREIGN KEY (cycle_id) REFERENCES cycles (id);

ALTER TABLE entity_results
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, revision, entity_id),
    ADD FOREIGN KEY (cycle_id) REFERENCES cycles (id);

ALTER TABLE certificates
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD FOREIGN KEY (cycle_id) REFERENCES cycles (id);
CREATE UNIQUE INDEX certificates_one_valid ON certificates (cycle_id, entity_id, COALESCE(unit_id, 0)) WHERE status = 'valid';
CREATE INDEX certificates_recipient ON certificates (cycle_id, entity_id, unit_id);

ALTER TABLE entity_follow_up
    ALTER COLUMN cycle_id SET NOT NULL,
    ADD PRIMARY KEY (cycle_id, entity_id),
    ADD FOREIGN KEY (cycle_id) REFERENCES cycles (id);

-- Jobs queued before the upgrade name their cycle by year: they name it by id from now on.
DO $$
BEGIN
    IF to_regclass('apalis.jobs') IS NOT NULL THEN
        UPDATE apalis.jobs j
        SET job = convert_to(
            ((convert_from(j.job, 'UTF8')::jsonb - 'year') || jsonb_build_object('cycle_id', c.id))::text,
            'UTF8')
        FROM cycles c
        WHERE j.job_type IN ('recompute', 'certificates', 'certificate-render')
          AND convert_from(j.job, 'UTF8')::jsonb ? 'year'
          AND c.kind = 'official'
          AND c.year = (convert_from(j.job, 'UTF8')::jsonb ->> 'year')::integer;
    END IF;
END $$;

-- For queries by hand (psql, reports): the id of the official cycle of a year, as in
-- `SELECT … FROM entity_results WHERE cycle_id = official_cycle(2025)`.
CREATE FUNCTION official_cycle(y integer) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT id FROM cycles WHERE kind = 'official' AND year = y $$;
