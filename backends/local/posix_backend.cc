#include "backends/local/posix_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "common/checksum.h"

namespace hsmfs::backends {
namespace {

namespace fs = std::filesystem;

constexpr size_t kListBatch = 1024;
// The reserved names at the top of the root (never listed, never written
// through the namespace).
constexpr const char* kRootMarker = ".hsmfs-root";
constexpr const char* kTmpDir = ".hsmfs-tmp";
// A Put's temporary beside its target, used only where the target's directory
// is on another file system than the root (a mount inside the tree).
constexpr std::string_view kBesidePrefix = ".hsmfs-put.";
constexpr size_t kCopyChunk = 1 << 20;

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

ObjectInfo InfoFromStat(std::string name, const struct stat& st) {
  ObjectInfo info;
  info.name = std::move(name);
  info.type = S_ISDIR(st.st_mode) ? ObjectType::kDir : ObjectType::kFile;
  info.mode = st.st_mode & 07777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.size = S_ISDIR(st.st_mode) ? 0 : static_cast<uint64_t>(st.st_size);
  info.mtime_ns = MtimeNs(st);
  info.residency = Residency::kDisk;
  return info;
}

// The target of the symlink `name` in `dirfd` (readlinkat never follows it).
Result<std::string> ReadLinkAt(int dirfd, const char* name, const struct stat& st) {
  // st_size is the target's length; a link changed meanwhile is read again.
  for (size_t size = static_cast<size_t>(st.st_size) + 1;; size *= 2) {
    std::string buf(size, '\0');
    const ssize_t n = ::readlinkat(dirfd, name, buf.data(), buf.size());
    if (n < 0) return ErrnoToStatus(errno, std::string("readlink ") + name);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
  }
}

// An object for a symlink: lstat's attributes and its target, never followed.
Result<ObjectInfo> SymlinkInfo(int dirfd, const char* at, std::string name, const struct stat& st) {
  ObjectInfo info;
  HSMFS_ASSIGN_OR_RETURN(info.link_target, ReadLinkAt(dirfd, at, st));
  info.name = std::move(name);
  info.type = ObjectType::kSymlink;
  info.mode = 0777;
  info.uid = st.st_uid;
  info.gid = st.st_gid;
  info.size = info.link_target.size();
  info.mtime_ns = MtimeNs(st);
  info.residency = Residency::kDisk;
  return info;
}

std::string BaseName(const ObjectPath& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsReserved(const ObjectPath& path) {
  const std::string_view first = std::string_view(path).substr(0, path.find('/'));
  return first == kRootMarker || first == kTmpDir;
}

// A symlink met while resolving is refused, never followed: it could lead out
// of the root (a file swapped for a link to /etc/shadow, a directory for a
// link to elsewhere).
Status ResolveError(int err, const std::string& what) {
  if (err == ELOOP || err == EXDEV) {
    return PermissionDeniedError(what +
                                 ": a symlink on the way; hsmfs never follows symlinks "
                                 "inside a backend root");
  }
  return ErrnoToStatus(err, what);
}

// openat2(2): glibc 2.36 has no wrapper. -1/ENOSYS where the kernel lacks it.
int OpenAt2(int dir, const char* path, int flags, mode_t mode) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dir, path, &how, sizeof how));
}

std::atomic<bool> g_no_openat2{false};

