-- Schema 12: archive jobs that failed because their backend did not answer
-- (after back-off up to [archive] retry_horizon) are queued again by
-- themselves once the backend answers (docs/SEMANTICS.md "Backend outages").
-- 1 marks such a failure; a manual or automatic retry clears it.
ALTER TABLE jobs ADD COLUMN retry_when_back INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_retry_when_back ON jobs(backend, kind) WHERE retry_when_back = 1;
