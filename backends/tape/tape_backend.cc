#include "backends/tape/tape_backend.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "backends/tape/st_drive.h"
#include "backends/tape/tape_format.h"
#include "common/checksum.h"
#include "common/logging.h"
#include "common/thread.h"

namespace hsmfs::tape {
namespace {

using backends::ObjectInfo;
using backends::ObjectPath;
using backends::ObjectType;
using backends::Residency;

constexpr std::string_view kByTape = ".by-tape";
constexpr size_t kListBatch = 1000;

// The tree as the catalog described it at one moment. Immutable once built.
struct Tree {
  struct Member {
    size_t target = 0;  // index into `targets`
    TargetFile file;
  };
  struct Dir {
    int64_t mtime_ns = 0;
    uint32_t mode = 0755;
    // name -> member index, or kDirChild for a subdirectory.
    std::map<std::string, size_t> children;
  };
  static constexpr size_t kDirChild = static_cast<size_t>(-1);

  std::vector<Target> targets;
  std::vector<Member> members;
  std::unordered_map<std::string, size_t> files;  // path -> member index
  std::unordered_map<std::string, Dir> dirs;      // path -> directory
  // Tree path (not .by-tape) -> every member placed there, shown or
  // shadowed by a later one, in unit order: what a rename or remove acts on.
  std::unordered_map<std::string, std::vector<size_t>> placed;

  Dir& EnsureDir(const std::string& path, int64_t mtime_ns) {
    auto [it, inserted] = dirs.try_emplace(path);
    it->second.mtime_ns = std::max(it->second.mtime_ns, mtime_ns);
    if (!path.empty()) {
      Dir& parent = EnsureDir(backends::ParentObjectPath(path), mtime_ns);
      parent.children.emplace(path.substr(path.rfind('/') + 1), kDirChild);
    }
    return dirs[path];
  }

  // Adds member `m` as `path`; a later unit of the same path wins (it is the
  // newer copy). A name taken by a directory keeps the directory.
  bool AddFile(const std::string& path, size_t m, int64_t mtime_ns) {
    if (path.empty() || !backends::ValidateObjectPath(path).ok()) return false;
    if (dirs.count(path)) return false;
    Dir& parent = EnsureDir(backends::ParentObjectPath(path), mtime_ns);
    const std::string name = path.substr(path.rfind('/') + 1);
    auto it = parent.children.find(name);
    if (it != parent.children.end() && it->second == kDirChild) return false;
    parent.children[name] = m;
    files[path] = m;
    return true;
  }
};

// "a/./b//c/" -> "a/b/c"; ".." parts make the path invalid (returned as is).
std::string NormaliseRel(std::string_view p) {
  std::string out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  return out;
}

bool Listed(TargetState s) { return s == TargetState::kArchived || s == TargetState::kConfirmed; }

int64_t MemberBlock(const Target& t, const TargetFile& f) {
  return t.start_block + (t.block_size ? f.data_offset / t.block_size : 0);
}

// Opens a drive holding a given tape; `held` are the device indexes the pool
// has open (st drives only).
struct OpenedDrive {
  std::unique_ptr<TapeDrive> drive;
  int device = -1;
};
using Opener =
    std::function<Result<OpenedDrive>(const std::string& tape, const std::set<int>& held)>;

// Open drive handles, one per tape, at most `max` at once. A handle is used by
// one recall at a time (a tape has one head).
class DrivePool {
 public:
  DrivePool(Opener opener, int max, Duration idle_close, Clock& clock)
      : opener_(std::move(opener)), max_(max), idle_close_(idle_close), clock_(clock) {
    reaper_ = StartThread("tape-drives", [this] { ReapLoop(); });
  }
  ~DrivePool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    reaper_.join();
  }

  class Lease {
   public:
    Lease(DrivePool* pool, std::string tape, TapeDrive* drive)
        : pool_(pool), tape_(std::move(tape)), drive_(drive) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), tape_(std::move(o.tape_)), drive_(o.drive_) {
      o.pool_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_) pool_->Release(tape_, discard_);
    }
    TapeDrive& drive() { return *drive_; }
    // Closes the handle on release (the drive misbehaved).
    void Discard() { discard_ = true; }

