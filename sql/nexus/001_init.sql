-- Nexus (LLM router + HITL) owns this database; its drizzle migrations create its tables.
COMMENT ON SCHEMA public IS 'Nexus: model registry, provider configuration, HITL history (private to the nexus role)';
