-- Schema 9: times kept as on a local disk (docs/SEMANTICS.md "Times").
-- ctime_ns: the last change of an entry's data or metadata through the mount
-- (0: never; st_ctime then shows mtime). local_mtime: a directory whose mtime
-- the mount set (mkdir, a change inside it, utimens); a backend listing no
-- longer overwrites it, so rsync -a and tar -x times stay.
ALTER TABLE entries ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN local_mtime INTEGER NOT NULL DEFAULT 0;