   private:
    DrivePool* pool_;
    std::string tape_;
    TapeDrive* drive_;
    bool discard_ = false;
  };

  Result<Lease> Acquire(const std::string& tape, const CancelToken& cancel) {
    std::unique_lock<std::mutex> l(mu_);
    int busy_waits = 0;
    while (true) {
      if (cancel.cancelled()) return CancelledError("recall cancelled waiting for a drive");
      if (auto it = handles_.find(tape); it != handles_.end()) {
        if (!it->second.busy) {
          it->second.busy = true;
          return Lease(this, tape, it->second.drive.get());
        }
        Wait(l);
        continue;
      }
      if (opening_.count(tape)) {
        Wait(l);
        continue;
      }
      if (static_cast<int>(handles_.size() + opening_.size() + closing_.size()) >= max_) {
        // Every drive is ours: give up the one idle longest, if any.
        auto victim = handles_.end();
        for (auto it = handles_.begin(); it != handles_.end(); ++it) {
          if (!it->second.busy &&
              (victim == handles_.end() || it->second.idle_since < victim->second.idle_since)) {
            victim = it;
          }
        }
        if (victim == handles_.end()) {
          Wait(l);
          continue;
        }
        CloseLocked(l, victim);
        continue;
      }
      std::set<int> held(closing_.begin(), closing_.end());
      for (const auto& [name, h] : handles_) held.insert(h.device);
      opening_.insert(tape);
      l.unlock();
      Result<OpenedDrive> opened = opener_(tape, held);
      l.lock();
      opening_.erase(tape);
      cv_.notify_all();
      if (!opened.ok()) {
        // A drive held by another process (hsmtape): wait a little, then let
        // the engine retry with back-off.
        if (opened.status().code() == Code::kBusy && ++busy_waits < 50) {
          Wait(l);
          continue;
        }
        return opened.status();
      }
      Handle& h = handles_[tape];
      h.drive = std::move(opened->drive);
      h.device = opened->device;
      h.busy = true;
      return Lease(this, tape, h.drive.get());
    }
  }

 private:
  struct Handle {
    std::unique_ptr<TapeDrive> drive;
    int device = -1;
    bool busy = false;
    TimePoint idle_since;
  };

  // Closes a handle (which unloads or releases its drive, slowly on a
  // library) with mu_ released. Until the close ends its drive counts as
  // held, so that no other open picks it while it is still in use.
  // REQUIRES: mu_ held through `l`.
  void CloseLocked(std::unique_lock<std::mutex>& l, std::map<std::string, Handle>::iterator it) {
    std::unique_ptr<TapeDrive> closing = std::move(it->second.drive);
    const int device = it->second.device;
    handles_.erase(it);
    closing_.insert(device);
    l.unlock();
    closing.reset();
    l.lock();
    closing_.erase(closing_.find(device));
    cv_.notify_all();
  }

  void Wait(std::unique_lock<std::mutex>& l) {
    clock_.WaitUntil(cv_, l, clock_.Now() + std::chrono::milliseconds(100));
  }

  void Release(const std::string& tape, bool discard) {
    {
      std::unique_lock<std::mutex> l(mu_);
      auto it = handles_.find(tape);
      if (it == handles_.end()) return;
      it->second.busy = false;
      it->second.idle_since = clock_.Now();
      if (discard) CloseLocked(l, it);
    }
    cv_.notify_all();
  }

  void ReapLoop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      clock_.WaitUntil(cv_, l,
                       clock_.Now() + std::min<Duration>(idle_close_ / 4 + Duration(1),
                                                         std::chrono::milliseconds(250)));
      const TimePoint now = clock_.Now();
      for (auto it = handles_.begin(); it != handles_.end();) {
        if (!it->second.busy && (stop_ || now - it->second.idle_since >= idle_close_)) {
          CloseLocked(l, it);
          it = handles_.begin();  // the map may have changed while unlocked
        } else {
          ++it;
        }
      }
    }
  }

  const Opener opener_;
  const int max_;
  const Duration idle_close_;
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Handle> handles_;  // GUARDED_BY(mu_)
  std::set<std::string> opening_;          // GUARDED_BY(mu_)
  std::multiset<int> closing_;             // GUARDED_BY(mu_): devices being closed
  bool stop_ = false;                      // GUARDED_BY(mu_)
  std::thread reaper_;
};

// Writes what ReadMember passes into a file descriptor.
class FdSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status Write(std::span<const std::byte> data) {
    const std::byte* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoToStatus(errno, "writing the recalled data");
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

 private:
  int fd_;
};

// Reads a file for WriteUnit.
class FdReader {
 public:
  explicit FdReader(int fd) : fd_(fd) {}
  ~FdReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdReader(const FdReader&) = delete;
  FdReader& operator=(const FdReader&) = delete;
  Result<size_t> Read(std::span<std::byte> buf) {
    for (;;) {
      const ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoToStatus(errno, "reading a file to archive");
    }
  }

 private:
  int fd_;
};

// One Put waiting for its unit.
struct PendingPut {
  std::filesystem::path src;
  ObjectPath path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  std::string md5;          // hex, when the caller's checksum is md5
  std::string link_target;  // a symlink member (no data, `src` unused)
  const CancelToken* cancel = &CancelToken::None();
  // Set under the writer mutex.
  bool taken = false;  // its unit is being written: it can no longer leave
  bool done = false;
  Result<ObjectInfo> result = Status(Code::kInternal, "not written");
};
using PendingList = std::vector<std::shared_ptr<PendingPut>>;

bool UnderByTape(std::string_view path) {
  return path == kByTape ||
         (path.size() > kByTape.size() && path.substr(0, kByTape.size()) == kByTape &&
          path[kByTape.size()] == '/');
}

// `path` is `dir` or below it.
bool Within(std::string_view path, std::string_view dir) {
  if (dir.empty()) return true;
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

// The deepest directory holding every path.
std::string CommonDir(const PendingList& files) {
  std::string common = backends::ParentObjectPath(files.front()->path);
  for (const auto& f : files) {
    while (!Within(f->path, common) || f->path == common) {
      common = backends::ParentObjectPath(common);
    }
  }
  return common;
}

// strip_prefix + "/" + rel, as a source path (absolute).
std::string SourcePath(std::string prefix, const std::string& rel) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix.empty()) prefix = "/";
  if (rel.empty()) return prefix;
  return prefix == "/" ? "/" + rel : prefix + "/" + rel;
}

