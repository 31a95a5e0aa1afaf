#pragma once

// Service: the one front-end-neutral way into the engine. The mount (through
// fuse/fs_core, which adds only the POSIX translation: inodes, open files,
// flags), hsmctl, and next hsmrest and hsmingest call the engine through it
// and nothing else: none of them runs SQL or drives another front end.
//
// It is grouped in facets of at most 8 methods:
//   names()    Namespace: resolve a path, list a directory (waiting for its
//              first listing), the files below a directory, refresh listings.
//   recalls()  Recalls: queue many recalls in one transaction, the single ETA
//              model (preview and user.hsm.eta), wait for recalls, release.
//   writes()   Writes: the write path every writer shares: make an entry,
//              open its cached copy for writing, write, close -> settle ->
//              archive job, and ingest a local file or tree into the archive.
//   jobs()     Jobs: list, cancel, retry, summary, and who runs them.
//   admin()    Admin: fsck, init-root, shutting the engine down.
//
// Signatures the next front ends need and no current one calls yet (so not
// built here; names fixed for their issues):
//   Namespace::Remove(path, who) and Rename(from, to, who): hsmrest DELETE
//     and PATCH, hsmingest's moves into place (today the mount's FsCore does
//     both for itself).
//   Recalls::WaitResident(entry, Deadline, const CancelToken&) -> Status: a
//     GET of an offline id in hsmrest, as the mount's open does with
//     Stager::Watch, with its deadline and cancellation.
//   Writes::IngestStream(dest, name, reader, IngestOptions): hsmrest PUT
//     with a body instead of a local file; Ingest already takes the options
//     hsmingest needs (owner, mode, mtime from the source, force, progress).
//
// Thread-safe: every facet may be called from any thread. A Service either
// owns its engine (Open) or borrows one (the mount's); the facets live as
// long as the Service.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/job_queue.h"
#include "common/cancel.h"
#include "common/clock.h"
#include "common/config.h"
#include "engine/engine.h"
#include "engine/fsck.h"
#include "engine/recall_eta.h"

namespace hsmfs::fs {

// EROFS unless backend-relative `path` of `backend` is in a `writable` directory.
Status CheckWritable(const Config& config, const std::string& backend, const std::string& path);
// kNameTooLong past NAME_MAX; kInvalidArgument if `backend` cannot store it.
Status CheckName(const Config& config, const std::string& backend, std::string_view name);

// The longest name (one path component, in bytes) any front end accepts.
inline constexpr size_t kNameMax = 255;

class Namespace {
 public:
  explicit Namespace(Engine& engine) : engine_(engine) {}

  // The entry at catalog path `path` ("vault/act6/tod.dat", "" = the root);
  // directories on the way that were never listed are listed first.
  Result<catalog::Entry> Resolve(std::string_view path, const CancelToken& cancel);
  Result<catalog::Entry> Get(catalog::EntryId id);
  Result<catalog::Entry> Lookup(catalog::EntryId dir, std::string_view name);
  // The children of `dir` in id order, after its first listing (at most
  // list_timeout when a backend is slow). At the root only configured
  // backends. Names that cannot be shown are included: callers decide.
  Result<std::vector<catalog::Entry>> List(const catalog::Entry& dir, const CancelToken& cancel);
  // Every file (and symlink) at or below `top`, listing directories first as
  // List does. Failures of single directories go to `error`; the rest is
  // collected. Entries with names that cannot be shown are skipped.
  void FilesBelow(const catalog::Entry& top, std::vector<catalog::Entry>* files,
                  const std::function<void(const Status&)>& error);
  // Lists `dir` and everything below it again (hsmctl sync); `force`
  // confirms suspect listings (E-LIST-03).
  Status Sync(const catalog::Entry& dir, const CancelToken& cancel,
              const std::function<void(const SyncProgress&)>& progress, bool force);

 private:
  Engine& engine_;
};

struct RecallPlan {
  std::string backend;
  int64_t files = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> volumes;  // volume ("" = none) -> files
  RecallTiming timing;
  Duration eta{};
};

struct RecallPreview {
  int64_t already_online = 0;
  std::vector<RecallPlan> backends;  // by backend name
};

// A staging file's recall (user.hsm.queue_position, user.hsm.eta).
struct RecallStatus {
  catalog::Job job;
  int64_t position = 0;  // 1 = next; 0 = running
  Duration eta{};
};

struct RecallBatch {
  std::vector<int64_t> jobs;  // one per file not online, new or joined
  int64_t created = 0;        // of `jobs`, made by this request
  int64_t already_online = 0;
};

// Polling a set of jobs or entries until they are settled one way or another.
struct WaitOptions {
  Deadline deadline = Deadline::Never();
  // Set (e.g. by a signal handler): the wait ends with kCancelled; what it
  // waited for goes on.
  const std::atomic<bool>* stop = nullptr;
  Duration poll = std::chrono::milliseconds(250);
};

class Recalls {
 public:
  explicit Recalls(Engine& engine) : engine_(engine) {}

