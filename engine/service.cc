#include "engine/service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "backends/registry.h"
#include "common/logging.h"
#include "engine/bookkeeping.h"

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;
using catalog::Entry;
using catalog::EntryId;
using catalog::FileState;
using catalog::Job;
using catalog::JobQueue;
using catalog::JobState;

std::string Join(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : std::string(dir) + "/" + std::string(name);
}

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

Status Interrupted() { return CancelledError("interrupted"); }

// Sleeps one poll round; kCancelled or kDeadlineExceeded when the wait must end.
Status PollRound(Clock& clock, const WaitOptions& options) {
  if (options.stop && options.stop->load()) return Interrupted();
  if (options.deadline.Expired(clock)) return DeadlineExceededError("gave up waiting");
  std::this_thread::sleep_for(options.poll);
  if (options.stop && options.stop->load()) return Interrupted();
  return Status::Ok();
}

// With nothing timed and nothing configured: a guess, in the order of a
// tape mount (a disk backend is timed after its first recall).
constexpr double kUnknownRecallSeconds = 5.0;
constexpr int kTimedRecalls = 200;

}  // namespace

Status CheckWritable(const Config& config, const std::string& backend, const std::string& path) {
  const BackendConfig* b = config.FindBackend(backend);
  if (b && IsWritablePath(*b, path)) return Status::Ok();
  std::string where;
  if (b && !b->writable.empty()) {
    for (const std::string& w : b->writable) where += (where.empty() ? "" : ", ") + w;
    where = " (writable here: " + where + ")";
  }
  return ReadOnlyError(backend + "/" + path + ": not in a writable directory" + where);
}

Status CheckName(const Config& config, const std::string& backend, std::string_view name) {
  if (name.size() > kNameMax) {
    return Status(Code::kNameTooLong, "a name of " + std::to_string(name.size()) +
                                          " bytes is longer than NAME_MAX (" +
                                          std::to_string(kNameMax) + ")");
  }
  const BackendConfig* b = config.FindBackend(backend);
  if (!b) return Status::Ok();
  return backends::CheckStorableName(b->type, name);
}

// Namespace

Result<Entry> Namespace::Resolve(std::string_view path, const CancelToken& cancel) {
  return engine_.sync().Resolve(path, cancel);
}

Result<Entry> Namespace::Get(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return session.Get(id);
}

Result<Entry> Namespace::Lookup(EntryId dir, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return session.Lookup(dir, name);
}

Result<std::vector<Entry>> Namespace::List(const Entry& dir, const CancelToken& cancel) {
  HSMFS_RETURN_IF_ERROR(engine_.sync().EnsureListedNow(dir, cancel));
  std::vector<Entry> children;
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  EntryId after = 0;
  for (;;) {
    std::vector<Entry> page;
    HSMFS_RETURN_IF_ERROR(session.Children(dir.id, after, 4096, &page));
    if (page.empty()) break;
    after = page.back().id;
    for (Entry& c : page) {
      if (dir.id == catalog::kRootId && !engine_.backend(c.name)) continue;
      children.push_back(std::move(c));
    }
  }
  return children;
}

void Namespace::FilesBelow(const Entry& top, std::vector<Entry>* files,
                           const std::function<void(const Status&)>& error) {
  if (!top.is_dir()) {
    files->push_back(top);
    return;
  }
  std::vector<Entry> dirs{top};
  while (!dirs.empty()) {
    Entry dir = std::move(dirs.back());
    dirs.pop_back();
    auto children = List(dir, CancelToken::None());
    if (!children.ok()) {
      error(children.status());
      continue;
    }
    for (Entry& c : *children) {
      if (!catalog::ValidEntryName(c.name)) continue;  // hsmctl ls names it
      (c.is_dir() ? dirs : *files).push_back(std::move(c));
    }
  }
}

Status Namespace::Sync(const Entry& dir, const CancelToken& cancel,
                       const std::function<void(const SyncProgress&)>& progress, bool force) {
  return engine_.sync().SyncTree(dir, cancel, progress, force);
}

