-- Schema 6: what a tape backend's mount changes in its tree without touching
-- tape. Tape data is never rewritten, so renames, removals and directories
-- made through the mount live in the catalog only (docs/TAPE.md).

-- A member renamed through the mount: its path in the backend's tree (after
-- strip_prefix). NULL: where its unit puts it (the unit's path + rel_path).
ALTER TABLE target_files ADD COLUMN tree_path TEXT;
-- A member removed through the mount (or superseded by a rename onto its
-- path): hidden from the tree; the data stays on tape until it is recycled.
ALTER TABLE target_files ADD COLUMN removed_ns INTEGER;

-- Directories made through the mount, so that an empty one stays listed.
-- Paths are in the backend's tree (after strip_prefix).
CREATE TABLE tape_dirs (
  path     TEXT    PRIMARY KEY,
  mode     INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL
);