  // Queues recalls of the `files` not online, all in one transaction (the
  // engine orders them as one batch), joining active ones.
  Result<RecallBatch> Request(const std::vector<catalog::Entry>& files,
                              const catalog::Requester& who);
  // What recalling `files` would take; queues nothing.
  Result<RecallPreview> Preview(const std::vector<catalog::Entry>& files);
  // The timing of `backend`: recalls timed by the running stager, else the
  // last 200 recalls of it in the catalog, else its stage_delay, else 5 s.
  Result<RecallTiming> Timing(std::string_view backend);
  // Estimated time until the recall `job`, at queue `position` (0 =
  // running), is done.
  Result<Duration> Eta(const catalog::Job& job, int64_t position);
  // Where the recall of `entry` stands: nullopt unless it is staging.
  Result<std::optional<RecallStatus>> Where(catalog::EntryId entry);
  // Polls the recalls `jobs` until none is queued or running; `progress`
  // sees each round. Returns the jobs as they ended.
  Result<std::vector<catalog::Job>> Wait(
      const std::vector<int64_t>& jobs, const WaitOptions& options,
      const std::function<void(const std::vector<catalog::Job>&)>& progress);
  // Drops the cached copy of a dual file (EBUSY while open, EPERM if not archived).
  Status Release(catalog::EntryId id);

 private:
  Engine& engine_;
};

struct IngestOptions {
  catalog::Requester who;  // owns what is made; its uid and gid
  bool force = false;      // replace files that exist in the destination
  // Every file stays `failed` with this error (catalog::IncompletePutError)
  // from its creation until its last byte is in; required.
  std::string incomplete_error;
  // Ends the ingest with kCancelled between reads (the file being copied is
  // dropped; what was copied completely stays).
  const std::atomic<bool>* interrupted = nullptr;
  std::function<void(int64_t files, uint64_t bytes)> progress;
};

struct IngestTotals {
  int64_t files = 0;
  uint64_t bytes = 0;
  // Entries this ingest made or rewrote, files and directories.
  std::vector<catalog::EntryId> entries;
};

struct ArchiveWaitResult {
  int64_t total = 0;
  std::vector<std::pair<std::string, std::string>> failed;  // path, why
};

// What Writes::Create makes.
struct NewEntry {
  catalog::EntryType type = catalog::EntryType::kFile;
  uint32_t mode = 0644;
  catalog::Requester who;  // its uid and gid own it
  // The group a setgid directory gives what is made in it; nullopt: the
  // directory's own, else its backend's configured gid, else this process's.
  std::optional<uint32_t> dir_group;
  std::string link_target;  // symlinks
  // Non-empty: the file is `failed` with this error from its insert
  // (catalog::IncompletePutError), so that nothing archives it half written.
  std::string incomplete;
};

class Writes {
 public:
  explicit Writes(Engine& engine) : engine_(engine) {}

  // Makes `name` in directory `dir`: `online`, not on the backend yet. Checks
  // the name and that the place is writable. A file's cached copy is made by
  // the caller (Open, or FileCache::CreateCopy).
  Result<catalog::Entry> Create(const catalog::Entry& dir, std::string_view name,
                                const NewEntry& what);
  // `id`'s data is changing: a new version, `online`, its archive jobs
  // superseded (a running one stopped), its pending settle forgotten.
  Status BeginModify(catalog::EntryId id, bool cached, std::string_view incomplete = {});
  // Opens the cached copy of file `e` for writing (creating it empty when
  // `truncate` and not cached) and registers the writer. `*modified`: it is a
  // new version already (truncated). REQUIRES: the place is writable.
  Result<int> Open(const catalog::Entry& e, bool truncate, bool* modified,
                   std::string_view incomplete = {});
  // Writes through a descriptor Open (or Create's copy) gave, waiting up to
  // [cache] write_wait for space.
  Result<size_t> Write(catalog::EntryId id, int fd, const char* data, size_t size, uint64_t offset);
  // A writer of `id` (descriptor `fd`, still open) closed. After the last
  // one, if the data changed and `keep` (not unlinked meanwhile), the size
  // and mtime are recorded and the file settles.
  void Close(catalog::EntryId id, int fd, bool keep);
  // Archive `id` after `settle` quiet time (at once when no engine runs jobs
  // here, for whichever engine runs next); deferred to the last close while
  // it is open for writing.
  void Settle(catalog::EntryId id);
  // Copies local files and trees `sources` into directory `dest` through the
  // write path above (hsmctl put, hsmingest). Nothing half copied is ever
  // archived (IngestOptions::incomplete_error). Stops at the first failure of
  // a source tree; `totals` holds what was copied completely.
  Status Ingest(const std::vector<std::filesystem::path>& sources, const catalog::Entry& dest,
                const IngestOptions& options, IngestTotals* totals);
  // Polls until every entry of `entries` is archived (dual, or released
  // since) or failed; `progress(done, total)` sees each round.
  Result<ArchiveWaitResult> WaitArchived(const std::vector<catalog::EntryId>& entries,
                                         const WaitOptions& options,
                                         const std::function<void(int64_t, int64_t)>& progress);