// Recalls

Result<RecallTiming> Recalls::Timing(std::string_view backend) {
  RecallTiming t;
  const BackendConfig* config = engine_.config().FindBackend(backend);
  t.workers =
      config && config->stage_workers > 0 ? config->stage_workers : engine_.config().stage.workers;
  const std::string name(backend);
  if (Stager* stager = engine_.stager()) {
    t.workers = stager->Workers(backend);
    if (const double timed = stager->TimedSeconds(backend); timed > 0) {
      t.seconds_per_recall = timed;
      t.basis = "from recent recalls of " + name;
      return t;
    }
  }
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(catalog::RecallTimes times,
                           catalog::RecentRecallTimes(session, backend, kTimedRecalls));
    if (times.count > 0) {
      t.seconds_per_recall = times.mean_seconds;
      t.basis = "from the last " + std::to_string(times.count) + " recalls of " + name;
      return t;
    }
  }
  if (config && config->stage_delay.count() > 0) {
    t.seconds_per_recall = std::chrono::duration<double>(config->stage_delay).count();
    t.basis = "no recalls of " + name + " timed yet: its configured stage_delay";
    return t;
  }
  t.seconds_per_recall = kUnknownRecallSeconds;
  t.basis = "no recalls of " + name + " timed yet: assumed 5s each";
  return t;
}

Result<Duration> Recalls::Eta(const Job& job, int64_t position) {
  HSMFS_ASSIGN_OR_RETURN(RecallTiming t, Timing(job.backend));
  const double running =
      position <= 0 && job.started_ns > 0
          ? static_cast<double>(engine_.clock().WallNanos() - job.started_ns) / 1e9
          : 0;
  return RecallEta(t, position, running);
}

Result<std::optional<RecallStatus>> Recalls::Where(EntryId entry) {
  RecallStatus status;
  {
    // Released before Eta, which takes a session of its own.
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(Entry e, session.Get(entry));
    if (e.state != FileState::kStaging) return std::optional<RecallStatus>();
    HSMFS_ASSIGN_OR_RETURN(auto job, JobQueue::ActiveFor(session, e.id, catalog::JobKind::kStage));
    if (!job) return std::optional<RecallStatus>();
    status.job = *job;
    HSMFS_ASSIGN_OR_RETURN(status.position, JobQueue::QueuePosition(session, *job));
  }
  HSMFS_ASSIGN_OR_RETURN(status.eta, Eta(status.job, status.position));
  return std::optional<RecallStatus>(std::move(status));
}

Result<RecallPreview> Recalls::Preview(const std::vector<Entry>& files) {
  RecallPreview preview;
  std::map<std::string, RecallPlan> plans;
  for (const Entry& e : files) {
    if (e.cached) {
      ++preview.already_online;
      continue;
    }
    RecallPlan& plan = plans[e.backend];
    plan.backend = e.backend;
    ++plan.files;
    plan.bytes += e.size;
    ++plan.volumes[e.volume];
  }
  for (auto& [backend, plan] : plans) {
    HSMFS_ASSIGN_OR_RETURN(plan.timing, Timing(backend));
    plan.eta = RecallEta(plan.timing, plan.files);
    preview.backends.push_back(std::move(plan));
  }
  return preview;
}

