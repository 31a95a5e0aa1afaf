#pragma once

// Stager: recalls. Runs stage jobs on a JobRunner (ordering, retries, crash
// safety: see job_runner.h) and tells the opens that wait for a file when its
// recall ends.
//
// A recall: reserve cache space, Backend::Read into a cache fill (verifying
// the checksum the catalog knows), check the size, commit the fill, then mark
// the job done and the entry cached (`dual`) in one catalog transaction.
// Before the workers take a batch of recalls one by one, the backend is told
// of the whole batch (Backend::StageMany: one request to its tape system).
//
// Thread-safe.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "catalog/job_queue.h"
#include "engine/file_cache.h"
#include "engine/job_runner.h"
#include "engine/kernel_notifier.h"

namespace hsmfs::fs {

class Stager final : private JobRunner::Work {
 public:
  Stager(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache, Clock& clock,
         RunnerOptions options, KernelNotifier* notifier);
  ~Stager() override;
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  Status Start() { return runner_.Start(); }
  // Stops the workers (recalls in flight go back to the queue at the next
  // start); waiters are told kUnavailable.
  // Stops taking recalls and answers every watcher (kUnavailable); returns at
  // once. Shutdown also waits for the workers.
  void Stop();
  void Shutdown();

  // Queues a recall of `entry` (or joins the active one) and wakes its lane.
  // nullopt: the entry is cached by now, nothing to recall.
  Result<std::optional<catalog::Job>> Request(const catalog::Entry& entry,
                                              const catalog::Requester& who);
  void Kick() { runner_.Kick(); }

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
  // For tests: see JobRunner::TEST_IsIdle.
  bool TEST_IsIdle() { return runner_.TEST_IsIdle(); }

 private:
  Status Run(backends::Backend& backend, const catalog::Job& job,
             const CancelToken& cancel) override;
  void Failed(const catalog::Job& job, const Status& error) override;
  void Cancelled(const catalog::Job& job) override;
  void Tick() override;
  // Tells the backend of the whole batch (Backend::StageMany).
  void Upcoming(backends::Backend& backend, const std::vector<catalog::Job>& jobs) override;

  void Finish(catalog::EntryId entry, const Status& s);
  Status WithSession(const std::function<Status(catalog::Session&)>& fn);

  catalog::Catalog& catalog_;
  FileCache& cache_;
  Clock& clock_;
  KernelNotifier* const notifier_;

  struct Watcher {
    catalog::EntryId entry;
    std::function<void(Status)> cb;
  };
  std::mutex mu_;                                   // Never held across catalog or backend calls.
  std::unordered_map<uint64_t, Watcher> watchers_;  // GUARDED_BY(mu_)
  uint64_t next_watcher_ = 1;                       // GUARDED_BY(mu_)

  JobRunner runner_;  // last: its threads use the members above
};

}  // namespace hsmfs::fs
