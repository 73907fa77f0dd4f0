-- A unit that cannot be assessed is excluded from a cycle's sample, with the reason, up to
-- publication: it no longer blocks publishing and counts in no result. The row stays, so the
-- sample says what was excluded, when, by whom and why.
ALTER TABLE cycle_units
    ADD COLUMN excluded_at timestamptz,
    ADD COLUMN excluded_by bigint REFERENCES actors (id),
    ADD COLUMN exclusion_reason text,
    ADD CONSTRAINT cycle_units_exclusion CHECK ((excluded_at IS NULL) = (exclusion_reason IS NULL));
