#include "engine/namespace_sync.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>

#include "common/logging.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;

Entry ToEntry(backends::ObjectInfo&& obj, const SyncOptions::ListedModes* modes) {
  Entry e;
  e.name = std::move(obj.name);
  switch (obj.type) {
    case backends::ObjectType::kDir:
      e.type = catalog::EntryType::kDir;
      break;
    case backends::ObjectType::kSymlink:
      e.type = catalog::EntryType::kSymlink;
      e.link_target = std::move(obj.link_target);
      break;
    case backends::ObjectType::kFile:
      e.type = catalog::EntryType::kFile;
      break;
  }
  e.mode = obj.mode;
  const int fixed = !modes ? -1 : e.is_dir() ? modes->dir_mode : modes->file_mode;
  if (fixed >= 0) e.mode = static_cast<uint32_t>(fixed) | catalog::kListedModeIsDefault;
  e.uid = obj.uid;
  e.gid = obj.gid;
  e.size = obj.size;
  e.mtime_ns = obj.mtime_ns;
  e.checksum = std::move(obj.checksum);
  e.location = std::move(obj.location);
  e.volume = std::move(obj.volume);
  e.position = obj.position;
  e.hsm_state = std::move(obj.hsm_state);
  return e;
}

}  // namespace

struct NamespaceSync::Waiter {
  std::function<void(Status)> ready;
  std::atomic<bool> fired{false};
  TimerQueue::TimerId timer = 0;

  // The listing's end and the deadline race to answer; the first one wins.
  void Fire(Status s) {
    if (!fired.exchange(true)) ready(std::move(s));
  }
};

NamespaceSync::NamespaceSync(catalog::Catalog& catalog, const BackendMap& backends,
                             Executor& executor, TimerQueue& timers, Clock& clock,
                             SyncOptions options, KernelNotifier* notifier)
    : catalog_(catalog),
      backends_(backends),
      executor_(executor),
      timers_(timers),
      clock_(clock),
      options_(std::move(options)),
      notifier_(notifier) {}

NamespaceSync::~NamespaceSync() { Shutdown(); }

void NamespaceSync::Shutdown() { shutdown_.Cancel(); }

Status NamespaceSync::Incomplete(const Entry& dir) const {
  return DeadlineExceededError("the listing of " + dir.display() + " is incomplete: backend " +
                               dir.backend + " has not answered within list_timeout (" +
                               FormatDuration(options_.list_timeout) + "); try again later");
}

std::string NamespaceSync::ListingProblem(EntryId dir) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = dirs_.find(dir);
  return it == dirs_.end() || it->second.listed ? "" : it->second.problem;
}

Duration NamespaceSync::TtlFor(const std::string& backend) const {
  auto it = options_.list_ttl_by_backend.find(backend);
  return it == options_.list_ttl_by_backend.end() ? options_.list_ttl : it->second;
}

void NamespaceSync::WhenListed(const Entry& dir, std::function<void(Status)> ready) {
  if (dir.id == catalog::kRootId || !dir.on_backend) {
    // The root is made of configured backends; a directory made through the
    // mount is not on the backend yet. Neither has anything to list.
    ready(Status::Ok());
    return;
  }
  bool need_load;
  {
    std::lock_guard<std::mutex> l(mu_);
    need_load = !dirs_[dir.id].loaded;
  }
  std::optional<catalog::DirSync> sync;
  if (need_load) {
    auto session = catalog_.Acquire();
    if (session.ok()) {
      auto got = session->GetSync(dir.id);
      if (got.ok()) sync = *got;
    }
  }
  std::unique_lock<std::mutex> l(mu_);
  DirState& st = dirs_[dir.id];
  const TimePoint now = clock_.Now();
  if (!st.loaded && need_load) {
    st.loaded = true;
    if (sync) {
      st.listed = true;
      const Duration age(clock_.WallNanos() - sync->listed_ns);
      st.fresh_until = now + (TtlFor(dir.backend) - age);
    }
  }
  if (st.listed) {
    // No refresh on a hung backend: it would only tie up a sync worker.
    if (now >= st.fresh_until && !st.running && now >= st.retry_after && !shutdown_.cancelled() &&
        !hung_.count(dir.backend)) {
      StartListingLocked(dir, st);
    }
    l.unlock();
    ready(Status::Ok());
    return;
  }
  if (!st.running) {
    if (!st.last_error.ok() && now < st.retry_after) {
      Status error = st.last_error;
      l.unlock();
      ready(std::move(error));
      return;
    }
    if (shutdown_.cancelled()) {
      l.unlock();
      ready(UnavailableError("hsmfs is shutting down"));
      return;
    }
    if (hung_.count(dir.backend)) {
      // `ls -lR` must not wait list_timeout for each directory in turn; and
      // a listing started now would only stall behind the hung one.
      Status s = Incomplete(dir);
      st.problem = s.message();
      l.unlock();
      ready(std::move(s));
      return;
    }
    st.first_deadline = now + options_.list_timeout;
    st.first_wait_over = false;
    StartListingLocked(dir, st);
  } else if (st.first_wait_over) {
    Status s = Incomplete(dir);
    st.problem = s.message();
    l.unlock();
    ready(std::move(s));
    return;
  }
  auto waiter = std::make_shared<Waiter>();
  waiter->ready = std::move(ready);
  st.waiters.push_back(waiter);
  // Scheduled under mu_ so that FinishListing always sees the timer id.
  waiter->timer = timers_.Schedule(st.first_deadline, [this, dir, waiter] {
    Status incomplete = Incomplete(dir);
    bool newly_hung = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = dirs_.find(dir.id);
      if (it == dirs_.end()) return;
      auto& ws = it->second.waiters;
      auto w = std::find(ws.begin(), ws.end(), waiter);
      // Not there: the listing has just finished, and FinishListing answers
      // the waiter (and must not find the backend marked hung after it).
      if (w == ws.end()) return;
      ws.erase(w);
      it->second.first_wait_over = true;
      it->second.problem = incomplete.message();
      newly_hung = hung_.insert(dir.backend).second;
    }
    if (newly_hung) {
      spdlog::warn(
          "{}; first listings on {} are answered as incomplete at once until one of its listings "
          "finishes",
          incomplete.message(), dir.backend);
    }
    waiter->Fire(std::move(incomplete));
  });
}

