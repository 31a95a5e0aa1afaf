#include "catalog/sqlite/migrations.h"

#include <spdlog/spdlog.h>

namespace hsmfs::catalog {
namespace {

// Generated from sql/*.sql by CMake: {version, "name", R"(sql)"},
constexpr Migration kMigrations[] = {
#include "migrations_sql.inc"
};

Result<int> UserVersion(SqliteDb& db) {
  HSMFS_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("PRAGMA user_version"));
  HSMFS_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.Int(0)) : 0;
}

}  // namespace

std::span<const Migration> AllMigrations() { return kMigrations; }

int LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

Status Migrate(SqliteDb& db, std::string_view label) {
  HSMFS_ASSIGN_OR_RETURN(int current, UserVersion(db));
  if (current > LatestSchemaVersion()) {
    return FailedPreconditionError(
        std::string(label) + " was written by a newer hsmfs (schema version " +
        std::to_string(current) + ", this hsmfs knows up to " +
        std::to_string(LatestSchemaVersion()) + "); upgrade hsmfs or use another catalog");
  }
  if (current == LatestSchemaVersion()) return Status::Ok();
  // IMMEDIATE takes the write lock first, so two processes opening a new
  // catalog at once cannot both apply the same migration.
  HSMFS_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status s = [&]() -> Status {
    HSMFS_ASSIGN_OR_RETURN(int locked_version, UserVersion(db));
    for (const Migration& m : kMigrations) {
      if (m.version <= locked_version) continue;
      spdlog::info("{}: applying schema migration {} ({})", label, m.version, m.name);
      HSMFS_RETURN_IF_ERROR(db.Exec(m.sql).Annotate("migration " + std::string(m.name)));
      HSMFS_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(m.version)));
    }
    return Status::Ok();
  }();
  if (!s.ok()) {
    db.Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return db.Exec("COMMIT");
}

}  // namespace hsmfs::catalog
