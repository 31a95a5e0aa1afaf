#include "engine/job_runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/thread.h"
#include "engine/bookkeeping.h"

namespace hsmfs::fs {
namespace {

using catalog::Job;
using catalog::JobQueue;

constexpr int kSnapshotSize = 10000;

bool Retryable(Code code) {
  switch (code) {
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kAborted:
    case Code::kDataLoss:
      return true;
    default:
      return false;
  }
}

// `options` with an owner of its own if it names none.
RunnerOptions WithOwner(RunnerOptions options) {
  if (options.owner.empty()) options.owner = NewEngineOwner();
  return options;
}

}  // namespace

bool IsOutage(Code code) { return code == Code::kUnavailable || code == Code::kDeadlineExceeded; }

std::string EngineOwnerPrefix() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "localhost");
  }
  return std::string(host) + " ";
}

std::string NewEngineOwner() {
  const auto started = std::chrono::system_clock::now().time_since_epoch();
  return EngineOwnerPrefix() + "pid " + std::to_string(::getpid()) + " at " +
         std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(started).count());
}

JobRunner::JobRunner(catalog::JobKind kind, catalog::Catalog& catalog, const BackendMap& backends,
                     Clock& clock, RunnerOptions options, Work& work)
    : kind_(kind),
      catalog_(catalog),
      clock_(clock),
      options_(WithOwner(std::move(options))),
      work_(work) {
  for (const auto& [name, impl] : backends) {
    auto lane = std::make_unique<Lane>();
    lane->backend = name;
    lane->impl = impl;
    auto it = options_.workers_by_backend.find(name);
    lane->workers =
        std::max(1, it == options_.workers_by_backend.end() ? options_.workers : it->second);
    lane->window_until = clock_.Now();
    auto expected = options_.expected_by_backend.find(name);
    lane->avg_seconds = expected == options_.expected_by_backend.end()
                            ? 0
                            : std::chrono::duration<double>(expected->second).count();
    lanes_[name] = std::move(lane);
  }
}

JobRunner::~JobRunner() { Shutdown(); }

Status JobRunner::WithSession(const std::function<Status(catalog::Session&)>& fn) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  return fn(session);
}

Status JobRunner::Start() {
  {
    // Each lane starts with a coalescing window, as after a Kick on an idle
    // lane: recalls requested while the engine starts (or just before) are
    // one burst with the jobs a previous engine left, not split by a first
    // refill that takes whatever happened to be queued when its worker ran.
    std::lock_guard<std::mutex> l(mu_);
    const TimePoint now = clock_.Now();
    for (auto& [name, lane] : lanes_) lane->window_until = now + options_.coalesce;
  }
  for (auto& [name, lane] : lanes_) {
    for (int i = 0; i < lane->workers; ++i) {
      Lane* l = lane.get();
      threads_.push_back(StartThread("hsmfs-" + options_.name, [this, l] { WorkerLoop(*l); }));
    }
  }
  threads_.push_back(StartThread("hsmfs-" + options_.name + "-m", [this] { MonitorLoop(); }));
  return Status::Ok();
}

void JobRunner::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, token] : running_) token->Cancel();
  }
  cv_.notify_all();
}

