-- Schema 14: the identity of each backend's root (docs/SEMANTICS.md, "Backend
-- root identity"). A posix root carries the id in its .hsmfs-root file; a
-- root without it (an export not mounted yet: an empty directory) is refused
-- once the catalog has recorded one, so nothing is listed away or archived
-- into the wrong directory.
CREATE TABLE backend_ids (
  backend     TEXT PRIMARY KEY,
  root_id     TEXT    NOT NULL,
  recorded_ns INTEGER NOT NULL
);
