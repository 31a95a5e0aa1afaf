#pragma once

// The catalog's implementation interface: what an implementation (today
// catalog/sqlite/, later catalog/postgres/) provides so that Session,
// JobQueue and the backend-id functions work on it. Users never include this
// header: they see only catalog.h and job_queue.h, and never a database type.
//
// Each SessionImpl method has the contract of the Session or JobQueue method
// of the same name (catalog.h, job_queue.h); the few primitives that have no
// public twin (InsertEntry, UpdateListedAttrs) are documented here. The
// backend-neutral logic (Resolve, EnsureBackendRoot, Create, UpsertListed)
// stays in catalog.cc and reaches the database only through these methods, so
// an implementation holds only storage.
//
// Threading: a SessionImpl is one connection, used by one thread at a time
// (the Catalog's pool hands it out inside a Session). A CatalogImpl is
// thread-safe.
//
// Errors: as in catalog.h (kUnavailable when the database stays busy, so the
// caller may retry; kAlreadyExists for a unique-key conflict).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/job_queue.h"

namespace hsmfs::catalog {

class SessionImpl {
 public:
  virtual ~SessionImpl() = default;

  // Transactions: Begin starts a write transaction (taking the write lock at
  // once); Rollback is called by an uncommitted Transaction's destructor.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;

  // Namespace reads.
  virtual Result<Entry> Get(EntryId id) = 0;
  virtual Result<Entry> Lookup(EntryId parent, std::string_view name) = 0;
  virtual Status Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out) = 0;
  virtual Result<std::optional<DirSync>> GetSync(EntryId dir) = 0;
  virtual Result<CatalogStats> Stats() = 0;
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;
  virtual Status SetMeta(std::string_view key, std::string_view value) = 0;

  // Listings. InsertEntry stores `e` as it is (its name already checked) and
  // returns it with its new id; UpdateListedAttrs stores the attributes a
  // listing owns (mode, size, times, state, cached, checksum, location,
  // volume, position, seen_gen, hsm_state, link_target, owner) and marks the
  // entry on the backend.
  virtual Result<Entry> InsertEntry(const Entry& e) = 0;
  virtual Status UpdateListedAttrs(const Entry& e) = 0;
  virtual Status FinishListing(const Entry& dir, int64_t gen, std::string_view listed_by,
                               int64_t count, int64_t now_ns, ListingDelta* delta,
                               bool confirmed) = 0;

  // The file cache's view.
  virtual Result<uint64_t> CachedBytes() = 0;
  virtual Status EvictionCandidates(int limit, std::vector<Entry>* out) = 0;
  virtual Result<bool> DropCachedCopy(EntryId id, int64_t now_ns) = 0;
  virtual Status Touch(const std::vector<EntryId>& ids, int64_t now_ns) = 0;
  virtual Status SetPinned(EntryId id, bool pinned) = 0;
  virtual Status CachedIds(std::vector<EntryId>* out) = 0;
  virtual Status MarkCachedCopyLost(EntryId id) = 0;

