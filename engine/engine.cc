#include "engine/engine.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <future>
#include <set>
#include <thread>

#include "backends/registry.h"
#include "common/thread.h"

namespace hsmfs::fs {

Engine::Engine(Config config, Clock& clock) : config_(std::move(config)), clock_(clock) {}

Engine::~Engine() {
  Shutdown();
  archiver_.reset();
  stager_.reset();
  sync_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Engine::Shutdown() {
  // Order matters: stop new listings, recalls and archives everywhere first
  // (answering their waiters), so that a worker stuck in a backend call keeps
  // nothing else running; then drain the workers, then drop the timers,
  // whose callbacks point into them.
  if (sync_) sync_->Shutdown();
  if (stager_) stager_->Stop();
  if (archiver_) archiver_->Stop();
  if (stager_) stager_->Shutdown();
  if (archiver_) archiver_->Shutdown();
  if (sync_pool_) sync_pool_->Shutdown();
  if (timers_) timers_->Shutdown();
}

bool Engine::ShutdownWithin(Duration grace) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  // Detached: if a worker never returns, neither does this thread, and the
  // caller exits without it.
  StartThread("hsmfs-shutdown", [this, done] {
    Shutdown();
    done->set_value();
  }).detach();
  if (finished.wait_for(grace) == std::future_status::ready) return true;
  ReleaseLock();
  return false;
}

void Engine::ReleaseLock() {
  // LOCK_UN, not close: safe while other threads still run, and the lock is
  // per open file, so no fd the process keeps can hold it on.
  if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_UN);
}

namespace {

std::filesystem::path LockPath(const std::filesystem::path& catalog_path) {
  return catalog_path.string() + ".engine";
}

}  // namespace