Result<RecallBatch> Recalls::Request(const std::vector<Entry>& files,
                                     const catalog::Requester& who) {
  RecallBatch batch;
  {
    // One transaction for the whole batch: the engine sorts it as one.
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    for (const Entry& e : files) {
      if (e.cached) {
        ++batch.already_online;
        continue;
      }
      bool fresh = false;
      HSMFS_ASSIGN_OR_RETURN(
          auto job, JobQueue::EnqueueStage(session, e, who, engine_.clock().WallNanos(), &fresh));
      if (!job) {
        ++batch.already_online;  // recalled since the caller looked
        continue;
      }
      batch.jobs.push_back(job->id);
      batch.created += fresh;
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  if (Stager* stager = engine_.stager(); stager && batch.created > 0) stager->Kick();
  return batch;
}

Result<std::vector<Job>> Recalls::Wait(
    const std::vector<int64_t>& ids, const WaitOptions& options,
    const std::function<void(const std::vector<Job>&)>& progress) {
  catalog::JobFilter filter;
  filter.ids = ids;
  for (;;) {
    std::vector<Job> jobs;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
      HSMFS_ASSIGN_OR_RETURN(jobs, JobQueue::List(session, filter));
    }
    if (progress) progress(jobs);
    const bool active = std::any_of(jobs.begin(), jobs.end(), [](const Job& j) {
      return j.state == JobState::kQueued || j.state == JobState::kRunning;
    });
    if (!active) return jobs;
    HSMFS_RETURN_IF_ERROR(PollRound(engine_.clock(), options));
  }
}

Status Recalls::Release(EntryId id) { return engine_.cache().Release(id); }

// Writes

Result<Entry> Writes::Create(const Entry& dir, std::string_view name, const NewEntry& what) {
  if (!dir.is_dir()) return Status(Code::kNotDirectory, dir.name + ": not a directory");
  HSMFS_RETURN_IF_ERROR(CheckName(engine_.config(), dir.backend, name));
  const std::string path = Join(dir.backend_path, name);
  HSMFS_RETURN_IF_ERROR(CheckWritable(engine_.config(), dir.backend, path));
  const catalog::EntryType type = what.type;
  const int64_t now = engine_.clock().WallNanos();
  Entry e;
  e.parent = dir.id;
  e.name = std::string(name);
  e.type = type;
  e.mode = what.mode & 07777;
  e.uid = what.who.uid;
  e.gid = what.who.gid;
  if (dir.mode & S_ISGID) {
    // As on a local disk: a setgid directory gives its group to what is made
    // in it, and its setgid bit to new directories. (The kernel already took
    // S_ISGID off `mode` of a file made by someone outside that group.)
    if (what.dir_group) {
      e.gid = *what.dir_group;
    } else if (dir.gid >= 0) {
      e.gid = dir.gid;
    } else {
      const BackendConfig* b = engine_.config().FindBackend(dir.backend);
      e.gid = b && b->gid >= 0 ? b->gid : static_cast<int64_t>(::getgid());
    }
    if (type == catalog::EntryType::kDir) e.mode |= S_ISGID;
  }
  e.mtime_ns = now;
  e.ctime_ns = now;
  e.local_mtime = type == catalog::EntryType::kDir;  // the backend's differs by its archive time
  e.backend = dir.backend;
  e.backend_path = path;
  e.state = FileState::kOnline;                  // not on the backend yet
  e.cached = type == catalog::EntryType::kFile;  // its data is the cache copy
  e.on_backend = false;
  e.version = 1;
  e.seen_gen = now;
  e.link_target = what.link_target;
  e.size = what.link_target.size();
  if (type == catalog::EntryType::kFile && !what.incomplete.empty()) {
    e.state = FileState::kFailed;  // in the insert itself: no instant looks complete
    e.error = what.incomplete;
  }
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  auto created = s.Create(e);
  if (!created.ok() && created.status().code() != Code::kAlreadyExists) {
    return AtSite("E-CAT-01", created.status());
  }
  if (!created.ok()) return created;
  HSMFS_RETURN_IF_ERROR(s.DirChanged(dir.id, now));
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  return created;
}

Status Writes::BeginModify(EntryId id, bool cached, std::string_view incomplete) {
  std::vector<int64_t> superseded;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_ASSIGN_OR_RETURN(const Entry now, s.BeginModify(id, cached, engine_.clock().WallNanos()));
    // hsmctl put marks the files it writes; a directory holds no data to lose.
    if (!incomplete.empty() && !now.is_dir()) {
      HSMFS_RETURN_IF_ERROR(s.MarkIncomplete(id, incomplete));
    }
    HSMFS_ASSIGN_OR_RETURN(superseded, JobQueue::Supersede(s, id, engine_.clock().WallNanos()));
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  if (Archiver* archiver = engine_.archiver()) archiver->Modified(id, superseded);
  return Status::Ok();
}

Result<int> Writes::Open(const Entry& e, bool truncate, bool* modified,
                         std::string_view incomplete) {
  const EntryId id = e.id;
  int fd;
  *modified = false;
  if (!e.cached) {
    // Only when truncating: the new data starts empty.
    HSMFS_ASSIGN_OR_RETURN(fd, engine_.cache().CreateCopy(id));
    if (Status s = BeginModify(id, /*cached=*/true, incomplete); !s.ok()) {
      ::close(fd);
      return s;
    }
    *modified = true;
  } else {
    const auto path = engine_.cache().PathOf(id);
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return NotFoundError("the cached copy of " + e.name + " is gone");
      return AtSite("E-CACHE-01", ErrnoToStatus(errno, "open cached copy " + path.string()));
    }
    if (truncate) {
      if (Status s = BeginModify(id, true, incomplete); !s.ok()) {
        ::close(fd);
        return s;
      }
      if (::ftruncate(fd, 0) != 0) {
        const int err = errno;
        ::close(fd);
        return ErrnoToStatus(err, "truncate " + path.string());
      }
      engine_.cache().Shrunk(id, 0);
      *modified = true;
    }
  }
  engine_.cache().Opened(id);
  engine_.writers().Opened(id, *modified);
  return fd;
}