// Opens `rel` (a validated ObjectPath, "" for `dir` itself) beneath the
// directory `dir` without following any symlink on the way or at the end.
// Every path of the backend goes through here (or OpenParentBeneath).
Result<Fd> OpenBeneath(int dir, const std::string& rel, int flags, mode_t mode = 0) {
  flags |= O_CLOEXEC;
  const std::string path = rel.empty() ? "." : rel;
  if (!g_no_openat2.load(std::memory_order_relaxed)) {
    // RESOLVE_NO_SYMLINKS refuses a trailing symlink too, with ELOOP (with
    // O_NOFOLLOW and O_DIRECTORY it would be ENOTDIR, which hides why).
    const int fd = OpenAt2(dir, path.c_str(), flags, mode);
    if (fd >= 0) return Fd(fd);
    if (errno != ENOSYS) return ResolveError(errno, "open " + path);
    g_no_openat2.store(true, std::memory_order_relaxed);
  }
  // No openat2: one component at a time, each opened with O_NOFOLLOW (an
  // ObjectPath has no "." or ".." parts, so this stays beneath `dir`).
  Fd cur(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (cur.get() < 0) return ErrnoToStatus(errno, "dup");
  size_t pos = 0;
  for (;;) {
    const size_t slash = path.find('/', pos);
    const std::string part = path.substr(pos, slash == std::string::npos ? slash : slash - pos);
    const bool last = slash == std::string::npos;
    Fd next(
        last ? ::openat(cur.get(), part.c_str(), flags | O_NOFOLLOW, mode)
             : ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      int err = errno;
      struct stat st;
      if (err == ENOTDIR && ::fstatat(cur.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      return ResolveError(err, "open " + path);
    }
    if (last) return next;
    cur = std::move(next);
    pos = slash + 1;
  }
}

// The directory holding `path` (opened beneath `root`), its missing
// directories created first with `make`.
Result<Fd> OpenParentBeneath(int root, const ObjectPath& path, bool make) {
  const std::string parent = ParentObjectPath(path);
  if (!make) return OpenBeneath(root, parent, O_RDONLY | O_DIRECTORY);
  auto fd = OpenBeneath(root, parent, O_RDONLY | O_DIRECTORY);
  if (fd.ok() || fd.status().code() != Code::kNotFound) return fd;
  HSMFS_ASSIGN_OR_RETURN(Fd up, OpenParentBeneath(root, parent, true));
  const std::string leaf = BaseName(parent);
  if (::mkdirat(up.get(), leaf.c_str(), 0777) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "mkdir " + parent);
  }
  return OpenBeneath(up.get(), leaf, O_RDONLY | O_DIRECTORY);
}

// Writes all of `len` bytes, retrying short writes.
Status WriteAll(int fd, const char* data, size_t len, const fs::path& what) {
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write " + what.string());
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Copies `src_fd` to `dst_fd` to the end, hashing with `hasher` if given.
Status CopyData(int src_fd, int dst_fd, const fs::path& src, const fs::path& dst, Hasher* hasher,
                const CancelToken& cancel, const ProgressFn& progress) {
  std::vector<char> buf(kCopyChunk);
  uint64_t done = 0;
  for (;;) {
    if (cancel.cancelled()) return CancelledError("copy of " + src.string() + " cancelled");
    const ssize_t n = ::read(src_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "read " + src.string());
    }
    if (n == 0) return Status::Ok();
    if (hasher) hasher->Update(buf.data(), static_cast<size_t>(n));
    HSMFS_RETURN_IF_ERROR(WriteAll(dst_fd, buf.data(), static_cast<size_t>(n), dst));
    done += static_cast<uint64_t>(n);
    if (progress) progress(done);
  }
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) out += kHex[rng() & 0xf];
  return out;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string host(buf);
  std::replace(host.begin(), host.end(), '/', '_');
  return host.substr(0, 180);
}

// "<16 hex>.<pid>.<host>": at most 16 + 1 + 10 + 1 + 180 bytes, whatever the
// target's name; the pid and host let fsck prove a leftover abandoned.
std::string TempName() {
  return RandomHex(16) + "." + std::to_string(::getpid()) + "." + HostName();
}

struct TempOwner {
  pid_t pid = 0;
  std::string host;
};

std::optional<TempOwner> ParseTempName(std::string_view name) {
  if (name.size() < 20 || name[16] != '.') return std::nullopt;
  for (char c : name.substr(0, 16)) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  const size_t dot = name.find('.', 17);
  if (dot == std::string_view::npos || dot == 17) return std::nullopt;
  TempOwner owner;
  for (char c : name.substr(17, dot - 17)) {
    if (c < '0' || c > '9') return std::nullopt;
    owner.pid = owner.pid * 10 + (c - '0');
    if (owner.pid > 1 << 30) return std::nullopt;
  }
  owner.host = std::string(name.substr(dot + 1));
  return owner;
}

// Reads the marker in the root `dir`: its id, or "" if there is none.
Result<std::string> ReadMarker(int dir, const fs::path& root) {
  auto fd = OpenBeneath(dir, kRootMarker, O_RDONLY | O_NONBLOCK);
  if (!fd.ok()) {
    if (fd.status().code() == Code::kNotFound) return std::string();
    return fd.status().Annotate("backend root " + root.string());
  }
  char buf[256];
  const ssize_t n = ::read(fd->get(), buf, sizeof buf);
  if (n < 0) return ErrnoToStatus(errno, "read " + (root / kRootMarker).string());
  std::string id(buf, static_cast<size_t>(n));
  while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.pop_back();
  return id;
}

}  // namespace