ObjectInfo MemberInfo(const Target& tg, const TargetFile& f, std::string name) {
  ObjectInfo info;
  info.name = std::move(name);
  info.type = ObjectType::kFile;
  info.mode = f.mode & 07777;
  info.size = f.size;
  info.mtime_ns = f.mtime_ns;
  if (!f.link_target.empty()) {
    // Its target is in the catalog: nothing on tape is read for it.
    info.type = ObjectType::kSymlink;
    info.mode = 0777;
    info.size = f.link_target.size();
    info.link_target = f.link_target;
    info.location = "tape " + tg.tape + " file " + std::to_string(tg.file_number) + " (symlink)";
    return info;
  }
  if (!f.md5.empty()) info.checksum = "md5:" + f.md5;
  info.position = MemberBlock(tg, f);
  info.location = "tape " + tg.tape + " file " + std::to_string(tg.file_number) + " block " +
                  std::to_string(info.position);
  info.volume = tg.tape;
  info.residency = Residency::kTape;
  return info;
}

// Tapes a unit is tried on before its Puts fail (each full one moves it on).
constexpr int kMaxTapesPerUnit = 4;

}  // namespace

struct TapeBackend::Impl {
  TapeBackendOptions options;
  Clock& clock;
  std::unique_ptr<VirtualLibrary> library;
  std::unique_ptr<DrivePool> pool;

  std::mutex mu;                     // Acquire after wmu.
  std::shared_ptr<const Tree> tree;  // GUARDED_BY(mu)
  TimePoint built;                   // GUARDED_BY(mu)

  // Writes: Puts join `open`; the writer thread takes a unit from `closed`
  // (closed at unit_size) or `open` once quiet for unit_quiet.
  std::mutex wmu;  // Acquire before mu.
  std::condition_variable wcv;
  PendingList open;                             // GUARDED_BY(wmu)
  uint64_t open_bytes = 0;                      // GUARDED_BY(wmu)
  TimePoint last_join;                          // GUARDED_BY(wmu)
  std::deque<PendingList> closed;               // GUARDED_BY(wmu)
  bool stop = false;                            // GUARDED_BY(wmu)
  std::thread writer;                           // started by the first Put
  std::map<std::string, uint32_t> block_sizes;  // tape -> its label's; writer thread only

  Impl(TapeBackendOptions o, Clock& c) : options(std::move(o)), clock(c) {}

  // Where a unit's files go in the tree.
  std::string UnitRoot(const Target& t) const {
    const std::string& prefix = options.strip_prefix;
    std::string_view path = t.path;
    if (prefix != "/" &&
        (path == prefix || (path.substr(0, prefix.size()) == prefix &&
                            path.size() > prefix.size() && path[prefix.size()] == '/'))) {
      path.remove_prefix(prefix.size());
    }
    // A unit outside strip_prefix keeps its whole path: hiding it would lose it.
    return NormaliseRel(path);
  }

  Result<std::unique_ptr<TapeTables>> Db() {
    if (!options.store) return FailedPreconditionError("the tape backend has no tape store");
    return options.store->Open();
  }

  // The next Snapshot reads the catalog again.
  void Invalidate() {
    std::lock_guard<std::mutex> l(mu);
    tree.reset();
  }