  // The write path.
  virtual Status Remove(EntryId id) = 0;
  virtual Result<bool> HasChildren(EntryId dir) = 0;
  virtual Result<Entry> BeginModify(EntryId id, bool cached, int64_t now_ns) = 0;
  virtual Status SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns) = 0;
  virtual Status SetMode(EntryId id, uint32_t mode) = 0;
  virtual Status SetOwner(EntryId id, int64_t uid, int64_t gid) = 0;
  virtual Status SetMtime(EntryId id, int64_t mtime_ns) = 0;
  virtual Status SetCtime(EntryId id, int64_t now_ns) = 0;
  virtual Status DirChanged(EntryId dir, int64_t now_ns) = 0;
  virtual Status MarkIncomplete(EntryId id, std::string_view error) = 0;
  virtual Result<bool> ClearIncomplete(EntryId id, std::string_view error) = 0;
  virtual Status Move(EntryId id, EntryId new_parent, std::string_view new_name,
                      std::string_view new_path) = 0;
  virtual Status SetOnBackend(EntryId id) = 0;

  // Checks and repairs (fsck), and the backend roots' identities.
  virtual Status Subtree(EntryId id, std::vector<Entry>* out) = 0;
  virtual Status BadlyNamed(std::vector<Entry>* out) = 0;
  virtual Status Files(EntryId after, int limit, std::vector<Entry>* out) = 0;
  virtual Status ResetForArchive(EntryId id) = 0;
  virtual Status RevertToBackendVersion(EntryId id) = 0;
  virtual Status ForgetListing(EntryId dir) = 0;
  virtual Result<std::optional<std::string>> GetBackendRootId(std::string_view backend) = 0;
  virtual Status SetBackendRootId(std::string_view backend, std::string_view root_id,
                                  int64_t now_ns) = 0;
  virtual Result<bool> BackendUsed(std::string_view backend) = 0;
  virtual Status SetEntryError(EntryId id, std::string_view error) = 0;

  // The job queue (JobQueue's functions, with Get and List named for jobs).
  virtual Result<std::optional<Job>> EnqueueStage(const Entry& entry, const Requester& who,
                                                  int64_t now_ns, bool* created) = 0;
  virtual Result<std::optional<Job>> EnqueueArchive(const Entry& entry, int64_t now_ns) = 0;
  virtual Result<bool> FinishArchive(const Job& job, std::string_view checksum, uint64_t size,
                                     std::string_view location, int64_t now_ns) = 0;
  virtual Status FailArchive(const Job& job, const Status& error, int64_t now_ns,
                             bool retry_when_back) = 0;
  virtual Result<std::vector<int64_t>> Supersede(EntryId entry, int64_t now_ns) = 0;
  virtual Result<std::vector<Job>> Runnable(JobKind kind, std::string_view backend, int64_t now_ns,
                                            int limit) = 0;
  virtual Result<bool> Claim(int64_t job_id, std::string_view owner, int64_t lease_until_ns,
                             int64_t now_ns) = 0;
  virtual Result<int> RenewLeases(std::string_view owner, int64_t lease_until_ns) = 0;
  virtual Result<int> RequeueAbandoned(std::string_view me, std::string_view dead_owner_prefix,
                                       int64_t now_ns) = 0;
  virtual Status FinishStage(const Job& job, int64_t now_ns) = 0;
  virtual Status FailStage(const Job& job, const Status& error, int64_t now_ns) = 0;
  virtual Status Requeue(const Job& job, const Status& error, int64_t not_before_ns, int64_t now_ns,
                         bool count_attempt) = 0;
  virtual Status Progress(int64_t job_id, uint64_t bytes_done, int64_t now_ns) = 0;
  virtual Result<int> ResetRunning(int64_t now_ns) = 0;
  virtual Result<bool> Cancel(int64_t job_id, int64_t now_ns) = 0;
  virtual Result<bool> Retry(int64_t job_id, int64_t now_ns, bool fresh_attempts) = 0;
  virtual Result<std::vector<int64_t>> FailedWhileDown(JobKind kind, std::string_view backend,
                                                       int limit) = 0;
  virtual Result<std::optional<Job>> GetJob(int64_t job_id) = 0;
  virtual Result<std::optional<Job>> ActiveFor(EntryId entry, JobKind kind) = 0;
  virtual Result<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  virtual Result<int64_t> QueuePosition(const Job& job) = 0;
  virtual Result<RecallTimes> RecentRecallTimes(std::string_view backend, int limit) = 0;
  virtual Result<std::vector<JobCount>> CountActiveJobs() = 0;
  virtual Result<std::vector<EntryId>> UnarchivedWithoutJob() = 0;
  virtual Result<std::vector<std::pair<EntryId, int64_t>>> ActiveArchivesBelow(EntryId dir) = 0;
};

// One catalog (a database) of an implementation. Thread-safe.
class CatalogImpl {
 public:
  virtual ~CatalogImpl() = default;
  // A connection for the Catalog's pool. The first call may hand out the
  // connection that opening the catalog made (for a private in-memory
  // catalog it is the only one).
  virtual Result<std::unique_ptr<SessionImpl>> Connect() = 0;
  // How many connections may be open at once (`requested`, or fewer where
  // the implementation allows fewer).
  virtual int MaxConnections(int requested) const = 0;
};

// The factory: opens (creating and migrating as allowed) the catalog at
// `location` with the implementation that serves it. The one place that
// lists implementations (catalog/factory.cc).
Result<std::unique_ptr<CatalogImpl>> OpenCatalogImpl(const std::filesystem::path& location,
                                                     const Catalog::Options& options);

// How the catalog's own functions (job_queue.cc, backend_ids.cc) and an
// implementation's escape hatches reach a Session's implementation.
class SessionAccess {
 public:
  static SessionImpl& Impl(Session& s) { return *s.impl_; }
};

}  // namespace hsmfs::catalog
