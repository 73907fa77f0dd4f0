-- The questions each respondent reported (answered `true`), computed once when the response is
-- stored: every recompute groups a cycle's responses by them (the survey tallies and the
-- integrity flags' reports on linked questions), and evaluating the path on every response of a
-- national cycle at each recompute was most of its load time. Not an object (never stored: the
-- API checks answers) gives [].
ALTER TABLE survey_responses
    ADD COLUMN reported jsonb NOT NULL
    GENERATED ALWAYS AS (jsonb_path_query_array(answers, '$.keyvalue() ? (@.value == true).key', '{}', true)) STORED;
