-- Runs are recorded as `running` when they start, and a crash leaves them so: at start (and in
-- a sweep) the server marks the ones no live process can still be running as `interrupted`.
-- This partial index keeps that look-up off the whole runs table.
CREATE INDEX runs_running ON runs (started_at) WHERE status = 'running';