void UseOpenat2FallbackForTesting(bool on) { g_no_openat2.store(on); }

PosixBackend::PosixBackend(fs::path root, Duration stage_delay, Clock& clock)
    : root_(std::move(root)), stage_delay_(stage_delay), clock_(clock) {}

Result<Fd> PosixBackend::OpenRoot() {
  Fd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) {
    return UnavailableError("backend root " + root_.string() +
                            " is not reachable: " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(root.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + root_.string());
  std::string expected;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (expected_id_.empty() || (st.st_dev == verified_dev_ && st.st_ino == verified_ino_)) {
      return root;
    }
    expected = expected_id_;
  }
  HSMFS_ASSIGN_OR_RETURN(std::string got, ReadMarker(root.get(), root_));
  if (got != expected) {
    return UnavailableError(
        "backend root " + root_.string() + " is not this archive's root: " +
        (got.empty() ? std::string(kRootMarker) + " is missing"
                     : std::string(kRootMarker) + " holds id " + got) +
        ", the catalog expects " + expected +
        " (a file system not mounted yet?); nothing is listed or archived there");
  }
  std::lock_guard<std::mutex> l(mu_);
  verified_dev_ = st.st_dev;
  verified_ino_ = st.st_ino;
  return root;
}

Result<Fd> PosixBackend::Resolve(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (IsReserved(path)) {
    return PermissionDeniedError(path + ": a name hsmfs reserves at the top of a backend root");
  }
  return OpenRoot();
}

Result<std::string> PosixBackend::ReadRootId() {
  Fd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) {
    return UnavailableError("backend root " + root_.string() +
                            " is not reachable: " + std::strerror(errno));
  }
  return ReadMarker(root.get(), root_);
}

Status PosixBackend::WriteRootId(const std::string& id) {
  Fd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) {
    return UnavailableError("backend root " + root_.string() +
                            " is not reachable: " + std::strerror(errno));
  }
  const std::string tmp = std::string(kRootMarker) + "." + RandomHex(8);
  HSMFS_ASSIGN_OR_RETURN(Fd out, OpenBeneath(root.get(), tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  const std::string text = id + "\n";
  Status s = WriteAll(out.get(), text.data(), text.size(), root_ / tmp);
  if (s.ok() && ::fchmod(out.get(), 0644) != 0) s = ErrnoToStatus(errno, "chmod " + tmp);
  if (s.ok() && ::fsync(out.get()) != 0) s = ErrnoToStatus(errno, "fsync " + tmp);
  if (s.ok() && ::renameat(root.get(), tmp.c_str(), root.get(), kRootMarker) != 0) {
    s = ErrnoToStatus(errno, "rename " + tmp + " to " + kRootMarker);
  }
  if (!s.ok()) {
    ::unlinkat(root.get(), tmp.c_str(), 0);
    return s.Annotate("backend root " + root_.string());
  }
  if (::fsync(root.get()) != 0) return ErrnoToStatus(errno, "fsync " + root_.string());
  std::lock_guard<std::mutex> l(mu_);
  verified_dev_ = 0;
  verified_ino_ = 0;
  return Status::Ok();
}

void PosixBackend::ExpectRootId(const std::string& id) {
  std::lock_guard<std::mutex> l(mu_);
  if (id != expected_id_) {
    verified_dev_ = 0;
    verified_ino_ = 0;
  }
  expected_id_ = id;
}

Result<std::vector<Leftover>> PosixBackend::Leftovers() {
  HSMFS_ASSIGN_OR_RETURN(Fd root, OpenRoot());
  std::vector<Leftover> out;
  auto dfd = OpenBeneath(root.get(), kTmpDir, O_RDONLY | O_DIRECTORY);
  if (!dfd.ok()) {
    if (dfd.status().code() == Code::kNotFound) return out;
    return dfd.status();
  }
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dfd->get()), &::closedir);
  if (!d) return ErrnoToStatus(errno, "opendir " + (root_ / kTmpDir).string());
  const int fd = dfd->release();
  const std::string host = HostName();
  for (;;) {
    errno = 0;
    const struct dirent* ent = ::readdir(d.get());
    if (!ent) {
      if (errno != 0) return ErrnoToStatus(errno, "readdir " + (root_ / kTmpDir).string());
      break;
    }
    const std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    Leftover left;
    left.name = std::string(kTmpDir) + "/" + std::string(name);
    left.size = static_cast<uint64_t>(st.st_size);
    const auto owner = ParseTempName(name);
    // Ours, from this host, and its writer is gone (pid reuse can only make
    // us keep one, never remove a live one).
    left.stale = S_ISREG(st.st_mode) && owner && owner->host == host &&
                 ::kill(owner->pid, 0) != 0 && errno == ESRCH;
    out.push_back(std::move(left));
  }
  return out;
}