Result<size_t> Writes::Write(EntryId id, int fd, const char* data, size_t size, uint64_t offset) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, "stat the cached copy");
  HSMFS_RETURN_IF_ERROR(engine_.cache().Grow(id, static_cast<uint64_t>(st.st_size), offset + size,
                                             engine_.config().cache.write_wait));
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return AtSite("E-CACHE-03", ErrnoToStatus(errno, "write to the cache"));
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

bool Writes::CloseWriter(EntryId id, int fd, bool keep) {
  if (!engine_.writers().Closed(id) || !keep) return false;
  // The last writer closed: record the size and start the settle time.
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    RecordBookkeeping("E-BOOK-05", "the size at close of entry " + std::to_string(id),
                      "it shows its last recorded size until it settles (the archive takes "
                      "the size of its cached copy)",
                      engine_.clock(), [&]() -> Status {
                        HSMFS_ASSIGN_OR_RETURN(auto session, engine_.catalog().Acquire());
                        return session.SetLocalAttrs(id, static_cast<uint64_t>(st.st_size),
                                                     MtimeNs(st));
                      });
  }
  engine_.cache().SizeRecorded(id);
  return true;
}

void Writes::Close(EntryId id, int fd, bool keep) {
  if (CloseWriter(id, fd, keep)) Settle(id);
}

void Writes::Settle(EntryId id) { SettleAll({id}); }

void Writes::SettleAll(const std::vector<EntryId>& ids) {
  std::vector<EntryId> due;
  for (EntryId id : ids) {
    // A writer still has it open: its next writes would not make a new
    // version, so archiving now could mark half-written data dual. Its last
    // close settles it.
    if (!engine_.writers().MarkDirty(id)) due.push_back(id);
  }
  if (due.empty()) return;
  if (Archiver* archiver = engine_.archiver()) {
    for (EntryId id : due) archiver->Closed(id);
    return;
  }
  // No engine runs jobs here (hsmctl put): queue the jobs now, on the same
  // path as the archiver; whichever engine runs next archives them. What
  // fails here is archived when the next engine starts (Archiver::Start
  // queues every unarchived file that has no job).
  RecordBookkeeping("E-BOOK-06",
                    "the archive jobs of " + std::to_string(due.size()) + " settled entries",
                    "the next engine that runs jobs archives them when it starts", engine_.clock(),
                    [&]() -> Status {
                      int queued = 0;
                      return QueueArchives(engine_.catalog(), engine_.cache(), engine_.clock(),
                                           engine_.writers(), due, &queued);
                    });
}

