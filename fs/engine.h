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
#include "fs/kernel_notifier.h"
#include "fs/namespace_sync.h"

namespace hsmfs::fs {

struct EngineOptions {
  std::string program = "hsmfs";  // recorded as who listed a directory
  KernelNotifier* notifier = nullptr;
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
  // nullptr if no backend of that name is configured.
  backends::Backend* backend(std::string_view name) const;

 private:
  Engine(Config config, Clock& clock);

  const Config config_;
  Clock& clock_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::map<std::string, std::unique_ptr<backends::Backend>, std::less<>> owned_backends_;
  BackendMap backend_ptrs_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<Executor> sync_pool_;
  std::unique_ptr<NamespaceSync> sync_;
};

}  // namespace hsmfs::fs