Status PosixBackend::RemoveLeftover(const std::string& name) {
  HSMFS_ASSIGN_OR_RETURN(auto all, Leftovers());
  for (const Leftover& left : all) {
    if (left.name != name) continue;
    if (!left.stale) {
      return FailedPreconditionError(name + " may belong to a Put in progress; left in place");
    }
    HSMFS_ASSIGN_OR_RETURN(Fd root, OpenRoot());
    HSMFS_ASSIGN_OR_RETURN(Fd dir, OpenBeneath(root.get(), kTmpDir, O_RDONLY | O_DIRECTORY));
    const std::string leaf = BaseName(name);
    if (::unlinkat(dir.get(), leaf.c_str(), 0) != 0) {
      return ErrnoToStatus(errno, "remove " + (root_ / name).string());
    }
    return Status::Ok();
  }
  return NotFoundError(name + ": no such leftover");
}

Result<ObjectInfo> PosixBackend::Stat(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  const fs::path full = path.empty() ? root_ : root_ / path;
  struct stat st;
  if (path.empty()) {
    if (::fstat(root.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + full.string());
  } else {
    HSMFS_ASSIGN_OR_RETURN(Fd dir, OpenParentBeneath(root.get(), path, false));
    const std::string leaf = BaseName(path);
    if (::fstatat(dir.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoToStatus(errno, "stat " + full.string());
    }
    if (S_ISLNK(st.st_mode)) {
      HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, SymlinkInfo(dir.get(), leaf.c_str(), leaf, st));
      info.location = full.string();
      return info;
    }
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return NotFoundError(full.string() + ": not a regular file or directory");
  }
  ObjectInfo info = InfoFromStat(BaseName(path), st);
  info.location = full.string();
  return info;
}

Status PosixBackend::List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(dir));
  const fs::path full = dir.empty() ? root_ : root_ / dir;
  HSMFS_ASSIGN_OR_RETURN(Fd dfd, OpenBeneath(root.get(), dir, O_RDONLY | O_DIRECTORY));
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dfd.get()), &::closedir);
  if (!d) return ErrnoToStatus(errno, "opendir " + full.string());
  const int fd = dfd.release();  // owned by `d` now
  std::vector<ObjectInfo> batch;
  batch.reserve(kListBatch);
  for (;;) {
    if (cancel.cancelled()) return CancelledError("listing of " + full.string() + " cancelled");
    errno = 0;
    const struct dirent* ent = ::readdir(d.get());
    if (!ent) {
      if (errno != 0) return ErrnoToStatus(errno, "readdir " + full.string());
      break;
    }
    const std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    if (dir.empty() && IsReserved(std::string(name))) continue;
    struct stat st;
    if (::fstatat(fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we listed
      return ErrnoToStatus(errno, "stat " + (full / ent->d_name).string());
    }
    if (S_ISLNK(st.st_mode)) {
      auto link = SymlinkInfo(fd, ent->d_name, std::string(name), st);
      if (!link.ok() && link.status().code() == Code::kNotFound) continue;  // removed meanwhile
      HSMFS_RETURN_IF_ERROR(link.status());
      batch.push_back(std::move(link).value());
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
      batch.push_back(InfoFromStat(std::string(name), st));
    } else {
      continue;  // sockets, fifos, devices: not archive objects
    }
    batch.back().location = (full / ent->d_name).string();
    if (batch.size() == kListBatch) {
      HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
      batch.clear();
    }
  }
  if (!batch.empty()) HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
  return Status::Ok();
}