  Result<std::shared_ptr<const Tree>> Snapshot() {
    std::lock_guard<std::mutex> l(mu);
    if (tree && clock.Now() - built < options.refresh) return tree;
    HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTables> tables, Db());
    TapeTables& s = *tables;
    auto t = std::make_shared<Tree>();
    t->EnsureDir("", 0);
    t->EnsureDir(std::string(kByTape), 0);
    HSMFS_ASSIGN_OR_RETURN(std::vector<Tape> tapes, s.Tapes());
    for (const Tape& tape : tapes) {
      t->EnsureDir(std::string(kByTape) + "/" + tape.name, tape.created_ns);
    }
    // Directories made through the mount first: a file never hides one.
    HSMFS_ASSIGN_OR_RETURN(std::vector<TapeDir> made, s.Dirs());
    for (const TapeDir& d : made) {
      const std::string path = NormaliseRel(d.path);
      if (path.empty() || UnderByTape(path) || !backends::ValidateObjectPath(path).ok()) continue;
      t->EnsureDir(path, d.mtime_ns).mode = d.mode & 07777;
    }
    HSMFS_ASSIGN_OR_RETURN(std::vector<Target> targets, s.Targets("", std::nullopt));
    for (Target& target : targets) {
      if (!Listed(target.state) || target.tape.empty()) continue;
      HSMFS_ASSIGN_OR_RETURN(std::vector<TargetFile> files, s.Files(target.id));
      const size_t ti = t->targets.size();
      t->targets.push_back(std::move(target));
      const Target& tg = t->targets.back();
      const std::string root = UnitRoot(tg);
      const std::string by_tape =
          std::string(kByTape) + "/" + tg.tape + "/file" + std::to_string(tg.file_number);
      t->EnsureDir(by_tape, tg.archived_ns);
      if (!root.empty()) t->EnsureDir(root, tg.archived_ns);
      for (TargetFile& f : files) {
        if (f.data_offset < 0) continue;
        const size_t mi = t->members.size();
        const std::string rel = NormaliseRel(f.rel_path);
        // .by-tape shows what is on tape: renames and removals do not change it.
        const std::string path =
            f.tree_path.empty() ? backends::JoinObjectPath(root, rel) : NormaliseRel(f.tree_path);
        const bool shown = !f.removed;
        t->members.push_back({ti, std::move(f)});
        if (shown && !UnderByTape(path)) {
          t->AddFile(path, mi, tg.archived_ns);
          t->placed[path].push_back(mi);
        }
        t->AddFile(backends::JoinObjectPath(by_tape, rel), mi, tg.archived_ns);
      }
    }
    tree = std::move(t);
    built = clock.Now();
    return tree;
  }

  static ObjectInfo FileInfo(const Tree& t, const std::string& name, const Tree::Member& m) {
    return MemberInfo(t.targets[m.target], m.file, name);
  }

  static ObjectInfo DirInfo(const std::string& name, const Tree::Dir& d) {
    ObjectInfo info;
    info.name = name;
    info.type = ObjectType::kDir;
    info.mode = d.mode;
    info.mtime_ns = d.mtime_ns;
    return info;
  }

  Result<OpenedDrive> OpenLibraryTape(const std::string& tape) {
    HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<LibraryDrive> d, library->MountTape(tape));
    OpenedDrive out;
    out.device = d->drive_index();
    out.drive = std::move(d);
    return out;
  }

  // st drives have no robot: the tape must be in one of them; its label says which.
  Result<OpenedDrive> OpenStTape(const std::string& tape, const std::set<int>& held) {
    std::string seen;
    for (int i = 0; i < static_cast<int>(options.devices.size()); ++i) {
      if (held.count(i)) continue;
      const std::string node = options.devices[static_cast<size_t>(i)].path.string();
      auto d = StDrive::Open(node, StDrive::Options{});
      if (!d.ok()) {
        seen += " " + node + ": " + d.status().message() + ";";
        continue;
      }
      auto label = ReadLabel(**d);
      if (label.ok() && label->name == tape) {
        OpenedDrive out;
        out.device = i;
        out.drive = std::move(d).value();
        return out;
      }
      seen += " " + node + ": " + (label.ok() ? label->name : label.status().message()) + ";";
    }
    return Status(Code::kUnavailable,
                  "tape " + tape + " is not in any free drive (load it);" + seen);
  }

  // ---- writes ----

  void StartWriterLocked() {
    if (writer.joinable()) return;
    writer = StartThread("tape-writer", [this] { WriterLoop(); });
  }

  void StopWriter() {
    {
      std::lock_guard<std::mutex> l(wmu);
      stop = true;
    }
    wcv.notify_all();
    if (writer.joinable()) writer.join();
  }

  void WriterLoop() {
    std::unique_lock<std::mutex> l(wmu);
    while (!stop) {
      PendingList unit;
      if (!closed.empty()) {
        unit = std::move(closed.front());
        closed.pop_front();
      } else if (!open.empty() && clock.Now() - last_join >= options.unit_quiet) {
        unit.swap(open);
        open_bytes = 0;
      } else {
        const TimePoint deadline =
            open.empty() ? clock.Now() + std::chrono::seconds(1) : last_join + options.unit_quiet;
        clock.WaitUntil(wcv, l, deadline);
        continue;
      }
      if (unit.empty()) continue;
      for (auto& p : unit) p->taken = true;
      l.unlock();
      WriteBatch(unit);
      l.lock();
      for (auto& p : unit) p->done = true;
      wcv.notify_all();
    }
    // Shutting down: nothing waiting is written.
    closed.push_back(std::move(open));
    for (auto& list : closed) {
      for (auto& p : list) {
        p->result = UnavailableError("hsmfs is shutting down");
        p->done = true;
      }
    }
    open.clear();
    closed.clear();
    wcv.notify_all();
  }

  static void FailAll(const PendingList& unit, const Status& st) {
    for (const auto& p : unit) p->result = st;
  }

  // Writes `unit` to the active tape (moving on to the next open tape when it
  // fills) and sets every member's result.
  void WriteBatch(PendingList unit) {
    for (int tapes = 0; !unit.empty();) {
      auto tables = Db();
      if (!tables.ok()) return FailAll(unit, tables.status().Annotate("writing a unit to tape"));
      TapeTables& s = **tables;
      auto active = s.ActiveTape();
      if (!active.ok()) return FailAll(unit, active.status());
      if (!*active) {
        // Unavailable, not FailedPrecondition: the engine retries with back-off
        // while an admin opens a tape, and the files stay safe in the cache.
        return FailAll(unit, UnavailableError("no active tape to archive writes to: hsmtape "
                                              "open_tape NAME --activate (or activate_tape NAME)"));
      }
      const std::string tape = (*active)->name;
      Status done = (*active)->full ? ResourceExhaustedError("tape " + tape + " is full")
                                    : WriteOn(s, tape, unit);
      if (done.ok()) break;
      if (done.code() != Code::kResourceExhausted) return FailAll(unit, done);
      // Full: the partial unit did not count; the next open tape takes it.
      if (++tapes >= kMaxTapesPerUnit) return FailAll(unit, UnavailableError(done.message()));
      if (Status next = ActivateNextTape(s, tape); !next.ok()) return FailAll(unit, next);
      spdlog::warn("tape {} is full; the unit of {} files goes to the next open tape", tape,
                   unit.size());
    }
  }

  // The first open tape after `full` (not closed, not full) becomes active.
  Status ActivateNextTape(TapeTables& s, const std::string& full) {
    HSMFS_ASSIGN_OR_RETURN(std::vector<Tape> tapes, s.Tapes());
    for (const Tape& t : tapes) {
      if (t.name == full || t.closed || t.full) continue;
      HSMFS_RETURN_IF_ERROR(s.ActivateTape(t.name, clock.WallNanos()));
      spdlog::info("tape {} is full: tape {} is now active", full, t.name);
      return Status::Ok();
    }
    return UnavailableError("tape " + full +
                            " is full and no other tape is open: hsmtape open_tape NAME "
                            "--activate");
  }

  // The block size of `tape` (from its label, read once), checking that the
  // drive holds that tape.
  Result<uint32_t> BlockSizeOf(TapeDrive& drive, const std::string& tape) {
    if (auto it = block_sizes.find(tape); it != block_sizes.end()) return it->second;
    HSMFS_ASSIGN_OR_RETURN(TapeLabel label, ReadLabel(drive));
    if (label.name != tape) {
      return FailedPreconditionError("the drive for tape " + tape + " holds " + label.name);
    }
    block_sizes[tape] = label.block_size;
    return label.block_size;
  }

  // Writes, records and verifies `unit` on `tape`, setting each member's
  // result. A member whose data changed since its Put fails alone and leaves
  // `unit` (the rest is written again); members read back damaged fail alone
  // and are hidden (the others still succeed).
  // kResourceExhausted: the tape is full (marked so), nothing recorded.
  Status WriteOn(TapeTables& s, const std::string& tape, PendingList& unit) {
    auto lease = pool->Acquire(tape, CancelToken::None());
    if (!lease.ok()) {
      // A drive hsmtape holds for a long archive: the engine tries again later
      // (it would take kBusy as final).
      if (lease.status().code() == Code::kBusy) {
        return UnavailableError("writing to tape " + tape + ": " + lease.status().message());
      }
      return lease.status().Annotate("writing to tape " + tape);
    }
    TapeDrive& drive = lease->drive();
    auto bs = BlockSizeOf(drive, tape);
    if (!bs.ok()) {
      lease->Discard();
      return bs.status();
    }
    while (!unit.empty()) {
      // Holding the drive, nobody else is writing this tape: a batch still
      // `writing` on it was cut off by a crash (its files are still queued in
      // the mount, which puts them again), and its start is the tape's end.
      HSMFS_ASSIGN_OR_RETURN(int stale, s.DropUnfinishedBatches(tape));
      if (stale > 0) spdlog::info("dropped {} unfinished batch unit(s) on tape {}", stale, tape);
      HSMFS_ASSIGN_OR_RETURN(Tape t, s.GetTape(tape));
      if (t.full) return ResourceExhaustedError("tape " + tape + " is full");

      const std::string common = CommonDir(unit);
      Target target;
      target.kind = "batch";
      target.host = "batch:" + tape + ":" + std::to_string(t.next_file);
      target.path = SourcePath(options.strip_prefix, common);
      target.tape = tape;
      target.file_number = t.next_file;
      target.start_block = t.next_block;
      target.block_size = *bs;
      std::vector<TargetFile> files;
      for (const auto& p : unit) {
        TargetFile f;
        f.rel_path = common.empty() ? p->path : p->path.substr(common.size() + 1);
        f.size = p->size;
        f.mtime_ns = p->mtime_ns;
        f.mode = p->mode;
        f.md5 = p->md5;
        f.link_target = p->link_target;
        files.push_back(std::move(f));
      }
      HSMFS_ASSIGN_OR_RETURN(target.id, s.BeginBatch(target, files, clock.WallNanos()));
      HSMFS_ASSIGN_OR_RETURN(files, s.Files(target.id));

      size_t opened = 0;
      std::unique_ptr<FdReader> reader;
      auto open_member = [&](size_t i) -> Result<ChunkReader> {
        opened = i;
        reader.reset();
        const int fd = ::open(unit[i]->src.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return ErrnoToStatus(errno, "opening " + unit[i]->src.string());
        reader = std::make_unique<FdReader>(fd);
        FdReader* r = reader.get();
        return ChunkReader([r](std::span<std::byte> buf) { return r->Read(buf); });
      };
      const auto started = std::chrono::steady_clock::now();
      auto written = WriteUnit(drive, target, files, open_member, CancelToken::None(), nullptr);
      reader.reset();
      if (!written.ok()) {
        HSMFS_RETURN_IF_ERROR(s.DropBatch(target.id));
        const Code code = written.status().code();
        if (code == Code::kResourceExhausted) {
          if (t.next_file <= 1) {
            // It fits on no tape of this size: marking tapes full would not help.
            uint64_t bytes = 0;
            for (const auto& p : unit) bytes += p->size;
            return FailedPreconditionError(
                "a unit of " + std::to_string(unit.size()) + " files, " + std::to_string(bytes) +
                " bytes, does not fit on the empty tape " + tape + ": lower unit_size");
          }
          HSMFS_RETURN_IF_ERROR(s.MarkFull(tape));
          return written.status();
        }
        if ((code == Code::kDataLoss || code == Code::kNotFound) && opened < unit.size()) {
          // That member changed (or vanished) since its Put: it fails alone
          // (its new version has its own job); the rest are written again.
          unit[opened]->result = written.status().Annotate("archiving " + unit[opened]->path);
          unit.erase(unit.begin() + static_cast<ptrdiff_t>(opened));
          continue;
        }
        lease->Discard();
        return written.status().Annotate("writing a unit to tape " + tape);
      }
      {
        HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTransaction> tx, s.Begin());
        HSMFS_RETURN_IF_ERROR(s.FinishWrite(target.id, written->offsets, written->tar_bytes,
                                            written->next_file, written->next_block,
                                            clock.WallNanos(), written->md5));
        HSMFS_RETURN_IF_ERROR(tx->Commit());
      }
      target.tar_bytes = written->tar_bytes;
      for (size_t i = 0; i < files.size(); ++i) {
        files[i].data_offset = written->offsets[i];
        files[i].md5 = written->md5[i];
      }
      // Verify: the whole unit read back in one pass, every md5 compared.
      auto damaged = ConfirmUnit(drive, target, files, CancelToken::None(), nullptr);
      std::set<std::string> bad;
      if (!damaged.ok()) {
        // Written but not verified: hidden, and the Puts fail so that the
        // engine puts the files again.
        for (const TargetFile& f : files) {
          HSMFS_RETURN_IF_ERROR(s.HideFile(f.id, clock.WallNanos()));
        }
        Invalidate();
        lease->Discard();
        return damaged.status().Annotate("reading back the unit just written to tape " + tape);
      }
      HSMFS_RETURN_IF_ERROR(s.RecordConfirm(target.id, *damaged, clock.WallNanos()));
      bad.insert(damaged->begin(), damaged->end());
      Invalidate();
      for (size_t i = 0; i < files.size(); ++i) {
        PendingPut& p = *unit[i];
        if (bad.count(files[i].rel_path)) {
          HSMFS_RETURN_IF_ERROR(s.HideFile(files[i].id, clock.WallNanos()));
          p.result = DataLossError(p.path + " read back damaged from tape " + tape + " file " +
                                   std::to_string(target.file_number));
          continue;
        }
        ObjectInfo info = MemberInfo(target, files[i], p.path.substr(p.path.rfind('/') + 1));
        info.read_back = true;  // ConfirmUnit compared its md5 just now
        p.result = std::move(info);
      }
      if (!bad.empty()) Invalidate();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      spdlog::info(
          "wrote {} files ({} bytes of tar) to tape {} file {} and verified them in "
          "{:.2f}s{}",
          unit.size(), written->tar_bytes, tape, target.file_number, secs,
          bad.empty() ? "" : "; " + std::to_string(bad.size()) + " damaged");
      return Status::Ok();
    }
    return Status::Ok();
  }

  // Applies `fn` to every member placed at `path` or (for a directory) below it.
  static void ForPlaced(
      const Tree& t, const std::string& path,
      const std::function<void(const std::string& at, size_t m, bool shown)>& fn) {
    for (const auto& [at, list] : t.placed) {
      if (!Within(at, path)) continue;
      auto shown = t.files.find(at);
      for (size_t m : list) {
        fn(at, m, shown != t.files.end() && shown->second == m);
      }
    }
  }
};

