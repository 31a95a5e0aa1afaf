-- Schema 15: a running job is claimed by one engine (`owner`) until its
-- lease ends (`lease_until_ns`, wall clock). The owner renews the lease while
-- the job runs; any other engine requeues a job whose lease ended (its engine
-- died), and an engine starting on a host requeues what that host's earlier
-- engines left running. Rows running before this schema carry no lease (0):
-- already ended.
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until_ns INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_leases ON jobs(lease_until_ns) WHERE state = 'running';