Status PosixBackend::Stage(const ObjectPath& path, Deadline /*deadline*/) {
  return Stat(path).status();
}

Status PosixBackend::Read(const ObjectPath& path, const fs::path& dest,
                          const ReadOptions& options) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  const fs::path full = root_ / path;
  // O_NONBLOCK: a FIFO swapped in must not hang the recall.
  HSMFS_ASSIGN_OR_RETURN(Fd src, OpenBeneath(root.get(), path, O_RDONLY | O_NONBLOCK));
  struct stat st;
  if (::fstat(src.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + full.string());
  if (S_ISDIR(st.st_mode)) return Status(Code::kIsDirectory, full.string() + ": is a directory");
  if (!S_ISREG(st.st_mode)) return NotFoundError(full.string() + ": not a regular file");
  if (::fcntl(src.get(), F_SETFL, O_RDONLY) != 0) {
    return ErrnoToStatus(errno, "fcntl " + full.string());
  }
  if (stage_delay_.count() > 0) {
    // Simulated recall latency; sliced so that cancellation is noticed.
    const TimePoint until = clock_.Now() + stage_delay_;
    for (TimePoint now = clock_.Now(); now < until; now = clock_.Now()) {
      if (options.cancel->cancelled()) return CancelledError("recall of " + path + " cancelled");
      clock_.SleepFor(std::min<Duration>(until - now, std::chrono::milliseconds(50)));
    }
  }
  // The cache's own file: never written through a symlink planted there.
  Fd dst(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (dst.get() < 0) return ErrnoToStatus(errno, "create " + dest.string());
  std::unique_ptr<Hasher> hasher;
  if (!options.expect_checksum.empty()) {
    HSMFS_ASSIGN_OR_RETURN(ChecksumAlgo algo, AlgoOfChecksum(options.expect_checksum));
    hasher = Hasher::Create(algo);
  }
  HSMFS_RETURN_IF_ERROR(
      CopyData(src.get(), dst.get(), full, dest, hasher.get(), *options.cancel, options.progress));
  if (hasher) {
    const std::string got = hasher->Finish();
    if (got != options.expect_checksum) {
      return DataLossError(full.string() + ": checksum " + got + " does not match the expected " +
                           options.expect_checksum);
    }
  }
  return Status::Ok();
}

Status PosixBackend::WriteTemp(int in, int dir, const std::string& name, const fs::path& src,
                               const PutOptions& options) {
  HSMFS_ASSIGN_OR_RETURN(Fd out, OpenBeneath(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0600));
  const fs::path tmp = root_ / name;
  if (::lseek(in, 0, SEEK_SET) != 0) return ErrnoToStatus(errno, "seek " + src.string());
  Status s = CopyData(in, out.get(), src, tmp, nullptr, *options.cancel, options.progress);
  if (s.ok() && ::fchmod(out.get(), options.mode & 07777) != 0) {
    s = ErrnoToStatus(errno, "chmod " + tmp.string());
  }
  if (s.ok() && options.mtime_ns != 0) {
    const struct timespec times[2] = {
        {0, UTIME_OMIT}, {options.mtime_ns / 1'000'000'000, options.mtime_ns % 1'000'000'000}};
    if (::futimens(out.get(), times) != 0) s = ErrnoToStatus(errno, "utimens " + tmp.string());
  }
  if (s.ok() && ::fsync(out.get()) != 0) s = ErrnoToStatus(errno, "fsync " + tmp.string());
  if (!s.ok()) ::unlinkat(dir, name.c_str(), 0);
  return s;
}

Result<ObjectInfo> PosixBackend::Put(const fs::path& src, const ObjectPath& path,
                                     const PutOptions& options) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  if (path.empty()) return InvalidArgumentError("cannot put onto the backend root");
  const fs::path full = root_ / path;
  HSMFS_ASSIGN_OR_RETURN(Fd parent, OpenParentBeneath(root.get(), path, true));
  if (!options.symlink_target.empty()) return PutSymlink(root.get(), parent.get(), path, options);
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoToStatus(errno, "open " + src.string());
  // Written in the root's .hsmfs-tmp and renamed into place, so that readers
  // of the archive never see a half-written file, a crash leaves the old
  // version intact, and nothing in the namespace looks like a temporary.
  if (::mkdirat(root.get(), kTmpDir, 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "mkdir " + (root_ / kTmpDir).string());
  }
  HSMFS_ASSIGN_OR_RETURN(Fd tmpdir, OpenBeneath(root.get(), kTmpDir, O_RDONLY | O_DIRECTORY));
  const std::string leaf = BaseName(path);
  std::string tmp = TempName();
  HSMFS_RETURN_IF_ERROR(WriteTemp(in.get(), tmpdir.get(), tmp, src, options));
  int tmp_dir = tmpdir.get();
  int err = ::renameat(tmp_dir, tmp.c_str(), parent.get(), leaf.c_str()) != 0 ? errno : 0;
  if (err == EXDEV) {
    // The target's directory is on another file system (a mount inside the
    // tree): write beside the target instead (docs/SEMANTICS.md).
    ::unlinkat(tmp_dir, tmp.c_str(), 0);
    tmp = (std::string(kBesidePrefix) + TempName()).substr(0, NAME_MAX);
    HSMFS_RETURN_IF_ERROR(WriteTemp(in.get(), parent.get(), tmp, src, options));
    tmp_dir = parent.get();
    err = ::renameat(tmp_dir, tmp.c_str(), parent.get(), leaf.c_str()) != 0 ? errno : 0;
  }
  if (err != 0) {
    ::unlinkat(tmp_dir, tmp.c_str(), 0);
    return ErrnoToStatus(err, "rename " + tmp + " to " + full.string());
  }
  // The rename must be durable before the catalog calls the file archived.
  if (::fsync(parent.get()) != 0) return ErrnoToStatus(errno, "fsync " + full.string());
  struct stat st;
  if (::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoToStatus(errno, "stat " + full.string());
  }
  ObjectInfo info = InfoFromStat(leaf, st);
  info.location = full.string();
  return info;
}

