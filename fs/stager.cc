#include "fs/stager.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/checksum.h"
#include "common/logging.h"
#include "common/thread.h"
#include "common/units.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;
using catalog::Job;
using catalog::JobQueue;

constexpr int kSnapshotSize = 10000;

bool Retryable(Code code) {
  switch (code) {
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kAborted:
    case Code::kResourceExhausted:
    case Code::kDataLoss:
      return true;
    default:
      return false;
  }
}

std::string Display(const Entry& e) { return e.backend + "/" + e.backend_path; }

}  // namespace

Stager::Stager(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache,
               Clock& clock, StageOptions options, KernelNotifier* notifier)
    : catalog_(catalog),
      cache_(cache),
      clock_(clock),
      options_(std::move(options)),
      notifier_(notifier) {
  for (const auto& [name, impl] : backends) {
    auto lane = std::make_unique<Lane>();
    lane->backend = name;
    lane->impl = impl;
    auto it = options_.workers_by_backend.find(name);
    lane->workers =
        std::max(1, it == options_.workers_by_backend.end() ? options_.workers : it->second);
    lane->window_until = clock_.Now();
    lanes_[name] = std::move(lane);
  }
}

Stager::~Stager() { Shutdown(); }

Status Stager::WithSession(const std::function<Status(catalog::Session&)>& fn) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  return fn(session);
}

Status Stager::Start() {
  int requeued = 0;
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& s) -> Status {
    HSMFS_ASSIGN_OR_RETURN(requeued, JobQueue::ResetRunning(s, clock_.WallNanos()));
    return Status::Ok();
  }));
  if (requeued > 0) spdlog::info("resuming {} jobs that were running when hsmfs stopped", requeued);
  for (auto& [name, lane] : lanes_) {
    for (int i = 0; i < lane->workers; ++i) {
      Lane* l = lane.get();
      threads_.push_back(StartThread("hsmfs-stage", [this, l] { WorkerLoop(*l); }));
    }
  }
  threads_.push_back(StartThread("hsmfs-monitor", [this] { MonitorLoop(); }));
  started_ = true;
  return Status::Ok();
}

void Stager::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, token] : running_) token->Cancel();
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::unordered_map<uint64_t, Watcher> watchers;
  {
    std::lock_guard<std::mutex> l(mu_);
    watchers.swap(watchers_);
  }
  for (auto& [id, w] : watchers) w.cb(UnavailableError("hsmfs is shutting down"));
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
    spdlog::debug("recall of {} queued (job {}, for {} pid {})", Display(entry), job->id,
                  who.command, who.pid);
    Kick();
  }
  return job;
}

void Stager::Kick() {
  {
    std::lock_guard<std::mutex> l(mu_);
    const TimePoint now = clock_.Now();
    for (auto& [name, lane] : lanes_) {
      if (!lane->dirty) {
        lane->dirty = true;
        lane->window_until = now + options_.coalesce;
      }
    }
  }
  cv_.notify_all();
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

Duration Stager::Backoff(int attempts) const {
  const double factor = std::pow(2.0, std::max(0, attempts - 1));
  const auto d =
      Duration(static_cast<int64_t>(static_cast<double>(options_.retry_delay.count()) * factor));
  return std::min(d, options_.max_retry_delay);
}

Duration Stager::Eta(const Job& job, int64_t position) {
  double avg = 5.0;  // until a recall of this backend has been timed
  int workers = 1;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = lanes_.find(job.backend);
    if (it != lanes_.end()) {
      if (it->second->avg_seconds > 0) avg = it->second->avg_seconds;
      workers = it->second->workers;
    }
  }
  double seconds;
  if (position <= 0) {
    const double elapsed = static_cast<double>(clock_.WallNanos() - job.started_ns) / 1e9;
    seconds = std::max(0.0, avg - elapsed);
  } else {
    seconds = std::ceil(static_cast<double>(position) / workers) * avg;
  }
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

std::optional<Job> Stager::TakeLocked(Lane& lane, const std::string& volume) {
  if (lane.ready.empty()) return std::nullopt;
  auto it = lane.ready.begin();
  if (!volume.empty()) {
    auto same = std::find_if(lane.ready.begin(), lane.ready.end(),
                             [&](const Job& j) { return j.volume == volume; });
    if (same != lane.ready.end()) it = same;
  }
  Job job = std::move(*it);
  lane.ready.erase(it);
  return job;
}

void Stager::Refill(Lane& lane, std::unique_lock<std::mutex>& l) {
  lane.refilling = true;
  lane.dirty = false;
  l.unlock();
  std::vector<Job> jobs;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(jobs, JobQueue::Runnable(session, catalog::JobKind::kStage, lane.backend,
                                                    clock_.WallNanos(), kSnapshotSize));
    return Status::Ok();
  });
  l.lock();
  lane.refilling = false;
  if (s.ok()) {
    lane.ready = std::move(jobs);
  } else {
    spdlog::warn("stager {}: cannot read the job queue: {}", lane.backend, s.message());
    lane.dirty = true;
    lane.window_until = clock_.Now() + std::chrono::seconds(1);
  }
  cv_.notify_all();
}