Result<std::unique_ptr<TapeBackend>> TapeBackend::Create(TapeBackendOptions options, Clock& clock) {
  if (options.devices.empty()) return InvalidArgumentError("a tape backend needs a drive");
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  Impl* p = impl.get();
  int max = 0;
  Opener opener;
  const DeviceSpec& first = p->options.devices.front();
  if (first.kind == DeviceSpec::Kind::kVirtualLibrary) {
    if (p->options.devices.size() != 1) {
      return InvalidArgumentError("a tape backend takes one virtual library");
    }
    HSMFS_ASSIGN_OR_RETURN(p->library,
                           VirtualLibrary::Open(first.path, p->options.library_options));
    HSMFS_ASSIGN_OR_RETURN(VirtualLibrary::Inventory inv, p->library->GetInventory());
    max = static_cast<int>(inv.drives.size());
    opener = [p](const std::string& tape, const std::set<int>&) {
      return p->OpenLibraryTape(tape);
    };
  } else {
    for (const DeviceSpec& d : p->options.devices) {
      if (d.kind != DeviceSpec::Kind::kStDevice) {
        return InvalidArgumentError("a tape backend takes st drives or one library, not both");
      }
    }
    max = static_cast<int>(p->options.devices.size());
    opener = [p](const std::string& tape, const std::set<int>& held) {
      return p->OpenStTape(tape, held);
    };
  }
  p->pool = std::make_unique<DrivePool>(std::move(opener), std::max(1, max), p->options.idle_close,
                                        clock);
  return std::unique_ptr<TapeBackend>(new TapeBackend(std::move(impl)));
}

