-- Schema 2: what the recall engine and the file cache need.

-- LRU eviction of cached copies, and user pins that eviction respects.
ALTER TABLE entries ADD COLUMN last_access_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_cached ON entries(last_access_ns) WHERE cached = 1;

ALTER TABLE jobs ADD COLUMN started_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN finished_ns INTEGER NOT NULL DEFAULT 0;

-- At most one active job of a kind per entry: concurrent requests share it.
CREATE UNIQUE INDEX jobs_active ON jobs(entry_id, kind) WHERE state IN ('queued', 'running');

-- The backend of a job's entry, so that dispatch order comes from one index.
ALTER TABLE jobs ADD COLUMN backend TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_runnable ON jobs(kind, state, backend, volume, position);