Result<ObjectInfo> PosixBackend::PutSymlink(int root, int parent, const ObjectPath& path,
                                            const PutOptions& options) {
  // Made in .hsmfs-tmp (beside the target where that is another file
  // system) and renamed over the target: readers never see a half-made link,
  // and nothing is followed.
  const fs::path full = root_ / path;
  const std::string leaf = BaseName(path);
  if (::mkdirat(root, kTmpDir, 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "mkdir " + (root_ / kTmpDir).string());
  }
  HSMFS_ASSIGN_OR_RETURN(Fd tmpdir, OpenBeneath(root, kTmpDir, O_RDONLY | O_DIRECTORY));
  const auto make = [&](int dir, const std::string& name) -> Status {
    if (::symlinkat(options.symlink_target.c_str(), dir, name.c_str()) != 0) {
      return ErrnoToStatus(errno, "symlink " + name);
    }
    if (options.mtime_ns != 0) {
      const struct timespec times[2] = {
          {0, UTIME_OMIT}, {options.mtime_ns / 1'000'000'000, options.mtime_ns % 1'000'000'000}};
      if (::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        const Status s = ErrnoToStatus(errno, "utimens " + name);
        ::unlinkat(dir, name.c_str(), 0);
        return s;
      }
    }
    return Status::Ok();
  };
  std::string tmp = TempName();
  int tmp_dir = tmpdir.get();
  HSMFS_RETURN_IF_ERROR(make(tmp_dir, tmp));
  int err = ::renameat(tmp_dir, tmp.c_str(), parent, leaf.c_str()) != 0 ? errno : 0;
  if (err == EXDEV) {
    ::unlinkat(tmp_dir, tmp.c_str(), 0);
    tmp = (std::string(kBesidePrefix) + TempName()).substr(0, NAME_MAX);
    tmp_dir = parent;
    HSMFS_RETURN_IF_ERROR(make(tmp_dir, tmp));
    err = ::renameat(tmp_dir, tmp.c_str(), parent, leaf.c_str()) != 0 ? errno : 0;
  }
  if (err != 0) {
    ::unlinkat(tmp_dir, tmp.c_str(), 0);
    return ErrnoToStatus(err, "rename " + tmp + " to " + full.string());
  }
  if (::fsync(parent) != 0) return ErrnoToStatus(errno, "fsync " + full.string());
  struct stat st;
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoToStatus(errno, "stat " + full.string());
  }
  HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, SymlinkInfo(parent, leaf.c_str(), leaf, st));
  info.location = full.string();
  return info;
}

