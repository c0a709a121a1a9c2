-- CentralCloud (learning / intelligence) owns this database; its Elixir migrations create its tables.
COMMENT ON SCHEMA public IS 'CentralCloud: aggregated patterns, package intelligence, framework learning (private to the centralcloud role)';