TapeBackend::TapeBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TapeBackend::~TapeBackend() {
  if (!impl_) return;
  // The writer finishes its unit first; drive handles close before the library.
  impl_->StopWriter();
  impl_->pool.reset();
}

VirtualLibrary* TapeBackend::library() const { return impl_->library.get(); }

Result<ObjectInfo> TapeBackend::Stat(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  const std::string name = path.substr(path.rfind('/') + 1);
  if (auto it = t->files.find(path); it != t->files.end()) {
    return Impl::FileInfo(*t, name, t->members[it->second]);
  }
  if (auto it = t->dirs.find(path); it != t->dirs.end()) return Impl::DirInfo(name, it->second);
  return NotFoundError("no " + path + " on tape");
}

Status TapeBackend::List(const ObjectPath& dir, const backends::ListSink& sink,
                         const CancelToken& cancel) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(dir));
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  auto it = t->dirs.find(dir);
  if (it == t->dirs.end()) {
    if (t->files.count(dir)) return Status(Code::kNotDirectory, dir + " is a file");
    return NotFoundError("no directory " + dir + " on tape");
  }
  std::vector<ObjectInfo> batch;
  for (const auto& [name, child] : it->second.children) {
    if (cancel.cancelled()) return CancelledError("listing cancelled");
    if (child == Tree::kDirChild) {
      batch.push_back(Impl::DirInfo(name, t->dirs.at(backends::JoinObjectPath(dir, name))));
    } else {
      batch.push_back(Impl::FileInfo(*t, name, t->members[child]));
    }
    if (batch.size() >= kListBatch) {
      HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
      batch.clear();
    }
  }
  if (!batch.empty()) return sink(std::move(batch));
  return Status::Ok();
}

