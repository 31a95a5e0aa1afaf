#pragma once

// Stager: runs recall jobs. Per backend it has a pool of workers (a "lane").
//
// Ordering: when new jobs arrive on an idle lane, the lane waits a short
// coalescing window (`coalesce`, default 200 ms) so that a burst of requests is
// sorted together; workers then take queued jobs in the backend's volume and
// position order, each preferring the volume it used last (on tape: the
// mounted cartridge).
//
// A recall: claim the job, reserve cache space, Backend::Read into a cache
// fill, commit the fill, then mark the job done and the entry cached (`dual`)
// in one catalog transaction, then wake whoever waits for the entry.
// Transient failures (Unavailable, DeadlineExceeded, Aborted, ResourceExhausted,
// DataLoss) are retried with exponential back-off up to `max_attempts`;
// anything else fails the job at once. The job row is the truth: a crash at
// any point loses nothing (running jobs are requeued by Start()).
//
// Jobs queued by other processes (hsmctl stage) and cancellations made by them
// are noticed by a monitor that polls the catalog twice a second.
//
// Thread-safe.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "catalog/job_queue.h"
#include "common/clock.h"
#include "fs/file_cache.h"
#include "fs/kernel_notifier.h"
#include "fs/namespace_sync.h"

namespace hsmfs::fs {

struct StageOptions {
  int workers = 4;  // per backend, unless overridden
  std::map<std::string, int, std::less<>> workers_by_backend;
  Duration coalesce = std::chrono::milliseconds(200);
  int max_attempts = 5;
  Duration retry_delay = std::chrono::seconds(2);  // doubles per attempt
  Duration max_retry_delay = std::chrono::minutes(5);
  Duration monitor_interval = std::chrono::milliseconds(500);
};

class Stager {
 public:
  Stager(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache, Clock& clock,
         StageOptions options, KernelNotifier* notifier);
  ~Stager();
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  // Requeues jobs a previous engine left running and starts the workers.
  Status Start();
  // Stops the workers; recalls in flight are cancelled and go back to the
  // queue. Waiters are told kUnavailable.
  void Shutdown();

  // Queues a recall of `entry` (or joins the active one) and wakes its lane.
  // nullopt: the entry is cached by now, nothing to recall.
  Result<std::optional<catalog::Job>> Request(const catalog::Entry& entry,
                                              const catalog::Requester& who);
  // New jobs may be in the catalog (queued by another process).
  void Kick();

  // Calls `cb` once: OK when `entry` is cached, else the recall's failure.
  // Returns an id for Unwatch. REQUIRES: the recall was requested first (a
  // watched entry that is neither staging nor cached counts as cancelled).
  // The recall may finish before Watch: callers re-check the entry, and the
  // monitor also catches it.
  uint64_t Watch(catalog::EntryId entry, std::function<void(Status)> cb);
  // True if the watcher was removed before being called.
  bool Unwatch(uint64_t id);

  // Estimated time until a job at queue `position` (0 = running) is done.
  Duration Eta(const catalog::Job& job, int64_t position);

 private:
  struct Watcher {
    catalog::EntryId entry;
    std::function<void(Status)> cb;
  };
  struct Lane {
    std::string backend;
    backends::Backend* impl = nullptr;
    int workers = 1;
    std::vector<catalog::Job> ready;  // snapshot of runnable jobs, dispatch order
    bool dirty = true;                // the catalog may hold jobs not in `ready`
    bool refilling = false;
    TimePoint window_until;  // coalescing: no dispatch before this
    double avg_seconds = 0;  // moving average of recall times
  };

  void WorkerLoop(Lane& lane);
  // Picks the next job for a worker that last used `volume`. REQUIRES: mu_.
  std::optional<catalog::Job> TakeLocked(Lane& lane, const std::string& volume);
  void Refill(Lane& lane, std::unique_lock<std::mutex>& l);
  void Run(Lane& lane, const catalog::Job& job);
  void Finish(catalog::EntryId entry, const Status& s);
  void MonitorLoop();
  void CheckWatchers();
  Duration Backoff(int attempts) const;
  Status WithSession(const std::function<Status(catalog::Session&)>& fn);

  catalog::Catalog& catalog_;
  FileCache& cache_;
  Clock& clock_;
  const StageOptions options_;
  KernelNotifier* const notifier_;

  std::mutex mu_;  // Never held across catalog or backend calls.
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Lane>, std::less<>> lanes_;    // fixed after construction
  std::unordered_map<uint64_t, Watcher> watchers_;                     // GUARDED_BY(mu_)
  uint64_t next_watcher_ = 1;                                          // GUARDED_BY(mu_)
  std::unordered_map<int64_t, std::shared_ptr<CancelToken>> running_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                                              // GUARDED_BY(mu_)
  bool started_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hsmfs::fs
