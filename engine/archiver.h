#pragma once

// Archiver: moves data written through the mount to its backend. Runs archive
// jobs on a JobRunner (ordering, retries, crash safety: see job_runner.h).
//
// When the last writer of a file closes it, the file settles: after
// `settle` without another modification, its cache copy is synced to disk
// (one syncfs for everything settling at once) and only then is an archive job
// queued, in the same catalog transaction that marks the file `queued`. So a
// queued job always has durable data behind it.
//
// An archive job: checksum the cached copy, Backend::Put it, verify (read it
// back and compare, or compare with the backend's checksum), then mark the
// entry `dual` with its checksum, unless the file was modified or moved in the
// meantime (versions): then the job is superseded and the newer version has
// a job of its own. Data is never dropped: a file whose archiving failed for
// good stays in the cache, `failed`, with the reason in user.hsm.error.
//
// Directories made through the mount are archived the same way (MakeDir).
//
// A backend that does not answer is waited for (job_runner.h: retry_horizon);
// archives that still fail are `failed` and marked to be retried when it
// answers again: every `probe_interval` the smallest of them runs once more
// (with no fresh attempts), and the first archive to that backend that
// succeeds queues all the others again.
//
// Thread-safe.

#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "catalog/job_queue.h"
#include "common/checksum.h"
#include "common/config.h"
#include "engine/file_cache.h"
#include "engine/job_runner.h"
#include "engine/kernel_notifier.h"
#include "engine/open_writers.h"

namespace hsmfs::fs {

struct ArchiveOptions {
  Duration settle = std::chrono::seconds(5);
  ChecksumAlgo checksum = ChecksumAlgo::kMd5;
  ArchiveConfig::Verify verify = ArchiveConfig::Verify::kReadback;
  Duration probe_interval = std::chrono::minutes(5);
};

class Archiver final : private JobRunner::Work {
 public:
  Archiver(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache, Clock& clock,
           OpenWriters& writers, RunnerOptions runner, ArchiveOptions options,
           KernelNotifier* notifier);
  ~Archiver() override;
  Archiver(const Archiver&) = delete;
  Archiver& operator=(const Archiver&) = delete;

  // Starts the workers and settles files a previous engine left unarchived.
  Status Start();
  void Stop() { runner_.Stop(); }
  void Shutdown() { runner_.Shutdown(); }

  // The last writer of `entry` closed it: archive it after the settle time.
  void Closed(catalog::EntryId entry);
  // `entry` is being modified: forget its pending settle, stop its running job.
  void Modified(catalog::EntryId entry, const std::vector<int64_t>& superseded_jobs);
  // Queues archiving of `entries` now (QueueArchives), as after settling.
  Status QueueNow(const std::vector<catalog::EntryId>& entries);
  void Kick() { runner_.Kick(); }
  // For tests: see JobRunner::TEST_IsIdle (Tick includes the settling).
  bool TEST_IsIdle() { return runner_.TEST_IsIdle(); }

 private:
  Status Run(backends::Backend& backend, const catalog::Job& job,
             const CancelToken& cancel) override;
  void Failed(const catalog::Job& job, const Status& error) override;
  void Cancelled(const catalog::Job& job) override;
  void Tick() override;

  Status Verify(backends::Backend& backend, const catalog::Job& job, const std::string& path,
                const std::string& checksum, const backends::ObjectInfo& stored,
                const CancelToken& cancel);
  Status WithSession(const std::function<Status(catalog::Session&)>& fn);
  // Sets `dir`'s mode and/or mtime on the backend (as in `attrs`, from the
  // catalog), where the backend keeps them; best effort.
  void CarryDirAttrs(backends::Backend& backend, const catalog::Entry& dir,
                     const backends::DirAttrs& attrs);
  // Runs one archive that failed while its backend was down, for backends due.
  void ProbeBackends();
  // `backend` answered: queues its archives that failed while it was down.
  void BackendAnswered(const std::string& backend);

  catalog::Catalog& catalog_;
  FileCache& cache_;
  Clock& clock_;
  const ArchiveOptions options_;
  KernelNotifier* const notifier_;

  OpenWriters& writers_;

  std::mutex mu_;
  std::map<catalog::EntryId, TimePoint> settling_;  // GUARDED_BY(mu_): entry -> when it settles
  // Backends that may have archives failed while they were down, and when to
  // probe each next. GUARDED_BY(mu_)
  std::map<std::string, TimePoint, std::less<>> down_;

  JobRunner runner_;  // last: its threads use the members above
};

// The one way a settled file gets its archive job, with or without an
// archiver running here: one syncfs makes every copy durable, then one
// transaction queues the jobs, skipping entries deleted meanwhile and files
// open for writing (`writers` asks inside the transaction, so a file reopened
// after it settled is never queued under its writer; its last close settles
// it again). `*queued` counts the jobs made.
Status QueueArchives(catalog::Catalog& catalog, FileCache& cache, Clock& clock,
                     OpenWriters& writers, const std::vector<catalog::EntryId>& entries,
                     int* queued);

}  // namespace hsmfs::fs
