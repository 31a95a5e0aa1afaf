-- Schema 7: files an HPSS backend wrote into htar bundles (docs/HPSS.md
-- "Bundled writes"). HPSS holds no plain file at such a path, only a member of
-- an archive, so listings, reads, renames and removals look here. Paths are
-- absolute HPSS paths, so backends sharing a catalog cannot collide.
CREATE TABLE hpss_bundled (
  path       TEXT    PRIMARY KEY,  -- where the file was written
  archive    TEXT    NOT NULL,     -- the htar archive (X.tar, with X.tar.idx)
  member     TEXT    NOT NULL,     -- its name inside the archive
  size       INTEGER NOT NULL,
  mtime_ns   INTEGER NOT NULL,
  mode       INTEGER NOT NULL,
  checksum   TEXT    NOT NULL,     -- "md5:..." as verified after writing; '' if none
  written_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX hpss_bundled_archive ON hpss_bundled (archive);