void JobRunner::Shutdown() {
  Stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void JobRunner::Kick() {
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

void JobRunner::CancelRunning(int64_t job_id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = running_.find(job_id);
  if (it != running_.end()) it->second->Cancel();
}

double JobRunner::AverageSeconds(std::string_view backend) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = lanes_.find(backend);
  return it == lanes_.end() ? 0 : it->second->avg_seconds;
}

int JobRunner::Workers(std::string_view backend) {
  auto it = lanes_.find(backend);
  return it == lanes_.end() ? 1 : it->second->workers;
}

Duration JobRunner::Backoff(int attempts) const {
  // In double until capped: past max_attempts (outages) the factor outgrows int64.
  const double factor = std::pow(2.0, std::max(0, attempts - 1));
  const double d = static_cast<double>(options_.retry_delay.count()) * factor;
  if (d >= static_cast<double>(options_.max_retry_delay.count())) return options_.max_retry_delay;
  return Duration(static_cast<int64_t>(d));
}

bool JobRunner::MayRetry(const Status& error, int attempts) const {
  if (!Retryable(error.code())) return false;
  if (attempts < options_.max_attempts) return true;
  if (!IsOutage(error.code())) return false;
  // The back-off already waited after attempts 1 .. attempts-1. Counting
  // back-off rather than wall time needs nothing beyond the attempts the job
  // row keeps, and errs towards waiting longer (attempts take time too).
  Duration waited = Duration::zero();
  int a = 1;
  for (; a < attempts && Backoff(a) < options_.max_retry_delay; ++a) waited += Backoff(a);
  if (a < attempts) waited += (attempts - a) * options_.max_retry_delay;
  return waited < options_.retry_horizon;
}

std::optional<Job> JobRunner::TakeLocked(Lane& lane, const std::string& volume) {
  if (lane.ready.empty()) return std::nullopt;
  auto it = lane.ready.end();
  if (!volume.empty()) {
    it = std::find_if(lane.ready.begin(), lane.ready.end(),
                      [&](const Job& j) { return j.volume == volume; });
  }
  if (it == lane.ready.end()) {
    // A new volume: the free one with the most waiting jobs (a mount is paid
    // once for the most work), its first job in position order.
    std::map<std::string_view, size_t> waiting;
    for (const Job& j : lane.ready) {
      if (!j.volume.empty() && lane.busy_volumes.count(j.volume) == 0) ++waiting[j.volume];
    }
    const std::string_view* best = nullptr;
    size_t most = 0;
    for (const auto& [v, n] : waiting) {
      if (n > most) {
        most = n;
        best = &v;
      }
    }
    it = std::find_if(lane.ready.begin(), lane.ready.end(),
                      [&](const Job& j) { return best ? j.volume == *best : j.volume.empty(); });
  }
  if (it == lane.ready.end()) it = lane.ready.begin();
  Job job = std::move(*it);
  lane.ready.erase(it);
  return job;
}

void JobRunner::Refill(Lane& lane, std::unique_lock<std::mutex>& l) {
  lane.refilling = true;
  lane.dirty = false;
  l.unlock();
  std::vector<Job> jobs;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(
        jobs, JobQueue::Runnable(session, kind_, lane.backend, clock_.WallNanos(), kSnapshotSize));
    return Status::Ok();
  });
  if (s.ok()) {
    // Dispatch waits for this (the lane is refilling): a backend hint is one
    // request per batch, and the jobs must not start before their batch is told.
    std::vector<Job> fresh;
    std::set<int64_t> ids;
    for (const Job& j : jobs) {
      ids.insert(j.id);
      if (!lane.prepared.count(j.id)) fresh.push_back(j);
    }
    if (!fresh.empty()) work_.Upcoming(*lane.impl, fresh);
    lane.prepared = std::move(ids);
  }
  l.lock();
  lane.refilling = false;
  if (s.ok()) {
    lane.ready = std::move(jobs);
  } else {
    spdlog::warn("{} {}: cannot read the job queue: {}", options_.name, lane.backend, s.message());
    lane.dirty = true;
    lane.window_until = clock_.Now() + std::chrono::seconds(1);
  }
  cv_.notify_all();
}

void JobRunner::WorkerLoop(Lane& lane) {
  std::string volume;  // what this worker used last (a mounted tape)
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (lane.dirty && !lane.refilling && clock_.Now() >= lane.window_until) {
      Refill(lane, l);
      continue;
    }
    if (!lane.refilling) {
      if (std::optional<Job> job = TakeLocked(lane, volume)) {
        volume = job->volume;
        auto busy = lane.busy_volumes.insert(volume);
        l.unlock();
        Process(lane, *job);
        l.lock();
        lane.busy_volumes.erase(busy);
        continue;
      }
    }
    const TimePoint deadline = lane.dirty && !lane.refilling
                                   ? lane.window_until
                                   : clock_.Now() + options_.monitor_interval;
    clock_.WaitUntil(cv_, l, deadline);
  }
}