Status TapeBackend::Stage(const ObjectPath& path, Deadline) {
  // No disk tier in front of the tapes: a recall reads the tape itself.
  return backends::ValidateObjectPath(path);
}

Status TapeBackend::Read(const ObjectPath& path, const std::filesystem::path& dest,
                         const backends::ReadOptions& options) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  auto it = t->files.find(path);
  if (it == t->files.end()) {
    if (t->dirs.count(path)) return Status(Code::kIsDirectory, path + " is a directory");
    return NotFoundError("no " + path + " on tape");
  }
  const Tree::Member& m = t->members[it->second];
  const Target& target = t->targets[m.target];
  if (!m.file.link_target.empty()) {
    return InvalidArgumentError(path + " is a symbolic link: it has no data to read");
  }

  // ReadMember checks the catalog's md5; a caller expecting another algorithm
  // gets its own check.
  std::unique_ptr<Hasher> extra;
  const std::string own = m.file.md5.empty() ? "" : "md5:" + m.file.md5;
  if (!options.expect_checksum.empty() && options.expect_checksum != own) {
    HSMFS_ASSIGN_OR_RETURN(ChecksumAlgo algo, AlgoOfChecksum(options.expect_checksum));
    extra = Hasher::Create(algo);
  }

  const int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "creating " + dest.string());
  FdSink out(fd);
  uint64_t done = 0;
  Status st;
  {
    auto lease = impl_->pool->Acquire(target.tape, *options.cancel);
    if (!lease.ok()) {
      ::close(fd);
      return lease.status().Annotate("recalling " + path);
    }
    st = ReadMember(
        lease->drive(), target, m.file,
        [&](std::span<const std::byte> data) -> Status {
          HSMFS_RETURN_IF_ERROR(out.Write(data));
          if (extra) extra->Update(data.data(), data.size());
          done += data.size();
          if (options.progress) options.progress(done);
          return Status::Ok();
        },
        *options.cancel);
    if (!st.ok() && st.code() != Code::kCancelled && st.code() != Code::kDataLoss) {
      lease->Discard();  // the drive's state is unknown: reopen it next time
    }
  }
  if (::fsync(fd) != 0 && st.ok()) st = ErrnoToStatus(errno, "syncing " + dest.string());
  if (::close(fd) != 0 && st.ok()) st = ErrnoToStatus(errno, "closing " + dest.string());
  if (!st.ok()) return st.Annotate("recalling " + path + " from tape " + target.tape);
  if (extra) {
    const std::string got = extra->Finish();
    if (got != options.expect_checksum) {
      return DataLossError(path + " read from tape with " + got + ", expected " +
                           options.expect_checksum);
    }
  }
  return Status::Ok();
}