 private:
  // Close without Settle: true if the file must settle now.
  bool CloseWriter(catalog::EntryId id, int fd, bool keep);
  // Settle for many at once: one syncfs and one transaction where no
  // archiver runs (a put of many small files would otherwise sync for each).
  void SettleAll(const std::vector<catalog::EntryId>& ids);
  // What an ingest copied in and has not settled yet: settled in groups (at
  // most a second or 64 entries late), so that archiving starts while a long
  // put goes on, without a sync per file.
  struct PendingSettles {
    std::vector<catalog::EntryId> ids;
    TimePoint since;
  };
  void AddSettle(catalog::EntryId id, PendingSettles* pending);
  Status IngestTree(const catalog::Entry& dir, const std::filesystem::path& local,
                    const IngestOptions& options, IngestTotals* totals, PendingSettles* settle);
  Status IngestFile(const catalog::Entry& dir, const std::filesystem::path& local,
                    const std::string& name, const IngestOptions& options, IngestTotals* totals,
                    PendingSettles* settle);

  Engine& engine_;
};

class Jobs {
 public:
  explicit Jobs(Engine& engine) : engine_(engine) {}

  Result<std::vector<catalog::Job>> List(const catalog::JobFilter& filter);
  // Every queued and running job, then the latest `finished` finished ones
  // (0: all).
  Result<std::vector<catalog::Job>> Recent(int finished);
  // False if the job was not queued or running.
  Result<bool> Cancel(int64_t id);
  // False if it was not failed or cancelled (or its file has another active job).
  Result<bool> Retry(int64_t id);
  Result<std::vector<int64_t>> Failed();
  // Counts of queued, running and failed jobs by kind.
  Result<std::vector<catalog::JobCount>> Summary();
  // Who runs jobs for this catalog ("" if nobody): e.g. "hsmfs mount on /mnt, pid 12".
  std::string Runner() const;

 private:
  Engine& engine_;
};

class Admin {
 public:
  explicit Admin(Engine& engine) : engine_(engine) {}

  Result<FsckReport> Fsck(const FsckOptions& options);
  // Makes `backend`'s root carry the catalog's identity; returns the id.
  Result<std::string> InitRoot(const std::string& backend, bool force);
  bool HasBackend(std::string_view name) const;
  // Engine::ShutdownWithin: false if a worker did not stop in time (the
  // caller must then _exit).
  bool ShutdownWithin(Duration grace);

 private:
  Engine& engine_;
};

class Service {
 public:
  // A service over its own engine.
  static Result<std::unique_ptr<Service>> Open(const Config& config, Clock& clock,
                                               EngineOptions options);
  // A service over `engine`, which must outlive it (the mount's).
  explicit Service(Engine& engine);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  Namespace& names() { return names_; }
  Recalls& recalls() { return recalls_; }
  Writes& writes() { return writes_; }
  Jobs& jobs() { return jobs_; }
  Admin& admin() { return admin_; }
  const Config& config() const { return engine_.config(); }
  // Whether this engine runs recall and archive jobs itself.
  bool runs_jobs() { return engine_.stager() != nullptr; }

 private:
  Service(std::unique_ptr<Engine> owned);

  std::unique_ptr<Engine> owned_;
  Engine& engine_;
  Namespace names_;
  Recalls recalls_;
  Writes writes_;
  Jobs jobs_;
  Admin admin_;
};

}  // namespace hsmfs::fs
