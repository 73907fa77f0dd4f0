-- kepatuhan: reference data, cycles, sample, submissions, audit trail, surveys, results, access.
-- Never edit an applied migration: add a new file.

-- ---------------------------------------------------------------- reference data
CREATE TABLE provinces (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{2}$'),
    name        text NOT NULL CHECK (length(trim(name)) > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offices (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9-]*$'),
    name        text NOT NULL CHECK (length(trim(name)) > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE office_provinces (
    office_code   text NOT NULL REFERENCES offices (code) ON DELETE CASCADE,
    province_code text NOT NULL REFERENCES provinces (code),
    PRIMARY KEY (office_code, province_code)
);
CREATE INDEX office_provinces_province ON office_provinces (province_code);

CREATE TABLE entities (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (length(trim(code)) > 0),
    kind          text NOT NULL CHECK (kind IN ('ministry', 'agency', 'province', 'city', 'regency')),
    name          text NOT NULL CHECK (length(trim(name)) > 0),
    province_code text REFERENCES provinces (code),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT entities_province_by_kind CHECK (
        (kind IN ('ministry', 'agency')) = (province_code IS NULL)
    )
);
CREATE INDEX entities_province ON entities (province_code);

CREATE TABLE units (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id   bigint NOT NULL REFERENCES entities (id),
    name        text NOT NULL CHECK (length(trim(name)) > 0),
    kind        text NOT NULL CHECK (length(trim(kind)) > 0),
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT units_entity_name UNIQUE (entity_id, name)
);

-- ---------------------------------------------------------------- access
CREATE TABLE actors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(trim(name)) > 0),
    role        text NOT NULL CHECK (role IN ('admin', 'office', 'assessor')),
    office_code text REFERENCES offices (code),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT actors_office_by_role CHECK (
        (role = 'admin' AND office_code IS NULL) OR (role = 'office' AND office_code IS NOT NULL)
        OR role = 'assessor'
    )
);

-- Tokens are 256-bit random secrets; only their SHA-256 is stored.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id     bigint NOT NULL REFERENCES actors (id),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- ---------------------------------------------------------------- cycles and sample
CREATE TABLE cycles (
    year              integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    methodology_code  text NOT NULL,
    state             text NOT NULL DEFAULT 'planning'
                      CHECK (state IN ('planning', 'collecting', 'verifying', 'published')),
    opens_on          date,
    closes_on         date,
    -- Published results are frozen: corrections after publishing create a new revision.
    results_revision  integer NOT NULL DEFAULT 1,
    -- Bumped whenever an input of the cycle changes (verified values, surveys, sample).
    input_revision    bigint NOT NULL DEFAULT 0,
    -- Imported cycles hold published scores of earlier years, not field data.
    imported          boolean NOT NULL DEFAULT false,
    published_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cycles_window CHECK (opens_on IS NULL OR closes_on IS NULL OR opens_on <= closes_on)
);

CREATE TABLE cycle_units (
    cycle_year   integer NOT NULL REFERENCES cycles (year),
    unit_id      bigint NOT NULL REFERENCES units (id),
    office_code  text REFERENCES offices (code),
    PRIMARY KEY (cycle_year, unit_id)
);
CREATE INDEX cycle_units_unit ON cycle_units (unit_id);

CREATE TABLE assignments (
    cycle_year  integer NOT NULL,
    unit_id     bigint NOT NULL,
    actor_id    bigint NOT NULL REFERENCES actors (id),
    PRIMARY KEY (cycle_year, unit_id, actor_id),
    FOREIGN KEY (cycle_year, unit_id) REFERENCES cycle_units (cycle_year, unit_id) ON DELETE CASCADE
);
CREATE INDEX assignments_actor ON assignments (actor_id, cycle_year);

-- ---------------------------------------------------------------- submissions
CREATE TABLE submissions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cycle_year    integer NOT NULL,
    unit_id       bigint NOT NULL,
    state         text NOT NULL DEFAULT 'draft'
                  CHECK (state IN ('draft', 'submitted', 'returned', 'verified')),
    version       integer NOT NULL DEFAULT 1,
    review_note   text,
    created_by    bigint NOT NULL REFERENCES actors (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    submitted_at  timestamptz,
    verified_at   timestamptz,
    verified_by   bigint REFERENCES actors (id),
    CONSTRAINT submissions_one_per_unit UNIQUE (cycle_year, unit_id),
    FOREIGN KEY (cycle_year, unit_id) REFERENCES cycle_units (cycle_year, unit_id)
);

CREATE TABLE submission_values (
    submission_id   bigint NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    indicator_code  text NOT NULL,
    value           smallint CHECK (value BETWEEN 0 AND 100),
    not_applicable  boolean NOT NULL DEFAULT false,
    evidence_note   text NOT NULL DEFAULT '',
    attachments     jsonb NOT NULL DEFAULT '[]'::jsonb,
    review_comment  text,
    PRIMARY KEY (submission_id, indicator_code),
    CONSTRAINT submission_values_value_or_na CHECK ((value IS NULL) = not_applicable)
);

-- Append-only audit trail: who changed what, when, and the previous value.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       bigint REFERENCES actors (id),
    submission_id  bigint REFERENCES submissions (id),
    action         text NOT NULL,
    field          text,
    previous       jsonb,
    current        jsonb
);
CREATE INDEX audit_log_submission ON audit_log (submission_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

-- ---------------------------------------------------------------- surveys
CREATE TABLE survey_responses (
    cycle_year   integer NOT NULL,
    unit_id      bigint NOT NULL,
    survey_code  text NOT NULL,
    respondent   text NOT NULL CHECK (length(trim(respondent)) > 0),
    answers      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cycle_year, unit_id, survey_code, respondent),
    FOREIGN KEY (cycle_year, unit_id) REFERENCES cycle_units (cycle_year, unit_id)
);

