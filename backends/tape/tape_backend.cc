#include "backends/tape/tape_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "backends/tape/st_drive.h"
#include "backends/tape/tape_format.h"
#include "catalog/tape_catalog.h"
#include "common/checksum.h"
#include "common/logging.h"
#include "common/thread.h"

namespace hsmfs::tape {
namespace {

using backends::ObjectInfo;
using backends::ObjectPath;
using backends::ObjectType;
using backends::Residency;
using catalog::TapeCatalog;
using catalog::Target;
using catalog::TargetFile;
using catalog::TargetState;

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
    // name -> member index, or kDirChild for a subdirectory.
    std::map<std::string, size_t> children;
  };
  static constexpr size_t kDirChild = static_cast<size_t>(-1);

  std::vector<Target> targets;
  std::vector<Member> members;
  std::unordered_map<std::string, size_t> files;  // path -> member index
  std::unordered_map<std::string, Dir> dirs;      // path -> directory

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
  void AddFile(const std::string& path, size_t m, int64_t mtime_ns) {
    if (path.empty() || !backends::ValidateObjectPath(path).ok()) return;
    if (dirs.count(path)) return;
    Dir& parent = EnsureDir(backends::ParentObjectPath(path), mtime_ns);
    const std::string name = path.substr(path.rfind('/') + 1);
    auto it = parent.children.find(name);
    if (it != parent.children.end() && it->second == kDirChild) return;
    parent.children[name] = m;
    files[path] = m;
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
      if (static_cast<int>(handles_.size() + opening_.size()) >= max_) {
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
        std::unique_ptr<TapeDrive> closing = std::move(victim->second.drive);
        handles_.erase(victim);
        l.unlock();
        closing.reset();  // releases the drive (and records its head) for the next open
        l.lock();
        continue;
      }
      std::set<int> held;
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

  void Wait(std::unique_lock<std::mutex>& l) {
    clock_.WaitUntil(cv_, l, clock_.Now() + std::chrono::milliseconds(100));
  }

  void Release(const std::string& tape, bool discard) {
    std::unique_ptr<TapeDrive> closing;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = handles_.find(tape);
      if (it == handles_.end()) return;
      it->second.busy = false;
      it->second.idle_since = clock_.Now();
      if (discard) {
        closing = std::move(it->second.drive);
        handles_.erase(it);
      }
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
      std::vector<std::unique_ptr<TapeDrive>> closing;
      for (auto it = handles_.begin(); it != handles_.end();) {
        if (stop_ || (!it->second.busy && now - it->second.idle_since >= idle_close_)) {
          if (it->second.busy) {
            ++it;
            continue;
          }
          closing.push_back(std::move(it->second.drive));
          it = handles_.erase(it);
        } else {
          ++it;
        }
      }
      if (!closing.empty()) {
        l.unlock();
        closing.clear();
        l.lock();
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

}  // namespace

struct TapeBackend::Impl {
  TapeBackendOptions options;
  Clock& clock;
  std::unique_ptr<VirtualLibrary> library;
  std::unique_ptr<DrivePool> pool;

  std::mutex mu;
  std::unique_ptr<catalog::Catalog> catalog;  // GUARDED_BY(mu); opened on first use
  std::shared_ptr<const Tree> tree;           // GUARDED_BY(mu)
  TimePoint built;                            // GUARDED_BY(mu)

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

  Result<std::shared_ptr<const Tree>> Snapshot() {
    std::lock_guard<std::mutex> l(mu);
    if (tree && clock.Now() - built < options.refresh) return tree;
    if (!catalog) {
      std::error_code ec;
      if (!std::filesystem::exists(options.catalog, ec)) {
        return Status(Code::kUnavailable,
                      "tape catalog " + options.catalog.string() + " does not exist");
      }
      catalog::Catalog::Options co;
      co.create = false;
      co.max_connections = 4;
      auto opened = catalog::Catalog::Open(options.catalog, co);
      if (!opened.ok()) return opened.status().Annotate("opening the tape catalog");
      catalog = std::move(opened).value();
    }
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, catalog->Acquire());
    auto t = std::make_shared<Tree>();
    t->EnsureDir("", 0);
    t->EnsureDir(std::string(kByTape), 0);
    HSMFS_ASSIGN_OR_RETURN(std::vector<catalog::Tape> tapes, TapeCatalog::Tapes(s));
    for (const catalog::Tape& tape : tapes) {
      t->EnsureDir(std::string(kByTape) + "/" + tape.name, tape.created_ns);
    }
    HSMFS_ASSIGN_OR_RETURN(std::vector<Target> targets, TapeCatalog::Targets(s, "", std::nullopt));
    for (Target& target : targets) {
      if (!Listed(target.state) || target.tape.empty()) continue;
      HSMFS_ASSIGN_OR_RETURN(std::vector<TargetFile> files, TapeCatalog::Files(s, target.id));
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
        t->members.push_back({ti, std::move(f)});
        t->AddFile(backends::JoinObjectPath(root, rel), mi, tg.archived_ns);
        t->AddFile(backends::JoinObjectPath(by_tape, rel), mi, tg.archived_ns);
      }
    }
    tree = std::move(t);
    built = clock.Now();
    return tree;
  }

  static ObjectInfo FileInfo(const Tree& t, const std::string& name, const Tree::Member& m) {
    const Target& tg = t.targets[m.target];
    ObjectInfo info;
    info.name = name;
    info.type = ObjectType::kFile;
    info.mode = m.file.mode & 07777;
    info.size = m.file.size;
    info.mtime_ns = m.file.mtime_ns;
    if (!m.file.md5.empty()) info.checksum = "md5:" + m.file.md5;
    info.position = MemberBlock(tg, m.file);
    info.location = "tape " + tg.tape + " file " + std::to_string(tg.file_number) + " block " +
                    std::to_string(info.position);
    info.volume = tg.tape;
    info.residency = Residency::kTape;
    return info;
  }

  static ObjectInfo DirInfo(const std::string& name, const Tree::Dir& d) {
    ObjectInfo info;
    info.name = name;
    info.type = ObjectType::kDir;
    info.mode = 0755;
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
  // Drive handles close before the library they belong to.
  if (impl_) impl_->pool.reset();
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

Result<ObjectInfo> TapeBackend::Put(const std::filesystem::path&, const ObjectPath& path,
                                    const backends::PutOptions&) {
  return Status(Code::kReadOnly,
                "cannot write " + path + ": writes into a tape backend are not supported yet");
}

Status TapeBackend::Remove(const ObjectPath& path) {
  return Status(Code::kReadOnly, "cannot remove " + path + ": a tape backend is read-only");
}

Status TapeBackend::Rename(const ObjectPath& from, const ObjectPath&) {
  return UnimplementedError("cannot rename " + from + " on tape");
}

Status TapeBackend::MakeDir(const ObjectPath& path, uint32_t) {
  return Status(Code::kReadOnly,
                "cannot create " + path + ": writes into a tape backend are not supported yet");
}

}  // namespace hsmfs::tape