Status PosixBackend::Remove(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  if (path.empty()) return InvalidArgumentError("cannot remove the backend root");
  const fs::path full = root_ / path;
  HSMFS_ASSIGN_OR_RETURN(Fd dir, OpenParentBeneath(root.get(), path, false));
  const std::string leaf = BaseName(path);
  struct stat st;
  if (::fstatat(dir.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoToStatus(errno, "stat " + full.string());
  }
  if (::unlinkat(dir.get(), leaf.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
    return ErrnoToStatus(errno, "remove " + full.string());
  }
  return Status::Ok();
}

Status PosixBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(from));
  HSMFS_RETURN_IF_ERROR(Resolve(to).status());
  if (from.empty() || to.empty()) return InvalidArgumentError("cannot rename the backend root");
  HSMFS_ASSIGN_OR_RETURN(Fd src_dir, OpenParentBeneath(root.get(), from, false));
  HSMFS_ASSIGN_OR_RETURN(Fd dst_dir, OpenParentBeneath(root.get(), to, true));
  if (::renameat(src_dir.get(), BaseName(from).c_str(), dst_dir.get(), BaseName(to).c_str()) != 0) {
    return ErrnoToStatus(errno,
                         "rename " + (root_ / from).string() + " to " + (root_ / to).string());
  }
  return Status::Ok();
}

Status PosixBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  if (path.empty()) return AlreadyExistsError("the backend root exists");
  const fs::path full = root_ / path;
  HSMFS_ASSIGN_OR_RETURN(Fd parent, OpenParentBeneath(root.get(), path, false));
  const std::string leaf = BaseName(path);
  if (::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
    return ErrnoToStatus(errno, "mkdir " + full.string());
  }
  HSMFS_ASSIGN_OR_RETURN(Fd made, OpenBeneath(parent.get(), leaf, O_RDONLY | O_DIRECTORY));
  // Exactly `mode`, whatever the umask (mkdir(2) applies it).
  if (::fchmod(made.get(), mode & 07777) != 0)
    return ErrnoToStatus(errno, "chmod " + full.string());
  return Status::Ok();
}

Status PosixBackend::SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) {
  HSMFS_ASSIGN_OR_RETURN(Fd root, Resolve(path));
  const fs::path full = path.empty() ? root_ : root_ / path;
  // Resolved beneath the root like every path: a symlink planted in the tree
  // is not followed out of it.
  HSMFS_ASSIGN_OR_RETURN(Fd dir, OpenBeneath(root.get(), path, O_RDONLY | O_DIRECTORY));
  if (attrs.mode && ::fchmod(dir.get(), *attrs.mode & 07777) != 0) {
    return ErrnoToStatus(errno, "chmod " + full.string());
  }
  if (attrs.mtime_ns) {
    const int64_t t = *attrs.mtime_ns;
    const struct timespec times[2] = {{0, UTIME_OMIT}, {t / 1'000'000'000, t % 1'000'000'000}};
    if (::futimens(dir.get(), times) != 0) {
      return ErrnoToStatus(errno, "set the mtime of " + full.string());
    }
  }
  return Status::Ok();
}

}  // namespace hsmfs::backends