void Stager::WorkerLoop(Lane& lane) {
  std::string volume;  // what this worker used last (a mounted tape)
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (lane.dirty && !lane.refilling && clock_.Now() >= lane.window_until) {
      Refill(lane, l);
      continue;
    }
    if (!lane.refilling) {
      if (std::optional<Job> job = TakeLocked(lane, volume)) {
        l.unlock();
        volume = job->volume;
        Run(lane, *job);
        l.lock();
        continue;
      }
    }
    const TimePoint deadline = lane.dirty && !lane.refilling
                                   ? lane.window_until
                                   : clock_.Now() + options_.monitor_interval;
    clock_.WaitUntil(cv_, l, deadline);
  }
}

void Stager::Run(Lane& lane, const Job& job) {
  const int64_t claimed_ns = clock_.WallNanos();
  bool claimed = false;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(claimed, JobQueue::Claim(session, job.id, claimed_ns));
    return Status::Ok();
  });
  if (!s.ok()) {
    spdlog::warn("stager {}: cannot claim job {}: {}", lane.backend, job.id, s.message());
    Kick();
    return;
  }
  if (!claimed) return;  // cancelled since the snapshot
  const int attempts = job.attempts + 1;
  Entry e;
  s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(e, session.Get(job.entry_id));
    return Status::Ok();
  });
  if (!s.ok()) return;  // the entry is gone (and its job with it)

  auto token = std::make_shared<CancelToken>();
  {
    std::lock_guard<std::mutex> l(mu_);
    running_[job.id] = token;
    if (stopping_) token->Cancel();
  }
  const TimePoint started = clock_.Now();
  Status result;
  if (!e.cached) {
    result = [&]() -> Status {
      HSMFS_ASSIGN_OR_RETURN(auto fill, cache_.BeginFill(e.id, e.size));
      backends::ReadOptions ro;
      ro.cancel = token.get();
      if (AlgoOfChecksum(e.checksum).ok()) ro.expect_checksum = e.checksum;
      TimePoint last_progress = started;
      ro.progress = [&](uint64_t done) {
        const TimePoint now = clock_.Now();
        if (now - last_progress < std::chrono::seconds(1)) return;
        last_progress = now;
        WithSession([&](catalog::Session& session) {
          return JobQueue::Progress(session, job.id, done, clock_.WallNanos());
        }).IgnoreError();
      };
      HSMFS_RETURN_IF_ERROR(lane.impl->Read(e.backend_path, fill->tmp_path(), ro));
      struct stat st;
      if (::stat(fill->tmp_path().c_str(), &st) != 0) {
        return ErrnoToStatus(errno, "stat " + fill->tmp_path().string());
      }
      if (static_cast<uint64_t>(st.st_size) != e.size) {
        return FailedPreconditionError("the backend copy has " + std::to_string(st.st_size) +
                                       " bytes but the catalog says " + std::to_string(e.size) +
                                       " (changed on the backend? run hsmctl sync)");
      }
      return fill->Commit();
    }();
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    running_.erase(job.id);
  }
  const double seconds = std::chrono::duration<double>(clock_.Now() - started).count();

  if (result.ok()) {
    s = WithSession([&](catalog::Session& session) -> Status {
      HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
      HSMFS_RETURN_IF_ERROR(JobQueue::FinishStage(session, job, clock_.WallNanos()));
      return tx.Commit();
    });
    if (s.ok()) {
      {
        std::lock_guard<std::mutex> l(mu_);
        lane.avg_seconds = lane.avg_seconds == 0 ? seconds : 0.8 * lane.avg_seconds + 0.2 * seconds;
      }
      spdlog::info("recalled {} ({}) in {}", Display(e), FormatSizeHuman(e.size),
                   FormatDuration(clock_.Now() - started));
      if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(e.id));
      Finish(e.id, Status::Ok());
      return;
    }
    result = s.Annotate("recording the recall");
  }

  if (token->cancelled()) {
    bool shutting_down;
    {
      std::lock_guard<std::mutex> l(mu_);
      shutting_down = stopping_;
    }
    // On shutdown the job stays running in the catalog; the next Start()
    // requeues it. Otherwise it was cancelled by a user (hsmctl cancel).
    if (!shutting_down) {
      spdlog::info("recall of {} cancelled", Display(e));
      Finish(e.id, AbortedError("the recall of " + Display(e) + " was cancelled"));
    }
    return;
  }
  // A full cache is our condition, not the backend's: wait for room without
  // using up the job's attempts (readers are bounded by stage_timeout).
  const bool cache_full = result.code() == Code::kResourceExhausted;
  if (cache_full || (Retryable(result.code()) && attempts < options_.max_attempts)) {
    const Duration delay = cache_full ? options_.retry_delay : Backoff(attempts);
    spdlog::warn("recall of {} failed (attempt {} of {}): {}; retrying in {}", Display(e), attempts,
                 options_.max_attempts, result.message(), FormatDuration(delay));
    WithSession([&](catalog::Session& session) {
      return JobQueue::Requeue(session, job, result,
                               clock_.WallNanos() + std::chrono::nanoseconds(delay).count(),
                               clock_.WallNanos(), /*count_attempt=*/!cache_full);
    }).IgnoreError();
    return;
  }
  CountErrorSite("E-STAGE-01");
  spdlog::error("E-STAGE-01: recall of {} failed after {} attempt(s): {}", Display(e), attempts,
                result.message());
  WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    HSMFS_RETURN_IF_ERROR(JobQueue::FailStage(session, job, result, clock_.WallNanos()));
    return tx.Commit();
  }).IgnoreError();
  if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(e.id));
  Finish(e.id, FailedPreconditionError("E-STAGE-01: recall of " + Display(e) +
                                       " failed: " + result.message()));
}

