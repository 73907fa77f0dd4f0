-- The input revision the cycle's current results, taken as a whole, reflect. Result rows keep
-- the input revision they were last computed from: an incremental recompute rewrites only the
-- changed unit's entity (and the ranks that moved), so untouched rows keep an older number while
-- still being current. `results_input_revision = input_revision` means the results are current.
ALTER TABLE cycles ADD COLUMN results_input_revision bigint NOT NULL DEFAULT 0;
UPDATE cycles c SET results_input_revision = COALESCE(
    (SELECT max(r.input_revision) FROM entity_results r WHERE r.cycle_year = c.year AND r.revision = c.results_revision), 0);
