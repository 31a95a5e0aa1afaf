#include "fuse/fs_core.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "common/logging.h"
#include "common/units.h"
#include "engine/archiver.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;

constexpr int kReadDirBatch = 256;
// Cookies 1 and 2 follow "." and ".."; a child's cookie is its id + 2 (ids of
// children are >= 2, so cookies never collide).
constexpr uint64_t kCookieDot = 1;
constexpr uint64_t kCookieDotDot = 2;

// Catalog failures other than a missing entry are EIO site E-CAT-01.
Status CatalogError(const Status& s) {
  return s.code() == Code::kNotFound ? s : AtSite("E-CAT-01", s);
}

// A first listing that failed is E-LIST-01. One that did not finish within
// list_timeout is E-LIST-02, and EIO too: the directory is not known to be
// complete, which is not a timeout of the caller's own request.
Status ListingError(const Status& listed) {
  if (listed.code() == Code::kDeadlineExceeded) {
    return AtSite("E-LIST-02", UnavailableError(listed.message()));
  }
  return AtSite("E-LIST-01", listed);
}

}  // namespace

struct FsCore::OpenWait {
  EntryId entry = 0;
  std::function<void(Status)> then;
  uint64_t watcher = 0;
  TimerQueue::TimerId timer = 0;
};

FsCore::FsCore(Engine& engine, Options options)
    : engine_(engine), service_(engine), options_(options) {}

FsCore::~FsCore() { engine_.Shutdown(); }

Result<Entry> FsCore::GetEntry(uint64_t ino) {
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return CatalogError(session.status());
  auto e = session->Get(static_cast<EntryId>(ino));
  if (!e.ok()) return CatalogError(e.status());
  return e;
}

bool FsCore::DeniedRecall(const catalog::Requester& who) {
  for (const std::string& name : engine_.config().stage.deny_recall_from) {
    // The kernel keeps 15 characters of a command name.
    if (!who.command.empty() && who.command == std::string_view(name).substr(0, 15)) {
      ++denied_recalls_;
      CountErrorSite("DENY-RECALL");
      if (FirstTimeFor("deny-recall:" + who.command)) {
        spdlog::warn(
            "refusing recalls requested by {} (pid {}): it is in [stage] "
            "deny_recall_from; metadata and cached files stay readable for it",
            who.command, who.pid);
      }
      return true;
    }
  }
  return false;
}

Result<OpenFile> FsCore::OpenCached(const Entry& e) {
  const auto path = engine_.cache().PathOf(e.id);
  engine_.cache().Opened(e.id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int err = errno;
    engine_.cache().Closed(e.id);
    if (err == ENOENT) return NotFoundError("the cached copy of " + e.name + " is gone");
    return AtSite("E-CACHE-01", ErrnoToStatus(err, "open cached copy " + path.string()));
  }
  CountOpen(e.id);
  return OpenFile{fd, true};
}