void Stager::CheckWatchers() {
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
      Finish(id, FailedPreconditionError("E-STAGE-01: recall of " + Display(e) +
                                         " failed: " + e.error));
    } else if (e.state != catalog::FileState::kStaging) {
      Finish(id, AbortedError("the recall of " + Display(e) + " was cancelled"));
    }
  }
}

void Stager::MonitorLoop() {
  std::unique_lock<std::mutex> l(mu_);
  TimePoint next = clock_.Now();
  while (!stopping_) {
    if (clock_.Now() < next) {
      clock_.WaitUntil(cv_, l, next);
      continue;
    }
    next = clock_.Now() + options_.monitor_interval;
    std::vector<int64_t> running;
    for (const auto& [id, token] : running_) running.push_back(id);
    l.unlock();
    if (!running.empty()) {
      catalog::JobFilter filter;
      filter.ids = running;
      filter.states = {catalog::JobState::kCancelled};
      std::vector<Job> cancelled;
      WithSession([&](catalog::Session& session) -> Status {
        HSMFS_ASSIGN_OR_RETURN(cancelled, JobQueue::List(session, filter));
        return Status::Ok();
      }).IgnoreError();
      std::lock_guard<std::mutex> guard(mu_);
      for (const Job& j : cancelled) {
        auto it = running_.find(j.id);
        if (it != running_.end()) it->second->Cancel();
      }
    }
    Kick();
    CheckWatchers();
    if (Status s = cache_.FlushTouches(); !s.ok()) spdlog::debug("cache: {}", s.message());
    l.lock();
  }
}

}  // namespace hsmfs::fs
