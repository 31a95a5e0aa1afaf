#include "fs/engine.h"

#include <spdlog/spdlog.h>

#include "backends/registry.h"

namespace hsmfs::fs {

Engine::Engine(Config config, Clock& clock) : config_(std::move(config)), clock_(clock) {}

Engine::~Engine() {
  // Order matters: stop new listings, drain the workers, then drop the timers
  // (whose callbacks point into sync_), then the rest.
  if (sync_) sync_->Shutdown();
  if (sync_pool_) sync_pool_->Shutdown();
  timers_.reset();
  sync_.reset();
}

backends::Backend* Engine::backend(std::string_view name) const {
  auto it = backend_ptrs_.find(name);
  return it == backend_ptrs_.end() ? nullptr : it->second;
}

Result<std::unique_ptr<Engine>> Engine::Open(const Config& config, Clock& clock,
                                             EngineOptions options) {
  std::unique_ptr<Engine> engine(new Engine(config, clock));
  std::error_code ec;
  if (config.catalog.path != ":memory:") {
    std::filesystem::create_directories(config.catalog.path.parent_path(), ec);
  }
  HSMFS_ASSIGN_OR_RETURN(engine->catalog_, catalog::Catalog::Open(config.catalog.path));
  std::filesystem::create_directories(config.cache.dir, ec);
  if (ec) {
    return ErrnoToStatus(ec.value(), "cannot create cache directory " + config.cache.dir.string());
  }
  for (const BackendConfig& b : config.backends) {
    auto injected = options.backends.find(b.name);
    if (injected != options.backends.end()) {
      engine->owned_backends_[b.name] = std::move(injected->second);
    } else {
      HSMFS_ASSIGN_OR_RETURN(engine->owned_backends_[b.name], backends::CreateBackend(b, clock));
    }
    engine->backend_ptrs_[b.name] = engine->owned_backends_[b.name].get();
  }
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine->catalog_->Acquire());
    for (const BackendConfig& b : config.backends) {
      HSMFS_RETURN_IF_ERROR(session.EnsureBackendRoot(b.name, clock.WallNanos()).status());
    }
  }
  SyncOptions sync_options;
  sync_options.list_timeout = config.mount.list_timeout;
  sync_options.list_ttl = config.mount.list_ttl;
  for (const BackendConfig& b : config.backends) {
    if (b.list_ttl.count() >= 0) sync_options.list_ttl_by_backend[b.name] = b.list_ttl;
  }
  sync_options.listed_by = options.program;
  engine->timers_ = std::make_unique<TimerQueue>(clock);
  engine->sync_pool_ = std::make_unique<Executor>("hsmfs-sync", config.mount.sync_workers);
  engine->sync_ =
      std::make_unique<NamespaceSync>(*engine->catalog_, engine->backend_ptrs_, *engine->sync_pool_,
                                      *engine->timers_, clock, sync_options, options.notifier);
  return engine;
}

}  // namespace hsmfs::fs
