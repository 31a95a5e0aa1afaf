#include "engine/archiver.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/units.h"
#include "engine/bookkeeping.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;
using catalog::Job;
using catalog::JobQueue;

// Creates `path` (with `mode`) and its missing parents (0755: their own archive
// jobs, which carry their modes, then find them made) on the backend. False if
// `path` was there already (made by an earlier job, or as the parent of a file
// put before its directory's job ran): its mode is then not `mode`.
Result<bool> MakeDirs(backends::Backend& backend, const std::string& path, uint32_t mode) {
  if (path.empty()) return false;
  Status s = backend.MakeDir(path, mode);
  if (s.ok()) return true;
  if (s.code() == Code::kAlreadyExists) return false;
  if (s.code() != Code::kNotFound) return s;
  HSMFS_RETURN_IF_ERROR(MakeDirs(backend, backends::ParentObjectPath(path), 0755).status());
  s = backend.MakeDir(path, mode);
  if (s.ok()) return true;
  if (s.code() == Code::kAlreadyExists) return false;
  return s;
}

// Stores the symlink `e` (its target, from the catalog) at its backend path
// and checks that the backend now holds exactly that target: a symlink has no
// data to checksum or read back.
Result<backends::ObjectInfo> PutSymlink(backends::Backend& backend, const Entry& e,
                                        const CancelToken& cancel) {
  backends::PutOptions po;
  po.cancel = &cancel;
  po.mtime_ns = e.mtime_ns;
  po.mode = 0777;
  po.symlink_target = e.link_target;
  HSMFS_ASSIGN_OR_RETURN(backends::ObjectInfo stored, backend.Put({}, e.backend_path, po));
  if (stored.type != backends::ObjectType::kSymlink || stored.link_target != e.link_target) {
    return DataLossError(e.display() + ": the backend holds " +
                         (stored.type == backends::ObjectType::kSymlink
                              ? "a symlink to \"" + stored.link_target + "\""
                              : std::string("no symlink")) +
                         " after storing one to \"" + e.link_target + "\"");
  }
  return stored;
}

}  // namespace

Archiver::Archiver(catalog::Catalog& catalog, const BackendMap& backends, FileCache& cache,
                   Clock& clock, OpenWriters& writers, RunnerOptions runner, ArchiveOptions options,
                   KernelNotifier* notifier)
    : catalog_(catalog),
      cache_(cache),
      clock_(clock),
      options_(options),
      notifier_(notifier),
      writers_(writers),
      runner_(catalog::JobKind::kArchive, catalog, backends, clock, std::move(runner), *this) {
  // A previous engine may have left archives failed while a backend was down.
  for (const auto& [name, impl] : backends) down_[name] = clock_.Now();
}

Archiver::~Archiver() { runner_.Shutdown(); }

Status Archiver::WithSession(const std::function<Status(catalog::Session&)>& fn) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  return fn(session);
}

Status Archiver::Start() {
  // Files closed before a crash but never queued: their settle time has long
  // passed.
  std::vector<EntryId> orphans;
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& s) -> Status {
    HSMFS_ASSIGN_OR_RETURN(orphans, catalog::JobQueue::UnarchivedWithoutJob(s));
    return Status::Ok();
  }));
  if (!orphans.empty()) {
    spdlog::info("archiving {} files written before hsmfs last stopped", orphans.size());
    HSMFS_RETURN_IF_ERROR(QueueNow(orphans));
  }
  return runner_.Start();
}

void Archiver::Closed(EntryId entry) {
  std::lock_guard<std::mutex> l(mu_);
  settling_[entry] = clock_.Now() + options_.settle;
}

void Archiver::Modified(EntryId entry, const std::vector<int64_t>& superseded_jobs) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settling_.erase(entry);
  }
  for (int64_t id : superseded_jobs) runner_.CancelRunning(id);
}

Status Archiver::QueueNow(const std::vector<EntryId>& entries) {
  int queued = 0;
  HSMFS_RETURN_IF_ERROR(QueueArchives(catalog_, cache_, clock_, writers_, entries, &queued));
  if (queued > 0) {
    spdlog::debug("queued {} archive jobs", queued);
    runner_.Kick();
  }
  return Status::Ok();
}

