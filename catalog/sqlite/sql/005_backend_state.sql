-- Schema 5: the backend's own HSM state of an entry, as its last listing gave
-- it (DMF codes on iRODS: REG, MIG, DUL, OFL, UNM, NMG, PAR, INV); NULL where
-- the backend keeps none. hsmctl ls and user.hsm.dmf show it (docs/SEMANTICS.md).
ALTER TABLE entries ADD COLUMN hsm_state TEXT;
