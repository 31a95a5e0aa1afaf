-- Schema 4: tapes, the units archived on them and every file of each unit.
-- The names follow tapeop's (targets, file numbers) because its users know them.

-- A cartridge. Exactly one tape may be active: `archive` writes to it.
CREATE TABLE tapes (
  name        TEXT    PRIMARY KEY,           -- label / barcode, e.g. A00012
  serial      TEXT    NOT NULL DEFAULT '',
  state       TEXT    NOT NULL DEFAULT 'open', -- open | closed
  active      INTEGER NOT NULL DEFAULT 0,
  full        INTEGER NOT NULL DEFAULT 0,    -- a write reached the end of the tape
  capacity    INTEGER NOT NULL DEFAULT 0,    -- bytes, 0 when unknown
  bytes_used  INTEGER NOT NULL DEFAULT 0,
  next_file   INTEGER NOT NULL DEFAULT 1,    -- tape file 0 is the label
  next_block  INTEGER NOT NULL DEFAULT 0,    -- logical block where next_file starts
  created_ns  INTEGER NOT NULL,
  updated_ns  INTEGER NOT NULL
);
CREATE UNIQUE INDEX tapes_one_active ON tapes(active) WHERE active = 1;

-- A unit of archiving: an imported source directory (tapeop's "target") or a
-- batch of files written through the mount. On tape it is one tar stream in
-- its own tape file, followed by a manifest file.
--   imported -> assigned (to a tape) -> writing -> archived -> confirmed
-- A unit found `writing` after a crash is rewritten from its start position:
-- the tape's next_file/next_block move only when a write completes.
CREATE TABLE targets (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         TEXT    NOT NULL DEFAULT 'import', -- import | batch
  host         TEXT    NOT NULL DEFAULT '',       -- '' = local, else the ssh target
  path         TEXT    NOT NULL,                  -- the source directory
  state        TEXT    NOT NULL DEFAULT 'imported',
  tape         TEXT    REFERENCES tapes(name),
  file_number  INTEGER,                           -- tape file of its tar stream
  start_block  INTEGER,                           -- its first logical block
  block_size   INTEGER,
  files        INTEGER NOT NULL DEFAULT 0,
  bytes        INTEGER NOT NULL DEFAULT 0,        -- sum of the file sizes
  tar_bytes    INTEGER NOT NULL DEFAULT 0,        -- length of the tar stream
  imported_ns  INTEGER NOT NULL,
  archived_ns  INTEGER,
  confirmed_ns INTEGER,
  error        TEXT,                              -- last archive/confirm failure
  UNIQUE (host, path)
);
CREATE INDEX targets_state ON targets(state, tape);
CREATE INDEX targets_tape ON targets(tape, file_number);

-- Every file of a unit, with what locating it needs: the byte offset of its
-- data in the unit's tar stream (its block = start_block + offset / block_size).
CREATE TABLE target_files (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  target_id   INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
  rel_path    TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  mtime_ns    INTEGER NOT NULL,
  mode        INTEGER NOT NULL,
  md5         TEXT    NOT NULL,                   -- hex, as md5sum prints it
  data_offset INTEGER,                            -- set when the unit is written
  bad         INTEGER NOT NULL DEFAULT 0,         -- the last confirm found it damaged
  UNIQUE (target_id, rel_path)
);