-- ---------------------------------------------------------------- results
CREATE TABLE unit_results (
    cycle_year     integer NOT NULL REFERENCES cycles (year),
    revision       integer NOT NULL,
    unit_id        bigint NOT NULL REFERENCES units (id),
    score          numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    exact_score    numeric,
    grade_code     text NOT NULL,
    breakdown      jsonb NOT NULL DEFAULT '[]'::jsonb,
    deficiencies   jsonb NOT NULL DEFAULT '[]'::jsonb,
    input_revision bigint NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cycle_year, revision, unit_id)
);

CREATE TABLE entity_results (
    cycle_year       integer NOT NULL REFERENCES cycles (year),
    revision         integer NOT NULL,
    entity_id        bigint NOT NULL REFERENCES entities (id),
    score            numeric(5, 2) NOT NULL CHECK (score BETWEEN 0 AND 100),
    grade_code       text NOT NULL,
    grade_label      text NOT NULL,
    zone             text,
    award_eligible   boolean NOT NULL,
    national_rank    integer NOT NULL,
    national_of      integer NOT NULL,
    provincial_rank  integer,
    provincial_of    integer,
    units_scored     integer NOT NULL,
    input_revision   bigint NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cycle_year, revision, entity_id)
);

-- ---------------------------------------------------------------- idempotency
CREATE TABLE idempotency_keys (
    actor_id      bigint NOT NULL REFERENCES actors (id),
    key           text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  bytea NOT NULL,
    status        smallint NOT NULL,
    body          bytea NOT NULL,
    content_type  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_id, key)
);

-- ---------------------------------------------------------------- job progress
-- Jobs live in the job queue's own schema (`apalis`); long fan-outs report progress here.
CREATE TABLE job_progress (
    job_id      text PRIMARY KEY,
    done        integer NOT NULL DEFAULT 0 CHECK (done >= 0),
    total       integer NOT NULL CHECK (total >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
