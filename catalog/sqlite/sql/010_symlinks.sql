-- Schema 10: symbolic links (docs/SEMANTICS.md "Symbolic links").
-- An entry of type 3 is a symlink; link_target is what readlink returns,
-- stored verbatim and never resolved by hsmfs. A symlink's target is its whole
-- content, so it is answered from here and never recalled.
ALTER TABLE entries ADD COLUMN link_target TEXT;

-- A tape unit's symlink member (a tar symlink entry with no data): its target,
-- so that listings and hsmtape rebuild_catalog show it. NULL for files.
ALTER TABLE target_files ADD COLUMN link_target TEXT;

-- A symlink an HPSS backend wrote into an htar bundle (a tar symlink member):
-- its target, so that listings show it. NULL for files.
ALTER TABLE hpss_bundled ADD COLUMN link_target TEXT;
