#pragma once

// SqliteDb: one SQLite connection with a cache of prepared statements, so that
// each distinct SQL text is compiled once per connection. Not thread-safe: a
// connection belongs to one thread at a time (Catalog's pool hands them out).
//
// Errors: SQLITE_BUSY after the busy timeout becomes kUnavailable (retry);
// constraint violations kAlreadyExists; everything else kInternal with
// SQLite's message.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"

namespace hsmfs::catalog {

class SqliteDb;

// A borrowed prepared statement. Resets itself (and clears bindings) when it
// goes out of scope so that the cached statement can be used again.
class Stmt {
 public:
  // `owned`: finalize on destruction instead of returning to the cache.
  Stmt(sqlite3_stmt* stmt, SqliteDb* db, bool owned = false)
      : stmt_(stmt), db_(db), owned_(owned) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_), db_(other.db_), owned_(other.owned_) {
    other.stmt_ = nullptr;
  }

  // Bind by 1-based index. Strings are copied by SQLite.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& BindNull(int i);
  // Binds NULL for an empty string (optional text columns).
  Stmt& BindText(int i, std::string_view v);

  // Makes the statement ready to run again (bindings are kept).
  void Reset() { sqlite3_reset(stmt_); }

  // Advances: true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion, for statements that return no rows.
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_;
  SqliteDb* db_;
  bool owned_;
};

class SqliteDb {
 public:
  // Opens (creating if allowed) the database at `path` (":memory:" allowed) with
  // WAL journaling, foreign keys on, and `busy_timeout_ms`.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::filesystem::path& path, bool create,
                                                int busy_timeout_ms);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Executes one or more statements that return no rows.
  Status Exec(std::string_view sql);
  // Returns the cached prepared statement for `sql`, compiling it on first use.
  Result<Stmt> Prepare(std::string_view sql);
  // Compiles `sql` for one use (for SQL text that varies from call to call).
  Result<Stmt> PrepareUncached(std::string_view sql);

  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  // Maps the connection's current error to a Status prefixed with `what`.
  Status Error(int rc, std::string_view what) const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

}  // namespace hsmfs::catalog
