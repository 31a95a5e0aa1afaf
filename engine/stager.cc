#include "engine/stager.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cmath>
#include <set>

#include "common/checksum.h"
#include "common/logging.h"
#include "common/units.h"
#include "engine/bookkeeping.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;
using catalog::Job;
using catalog::JobQueue;

}  // namespace

Stager::Stager(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache,
               Clock& clock, RunnerOptions options, KernelNotifier* notifier)
    : catalog_(catalog),
      cache_(cache),
      clock_(clock),
      notifier_(notifier),
      runner_(catalog::JobKind::kStage, catalog, backends, clock, std::move(options), *this) {}

Stager::~Stager() { Shutdown(); }

Status Stager::WithSession(const std::function<Status(catalog::Session&)>& fn) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  return fn(session);
}

void Stager::Stop() {
  runner_.Stop();
  // Before waiting for the workers: one stuck in a backend call must not keep
  // readers waiting for a recall that will not finish in this process.
  std::unordered_map<uint64_t, Watcher> watchers;
  {
    std::lock_guard<std::mutex> l(mu_);
    watchers.swap(watchers_);
  }
  for (auto& [id, w] : watchers) w.cb(UnavailableError("hsmfs is shutting down"));
}

void Stager::Shutdown() {
  Stop();
  runner_.Shutdown();
}

Result<std::optional<Job>> Stager::Request(const Entry& entry, const catalog::Requester& who) {
  std::optional<Job> job;
  bool created = false;
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& s) -> Status {
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_ASSIGN_OR_RETURN(job,
                           JobQueue::EnqueueStage(s, entry, who, clock_.WallNanos(), &created));
    return tx.Commit();
  }));
  if (created) {
    spdlog::debug("recall of {} queued (job {}, for {} pid {})", entry.display(), job->id,
                  who.command, who.pid);
    runner_.Kick();
  }
  return job;
}

uint64_t Stager::Watch(EntryId entry, std::function<void(Status)> cb) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t id = next_watcher_++;
  watchers_.emplace(id, Watcher{entry, std::move(cb)});
  return id;
}

bool Stager::Unwatch(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  return watchers_.erase(id) > 0;
}

void Stager::Finish(EntryId entry, const Status& s) {
  std::vector<std::function<void(Status)>> callbacks;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      if (it->second.entry == entry) {
        callbacks.push_back(std::move(it->second.cb));
        it = watchers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& cb : callbacks) cb(s);
}

Duration Stager::Eta(const Job& job, int64_t position) {
  RecallTiming timing;
  timing.seconds_per_recall = runner_.AverageSeconds(job.backend);
  if (timing.seconds_per_recall <= 0) timing.seconds_per_recall = 5.0;  // nothing known yet
  timing.workers = runner_.Workers(job.backend);
  const double elapsed = static_cast<double>(clock_.WallNanos() - job.started_ns) / 1e9;
  return RecallEta(timing, position, elapsed);
}

Status Stager::Run(backends::Backend& backend, const Job& job, const CancelToken& cancel) {
  Entry e;
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(e, session.Get(job.entry_id));
    return Status::Ok();
  }));
  const TimePoint started = clock_.Now();
  if (!e.cached) {
    HSMFS_ASSIGN_OR_RETURN(auto fill, cache_.BeginFill(e.id, e.size));
    backends::ReadOptions ro;
    ro.cancel = &cancel;
    if (AlgoOfChecksum(e.checksum).ok()) ro.expect_checksum = e.checksum;
    ro.progress = JobProgressRecorder(catalog_, clock_, job.id, "recall of " + e.display());
    HSMFS_RETURN_IF_ERROR(backend.Read(e.backend_path, fill->tmp_path(), ro));
    struct stat st;
    if (::stat(fill->tmp_path().c_str(), &st) != 0) {
      return ErrnoToStatus(errno, "stat " + fill->tmp_path().string());
    }
    if (static_cast<uint64_t>(st.st_size) != e.size) {
      return FailedPreconditionError("the backend copy has " + std::to_string(st.st_size) +
                                     " bytes but the catalog says " + std::to_string(e.size) +
                                     " (changed on the backend? run hsmctl sync)");
    }
    HSMFS_RETURN_IF_ERROR(fill->Commit());
  }
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& session) -> Status {
                          HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
                          HSMFS_RETURN_IF_ERROR(
                              JobQueue::FinishStage(session, job, clock_.WallNanos()));
                          return tx.Commit();
                        }).Annotate("recording the recall"));
  spdlog::info("recalled {} ({}) in {}", e.display(), FormatSizeHuman(e.size),
               FormatDuration(clock_.Now() - started));
  if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(e.id));
  Finish(e.id, Status::Ok());
  return Status::Ok();
}

