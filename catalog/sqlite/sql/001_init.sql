-- Schema 1: the namespace, per-directory listing records and durable jobs.
-- Later issues add tapes and per-file checksum history in further migrations.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per file or directory the mount shows. id is the inode number the
-- kernel sees; AUTOINCREMENT guarantees an id is never reused, so a stale kernel
-- reference can never land on another file.
CREATE TABLE entries (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  parent       INTEGER REFERENCES entries(id) ON DELETE CASCADE,
  name         TEXT    NOT NULL,
  type         INTEGER NOT NULL,           -- 1 file, 2 directory
  mode         INTEGER NOT NULL,           -- permission bits
  size         INTEGER NOT NULL DEFAULT 0,
  mtime_ns     INTEGER NOT NULL DEFAULT 0,
  backend      TEXT    NOT NULL,           -- configured backend name; '' for the root
  backend_path TEXT    NOT NULL,           -- path relative to the backend root
  state        TEXT    NOT NULL DEFAULT 'offline',
  cached       INTEGER NOT NULL DEFAULT 0, -- a complete copy is in the cache
  checksum     TEXT,                       -- "md5:<hex>" etc.
  location     TEXT,                       -- tape/file/block, or the backend's own path
  volume       TEXT,                       -- scheduler hint: tape or volume name
  position     INTEGER,                    -- scheduler hint: position on the volume
  error        TEXT,                       -- why the last job failed
  seen_gen     INTEGER NOT NULL DEFAULT 0, -- generation of the listing that last saw it
  UNIQUE (parent, name)
);
CREATE INDEX entries_parent ON entries(parent);
CREATE INDEX entries_backend_path ON entries(backend, backend_path);

-- When a directory was last listed from its backend, and by which program.
CREATE TABLE dir_sync (
  dir_id     INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
  listed_ns  INTEGER NOT NULL,
  listed_by  TEXT    NOT NULL,
  gen        INTEGER NOT NULL,
  entries    INTEGER NOT NULL DEFAULT 0
);

-- Durable work: recalls ('stage') and archive jobs ('archive'). A job is a row;
-- on restart 'running' rows go back to 'queued'.
CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  kind          TEXT    NOT NULL,
  entry_id      INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
  state         TEXT    NOT NULL,          -- queued, running, done, failed, cancelled
  attempts      INTEGER NOT NULL DEFAULT 0,
  last_error    TEXT,
  requester_uid INTEGER,
  requester_pid INTEGER,
  requester_cmd TEXT,
  created_ns    INTEGER NOT NULL,
  updated_ns    INTEGER NOT NULL,
  not_before_ns INTEGER NOT NULL DEFAULT 0, -- backoff: not dispatched before this
  volume        TEXT,
  position      INTEGER,
  bytes_total   INTEGER NOT NULL DEFAULT 0,
  bytes_done    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, kind);
CREATE INDEX jobs_entry ON jobs(entry_id);
