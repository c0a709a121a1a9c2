-- shared_queue holds only pgmq queues (schema pgmq); nothing is stored in public.
COMMENT ON SCHEMA public IS 'shared_queue: no application tables; the queues live in schema pgmq';