void JobRunner::Process(Lane& lane, const Job& job) {
  bool claimed = false;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    const int64_t now = clock_.WallNanos();
    HSMFS_ASSIGN_OR_RETURN(
        claimed, JobQueue::Claim(session, job.id, options_.owner,
                                 now + std::chrono::nanoseconds(options_.lease).count(), now));
    return Status::Ok();
  });
  if (!s.ok()) {
    spdlog::warn("{} {}: cannot claim job {}: {}", options_.name, lane.backend, job.id,
                 s.message());
    Kick();
    return;
  }
  if (!claimed) return;  // cancelled since the snapshot
  const int attempts = job.attempts + 1;

  auto token = std::make_shared<CancelToken>();
  {
    std::lock_guard<std::mutex> l(mu_);
    running_[job.id] = token;
    if (stopping_) token->Cancel();
  }
  const TimePoint started = clock_.Now();
  // Checked inside the claimed job, so that a check stuck in a hung backend
  // is a job stuck in it (the stop path's business), not a silent worker.
  Status result = options_.root_check ? options_.root_check(lane.backend) : Status::Ok();
  const bool root_refused = !result.ok();
  if (root_refused) {
    // Not the right root: no other job of the lane starts before the next
    // check (the check logged why and set user.hsm.error on the backend's
    // directory); this one goes back to the queue below, no attempt used.
    std::lock_guard<std::mutex> l(mu_);
    lane.ready.clear();
    lane.dirty = true;
    lane.window_until = clock_.Now() + options_.retry_delay;
  } else {
    result = work_.Run(*lane.impl, job, *token);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    running_.erase(job.id);
    if (result.ok()) {
      const double seconds = std::chrono::duration<double>(clock_.Now() - started).count();
      lane.avg_seconds = lane.avg_seconds == 0 ? seconds : 0.8 * lane.avg_seconds + 0.2 * seconds;
    }
  }
  if (result.ok()) return;

  if (token->cancelled()) {
    bool shutting_down;
    {
      std::lock_guard<std::mutex> l(mu_);
      shutting_down = stopping_;
    }
    // On shutdown the job stays running in the catalog: the next engine of
    // this host requeues it when it starts, any other once its lease ends. Otherwise a user (or a
    // newer version) cancelled it.
    if (!shutting_down) work_.Cancelled(job);
    return;
  }
  // A full cache is our condition, not the backend's: wait for room without
  // using up the job's attempts (readers are bounded by stage_timeout).
  // Likewise a root that turned out not to be the catalog's while the job ran.
  const bool cache_full = result.code() == Code::kResourceExhausted || root_refused ||
                          (options_.root_check && !options_.root_check(lane.backend).ok());
  if (cache_full || MayRetry(result, attempts)) {
    const Duration delay = cache_full ? options_.retry_delay : Backoff(attempts);
    if (root_refused) {
      // RootGuard logged why, once; a line per job and round would flood.
    } else if (attempts < options_.max_attempts || cache_full) {
      spdlog::warn("{} of {}/{} failed (attempt {} of {}): {}; retrying in {}", options_.name,
                   job.backend, job.entry.backend_path, attempts, options_.max_attempts,
                   result.message(), FormatDuration(delay));
    } else {
      spdlog::info("{} of {}/{} failed (attempt {}, backend not answering): {}; retrying in {}",
                   options_.name, job.backend, job.entry.backend_path, attempts, result.message(),
                   FormatDuration(delay));
    }
    RecordBookkeeping(
        "E-BOOK-01",
        "the retry of " + options_.name + " job " + std::to_string(job.id) + " (" + job.backend +
            "/" + job.entry.backend_path + ")",
        "it stays running in the catalog until the next start queues it again", clock_, [&] {
          return WithSession([&](catalog::Session& session) {
            return JobQueue::Requeue(session, job, result,
                                     clock_.WallNanos() + std::chrono::nanoseconds(delay).count(),
                                     clock_.WallNanos(), /*count_attempt=*/!cache_full);
          });
        });
    return;
  }
  work_.Failed(job, result);
}

