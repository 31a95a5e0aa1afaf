#pragma once

// Escape hatch: the SQLite connection behind a Session, for the tables that
// are not part of the catalog interface: the backends' private state behind
// the stores the engine gives them (the tape tables, catalog/tape_catalog.cc;
// the HPSS bundle index, catalog/bundle_store.cc). Nothing else may use it: every other query is a
// named method of Session or JobQueue, so that a second catalog implementation serves them.
//
// REQUIRES: `s` is a session of a SQLite catalog (the only implementation
// today); anything else is a programming error and aborts.

#include "catalog/catalog.h"
#include "catalog/sqlite/sqlite_db.h"

namespace hsmfs::catalog {

SqliteDb& RawSqlite(Session& s);

}  // namespace hsmfs::catalog