uint64_t FsCore::Open(uint64_t ino, int flags, const catalog::Requester& who,
                      std::function<void(Result<OpenFile>)> done) {
  auto got = GetEntry(ino);
  if (!got.ok()) {
    done(got.status());
    return 0;
  }
  const Entry e = std::move(got).value();
  if (e.is_dir()) {
    done(Status(Code::kIsDirectory, e.name + ": is a directory"));
    return 0;
  }
  if (e.is_symlink()) {
    // The kernel resolves symlinks itself and never opens one through us.
    done(InvalidArgumentError(e.name + ": is a symbolic link"));
    return 0;
  }
  const bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (writing) {
    if (Status s = CheckWritable(e.backend, e.backend_path); !s.ok()) {
      done(s);
      return 0;
    }
    if ((flags & O_TRUNC) && !e.cached) {
      done(OpenForWrite(e, flags));  // the old data is not needed
      return 0;
    }
  }
  const auto open_now = [this, flags, writing](const Entry& entry) {
    return writing ? OpenForWrite(entry, flags) : OpenCached(entry);
  };
  if (e.cached) {
    auto file = open_now(e);
    if (file.ok() || file.status().code() != Code::kNotFound) {
      done(std::move(file));
      return 0;
    }
    // The copy vanished under us (evicted or released a moment ago): recall.
  }
  if (DeniedRecall(who)) {
    done(PermissionDeniedError(who.command + " may not recall " + e.backend + "/" + e.backend_path +
                               " ([stage] deny_recall_from)"));
    return 0;
  }
  Stager* stager = engine_.stager();
  if (!stager) {
    done(UnavailableError("this engine does not run recalls"));
    return 0;
  }
  auto job = stager->Request(e, who);
  if (!job.ok()) {
    done(CatalogError(job.status()));
    return 0;
  }
  const uint64_t ino_copy = ino;
  const auto open_fresh = [this, ino_copy, open_now]() -> Result<OpenFile> {
    HSMFS_ASSIGN_OR_RETURN(Entry now, GetEntry(ino_copy));
    auto file = open_now(now);
    if (!file.ok() && file.status().code() == Code::kNotFound) {
      // Evicted between the recall and this open: only when the cache is far
      // too small for the work in flight.
      return AtSite("E-CACHE-02", UnavailableError(file.status().message() +
                                                   ": evicted right after its recall; the "
                                                   "cache is too small"));
    }
    return file;
  };
  if (!*job) {
    done(open_fresh());  // recalled a moment ago by someone else
    return 0;
  }
  if (flags & O_NONBLOCK) {
    done(NotResidentError(e.backend + "/" + e.backend_path + " is offline; recall queued (job " +
                          std::to_string((*job)->id) + ")"));
    return 0;
  }
  return WaitForRecall(e, [open_fresh, done = std::move(done)](Status s) {
    if (!s.ok()) return done(s);
    done(open_fresh());
  });
}

uint64_t FsCore::WaitForRecall(const Entry& e, std::function<void(Status)> then) {
  auto wait = std::make_shared<OpenWait>();
  wait->entry = e.id;
  wait->then = std::move(then);
  const std::string what = e.backend + "/" + e.backend_path;
  const Duration timeout = engine_.config().cache.stage_timeout;
  uint64_t id;
  {
    // Registered under waits_mu_ so that CompleteWait always sees both ids.
    // Lock order: waits_mu_, then the stager's and the timer queue's.
    std::lock_guard<std::mutex> l(waits_mu_);
    id = next_wait_++;
    waits_[id] = wait;
    wait->watcher = engine_.stager()->Watch(e.id, [this, id](Status s) { CompleteWait(id, s); });
    wait->timer = engine_.timers().Schedule(engine_.clock().Now() + timeout, [this, id, what,
                                                                              timeout] {
      CompleteWait(id, DeadlineExceededError(what + ": still offline after stage_timeout (" +
                                             FormatDuration(timeout) + "); the recall goes on"));
    });
  }
  // The recall may have ended before Watch: look again now that we listen.
  auto now = GetEntry(e.id);
  if (now.ok() && now->cached) CompleteWait(id, Status::Ok());
  return id;
}

void FsCore::CompleteWait(uint64_t wait_id, const Status& s) {
  std::shared_ptr<OpenWait> wait;
  {
    std::lock_guard<std::mutex> l(waits_mu_);
    auto it = waits_.find(wait_id);
    if (it == waits_.end()) return;  // answered already
    wait = std::move(it->second);
    waits_.erase(it);
  }
  if (Stager* stager = engine_.stager()) stager->Unwatch(wait->watcher);
  engine_.timers().Cancel(wait->timer);
  wait->then(s);
}

void FsCore::Interrupt(uint64_t wait_id) {
  CompleteWait(wait_id, CancelledError("interrupted while waiting for a recall"));
}