void NamespaceSync::StartListingLocked(const Entry& dir, DirState& st) {
  st.running = true;
  const bool submitted = executor_.Submit([this, dir] {
    Status s = ListNow(dir, shutdown_);
    FinishListing(dir, s);
  });
  if (!submitted) {
    st.running = false;
    st.last_error = UnavailableError("hsmfs is shutting down");
  }
}

void NamespaceSync::FinishListing(const Entry& dir, const Status& s) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  bool listed;
  {
    std::lock_guard<std::mutex> l(mu_);
    DirState& st = dirs_[dir.id];
    st.running = false;
    // The backend answered (even an error is an answer).
    if (hung_.erase(dir.backend) > 0 && !shutdown_.cancelled()) {
      spdlog::info("backend {} answers listings again", dir.backend);
    }
    const TimePoint now = clock_.Now();
    if (s.ok()) {
      st.listed = true;
      st.problem.clear();
      st.fresh_until = now + TtlFor(dir.backend);
      st.last_error = Status::Ok();
      st.retry_after = TimePoint();
    } else {
      if (st.last_error.ok()) {
        spdlog::warn("{}{}", s.message(), st.listed ? "; keeping the catalog's listing" : "");
      } else {
        spdlog::debug("{}", s.message());
      }
      st.last_error = s;
      if (!st.listed) st.problem = s.message();
      st.retry_after = now + options_.retry_after_failure;
    }
    waiters.swap(st.waiters);
    listed = st.listed;
  }
  for (auto& w : waiters) {
    timers_.Cancel(w->timer);
    w->Fire(s.ok() || listed ? Status::Ok() : s);
  }
}

void NamespaceSync::NamesChanging(EntryId dir) {
  std::lock_guard<std::mutex> l(mu_);
  ++name_changes_[dir];
}

uint64_t NamespaceSync::NameChanges(EntryId dir) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = name_changes_.find(dir);
  return it == name_changes_.end() ? 0 : it->second;
}

Status NamespaceSync::ListNow(const Entry& dir, const CancelToken& cancel, SyncProgress* progress,
                              bool confirmed) {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    bool overlapped = false;
    HSMFS_RETURN_IF_ERROR(ListOnce(dir, cancel, progress, &overlapped, confirmed));
    if (!overlapped) return Status::Ok();
    if (attempt == kAttempts) {
      spdlog::debug(
          "listing {}: names kept changing through the mount; added and removed "
          "names wait for the next listing",
          dir.display());
      return Status::Ok();
    }
  }
}