void Stager::Upcoming(backends::Backend& backend, const std::vector<Job>& jobs) {
  std::vector<backends::ObjectPath> paths;
  std::string backend_name;
  for (const Job& j : jobs) {
    if (j.entry.cached) continue;
    paths.push_back(j.entry.backend_path);
    backend_name = j.backend;
  }
  if (paths.empty()) return;
  const TimePoint started = clock_.Now();
  Status s = backend.StageMany(paths, Deadline::After(clock_, std::chrono::minutes(5)));
  if (!s.ok()) {
    // A hint only: each recall's Read stages its object itself.
    spdlog::warn("{}: asking the backend to stage {} file(s) at once failed: {}", backend_name,
                 paths.size(), s.message());
  } else {
    spdlog::debug("{}: told the backend of {} recall(s) in {}", backend_name, paths.size(),
                  FormatDuration(clock_.Now() - started));
  }
}

void Stager::Failed(const Job& job, const Status& error) {
  CountErrorSite("E-STAGE-01");
  spdlog::error("E-STAGE-01: recall of {} failed after {} attempt(s): {}", job.entry.display(),
                job.attempts + 1, error.message());
  RecordBookkeeping(
      "E-BOOK-02", "the failed recall of " + job.entry.display(),
      "its job stays running in the catalog until the next start tries it again; "
      "its waiters are told now",
      clock_, [&] {
        return WithSession([&](catalog::Session& session) -> Status {
          HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
          HSMFS_RETURN_IF_ERROR(JobQueue::FailStage(session, job, error, clock_.WallNanos()));
          return tx.Commit();
        });
      });
  if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(job.entry_id));
  Finish(job.entry_id, FailedPreconditionError("E-STAGE-01: recall of " + job.entry.display() +
                                               " failed: " + error.message()));
}

void Stager::Cancelled(const Job& job) {
  spdlog::info("recall of {} cancelled", job.entry.display());
  Finish(job.entry_id, AbortedError("the recall of " + job.entry.display() + " was cancelled"));
}

void Stager::Tick() {
  // Waiters whose recall ended while they were registering, or that another
  // process cancelled or failed.
  std::set<EntryId> entries;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, w] : watchers_) entries.insert(w.entry);
  }
  for (EntryId id : entries) {
    Entry e;
    if (!WithSession([&](catalog::Session& session) -> Status {
           HSMFS_ASSIGN_OR_RETURN(e, session.Get(id));
           return Status::Ok();
         }).ok()) {
      Finish(id, NotFoundError("the file was removed while it was being recalled"));
      continue;
    }
    if (e.cached) {
      Finish(id, Status::Ok());
    } else if (e.state == catalog::FileState::kFailed) {
      Finish(id, FailedPreconditionError("E-STAGE-01: recall of " + e.display() +
                                         " failed: " + e.error));
    } else if (e.state != catalog::FileState::kStaging) {
      Finish(id, AbortedError("the recall of " + e.display() + " was cancelled"));
    }
  }
  RecordBookkeeping("E-BOOK-04", "which cached copies were used",
                    "kept for the next tick; meanwhile eviction may take a copy in use first",
                    clock_, [&] { return cache_.FlushTouches(); });
}

}  // namespace hsmfs::fs