Status FsCore::SetXattr(uint64_t ino, std::string_view name, const catalog::Requester& who) {
  if (name != kXattrStage && name != kXattrRelease) {
    return UnimplementedError("extended attribute " + std::string(name) + " cannot be set here");
  }
  HSMFS_ASSIGN_OR_RETURN(Entry e, GetEntry(ino));
  if (e.is_dir()) return Status(Code::kIsDirectory, e.name + ": is a directory");
  if (e.is_symlink()) return NotPermittedError(e.name + ": a symlink has no data to stage");
  if (name == kXattrRelease) return engine_.cache().Release(e.id);
  if (e.cached) return Status::Ok();
  if (DeniedRecall(who)) {
    return PermissionDeniedError(who.command + " may not recall files ([stage] deny_recall_from)");
  }
  Stager* stager = engine_.stager();
  if (!stager) return UnavailableError("this engine does not run recalls");
  return stager->Request(e, who).status();
}

std::pair<uint32_t, uint32_t> FsCore::OwnerOf(const Entry& e) const {
  int64_t uid = e.uid;
  int64_t gid = e.gid;
  if (uid < 0 || gid < 0) {
    const BackendConfig* b = e.backend.empty() ? nullptr : engine_.config().FindBackend(e.backend);
    if (uid < 0) uid = b && b->uid >= 0 ? b->uid : options_.uid;
    if (gid < 0) gid = b && b->gid >= 0 ? b->gid : options_.gid;
  }
  return {static_cast<uint32_t>(uid), static_cast<uint32_t>(gid)};
}

Attr FsCore::ToAttr(const Entry& e) const {
  Attr a;
  a.ino = static_cast<uint64_t>(e.id);
  std::tie(a.uid, a.gid) = OwnerOf(e);
  a.mtime_ns = e.mtime_ns;
  a.ctime_ns = std::max(e.ctime_ns, e.mtime_ns);
  if (e.is_dir()) {
    a.mode = S_IFDIR | (e.mode & 07777);
    a.nlink = 1;
  } else if (e.is_symlink()) {
    // As on a local disk (lstat): the link's own size, no blocks.
    a.mode = S_IFLNK | 0777;
    a.size = e.link_target.size();
  } else {
    a.mode = S_IFREG | (e.mode & 07777);
    a.size = e.size;
    a.blocks = e.cached ? (e.size + 511) / 512 : 0;
    if (e.cached && e.state == catalog::FileState::kOnline) {
      // Being written (or waiting to settle): the copy is the truth.
      struct stat st;
      if (::stat(engine_.cache().PathOf(e.id).c_str(), &st) == 0) {
        a.size = static_cast<uint64_t>(st.st_size);
        a.blocks = static_cast<uint64_t>(st.st_blocks);
        a.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
        a.ctime_ns = std::max({e.ctime_ns, a.mtime_ns,
                               int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec});
      }
    }
  }
  return a;
}

bool FsCore::Visible(const Entry& e) const {
  return e.parent != catalog::kRootId || engine_.config().FindBackend(e.name) != nullptr;
}

void FsCore::Lookup(uint64_t parent, std::string name, std::function<void(Result<Attr>)> done) {
  if (name.size() > kNameMax) {
    return done(Status(Code::kNameTooLong, "a name of " + std::to_string(name.size()) +
                                               " bytes is longer than NAME_MAX (255)"));
  }
  auto dir = GetEntry(parent);
  if (!dir.ok()) return done(dir.status());
  if (!dir->is_dir()) return done(Status(Code::kNotDirectory, dir->name + ": not a directory"));
  const EntryId dir_id = dir->id;
  engine_.sync().WhenListed(
      *dir, [this, dir_id, name = std::move(name), done = std::move(done)](Status listed) {
        auto session = engine_.catalog().Acquire();
        if (!session.ok()) return done(CatalogError(session.status()));
        auto child = session->Lookup(dir_id, name);
        // Without a complete listing a name we have seen exists, but one we
        // have not may exist too: not ENOENT.
        if (!listed.ok() && !child.ok()) return done(ListingError(listed));
        if (!child.ok()) return done(CatalogError(child.status()));
        if (!Visible(*child)) return done(NotFoundError(name + ": no such backend"));
        done(ToAttr(*child));
      });
}