Status NamespaceSync::ListOnce(const Entry& dir, const CancelToken& cancel, SyncProgress* progress,
                               bool* overlapped, bool confirmed) {
  if (!dir.on_backend) return Status::Ok();  // made through the mount: nothing there yet
  auto backend_it = backends_.find(dir.backend);
  if (backend_it == backends_.end()) {
    return FailedPreconditionError("backend \"" + dir.backend + "\" is not configured");
  }
  backends::Backend& backend = *backend_it->second;
  if (options_.root_check) HSMFS_RETURN_IF_ERROR(options_.root_check(dir.backend));
  int64_t prev_gen = 0;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto sync, session.GetSync(dir.id));
    if (sync) prev_gen = sync->gen;
  }
  // Generations are wall-clock nanoseconds, shared with the engine's state
  // changes, so an entry archived while this listing ran is never "unseen".
  const int64_t gen = std::max(clock_.WallNanos(), prev_gen + 1);
  // Read before the backend is: a change made through the mount after this
  // may be missing from what the backend lists.
  const uint64_t epoch = NameChanges(dir.id);
  catalog::ListingDelta delta;
  int64_t count = 0;
  const auto modes_it = options_.modes_by_backend.find(dir.backend);
  const SyncOptions::ListedModes* modes =
      modes_it == options_.modes_by_backend.end() ? nullptr : &modes_it->second;
  const auto sink = [&](std::vector<backends::ObjectInfo>&& batch) -> Status {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    // Checked inside the write transaction: a change whose catalog update
    // commits before this one announced itself before it touched the backend.
    if (NameChanges(dir.id) != epoch) *overlapped = true;
    for (backends::ObjectInfo& obj : batch) {
      HSMFS_RETURN_IF_ERROR(
          session.UpsertListed(dir, ToEntry(std::move(obj), modes), gen, &delta, !*overlapped));
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
    count += static_cast<int64_t>(batch.size());
    if (progress) progress->entries += static_cast<int64_t>(batch.size());
    return Status::Ok();
  };
  Status s = backend.List(dir.backend_path, sink, cancel);
  if (!s.ok()) return s.Annotate("listing " + dir.display());
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    if (NameChanges(dir.id) != epoch) *overlapped = true;
    if (!*overlapped) {
      HSMFS_RETURN_IF_ERROR(session.FinishListing(dir, gen, options_.listed_by, count,
                                                  clock_.WallNanos(), &delta, confirmed));
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  if (delta.held > 0) {
    CountErrorSite("E-LIST-03");
    return UnavailableError(
        "E-LIST-03: listing " + dir.display() + " would remove " + std::to_string(delta.held) +
        " of its " + std::to_string(delta.known) +
        " entries: suspect (a file system not mounted, a directory swapped?), so nothing was "
        "removed; if they are really gone, confirm with: hsmctl sync --force " +
        dir.display());
  }
  if (progress) ++progress->dirs;
  spdlog::debug("listed {}: {} entries ({} new, {} changed, {} gone)", dir.display(), count,
                delta.added.size(), delta.changed.size(), delta.removed.size());
  if (notifier_ && (!delta.changed.empty() || !delta.removed.empty() || !delta.added.empty())) {
    for (EntryId id : delta.changed) notifier_->InvalidateInode(static_cast<uint64_t>(id));
    for (auto& [parent, name] : delta.removed) {
      notifier_->InvalidateEntry(static_cast<uint64_t>(parent), name);
    }
    notifier_->InvalidateInode(static_cast<uint64_t>(dir.id));
  }
  return Status::Ok();
}

Status NamespaceSync::EnsureListedNow(const Entry& dir, const CancelToken& cancel) {
  if (dir.id == catalog::kRootId || !dir.is_dir()) return Status::Ok();
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto sync, session.GetSync(dir.id));
    if (sync) return Status::Ok();
  }
  return ListNow(dir, cancel);
}

Result<Entry> NamespaceSync::Resolve(std::string_view path, const CancelToken& cancel) {
  Entry e;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(e, session.Get(catalog::kRootId));
  }
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string part(path.substr(pos, slash - pos));
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (!e.is_dir()) return Status(Code::kNotDirectory, e.name + ": not a directory");
    HSMFS_RETURN_IF_ERROR(EnsureListedNow(e, cancel));
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    auto child = session.Lookup(e.id, part);
    if (!child.ok()) {
      if (child.status().code() != Code::kNotFound) return child.status();
      return NotFoundError(std::string(path) + ": no such file or directory in the archive");
    }
    if (e.id == catalog::kRootId && !backends_.count(part)) {
      return NotFoundError(std::string(path) + ": no backend named \"" + part + "\"");
    }
    e = std::move(child).value();
  }
  return e;
}

Status NamespaceSync::SyncTree(const Entry& dir, const CancelToken& cancel,
                               const std::function<void(const SyncProgress&)>& on_progress,
                               bool confirmed) {
  SyncProgress progress;
  std::deque<Entry> queue{dir};
  Status first_error;
  while (!queue.empty()) {
    if (cancel.cancelled()) return CancelledError("sync cancelled");
    Entry current = std::move(queue.front());
    queue.pop_front();
    Status s = ListNow(current, cancel, &progress, confirmed);
    if (!s.ok()) {
      // One unreadable directory does not stop the rest of the tree.
      spdlog::warn("{}", s.message());
      if (first_error.ok()) first_error = s;
      continue;
    }
    if (on_progress) on_progress(progress);
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    EntryId after = 0;
    for (;;) {
      std::vector<Entry> children;
      HSMFS_RETURN_IF_ERROR(session.Children(current.id, after, 1024, &children));
      if (children.empty()) break;
      after = children.back().id;
      for (Entry& c : children) {
        if (c.is_dir()) queue.push_back(std::move(c));
      }
    }
  }
  return first_error;
}

}  // namespace hsmfs::fs
