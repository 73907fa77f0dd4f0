-- A digest of each computed unit result (its scores, grade, breakdown and deficiencies, as
-- written), so a full recompute leaves the rows whose result did not change untouched instead of
-- sending and rewriting every unit's JSON. NULL for rows written otherwise (imported scores) and
-- for rows written before this column: the next recompute writes those again.
ALTER TABLE unit_results ADD COLUMN digest bytea;