Result<Attr> FsCore::GetAttr(uint64_t ino) {
  auto e = GetEntry(ino);
  if (!e.ok() && e.status().code() == Code::kNotFound) {
    if (auto a = UnlinkedAttr(static_cast<EntryId>(ino))) return *a;
  }
  if (!e.ok()) return e.status();
  return ToAttr(*e);
}

void FsCore::CountOpen(EntryId id) {
  std::lock_guard<std::mutex> l(write_mu_);
  ++open_count_[id];
}

std::optional<Attr> FsCore::UnlinkedAttr(EntryId id) {
  Attr a;
  {
    std::lock_guard<std::mutex> l(write_mu_);
    auto it = unlinked_.find(id);
    if (it == unlinked_.end()) return std::nullopt;
    a = it->second;
  }
  // The copy stays until the last close, and holds the file's data and times.
  struct stat st;
  if (::stat(engine_.cache().PathOf(id).c_str(), &st) == 0) {
    a.size = static_cast<uint64_t>(st.st_size);
    a.blocks = static_cast<uint64_t>(st.st_blocks);
    a.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    a.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  }
  return a;
}

void FsCore::ReadDir(uint64_t ino, uint64_t offset, std::shared_ptr<DirSink> sink) {
  auto got = GetEntry(ino);
  if (!got.ok()) return sink->Finish(got.status());
  const Entry dir = std::move(got).value();
  if (!dir.is_dir()) {
    return sink->Finish(Status(Code::kNotDirectory, dir.name + ": not a directory"));
  }
  engine_.sync().WhenListed(dir, [this, dir, offset, sink](Status listed) {
    if (!listed.ok()) return sink->Finish(ListingError(listed));
    EmitEntries(dir, offset, *sink);
  });
}

void FsCore::EmitEntries(const Entry& dir, uint64_t offset, DirSink& sink) {
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return sink.Finish(CatalogError(session.status()));
  if (offset < kCookieDot) {
    if (!sink.Add(".", ToAttr(dir), kCookieDot)) return sink.Finish(Status::Ok());
    offset = kCookieDot;
  }
  if (offset < kCookieDotDot) {
    Attr parent_attr = ToAttr(dir);
    if (dir.parent != 0) {
      auto parent = session->Get(dir.parent);
      if (parent.ok()) parent_attr = ToAttr(*parent);
    }
    if (!sink.Add("..", parent_attr, kCookieDotDot)) return sink.Finish(Status::Ok());
    offset = kCookieDotDot;
  }
  EntryId after = static_cast<EntryId>(offset - kCookieDotDot);
  for (;;) {
    std::vector<Entry> children;
    Status s = session->Children(dir.id, after, kReadDirBatch, &children);
    if (!s.ok()) return sink.Finish(CatalogError(s));
    if (children.empty()) break;
    for (const Entry& child : children) {
      after = child.id;
      if (!Visible(child)) continue;
      if (!catalog::ValidEntryName(child.name)) {
        // The kernel would fail the whole readdir (EIO) on this one row.
        CountErrorSite("E-NAME-01");
        if (FirstTimeFor("bad-name:" + std::to_string(child.id))) {
          spdlog::warn(
              "E-NAME-01: {}: catalog entry {} has the name \"{}\", which cannot be "
              "shown; skipped in listings (hsmctl fsck --repair renames it)",
              dir.display(), child.id, child.name);
        }
        continue;
      }
      if (!sink.Add(child.name, ToAttr(child), static_cast<uint64_t>(child.id) + kCookieDotDot)) {
        return sink.Finish(Status::Ok());
      }
    }
    if (children.size() < static_cast<size_t>(kReadDirBatch)) break;
  }
  sink.Finish(Status::Ok());
}

