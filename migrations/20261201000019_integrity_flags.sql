-- Integrity flags: what deserves a second look before HQ publishes (kepatuhan_core::flags).
-- One row per (cycle, kind, subject). The fingerprint is the kind, the subject and the evidence:
-- a recompute that finds the same fingerprint leaves the row's review alone (a dismissal holds);
-- one with new evidence reopens it. A flag whose rule no longer fires is kept, not current.
CREATE TABLE flags (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cycle_id      bigint NOT NULL REFERENCES cycles (id),
    kind          text NOT NULL CHECK (kind IN ('year_on_year_jump', 'identical_sheets', 'survey_contradiction',
                                                 'top_marks_without_evidence', 'fast_review', 'never_returned',
                                                 'assessor_outlier', 'cutoff_bunching')),
    subject_key   text NOT NULL,
    subject       jsonb NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    unit_id       bigint REFERENCES units (id),
    entity_id     bigint REFERENCES entities (id),
    -- Where the flag belongs, for filters and for what an office may see.
    office_code   text REFERENCES offices (code),
    province_code text REFERENCES provinces (code),
    evidence      jsonb NOT NULL,
    context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    fingerprint   text NOT NULL,
    current       boolean NOT NULL DEFAULT true,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'dismissed', 'escalated')),
    decision_note text,
    decided_by    bigint REFERENCES actors (id),
    decided_at    timestamptz,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flags_identity UNIQUE (cycle_id, kind, subject_key),
    CONSTRAINT flags_decided CHECK ((status = 'open') = (decided_at IS NULL))
);
CREATE INDEX flags_open ON flags (cycle_id, severity) WHERE current AND status = 'open';
CREATE INDEX flags_entity ON flags (cycle_id, entity_id);

-- The number of open flags when the cycle was published: publishing is a decision, not a block.
ALTER TABLE cycles ADD COLUMN open_flags_at_publication integer;
