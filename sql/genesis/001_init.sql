-- Genesis (code execution) owns this database; its Elixir migrations create its tables.
-- We only describe the schema so a DBA knows whose it is.
COMMENT ON SCHEMA public IS 'Genesis: code execution results, validation outputs, lint reports (private to the genesis role)';
