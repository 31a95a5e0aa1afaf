#pragma once

// Versioned schema migrations. The schema version is SQLite's user_version;
// each sql/NNN_name.sql file is migration NNN, applied in order inside one
// transaction. A catalog written by a newer hsmfs (user_version above the
// latest migration we know) is refused with kFailedPrecondition, never touched.

#include <span>
#include <string>
#include <string_view>

#include "catalog/sqlite/sqlite_db.h"

namespace hsmfs::catalog {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

std::span<const Migration> AllMigrations();
int LatestSchemaVersion();

// Brings `db` up to LatestSchemaVersion(). `label` names the catalog in messages.
Status Migrate(SqliteDb& db, std::string_view label);

}  // namespace hsmfs::catalog
