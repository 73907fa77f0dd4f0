-- An entity may hold several unofficial cycles in one year, each named: the name tells them apart.
CREATE UNIQUE INDEX cycles_unofficial_name ON cycles (entity_id, year, lower(name)) WHERE kind <> 'official';
-- An unofficial cycle records when it was opened (created_at) and by whom (opened_by); its
-- sample is the entity's units, added when it is opened and by its government later.
