-- Schema 3: writes and archiving.

-- version counts modifications of an entry's data through the mount; an
-- archive job archives one version and only that version may become dual.
ALTER TABLE entries ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- Whether the backend holds some version of the entry (listed entries do;
-- files created through the mount do once archived). Deleting such an entry
-- needs allow_delete.
ALTER TABLE entries ADD COLUMN on_backend INTEGER NOT NULL DEFAULT 1;

ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- The checksum an archive job computed of the data it sent.
ALTER TABLE jobs ADD COLUMN checksum TEXT;
