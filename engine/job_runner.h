#pragma once

// JobRunner: executes the durable jobs of one kind (recalls or archives) with a
// pool of workers per backend (a "lane"). The kind-specific part is a Work.
//
// Ordering: when new jobs arrive on an idle lane, and when a lane starts, the
// lane waits a short coalescing window so that a burst is sorted together
// (also one that arrives while the engine starts); workers then take
// queued jobs in volume and position order, each preferring the volume it
// used last (on tape: the mounted cartridge), then the volume no other worker
// is on with the most waiting jobs, so that each cartridge is read by one worker
// in one forward pass and a mount is paid for the most work.
//
// A job: claim it (queued -> running, in the catalog), Work::Run it, and on
// failure classify: transient errors (Unavailable, DeadlineExceeded, Aborted,
// DataLoss) are retried with exponential back-off up to `max_attempts`, and a
// backend that does not answer (IsOutage) past that until the back-off waited
// adds up to `retry_horizon`; ResourceExhausted (our own cache is full) waits
// without using an attempt; anything else is final (Work::Failed). The job row
// is the truth: a crash at any point loses nothing. A claim names this
// engine (`owner`) and holds for `lease`, renewed by the monitor while the job
// runs; the monitor also requeues jobs of other engines whose lease ended
// (their engine died), and the engine, when it starts, those its host's
// earlier engines left running.
//
// Jobs queued by other processes and cancellations made by them are noticed by
// a monitor that polls the catalog every `monitor_interval`.
//
// Each job is shown once to Work::Upcoming when it first enters a lane's
// snapshot, so that a backend can be told of a whole batch before the workers
// take its jobs one by one (the recall engine's Backend::StageMany).
//
// Thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "catalog/job_queue.h"
#include "common/clock.h"
#include "engine/namespace_sync.h"

namespace hsmfs::fs {

struct RunnerOptions {
  std::string name = "jobs";  // for thread names and logs
  int workers = 4;            // per backend, unless overridden
  std::map<std::string, int, std::less<>> workers_by_backend;
  Duration coalesce = std::chrono::milliseconds(200);
  int max_attempts = 5;
  Duration retry_delay = std::chrono::seconds(2);  // doubles per attempt
  Duration max_retry_delay = std::chrono::minutes(5);
  // Outages (IsOutage) are retried past max_attempts while the back-off
  // waited so far is shorter than this.
  Duration retry_horizon = Duration::zero();
  // What a job on a backend is expected to take before any has been timed
  // (e.g. a posix backend's stage_delay); 5 s where unknown.
  std::map<std::string, Duration, std::less<>> expected_by_backend;
  Duration monitor_interval = std::chrono::milliseconds(500);
  // Asked before each job and after each failure (the archiver's runner):
  // while it fails (the backend's root is not the catalog's,
  // RootGuard::Check) the lane's jobs stay queued, re-checked every
  // retry_delay, and use up no attempt.
  std::function<Status(std::string_view backend)> root_check;
  // Who claims the jobs (catalog Job::owner): one string per engine, shared
  // by its runners so that neither requeues the other's jobs; "" makes one
  // (NewEngineOwner()).
  std::string owner;
  // A claim lasts this long unless renewed; the monitor renews it every third
  // of it and looks for other engines' ended leases every quarter of it.
  Duration lease = std::chrono::minutes(1);
};

// The start of the owner of every engine of this host ("<hostname> ").
std::string EngineOwnerPrefix();
// A new owner for an engine: EngineOwnerPrefix() followed by the pid and the
// start time, so that no two engines (even of a reused pid) share one.
std::string NewEngineOwner();

// The backend did not answer (down, unreachable, timed out), as opposed to
// answering with an error about this job: worth waiting for.
bool IsOutage(Code code);

class JobRunner {
 public:
  // What a kind of job does. Called from worker threads.
  class Work {
   public:
    virtual ~Work() = default;
    // Does a claimed job and records its success in the catalog. `cancel` fires
    // on shutdown or when a user cancels the job.
    virtual Status Run(backends::Backend& backend, const catalog::Job& job,
                       const CancelToken& cancel) = 0;
    // The job failed for good: record it and tell whoever waits.
    virtual void Failed(const catalog::Job& job, const Status& error) = 0;
    // A user cancelled the running job (the catalog already says so).
    virtual void Cancelled(const catalog::Job& job) = 0;
    // Called by the monitor on every tick.
    virtual void Tick() {}
    // Jobs that have just entered a lane's dispatch snapshot (each job once),
    // in dispatch order, before any of them runs.
    virtual void Upcoming(backends::Backend& /*backend*/,
                          const std::vector<catalog::Job>& /*jobs*/) {}
  };

