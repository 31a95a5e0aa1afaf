#pragma once

// The embedded implementation of the catalog: one SQLite file (WAL mode, so
// that readers proceed while one writer commits), shared by every process on
// the host. Its schema is sql/NNN_name.sql, applied by migrations.cc.
// Internal to catalog/: users reach it through catalog.h only.
//
// Threading: SqliteCatalog is thread-safe; a SqliteSession is one connection
// (with its prepared statements), used by one thread at a time.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/session_impl.h"
#include "catalog/sqlite/sqlite_db.h"

namespace hsmfs::catalog {

class SqliteSession final : public SessionImpl {
 public:
  explicit SqliteSession(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  SqliteDb& db() { return *db_; }

  Status Begin() override;
  Status Commit() override;
  void Rollback() override;

  Result<Entry> Get(EntryId id) override;
  Result<Entry> Lookup(EntryId parent, std::string_view name) override;
  Status Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out) override;
  Result<std::optional<DirSync>> GetSync(EntryId dir) override;
  Result<CatalogStats> Stats() override;
  Result<std::optional<std::string>> GetMeta(std::string_view key) override;
  Status SetMeta(std::string_view key, std::string_view value) override;

  Result<Entry> InsertEntry(const Entry& e) override;
  Status UpdateListedAttrs(const Entry& e) override;
  Status FinishListing(const Entry& dir, int64_t gen, std::string_view listed_by, int64_t count,
                       int64_t now_ns, ListingDelta* delta, bool confirmed) override;

  Result<uint64_t> CachedBytes() override;
  Status EvictionCandidates(int limit, std::vector<Entry>* out) override;
  Result<bool> DropCachedCopy(EntryId id, int64_t now_ns) override;
  Status Touch(const std::vector<EntryId>& ids, int64_t now_ns) override;
  Status SetPinned(EntryId id, bool pinned) override;
  Status CachedIds(std::vector<EntryId>* out) override;
  Status MarkCachedCopyLost(EntryId id) override;

  Status Remove(EntryId id) override;
  Result<bool> HasChildren(EntryId dir) override;
  Result<Entry> BeginModify(EntryId id, bool cached, int64_t now_ns) override;
  Status SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns) override;
  Status SetMode(EntryId id, uint32_t mode) override;
  Status SetOwner(EntryId id, int64_t uid, int64_t gid) override;
  Status SetMtime(EntryId id, int64_t mtime_ns) override;
  Status SetCtime(EntryId id, int64_t now_ns) override;
  Status DirChanged(EntryId dir, int64_t now_ns) override;
  Status MarkIncomplete(EntryId id, std::string_view error) override;
  Result<bool> ClearIncomplete(EntryId id, std::string_view error) override;
  Status Move(EntryId id, EntryId new_parent, std::string_view new_name,
              std::string_view new_path) override;
  Status SetOnBackend(EntryId id) override;

  Status Subtree(EntryId id, std::vector<Entry>* out) override;
  Status BadlyNamed(std::vector<Entry>* out) override;
  Status Files(EntryId after, int limit, std::vector<Entry>* out) override;
  Status ResetForArchive(EntryId id) override;
  Status RevertToBackendVersion(EntryId id) override;
  Status ForgetListing(EntryId dir) override;
  Result<std::optional<std::string>> GetBackendRootId(std::string_view backend) override;
  Status SetBackendRootId(std::string_view backend, std::string_view root_id,
                          int64_t now_ns) override;
  Result<bool> BackendUsed(std::string_view backend) override;
  Status SetEntryError(EntryId id, std::string_view error) override;

  Result<std::optional<Job>> EnqueueStage(const Entry& entry, const Requester& who, int64_t now_ns,
                                          bool* created) override;
  Result<std::optional<Job>> EnqueueArchive(const Entry& entry, int64_t now_ns) override;
  Result<bool> FinishArchive(const Job& job, std::string_view checksum, uint64_t size,
                             std::string_view location, int64_t now_ns) override;
  Status FailArchive(const Job& job, const Status& error, int64_t now_ns,
                     bool retry_when_back) override;
  Result<std::vector<int64_t>> Supersede(EntryId entry, int64_t now_ns) override;
  Result<std::vector<Job>> Runnable(JobKind kind, std::string_view backend, int64_t now_ns,
                                    int limit) override;
  Result<bool> Claim(int64_t job_id, std::string_view owner, int64_t lease_until_ns,
                     int64_t now_ns) override;
  Result<int> RenewLeases(std::string_view owner, int64_t lease_until_ns) override;
  Result<int> RequeueAbandoned(std::string_view me, std::string_view dead_owner_prefix,
                               int64_t now_ns) override;
  Status FinishStage(const Job& job, int64_t now_ns) override;
  Status FailStage(const Job& job, const Status& error, int64_t now_ns) override;
  Status Requeue(const Job& job, const Status& error, int64_t not_before_ns, int64_t now_ns,
                 bool count_attempt) override;
  Status Progress(int64_t job_id, uint64_t bytes_done, int64_t now_ns) override;
  Result<int> ResetRunning(int64_t now_ns) override;
  Result<bool> Cancel(int64_t job_id, int64_t now_ns) override;
  Result<bool> Retry(int64_t job_id, int64_t now_ns, bool fresh_attempts) override;
  Result<std::vector<int64_t>> FailedWhileDown(JobKind kind, std::string_view backend,
                                               int limit) override;
  Result<std::optional<Job>> GetJob(int64_t job_id) override;
  Result<std::optional<Job>> ActiveFor(EntryId entry, JobKind kind) override;
  Result<std::vector<Job>> ListJobs(const JobFilter& filter) override;
  Result<int64_t> QueuePosition(const Job& job) override;
  Result<RecallTimes> RecentRecallTimes(std::string_view backend, int limit) override;
  Result<std::vector<JobCount>> CountActiveJobs() override;
  Result<std::vector<EntryId>> UnarchivedWithoutJob() override;
  Result<std::vector<std::pair<EntryId, int64_t>>> ActiveArchivesBelow(EntryId dir) override;

 private:
  // Appends every row of `st` (selected with EntryColumns()) to `out`.
  static Status ReadEntries(Stmt& st, std::vector<Entry>* out);
  Status SetEntryState(EntryId id, FileState state, std::string_view error, int64_t now_ns);

  std::unique_ptr<SqliteDb> db_;
};

class SqliteCatalog final : public CatalogImpl {
 public:
  // Opens (creating if allowed, and migrating) the catalog file at `path`.
  static Result<std::unique_ptr<SqliteCatalog>> Open(const std::filesystem::path& path,
                                                     const Catalog::Options& options);
  Result<std::unique_ptr<SessionImpl>> Connect() override;
  int MaxConnections(int requested) const override;

 private:
  SqliteCatalog(std::filesystem::path path, int busy_timeout_ms)
      : path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

  const std::filesystem::path path_;
  const int busy_timeout_ms_;
  std::mutex mu_;
  std::unique_ptr<SqliteDb> first_;  // GUARDED_BY(mu_): Open's connection, until handed out
};

// The entry columns (prefixed with `alias.` if given), and a reader starting
// at column `first` of a row selected with them.
std::string EntryColumns(std::string_view alias = "");
Entry ReadEntryColumns(const Stmt& s, int first);

}  // namespace hsmfs::catalog