Status QueueArchives(catalog::Catalog& catalog, FileCache& cache, Clock& clock,
                     OpenWriters& writers, const std::vector<EntryId>& entries, int* queued) {
  *queued = 0;
  if (entries.empty()) return Status::Ok();
  // One syncfs makes every settled copy durable: cheaper than an fsync each,
  // and the job must not exist before its data is on disk.
  const int fd = ::open(cache.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open the cache directory");
  const int rc = ::syncfs(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoToStatus(err, "syncfs of the cache");
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, catalog.Acquire());
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  int made = 0;
  for (EntryId id : entries) {
    auto e = s.Get(id);
    if (!e.ok()) continue;  // deleted meanwhile
    // Reopened for writing since it settled: its writer's next write would
    // not make a new version (the first one did), so a job now could mark
    // half-written data dual. The last close settles it again. A writer
    // that opens after this check waits for this transaction to modify.
    if (!e->is_dir() && writers.MarkDirty(id)) continue;
    if (!e->is_dir() && e->state == catalog::FileState::kOnline) {
      // close(2) returns before the kernel's RELEASE reaches us, so a crash
      // can keep the last size from the catalog: take it from the copy.
      struct stat st;
      if (::stat(cache.PathOf(id).c_str(), &st) == 0) {
        e->size = static_cast<uint64_t>(st.st_size);
        e->mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
        HSMFS_RETURN_IF_ERROR(s.SetLocalAttrs(id, e->size, e->mtime_ns));
      }
    }
    HSMFS_ASSIGN_OR_RETURN(auto job, JobQueue::EnqueueArchive(s, *e, clock.WallNanos()));
    made += job.has_value();
  }
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  *queued = made;
  return Status::Ok();
}

void Archiver::Tick() {
  std::vector<EntryId> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    const TimePoint now = clock_.Now();
    for (auto it = settling_.begin(); it != settling_.end();) {
      if (it->second <= now) {
        due.push_back(it->first);
        it = settling_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (Status s = QueueNow(due); !s.ok()) {
    spdlog::warn("cannot queue {} archive jobs: {}; trying again", due.size(), s.message());
    std::lock_guard<std::mutex> l(mu_);
    for (EntryId id : due) settling_.emplace(id, clock_.Now());
  }
  ProbeBackends();
}

void Archiver::ProbeBackends() {
  std::vector<std::string> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    const TimePoint now = clock_.Now();
    for (auto& [backend, at] : down_) {
      if (now < at) continue;
      due.push_back(backend);
      at = now + options_.probe_interval;
    }
  }
  for (const std::string& backend : due) {
    bool probing = false;
    bool none = false;
    Status s = WithSession([&](catalog::Session& session) -> Status {
      HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
      HSMFS_ASSIGN_OR_RETURN(
          auto ids, JobQueue::FailedWhileDown(session, catalog::JobKind::kArchive, backend, 1));
      none = ids.empty();
      // The smallest file: the probe costs little, and it tries the real path
      // (a backend that answers a stat may still refuse a write).
      if (!none) {
        HSMFS_ASSIGN_OR_RETURN(probing, JobQueue::Retry(session, ids.front(), clock_.WallNanos(),
                                                        /*fresh_attempts=*/false));
      }
      return tx.Commit();
    });
    if (!s.ok()) {
      spdlog::warn("cannot look for archives to retry on {}: {}", backend, s.message());
      continue;
    }
    if (none) {
      std::lock_guard<std::mutex> l(mu_);
      down_.erase(backend);
    }
    if (probing) {
      spdlog::info("trying one archive that failed while {} was down", backend);
      runner_.Kick();
    }
  }
}

void Archiver::BackendAnswered(const std::string& backend) {
  {
    std::lock_guard<std::mutex> l(mu_);
    // Erased before the query: a failure recorded meanwhile marks it again.
    if (down_.erase(backend) == 0) return;
  }
  int queued = 0;
  Status s = WithSession([&](catalog::Session& session) -> Status {
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    HSMFS_ASSIGN_OR_RETURN(
        auto ids, JobQueue::FailedWhileDown(session, catalog::JobKind::kArchive, backend, 0));
    for (int64_t id : ids) {
      HSMFS_ASSIGN_OR_RETURN(bool again, JobQueue::Retry(session, id, clock_.WallNanos()));
      queued += again;
    }
    return tx.Commit();
  });
  if (!s.ok()) {
    spdlog::warn("cannot queue the archives that failed while {} was down: {}", backend,
                 s.message());
    std::lock_guard<std::mutex> l(mu_);
    down_.emplace(backend, clock_.Now() + options_.probe_interval);
    return;
  }
  if (queued > 0) {
    spdlog::info("{} answers again: archiving the {} files that failed while it was down", backend,
                 queued);
    runner_.Kick();
  }
}

Status Archiver::Verify(backends::Backend& backend, const Job& job, const std::string& path,
                        const std::string& checksum, const backends::ObjectInfo& stored,
                        const CancelToken& cancel) {
  using V = ArchiveConfig::Verify;
  if (options_.verify == V::kNone) return Status::Ok();
  // The backend read the copy back itself (a whole tape unit or htar bundle
  // at once) and found our checksum: reading it again proves nothing more.
  if (stored.read_back && !checksum.empty() && stored.checksum == checksum) return Status::Ok();
  if (options_.verify == V::kBackend) {
    auto ours = AlgoOfChecksum(checksum);
    auto theirs = AlgoOfChecksum(stored.checksum);
    if (ours.ok() && theirs.ok() && *ours == *theirs) {
      if (stored.checksum != checksum) {
        return DataLossError(job.backend + "/" + path + ": the backend's checksum " +
                             stored.checksum + " differs from ours " + checksum);
      }
      return Status::Ok();
    }
    if (FirstTimeFor("verify-backend:" + job.backend)) {
      spdlog::warn("backend {} reports no {} checksum; verifying archives by reading back",
                   job.backend, ChecksumAlgoName(options_.checksum));
    }
  }
  backends::ReadOptions ro;
  ro.cancel = &cancel;
  ro.expect_checksum = checksum;
  return backends::ReadBack(backend, path, cache_.scratch_dir(), ro)
      .Annotate("reading back " + job.backend + "/" + path);
}

Status Archiver::Run(backends::Backend& backend, const Job& job, const CancelToken& cancel) {
  Entry e;
  HSMFS_RETURN_IF_ERROR(WithSession([&](catalog::Session& s) -> Status {
    HSMFS_ASSIGN_OR_RETURN(e, s.Get(job.entry_id));
    return Status::Ok();
  }));
  const TimePoint started = clock_.Now();
  bool put = false;
  uint64_t archived_size = e.size;
  const std::string path = e.backend_path;  // where this job puts the data
  std::string checksum;
  backends::ObjectInfo stored;
  if (e.version != job.version) {
    checksum = "";  // superseded before it started: FinishArchive says so
  } else if (e.is_dir()) {
    HSMFS_ASSIGN_OR_RETURN(const bool made, MakeDirs(backend, path, e.mode));
    backends::DirAttrs attrs;
    if (!made) attrs.mode = e.mode & 07777;  // a chmod, or made 0755 by a file's Put
    if (e.local_mtime) attrs.mtime_ns = e.mtime_ns;
    CarryDirAttrs(backend, e, attrs);
    // An rmdir while we worked saw no backend copy yet: the cleanup below
    // removes the one we made.
    put = true;
  } else if (e.is_symlink()) {
    HSMFS_ASSIGN_OR_RETURN(stored, PutSymlink(backend, e, cancel));
    archived_size = e.link_target.size();
    put = true;
  } else {
    const auto copy = cache_.PathOf(e.id);
    struct stat st;
    if (::stat(copy.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + copy.string());
    archived_size = static_cast<uint64_t>(st.st_size);
    HSMFS_ASSIGN_OR_RETURN(checksum, ChecksumFile(copy, options_.checksum, cancel));
    backends::PutOptions po;
    po.cancel = &cancel;
    po.checksum = checksum;
    po.mtime_ns = e.mtime_ns;
    po.mode = e.mode;
    po.progress = JobProgressRecorder(catalog_, clock_, job.id, "archive of " + e.display());
    HSMFS_ASSIGN_OR_RETURN(stored, backend.Put(copy, path, po));
    put = true;
    HSMFS_RETURN_IF_ERROR(Verify(backend, job, path, checksum, stored, cancel));
  }
  bool current = false;
  bool stray = false;  // what we put belongs to no entry any more
  HSMFS_RETURN_IF_ERROR(
      WithSession([&](catalog::Session& s) -> Status {
        HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
        auto now = s.Get(e.id);
        if (!now.ok()) {
          // Deleted while we worked (its job went with it).
          stray = now.status().code() == Code::kNotFound;
          return now.status().code() == Code::kNotFound ? Status::Ok() : now.status();
        }
        if (now->backend_path != path) {
          stray = true;
          // Moved while we worked: what we put is at the old name. The rename
          // settled the entry again under its new name.
          HSMFS_RETURN_IF_ERROR(JobQueue::Cancel(s, job.id, clock_.WallNanos()).status());
        } else {
          HSMFS_ASSIGN_OR_RETURN(
              current, JobQueue::FinishArchive(s, job, checksum, archived_size, stored.location,
                                               clock_.WallNanos()));
        }
        return tx.Commit();
      }).Annotate("recording the archive"));
  if (current) {
    spdlog::info("archived {} ({}) in {}{}", e.display(), FormatSizeHuman(e.size),
                 FormatDuration(clock_.Now() - started), checksum.empty() ? "" : ", " + checksum);
    // Putting it there changed its directory's time on the backend: put back
    // the one the mount shows (rsync -a, tar -x set it before we archive).
    Entry parent;
    const Status got = WithSession([&](catalog::Session& s) -> Status {
      HSMFS_ASSIGN_OR_RETURN(parent, s.Get(e.parent));
      return Status::Ok();
    });
    if (got.ok() && parent.local_mtime && !parent.backend.empty()) {
      backends::DirAttrs attrs;
      attrs.mtime_ns = parent.mtime_ns;
      CarryDirAttrs(backend, parent, attrs);
    }
    if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(e.id));
    BackendAnswered(job.backend);
    return Status::Ok();
  }
  if (stray && put) {
    // Best effort: nothing refers to it, and a later job archives the entry
    // under its current name.
    if (Status s = backend.Remove(path); !s.ok() && s.code() != Code::kNotFound) {
      spdlog::warn("cannot remove the stray archive copy {}/{}: {}", job.backend, path,
                   s.message());
    }
  }
  spdlog::debug("archive of {} superseded (modified, moved or deleted meanwhile)", e.display());
  return Status::Ok();
}

void Archiver::CarryDirAttrs(backends::Backend& backend, const Entry& dir,
                             const backends::DirAttrs& attrs) {
  if (!attrs.mode && !attrs.mtime_ns) return;
  Status s = backend.SetDirAttrs(dir.backend_path, attrs);
  if (!s.ok() && s.code() != Code::kUnimplemented) {
    // The catalog keeps them either way; only a rebuilt catalog would miss them.
    spdlog::debug("cannot set the mode or time of {} on the backend: {}", dir.display(),
                  s.message());
  }
}

void Archiver::Failed(const Job& job, const Status& error) {
  CountErrorSite("E-ARCHIVE-01");
  const bool outage = IsOutage(error.code());
  spdlog::error(
      "E-ARCHIVE-01: archiving {} failed after {} attempt(s): {}; the data stays in "
      "the cache{}",
      job.entry.display(), job.attempts + 1, error.message(),
      outage ? ", and it is retried when " + job.backend + " answers again" : "");
  RecordBookkeeping(
      "E-BOOK-03", "the failed archive of " + job.entry.display(),
      "its job stays running in the catalog until the next start tries it again", clock_, [&] {
        return WithSession([&](catalog::Session& s) -> Status {
          HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
          HSMFS_RETURN_IF_ERROR(JobQueue::FailArchive(s, job, error, clock_.WallNanos(), outage));
          return tx.Commit();
        });
      });
  if (outage) {
    std::lock_guard<std::mutex> l(mu_);
    down_.emplace(job.backend, clock_.Now() + options_.probe_interval);
  }
  if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(job.entry_id));
}

void Archiver::Cancelled(const Job& job) {
  spdlog::info("archiving {} stopped: {}", job.entry.display(), "cancelled or superseded");
}

}  // namespace hsmfs::fs