std::string EngineLockHolder(const std::filesystem::path& catalog_path) {
  const int fd = ::open(LockPath(catalog_path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    char buf[512];
    const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "another process";
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
  }
  ::close(fd);
  return holder;
}

bool Engine::TEST_WaitIdle(Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // One component's work makes work for another (a listing schedules a
    // timer, a tick queues a job): idle is all of them idle in one pass.
    const bool idle =
        (!sync_pool_ || sync_pool_->TEST_IsIdle()) && (!timers_ || timers_->TEST_IsIdle()) &&
        (!stager_ || stager_->TEST_IsIdle()) && (!archiver_ || archiver_->TEST_IsIdle()) &&
        (!sync_pool_ || sync_pool_->TEST_IsIdle());
    if (idle) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
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
    // A directory we make for the catalog is the owner's only (0700); one
    // that exists is not ours to change (it may be /etc/hsmfs).
    const auto dir = config.catalog.path.parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec) &&
        std::filesystem::create_directories(dir, ec)) {
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
  }
  if (options.run_jobs && config.catalog.path != ":memory:") {
    // One engine per catalog runs jobs: two would recall the same files into
    // one cache and could not agree on what is open or evictable.
    const std::filesystem::path lock = LockPath(config.catalog.path);
    engine->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (engine->lock_fd_ < 0) return ErrnoToStatus(errno, "open " + lock.string());
    if (::flock(engine->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      return FailedPreconditionError(
          "another hsmfs engine runs jobs for " + config.catalog.path.string() + " (" +
          EngineLockHolder(config.catalog.path) + "); stop it first, or use it");
    }
    const std::string me = options.description.empty() ? options.program : options.description;
    const std::string text = me + ", pid " + std::to_string(::getpid()) + "\n";
    if (::ftruncate(engine->lock_fd_, 0) != 0 ||
        ::pwrite(engine->lock_fd_, text.data(), text.size(), 0) < 0) {
      return ErrnoToStatus(errno, "write " + lock.string());
    }
  }
  HSMFS_ASSIGN_OR_RETURN(engine->catalog_, catalog::Catalog::Open(config.catalog));
  std::filesystem::create_directories(config.cache.dir, ec);
  if (ec) {
    return ErrnoToStatus(ec.value(), "cannot create cache directory " + config.cache.dir.string());
  }
  // The cache holds everyone's data: only its owner may look inside (also
  // for caches made by older versions, which left it 0755).
  std::error_code not_ours;  // another user's cache: left as it is
  std::filesystem::permissions(config.cache.dir, std::filesystem::perms::owner_all, not_ours);
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
      std::optional<uint32_t> top_mode;
      if (b.dir_mode >= 0) top_mode = static_cast<uint32_t>(b.dir_mode);
      HSMFS_RETURN_IF_ERROR(
          session.EnsureBackendRoot(b.name, clock.WallNanos(), top_mode).status());
    }
  }
  std::set<std::string, std::less<>> read_only;
  for (const BackendConfig& b : config.backends) {
    if (b.writable.empty()) read_only.insert(b.name);
  }
  engine->root_guard_ = std::make_unique<RootGuard>(*engine->catalog_, engine->backend_ptrs_, clock,
                                                    std::move(read_only));
  RootGuard* guard = engine->root_guard_.get();
  const auto root_check = [guard](std::string_view backend) { return guard->Check(backend); };
  // The mount says at once (below) which backend roots are missing or not the
  // catalog's, and mounts the others (docs/SEMANTICS.md).
  HSMFS_RETURN_IF_ERROR(guard->LoadRecordedIds());
  SyncOptions sync_options;
  sync_options.root_check = root_check;
  sync_options.list_timeout = config.mount.list_timeout;
  sync_options.list_ttl = config.mount.list_ttl;
  for (const BackendConfig& b : config.backends) {
    if (b.list_ttl.count() >= 0) sync_options.list_ttl_by_backend[b.name] = b.list_ttl;
    sync_options.modes_by_backend[b.name] = {b.file_mode, b.dir_mode};
  }
  sync_options.listed_by = options.program;
  engine->timers_ = std::make_unique<TimerQueue>(clock);
  engine->sync_pool_ = std::make_unique<Executor>("hsmfs-sync", config.mount.sync_workers);
  // On a sync worker, like a listing: a hung backend must not hold up the
  // mount (or hsmctl daemon) while its root is read.
  if (options.run_jobs) {
    static_cast<void>(engine->sync_pool_->Submit([guard] { guard->CheckAll(); }));
  }
  engine->sync_ =
      std::make_unique<NamespaceSync>(*engine->catalog_, engine->backend_ptrs_, *engine->sync_pool_,
                                      *engine->timers_, clock, sync_options, options.notifier);
  FileCache::Options cache_options;
  cache_options.dir = config.cache.dir;
  cache_options.size = config.cache.size;
  cache_options.high_watermark = config.cache.high_watermark;
  cache_options.low_watermark = config.cache.low_watermark;
  engine->cache_ =
      std::make_unique<FileCache>(cache_options, *engine->catalog_, clock, options.notifier);
  if (options.run_jobs) {
    HSMFS_RETURN_IF_ERROR(engine->cache_->Recover());
    // Jobs this host's earlier engines left running are ours to resume at
    // once (we hold the host's engine lock, so those engines are gone); an
    // engine elsewhere keeps its jobs while it renews their leases.
    const std::string owner = NewEngineOwner();
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine->catalog_->Acquire());
      HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
      HSMFS_ASSIGN_OR_RETURN(
          int requeued, catalog::JobQueue::RequeueAbandoned(session, owner, EngineOwnerPrefix(),
                                                            clock.WallNanos()));
      HSMFS_RETURN_IF_ERROR(tx.Commit());
      if (requeued > 0)
        spdlog::info("resuming {} jobs that were running when hsmfs stopped", requeued);
    }
    RunnerOptions stage;
    stage.name = "stage";
    stage.owner = owner;
    stage.workers = config.stage.workers;
    for (const BackendConfig& b : config.backends) {
      if (b.stage_workers > 0) stage.workers_by_backend[b.name] = b.stage_workers;
      if (b.stage_delay.count() > 0) stage.expected_by_backend[b.name] = b.stage_delay;
    }
    stage.coalesce = config.stage.coalesce;
    stage.max_attempts = config.stage.max_attempts;
    stage.retry_delay = config.stage.retry_delay;
    // Recalls keep their contract (EIO after the retries): the backend itself
    // refuses a root without the catalog's id, so nothing wrong is read.
    engine->stager_ = std::make_unique<Stager>(*engine->catalog_, engine->backend_ptrs_,
                                               *engine->cache_, clock, stage, options.notifier);
    HSMFS_RETURN_IF_ERROR(engine->stager_->Start());

    RunnerOptions archive;
    archive.name = "archive";
    archive.owner = owner;
    archive.workers = config.archive.workers;
    for (const BackendConfig& b : config.backends) {
      if (b.archive_workers > 0) archive.workers_by_backend[b.name] = b.archive_workers;
    }
    archive.coalesce = config.stage.coalesce;
    archive.max_attempts = config.archive.max_attempts;
    archive.retry_delay = config.archive.retry_delay;
    archive.root_check = root_check;
    archive.retry_horizon = config.archive.retry_horizon;
    ArchiveOptions archive_options;
    archive_options.probe_interval = archive.max_retry_delay;
    archive_options.settle = config.archive.settle;
    archive_options.checksum =
        ParseChecksumAlgo(config.archive.checksum).value_or(ChecksumAlgo::kMd5);
    archive_options.verify = config.archive.verify;
    engine->archiver_ =
        std::make_unique<Archiver>(*engine->catalog_, engine->backend_ptrs_, *engine->cache_, clock,
                                   archive, archive_options, options.notifier);
    HSMFS_RETURN_IF_ERROR(engine->archiver_->Start());
  }
  return engine;
}

}  // namespace hsmfs::fs
