-- The findings register: the Ombudsman's findings addressed to an entity, each with where it was
-- found, a due date, its status (open → followed up by the government → accepted by the office)
-- and the evidence of follow-up. It replaces the two per-entity counts of `entity_follow_up`:
-- the award rule of a cycle reads the findings recorded for it (all of them, and those accepted).
CREATE TABLE findings (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cycle_id           bigint NOT NULL REFERENCES cycles (id),
    entity_id          bigint NOT NULL REFERENCES entities (id),
    unit_id            bigint REFERENCES units (id),
    description        text NOT NULL CHECK (length(trim(description)) > 0),
    due_on             date,
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'followed_up', 'accepted')),
    -- The government's account of its follow-up, and references to its evidence.
    follow_up_note     text,
    follow_up_evidence jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- The office's reason when it sends a follow-up back.
    review_note        text,
    -- Rows standing for the earlier counts (and for `PUT …/follow-up`, which sets counts).
    summary            boolean NOT NULL DEFAULT false,
    recorded_by        bigint NOT NULL REFERENCES actors (id),
    followed_up_by     bigint REFERENCES actors (id),
    followed_up_at     timestamptz,
    accepted_by        bigint REFERENCES actors (id),
    accepted_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT findings_accepted CHECK ((status = 'accepted') = (accepted_at IS NOT NULL))
);
CREATE INDEX findings_entity ON findings (cycle_id, entity_id);

-- Today's counts become findings: as many as were counted, the followed-up ones accepted.
INSERT INTO findings (cycle_id, entity_id, description, status, summary, recorded_by, accepted_by, accepted_at, created_at, updated_at)
SELECT f.cycle_id, f.entity_id, 'Temuan ' || g.n || ' (dari rekap jumlah temuan)',
       CASE WHEN g.n <= f.followed_up THEN 'accepted' ELSE 'open' END, true, f.updated_by,
       CASE WHEN g.n <= f.followed_up THEN f.updated_by END,
       CASE WHEN g.n <= f.followed_up THEN f.updated_at END,
       f.updated_at, f.updated_at
FROM entity_follow_up f CROSS JOIN LATERAL generate_series(1, f.findings) AS g(n);

DROP TABLE entity_follow_up;