  JobRunner(catalog::JobKind kind, catalog::Catalog& catalog, const BackendMap& backends,
            Clock& clock, RunnerOptions options, Work& work);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Requeues jobs a previous engine left running, starts the workers.
  Status Start();
  // Stops taking jobs and cancels those in flight (they stay `running` in the
  // catalog, for the next Start to requeue); returns at once. Idempotent.
  void Stop();
  // Stop, then waits for the workers. A worker inside a backend call that
  // ignores cancellation keeps this waiting (see Engine::Shutdown).
  void Shutdown();
  // New jobs may be in the catalog.
  void Kick();
  // Stops a running job if it is this runner's (after the catalog cancelled it).
  void CancelRunning(int64_t job_id);

  // Moving average of recent job durations on `backend` (0 if none yet) and
  // the lane's worker count.
  double AverageSeconds(std::string_view backend);
  int Workers(std::string_view backend);

  // For tests (LevelDB's TEST_ hooks), so that a test can assert that nothing
  // happened without sleeping: true when the runner has caught up with the
  // clock's now: no job is being run or is due (queued in the catalog with its
  // time come), no refill is under way, and the monitor's tick for now has run
  // (Work::Tick: settling, probes). A job due now counts even while its lane's
  // coalescing window waits for the clock; what is set for a later time (a
  // back-off, the next tick, a settle time) does not. Thread-safe.
  bool TEST_IsIdle();

 private:
  struct Lane {
    std::string backend;
    backends::Backend* impl = nullptr;
    int workers = 1;
    std::vector<catalog::Job> ready;  // snapshot of runnable jobs, dispatch order
    std::set<int64_t> prepared;       // ids of the last snapshot; only the refilling worker uses it
    bool dirty = true;                // the catalog may hold jobs not in `ready`
    bool refilling = false;
    TimePoint window_until;  // coalescing: no dispatch before this
    double avg_seconds = 0;
    // Volumes workers are on now: another worker starts on a different one,
    // so that two workers do not fight over one cartridge.
    std::multiset<std::string> busy_volumes;
  };

  void WorkerLoop(Lane& lane);
  std::optional<catalog::Job> TakeLocked(Lane& lane, const std::string& volume);
  void Refill(Lane& lane, std::unique_lock<std::mutex>& l);
  void Process(Lane& lane, const catalog::Job& job);
  void MonitorLoop();
  // The monitor's lease work: renews this engine's claims (when `running`)
  // and requeues other engines' jobs whose lease ended, each when due.
  void RenewAndReclaimLeases(bool running, TimePoint* next_renewal, TimePoint* next_expiry_check);
  Duration Backoff(int attempts) const;
  // Whether a job that failed its attempt number `attempts` is tried again.
  bool MayRetry(const Status& error, int attempts) const;
  Status WithSession(const std::function<Status(catalog::Session&)>& fn);

  const catalog::JobKind kind_;
  catalog::Catalog& catalog_;
  Clock& clock_;
  const RunnerOptions options_;
  Work& work_;

  std::mutex mu_;  // Never held across catalog or backend calls.
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Lane>, std::less<>> lanes_;    // fixed after construction
  std::unordered_map<int64_t, std::shared_ptr<CancelToken>> running_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                                              // GUARDED_BY(mu_)
  // The monitor: in a tick, and when its next tick is due. For TEST_IsIdle.
  bool monitor_busy_ = true;    // GUARDED_BY(mu_): true until its first tick has run
  TimePoint monitor_next_;      // GUARDED_BY(mu_)
  uint64_t monitor_ticks_ = 0;  // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace hsmfs::fs