void Writes::AddSettle(EntryId id, PendingSettles* pending) {
  const TimePoint now = engine_.clock().Now();
  if (pending->ids.empty()) pending->since = now;
  pending->ids.push_back(id);
  if (pending->ids.size() < 64 && now - pending->since < std::chrono::seconds(1)) return;
  SettleAll(pending->ids);
  pending->ids.clear();
}

Status Writes::IngestFile(const Entry& dir, const stdfs::path& local, const std::string& name,
                          const IngestOptions& options, IngestTotals* totals,
                          PendingSettles* settle) {
  HSMFS_RETURN_IF_ERROR(catalog::CheckEntryName(name));
  const int in = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, local.string());
  struct stat st;
  if (::fstat(in, &st) != 0) {
    const int err = errno;
    ::close(in);
    return ErrnoToStatus(err, local.string());
  }
  Namespace names(engine_);
  if (auto old = names.Lookup(dir.id, name); old.ok() && IncompletePutAbandoned(*old)) {
    spdlog::info("{}: dropping what an unfinished hsmctl put left", old->display());
    if (Status s = DiscardIncompletePut(engine_, *old); !s.ok()) {
      ::close(in);
      return s;
    }
  }
  const std::string& mark = options.incomplete_error;
  NewEntry what;
  what.mode = st.st_mode & 07777;
  what.who = options.who;
  what.incomplete = mark;
  int fd = -1;
  EntryId id = 0;
  auto created = Create(dir, name, what);
  if (created.ok()) {
    id = created->id;
    auto copy = engine_.cache().CreateCopy(id);
    if (!copy.ok()) {
      ::close(in);
      RecordBookkeeping("E-BOOK-07", "the removal of " + created->display() + " (its copy failed)",
                        "the name stays, empty: remove it", engine_.clock(), [&]() -> Status {
                          HSMFS_ASSIGN_OR_RETURN(auto session, engine_.catalog().Acquire());
                          return session.Remove(id);
                        });
      return AtSite("E-CACHE-01", copy.status());
    }
    fd = *copy;
    engine_.cache().Opened(id);
    engine_.writers().Opened(id, /*dirty=*/true);
  } else if (created.status().code() == Code::kAlreadyExists && options.force) {
    auto existing = names.Lookup(dir.id, name);
    Status s = existing.status();
    if (s.ok() && existing->is_dir()) s = Status(Code::kIsDirectory, name + ": is a directory");
    if (s.ok() && existing->is_symlink()) {
      s = InvalidArgumentError(name + ": is a symbolic link");
    }
    if (s.ok()) s = CheckWritable(engine_.config(), existing->backend, existing->backend_path);
    bool modified = false;
    Result<int> opened = s;
    if (s.ok()) opened = Open(*existing, /*truncate=*/true, &modified, mark);
    if (!opened.ok()) {
      ::close(in);
      return opened.status();
    }
    id = existing->id;
    fd = *opened;
  } else {
    ::close(in);
    if (created.status().code() == Code::kAlreadyExists) {
      return AlreadyExistsError(created.status().message() + " (use --force to replace it)");
    }
    return created.status();
  }
  std::vector<char> buf(1 << 20);
  uint64_t offset = 0;
  Status s;
  for (;;) {
    if (options.interrupted && options.interrupted->load()) {
      s = Interrupted();
      break;
    }
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoToStatus(errno, "read " + local.string());
      break;
    }
    if (n == 0) break;
    auto written = Write(id, fd, buf.data(), static_cast<size_t>(n), offset);
    if (!written.ok()) {
      s = written.status();
      break;
    }
    offset += *written;
    totals->bytes += *written;
    if (options.progress) options.progress(totals->files, totals->bytes);
  }
  ::close(in);
  // Keep the local mtime, as cp -p and dm_iput do; the close records it.
  if (s.ok()) {
    const struct timespec times[2] = {{0, UTIME_OMIT}, st.st_mtim};
    if (::futimens(fd, times) != 0) s = ErrnoToStatus(errno, "set the mtime of the copy");
  }
  if (s.ok() && options.interrupted && options.interrupted->load()) s = Interrupted();
  if (s.ok()) {
    // Complete: from here on it is an ordinary file that settles on close.
    auto session = engine_.catalog().Acquire();
    auto cleared =
        session.ok() ? session->ClearIncomplete(id, mark) : Result<bool>(session.status());
    if (!cleared.ok()) {
      s = cleared.status();
    } else if (!*cleared) {
      s = AbortedError(local.string() + ": the archive copy was changed while it was copied in");
    }
  }
  // A failed copy does not settle: it is dropped below (or a writer through
  // the mount took it over, and its own last close settles it).
  if (CloseWriter(id, fd, /*keep=*/s.ok())) AddSettle(id, settle);
  ::close(fd);
  engine_.cache().Closed(id);
  if (!s.ok()) {
    // Drop what was copied so far; only a copy still carrying our mark.
    auto now = names.Lookup(dir.id, name);
    if (now.ok() && now->id == id && now->error == mark) {
      if (Status d = DiscardIncompletePut(engine_, *now); !d.ok()) {
        spdlog::warn("{}: cannot drop the incomplete copy: {}", now->display(), d.message());
      }
    }
    return s.Annotate(local.string());
  }
  ++totals->files;
  totals->entries.push_back(id);
  if (options.progress) options.progress(totals->files, totals->bytes);
  return s;
}

