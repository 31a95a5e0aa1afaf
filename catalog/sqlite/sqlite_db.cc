#include "catalog/sqlite/sqlite_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hsmfs::catalog {

Stmt::~Stmt() {
  if (stmt_ && owned_) {
    sqlite3_finalize(stmt_);
  } else if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Stmt& Stmt::BindText(int i, std::string_view v) { return v.empty() ? BindNull(i) : Bind(i, v); }

Result<bool> Stmt::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, sqlite3_sql(stmt_));
}

Status Stmt::Run() {
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

std::string Stmt::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::filesystem::path& path, bool create,
                                                 int busy_timeout_ms) {
  if (create && path != ":memory:") {
    // The catalog names everyone's files: its owner's only (SQLite would make
    // it 0644, and its -wal and -shm files take the database file's mode).
    // Existing files, maybe made by older versions, are tightened too.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      ::chmod((path.string() + suffix).c_str(), 0600);  // not ours: left alone
    }
  }
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    if (rc == SQLITE_CANTOPEN) {
      return UnavailableError("cannot open catalog " + path.string() + ": " + msg);
    }
    return InternalError("cannot open catalog " + path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  // NORMAL synchronous is durable across process crashes in WAL mode; a power
  // loss may drop the last transactions but never corrupts the database.
  HSMFS_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"));
  if (path != ":memory:") {
    HSMFS_ASSIGN_OR_RETURN(Stmt wal, db->Prepare("PRAGMA journal_mode = WAL"));
    HSMFS_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return UnavailableError("catalog " + path.string() + ": cannot switch to WAL mode");
    }
  }
  return db;
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status SqliteDb::Exec(std::string_view sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status s = Error(rc, err ? err : "exec");
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Result<Stmt> SqliteDb::Prepare(std::string_view sql) {
  auto it = stmts_.find(std::string(sql));
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(rc, "prepare " + std::string(sql));
    it = stmts_.emplace(std::string(sql), stmt).first;
  }
  return Stmt(it->second, this);
}

Result<Stmt> SqliteDb::PrepareUncached(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "prepare " + std::string(sql));
  return Stmt(stmt, this, /*owned=*/true);
}

Status SqliteDb::Error(int rc, std::string_view what) const {
  std::string msg = "catalog: " + std::string(sqlite3_errmsg(db_)) + " (" + std::string(what) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(std::move(msg));
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(std::move(msg));
    case SQLITE_FULL:
      return ResourceExhaustedError(std::move(msg));
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return PermissionDeniedError(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

}  // namespace hsmfs::catalog