Result<ObjectInfo> TapeBackend::Put(const std::filesystem::path& src, const ObjectPath& path,
                                    const backends::PutOptions& options) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (path.empty()) return InvalidArgumentError("cannot write the root of a tape backend");
  if (UnderByTape(path)) {
    return Status(Code::kReadOnly, "cannot write " + path + ": .by-tape is read-only");
  }
  auto p = std::make_shared<PendingPut>();
  if (options.symlink_target.empty()) {
    struct stat st;
    if (::stat(src.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + src.string());
    if (!S_ISREG(st.st_mode)) return InvalidArgumentError(src.string() + " is not a regular file");
    p->src = src;
    p->size = static_cast<uint64_t>(st.st_size);
  } else {
    p->link_target = options.symlink_target;  // joins the unit as a tar symlink member
  }
  p->path = path;
  p->mtime_ns = options.mtime_ns;
  p->mode = options.mode & 07777;
  p->cancel = options.cancel;
  if (options.checksum.rfind("md5:", 0) == 0) p->md5 = options.checksum.substr(4);

  Impl& im = *impl_;
  std::unique_lock<std::mutex> l(im.wmu);
  if (im.stop) return UnavailableError("hsmfs is shutting down");
  im.StartWriterLocked();
  im.open.push_back(p);
  im.open_bytes += p->size;
  im.last_join = im.clock.Now();
  if (im.open_bytes >= im.options.unit_size) {
    im.closed.push_back(std::move(im.open));
    im.open.clear();
    im.open_bytes = 0;
  }
  im.wcv.notify_all();
  while (!p->done) {
    if (!p->taken && p->cancel->cancelled()) {
      // Not written yet: it leaves its unit.
      auto leave = [&](PendingList& list) {
        auto it = std::find(list.begin(), list.end(), p);
        if (it == list.end()) return false;
        list.erase(it);
        return true;
      };
      if (leave(im.open)) {
        im.open_bytes -= std::min(im.open_bytes, p->size);
      } else {
        for (auto& list : im.closed) {
          if (leave(list)) break;
        }
      }
      return CancelledError("archiving " + path + " to tape cancelled");
    }
    im.clock.WaitUntil(im.wcv, l, im.clock.Now() + std::chrono::milliseconds(100));
  }
  return p->result;
}

Status TapeBackend::Remove(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (path.empty() || UnderByTape(path)) {
    return Status(Code::kReadOnly, "cannot remove " + path + ": it is read-only");
  }
  impl_->Invalidate();
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTables> tables, impl_->Db());
  TapeTables& s = *tables;
  const int64_t now = impl_->clock.WallNanos();
  if (auto d = t->dirs.find(path); d != t->dirs.end()) {
    if (!d->second.children.empty()) {
      return Status(Code::kNotEmpty, path + ": directory not empty on tape");
    }
    return s.RemoveDir(path);
  }
  auto placed = t->placed.find(path);
  if (placed == t->placed.end()) return NotFoundError("no " + path + " on tape");
  // Every version placed there goes: an older one must not come back.
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTransaction> tx, s.Begin());
  for (size_t m : placed->second) {
    HSMFS_RETURN_IF_ERROR(s.HideFile(t->members[m].file.id, now));
  }
  HSMFS_RETURN_IF_ERROR(tx->Commit());
  impl_->Invalidate();
  return Status::Ok();
}

Status TapeBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(from));
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(to));
  if (from.empty() || to.empty() || UnderByTape(from) || UnderByTape(to)) {
    return Status(Code::kReadOnly, "cannot rename " + from + " to " + to + ": read-only");
  }
  if (from == to) return Status::Ok();
  if (Within(to, from)) return InvalidArgumentError("cannot move " + from + " into itself");
  impl_->Invalidate();
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  const bool is_file = t->files.count(from) > 0;
  const auto dir = t->dirs.find(from);
  if (!is_file && dir == t->dirs.end()) return NotFoundError("no " + from + " on tape");
  if (!is_file && t->files.count(to)) return Status(Code::kNotDirectory, to + " is a file");
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTables> tables, impl_->Db());
  TapeTables& s = *tables;
  const int64_t now = impl_->clock.WallNanos();
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTransaction> tx, s.Begin());
  // What sits at the new name is replaced (as rename(2) does).
  if (is_file) {
    if (auto at = t->placed.find(to); at != t->placed.end()) {
      for (size_t m : at->second) {
        HSMFS_RETURN_IF_ERROR(s.HideFile(t->members[m].file.id, now));
      }
    }
  }
  // The version shown moves; the older ones it shadowed must not reappear at
  // the old name, so they are hidden.
  Status st;
  Impl::ForPlaced(*t, from, [&](const std::string& at, size_t m, bool shown) {
    if (!st.ok()) return;
    if (is_file && at != from) return;
    const int64_t id = t->members[m].file.id;
    st = shown ? s.SetTreePath(id, to + at.substr(from.size())) : s.HideFile(id, now);
  });
  HSMFS_RETURN_IF_ERROR(st);
  if (!is_file) {
    HSMFS_RETURN_IF_ERROR(s.RenameDirs(from, to));
    // An empty directory stays a directory under its new name.
    Status added = s.AddDir({to, dir->second.mode, now});
    if (!added.ok() && added.code() != Code::kAlreadyExists) return added;
  }
  HSMFS_RETURN_IF_ERROR(tx->Commit());
  impl_->Invalidate();
  return Status::Ok();
}

Status TapeBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  HSMFS_RETURN_IF_ERROR(backends::ValidateObjectPath(path));
  if (path.empty() || UnderByTape(path)) {
    return Status(Code::kReadOnly, "cannot create " + path + ": read-only");
  }
  HSMFS_ASSIGN_OR_RETURN(std::shared_ptr<const Tree> t, impl_->Snapshot());
  if (t->files.count(path)) return AlreadyExistsError(path + " exists as a file on tape");
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeTables> tables, impl_->Db());
  TapeTables& s = *tables;
  // Recorded even where files already imply the directory, so that it stays
  // when they move away.
  Status st = s.AddDir({path, mode & 07777, impl_->clock.WallNanos()});
  impl_->Invalidate();
  return st;
}

}  // namespace hsmfs::tape