Status Writes::IngestTree(const Entry& dir, const stdfs::path& local, const IngestOptions& options,
                          IngestTotals* totals, PendingSettles* settle) {
  if (options.interrupted && options.interrupted->load()) return Interrupted();
  const std::string name = local.filename().string();
  HSMFS_RETURN_IF_ERROR(catalog::CheckEntryName(name));
  struct stat st;
  if (::stat(local.c_str(), &st) != 0) return ErrnoToStatus(errno, local.string());
  if (!S_ISDIR(st.st_mode)) return IngestFile(dir, local, name, options, totals, settle);
  NewEntry what;
  what.type = catalog::EntryType::kDir;
  what.mode = st.st_mode & 07777;
  what.who = options.who;
  auto made = Create(dir, name, what);
  if (!made.ok() && made.status().code() != Code::kAlreadyExists) return made.status();
  if (made.ok()) AddSettle(made->id, settle);  // the archiver makes it on the backend
  HSMFS_ASSIGN_OR_RETURN(Entry sub, Namespace(engine_).Lookup(dir.id, name));
  if (!sub.is_dir()) return Status(Code::kNotDirectory, name + " exists and is not a directory");
  if (made.ok()) totals->entries.push_back(sub.id);
  std::error_code ec;
  for (const auto& child : stdfs::directory_iterator(local, ec)) {
    HSMFS_RETURN_IF_ERROR(IngestTree(sub, child.path(), options, totals, settle));
  }
  if (ec) return ErrnoToStatus(ec.value(), local.string());
  return Status::Ok();
}

Status Writes::Ingest(const std::vector<stdfs::path>& sources, const Entry& dest,
                      const IngestOptions& options, IngestTotals* totals) {
  if (options.incomplete_error.empty()) {
    return InvalidArgumentError("Ingest needs IngestOptions::incomplete_error");
  }
  if (!dest.is_dir()) return Status(Code::kNotDirectory, dest.display() + ": not a directory");
  // Everything copied in completely settles, also when a later file fails.
  PendingSettles settle;
  Status s;
  for (const stdfs::path& source : sources) {
    s = IngestTree(dest, source, options, totals, &settle);
    if (!s.ok()) break;
  }
  SettleAll(settle.ids);
  return s;
}

