#pragma once

// Escape hatch: the SQLite connection behind a Session, for the tables that
// are not part of the catalog interface yet (the tape tables of
// catalog/tape_catalog.cc and the HPSS bundle index of
// backends/hpss/bundle_index.cc, until they move to backend stores, issue 13
// item 4). Nothing else may use it: every other query is a named method of
// Session or JobQueue, so that a second catalog implementation serves them.
//
// REQUIRES: `s` is a session of a SQLite catalog (the only implementation
// today); anything else is a programming error and aborts.

#include "catalog/catalog.h"
#include "catalog/sqlite/sqlite_db.h"

namespace hsmfs::catalog {

SqliteDb& RawSqlite(Session& s);

}  // namespace hsmfs::catalog