std::optional<std::string> FsCore::XattrOf(const Entry& e, std::string_view name) {
  std::string value;
  if (name == kXattrState) {
    if (!e.is_dir()) value = catalog::StateName(e.state);
  } else if (name == kXattrDmf) {
    if (!e.is_dir() && e.id != catalog::kRootId) value = catalog::DmfCode(e);
  } else if (name == kXattrBackend) {
    value = e.backend;
  } else if (name == kXattrLocation) {
    value = !e.location.empty() ? e.location
                                : (e.backend.empty() ? "" : e.backend + ":/" + e.backend_path);
  } else if (name == kXattrChecksum) {
    value = e.checksum;
  } else if (name == kXattrError) {
    value = e.error;
  } else if (name == kXattrStats && e.id == catalog::kRootId) {
    for (const auto& [site, count] : ErrorSiteCounts()) {
      value += (value.empty() ? "" : " ") + site + "=" + std::to_string(count);
    }
    if (value.empty()) value = "no errors";
  }
  if (value.empty()) return std::nullopt;
  return value;
}

Result<std::optional<std::string>> FsCore::GetXattr(uint64_t ino, std::string_view name) {
  // Other namespaces (security.*, system.posix_acl_*) are asked for on every
  // write and exec; answer them without touching the catalog.
  if (name.substr(0, 9) != "user.hsm.") return std::optional<std::string>();
  if (name == kXattrQueuePosition || name == kXattrEta) {
    auto where = service_.recalls().Where(static_cast<EntryId>(ino));
    if (!where.ok()) return CatalogError(where.status());
    if (!*where) return std::optional<std::string>();
    if (name == kXattrQueuePosition) {
      return std::optional<std::string>(std::to_string((*where)->position));
    }
    const auto eta = std::chrono::duration_cast<std::chrono::seconds>((*where)->eta);
    return std::optional<std::string>(std::to_string(eta.count()) + "s");
  }
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return CatalogError(session.status());
  auto e = session->Get(static_cast<EntryId>(ino));
  if (!e.ok()) return CatalogError(e.status());
  if (name == kXattrError && e->is_dir()) {
    // A directory whose first listing failed or is incomplete says why.
    std::string problem = engine_.sync().ListingProblem(e->id);
    if (!problem.empty()) return std::optional<std::string>(std::move(problem));
  }
  return XattrOf(*e, name);
}

Result<std::vector<std::string>> FsCore::ListXattr(uint64_t ino) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  HSMFS_ASSIGN_OR_RETURN(Entry e, session.Get(static_cast<EntryId>(ino)));
  std::vector<std::string> names;
  for (std::string_view name : {kXattrState, kXattrDmf, kXattrBackend, kXattrLocation,
                                kXattrChecksum, kXattrError, kXattrStats}) {
    if (XattrOf(e, name) ||
        (name == kXattrError && e.is_dir() && !engine_.sync().ListingProblem(e.id).empty())) {
      names.emplace_back(name);
    }
  }
  if (e.state == catalog::FileState::kStaging && !e.is_dir()) {
    names.emplace_back(kXattrQueuePosition);
    names.emplace_back(kXattrEta);
  }
  return names;
}

Result<FsStats> FsCore::StatFs() {
  catalog::CatalogStats stats;
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    // Summing a large catalog takes a while; df does not need it exact.
    if (engine_.clock().Now() >= stats_until_) {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
      HSMFS_ASSIGN_OR_RETURN(stats_, session.Stats());
      stats_until_ = engine_.clock().Now() + std::chrono::seconds(5);
    }
    stats = stats_;
  }
  FsStats out;
  struct statvfs cache_fs;
  uint64_t free_blocks = 0;
  if (::statvfs(engine_.config().cache.dir.c_str(), &cache_fs) == 0) {
    free_blocks = static_cast<uint64_t>(cache_fs.f_bavail) * cache_fs.f_frsize / out.block_size;
  }
  // df shows the archive's size as used and the cache's free space as free.
  out.blocks = (stats.bytes + out.block_size - 1) / out.block_size + free_blocks;
  out.blocks_free = free_blocks;
  out.files_free = uint64_t{1} << 32;
  out.files = static_cast<uint64_t>(stats.files + stats.dirs) + out.files_free;
  return out;
}

}  // namespace hsmfs::fs