Result<ArchiveWaitResult> Writes::WaitArchived(
    const std::vector<EntryId>& entries, const WaitOptions& options,
    const std::function<void(int64_t, int64_t)>& progress) {
  ArchiveWaitResult result;
  result.total = static_cast<int64_t>(entries.size());
  std::vector<EntryId> pending = entries;
  for (;;) {
    std::vector<EntryId> still;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
      for (EntryId id : pending) {
        auto e = session.Get(id);
        if (!e.ok()) {
          if (e.status().code() != Code::kNotFound) return e.status();
          result.failed.emplace_back("entry " + std::to_string(id),
                                     "removed before it was archived");
          continue;
        }
        switch (e->state) {
          case FileState::kDual:
          case FileState::kOffline:
            break;
          case FileState::kFailed:
            result.failed.emplace_back(e->display(), e->error);
            break;
          default:
            still.push_back(id);
        }
      }
    }
    pending = std::move(still);
    if (progress) progress(result.total - static_cast<int64_t>(pending.size()), result.total);
    if (pending.empty()) return result;
    HSMFS_RETURN_IF_ERROR(PollRound(engine_.clock(), options));
  }
}

// Jobs

Result<std::vector<Job>> Jobs::List(const catalog::JobFilter& filter) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return JobQueue::List(session, filter);
}

Result<std::vector<Job>> Jobs::Recent(int finished) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  catalog::JobFilter active;
  active.states = {JobState::kQueued, JobState::kRunning};
  HSMFS_ASSIGN_OR_RETURN(std::vector<Job> jobs, JobQueue::List(session, active));
  catalog::JobFilter ended;
  ended.states = {JobState::kDone, JobState::kFailed, JobState::kCancelled};
  ended.limit = finished;
  HSMFS_ASSIGN_OR_RETURN(std::vector<Job> done, JobQueue::List(session, ended));
  jobs.insert(jobs.end(), done.begin(), done.end());
  return jobs;
}

Result<bool> Jobs::Cancel(int64_t id) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return JobQueue::Cancel(session, id, engine_.clock().WallNanos());
}

Result<bool> Jobs::Retry(int64_t id) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return JobQueue::Retry(session, id, engine_.clock().WallNanos());
}

Result<std::vector<int64_t>> Jobs::Failed() {
  catalog::JobFilter filter;
  filter.states = {JobState::kFailed};
  HSMFS_ASSIGN_OR_RETURN(std::vector<Job> jobs, List(filter));
  std::vector<int64_t> ids;
  for (const Job& j : jobs) ids.push_back(j.id);
  return ids;
}

Result<std::vector<catalog::JobCount>> Jobs::Summary() {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  return catalog::CountActiveJobs(session);
}

std::string Jobs::Runner() const { return EngineLockHolder(engine_.config().catalog.path); }

// Admin

Result<FsckReport> Admin::Fsck(const FsckOptions& options) {
  return ::hsmfs::fs::Fsck(engine_, options);
}

Result<std::string> Admin::InitRoot(const std::string& backend, bool force) {
  return engine_.root_guard().InitRoot(backend, force);
}

bool Admin::HasBackend(std::string_view name) const { return engine_.backend(name) != nullptr; }

bool Admin::ShutdownWithin(Duration grace) { return engine_.ShutdownWithin(grace); }

// Service

Result<std::unique_ptr<Service>> Service::Open(const Config& config, Clock& clock,
                                               EngineOptions options) {
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                         Engine::Open(config, clock, std::move(options)));
  return std::unique_ptr<Service>(new Service(std::move(engine)));
}

Service::Service(Engine& engine)
    : engine_(engine),
      names_(engine),
      recalls_(engine),
      writes_(engine),
      jobs_(engine),
      admin_(engine) {}

Service::Service(std::unique_ptr<Engine> owned)
    : owned_(std::move(owned)),
      engine_(*owned_),
      names_(engine_),
      recalls_(engine_),
      writes_(engine_),
      jobs_(engine_),
      admin_(engine_) {}

Service::~Service() = default;

}  // namespace hsmfs::fs
