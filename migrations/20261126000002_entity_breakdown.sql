-- Per-dimension breakdown of an entity's result: the mean of its units' dimension scores.
ALTER TABLE entity_results ADD COLUMN breakdown jsonb NOT NULL DEFAULT '[]'::jsonb;