bool JobRunner::TEST_IsIdle() {
  // In memory, then the catalog, then memory again: a job taken or a tick run
  // between the two looks is seen by the second.
  const auto idle_in_memory = [this](uint64_t* ticks) {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return true;
    const TimePoint now = clock_.Now();
    if (monitor_busy_ || monitor_next_ <= now || !running_.empty()) return false;
    for (const auto& [name, lane] : lanes_) {
      if (lane->refilling || !lane->ready.empty() || !lane->busy_volumes.empty()) return false;
      if (lane->dirty && lane->window_until <= now) return false;
    }
    *ticks = monitor_ticks_;
    return true;
  };
  uint64_t before = 0;
  uint64_t after = 0;
  if (!idle_in_memory(&before)) return false;
  for (const auto& [name, lane] : lanes_) {
    std::vector<Job> due;
    Status s = WithSession([&](catalog::Session& session) -> Status {
      HSMFS_ASSIGN_OR_RETURN(
          due, JobQueue::Runnable(session, kind_, lane->backend, clock_.WallNanos(), 1));
      return Status::Ok();
    });
    if (!s.ok() || !due.empty()) return false;
  }
  return idle_in_memory(&after) && after == before;
}

void JobRunner::MonitorLoop() {
  std::unique_lock<std::mutex> l(mu_);
  TimePoint next = clock_.Now();
  TimePoint next_renewal = clock_.Now();
  TimePoint next_expiry_check = clock_.Now();
  while (!stopping_) {
    if (clock_.Now() < next) {
      if (monitor_busy_) {
        monitor_busy_ = false;
        ++monitor_ticks_;
      }
      clock_.WaitUntil(cv_, l, next);
      continue;
    }
    monitor_busy_ = true;
    next = clock_.Now() + options_.monitor_interval;
    monitor_next_ = next;
    std::vector<int64_t> running;
    for (const auto& [id, token] : running_) running.push_back(id);
    l.unlock();
    if (!running.empty()) {
      catalog::JobFilter filter;
      filter.ids = running;
      filter.states = {catalog::JobState::kCancelled};
      std::vector<Job> cancelled;
      const Status listed = WithSession([&](catalog::Session& session) -> Status {
        HSMFS_ASSIGN_OR_RETURN(cancelled, JobQueue::List(session, filter));
        return Status::Ok();
      });
      // A read, asked again on the next tick: a cancellation is noticed late.
      if (!listed.ok()) {
        spdlog::warn("{}: cannot look for cancelled jobs: {}", options_.name, listed.message());
      }
      for (const Job& j : cancelled) CancelRunning(j.id);
    }
    RenewAndReclaimLeases(!running.empty(), &next_renewal, &next_expiry_check);
    Kick();
    work_.Tick();
    l.lock();
  }
}

void JobRunner::RenewAndReclaimLeases(bool running, TimePoint* next_renewal,
                                      TimePoint* next_expiry_check) {
  const TimePoint now = clock_.Now();
  if (running && now >= *next_renewal) {
    *next_renewal = now + options_.lease / 3;
    Status s = WithSession([&](catalog::Session& session) -> Status {
      return JobQueue::RenewLeases(
                 session, options_.owner,
                 clock_.WallNanos() + std::chrono::nanoseconds(options_.lease).count())
          .status();
    });
    if (!s.ok()) {
      // Retried at the next tick; the lease has two thirds of its time left.
      *next_renewal = now;
      spdlog::warn("{}: cannot renew the leases of running jobs: {}", options_.name, s.message());
    }
  }
  if (now < *next_expiry_check) return;
  *next_expiry_check = now + options_.lease / 4;
  int requeued = 0;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    HSMFS_ASSIGN_OR_RETURN(
        requeued, JobQueue::RequeueAbandoned(session, options_.owner, "", clock_.WallNanos()));
    return tx.Commit();
  });
  if (!s.ok()) {
    spdlog::warn("{}: cannot look for jobs of engines that are gone: {}", options_.name,
                 s.message());
  } else if (requeued > 0) {
    spdlog::info("{}: {} jobs whose engine stopped renewing its claim are queued again",
                 options_.name, requeued);
  }
}

}  // namespace hsmfs::fs
