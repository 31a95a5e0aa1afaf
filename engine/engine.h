#pragma once

// Engine: everything hsmfs runs besides the FUSE session: the catalog, the
// configured backends, and the workers that keep the catalog in step with them
// (namespace sync; the stager and archiver join here). The mount and the
// headless tools (hsmctl) build one Engine each, so no behaviour is written twice.
//
// Thread-safe after Open. The destructor stops the workers and waits for them.

#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "catalog/catalog.h"
#include "common/config.h"
#include "common/executor.h"
#include "common/timer_queue.h"
#include "engine/archiver.h"
#include "engine/file_cache.h"
#include "engine/kernel_notifier.h"
#include "engine/namespace_sync.h"
#include "engine/open_writers.h"
#include "engine/root_guard.h"
#include "engine/stager.h"

namespace hsmfs::fs {

struct EngineOptions {
  std::string program = "hsmfs";  // recorded as who listed a directory
  KernelNotifier* notifier = nullptr;
  // Run the workers that execute jobs (recalls, archives). Only one engine per
  // catalog may: Open fails with kFailedPrecondition if another one runs.
  bool run_jobs = false;
  // What the engine lock file says about this engine (e.g. "hsmfs mount on /mnt").
  std::string description;
  // Tests inject backends by name; configured backends not named here are
  // created from the config.
  std::map<std::string, std::unique_ptr<backends::Backend>> backends;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const Config& config, Clock& clock,
                                              EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Config& config() const { return config_; }
  Clock& clock() { return clock_; }
  catalog::Catalog& catalog() { return *catalog_; }
  NamespaceSync& sync() { return *sync_; }
  const BackendMap& backends() const { return backend_ptrs_; }
  FileCache& cache() { return *cache_; }
  // Who has files open for writing (the mount, hsmctl put): the archiver asks.
  OpenWriters& writers() { return writers_; }
  // nullptr unless the engine runs jobs.
  Stager* stager() { return stager_.get(); }
  Archiver* archiver() { return archiver_.get(); }
  TimerQueue& timers() { return *timers_; }
  // Checks backend roots before listings and jobs (docs/SEMANTICS.md).
  RootGuard& root_guard() { return *root_guard_; }

  // Stops every worker and timer; callbacks still pending are answered
  // (kUnavailable) before it returns. Idempotent; the destructor calls it.
  // It waits for workers, so a worker stuck in a backend call that ignores
  // cancellation (a hung file system) keeps it waiting: a process that must
  // stop anyway gives up on it, calls ReleaseLock and _exits (mount_main).
  void Shutdown();
  // Shutdown, giving up after `grace`: then the engine lock is released, the
  // shutdown goes on in the background, and the caller must _exit without
  // destroying the engine. Returns whether the shutdown finished in time.
  // Call it once, instead of Shutdown.
  bool ShutdownWithin(Duration grace);
  // Lets another engine run jobs for this catalog at once, before this
  // process has exited. Thread-safe; for a process about to _exit.
  void ReleaseLock();
  // nullptr if no backend of that name is configured.
  backends::Backend* backend(std::string_view name) const;

  // For tests (LevelDB's TEST_ hooks), instead of sleeping before asserting
  // that something did not happen: waits up to `timeout` (real time) until the
  // engine has caught up with its clock's now: no listing queued or running,
  // no timer due, and the stager and archiver idle (JobRunner::TEST_IsIdle:
  // no job running or due, settling and probes done for now). False on timeout
  // (work is still due: with a FakeClock, maybe because it waits for the clock).
  bool TEST_WaitIdle(Duration timeout = std::chrono::seconds(10));

 private:
  Engine(Config config, Clock& clock);

  const Config config_;
  Clock& clock_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::map<std::string, std::unique_ptr<backends::Backend>, std::less<>> owned_backends_;
  BackendMap backend_ptrs_;
  std::unique_ptr<RootGuard> root_guard_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<Executor> sync_pool_;
  std::unique_ptr<NamespaceSync> sync_;
  std::unique_ptr<FileCache> cache_;
  OpenWriters writers_;  // before the archiver, which uses it
  std::unique_ptr<Stager> stager_;
  std::unique_ptr<Archiver> archiver_;
  int lock_fd_ = -1;
};

// Who holds the engine lock of `catalog_path` ("" if nobody).
std::string EngineLockHolder(const std::filesystem::path& catalog_path);

}  // namespace hsmfs::fs
