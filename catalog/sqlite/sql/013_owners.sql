-- Schema 13: the owner of each entry (docs/SEMANTICS.md "Permissions"). Set
-- for entries made through the mount (the creating process's uid and gid),
-- changed by chown, and taken from backends that keep owners (posix). NULL:
-- the backend keeps none; the mount shows the backend's configured uid/gid
-- (by default the user running the mount).
ALTER TABLE entries ADD COLUMN uid INTEGER;
ALTER TABLE entries ADD COLUMN gid INTEGER;
