#include "backends/local/posix_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "common/checksum.h"
#include "common/fd.h"

namespace hsmfs::backends {
namespace {

namespace fs = std::filesystem;

constexpr size_t kListBatch = 1024;
// Put writes ".<name>.hsmfs-put-XXXXXX" beside the target.
constexpr std::string_view kPutMarker = ".hsmfs-put-";
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

}  // namespace

PosixBackend::PosixBackend(fs::path root, Duration stage_delay, Clock& clock)
    : root_(std::move(root)), stage_delay_(stage_delay), clock_(clock) {}

Result<fs::path> PosixBackend::Resolve(const ObjectPath& path) const {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  struct stat st;
  if (::stat(root_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    const int err = errno;
    return UnavailableError("backend root " + root_.string() + " is not reachable" +
                            (err ? std::string(": ") + std::strerror(err) : ""));
  }
  return path.empty() ? root_ : root_ / path;
}

Result<ObjectInfo> PosixBackend::Stat(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  struct stat st;
  if (::lstat(full.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + full.string());
  if (S_ISLNK(st.st_mode)) {
    HSMFS_ASSIGN_OR_RETURN(ObjectInfo info,
                           SymlinkInfo(AT_FDCWD, full.c_str(), BaseName(path), st));
    info.location = full.string();
    return info;
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return NotFoundError(full.string() + ": not a regular file or directory");
  }
  ObjectInfo info = InfoFromStat(BaseName(path), st);
  info.location = full.string();
  return info;
}

Status PosixBackend::List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(dir));
  // A directory below the root that is a symlink is not entered (the root
  // itself may be one: the admin chose it).
  Fd dfd(::open(full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dir.empty() ? 0 : O_NOFOLLOW)));
  if (dfd.get() < 0) return ErrnoToStatus(errno, "open directory " + full.string());
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
    // A Put in progress: not an object until it is renamed into place.
    if (name.front() == '.' && name.find(kPutMarker) != std::string_view::npos) continue;
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
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  // O_NOFOLLOW: a symlink is data, never a way to read something else.
  Fd src(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (src.get() < 0) return ErrnoToStatus(errno, "open " + full.string());
  struct stat st;
  if (::fstat(src.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + full.string());
  if (S_ISDIR(st.st_mode)) return Status(Code::kIsDirectory, full.string() + ": is a directory");
  if (stage_delay_.count() > 0) {
    // Simulated recall latency; sliced so that cancellation is noticed.
    const TimePoint until = clock_.Now() + stage_delay_;
    for (TimePoint now = clock_.Now(); now < until; now = clock_.Now()) {
      if (options.cancel->cancelled()) return CancelledError("recall of " + path + " cancelled");
      clock_.SleepFor(std::min<Duration>(until - now, std::chrono::milliseconds(50)));
    }
  }
  Fd dst(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
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

Status PosixBackend::MakeParents(const ObjectPath& path) const {
  const std::string parent = ParentObjectPath(path);
  if (parent.empty()) return Status::Ok();
  std::error_code ec;
  fs::create_directories(root_ / parent, ec);
  if (ec) return ErrnoToStatus(ec.value(), "mkdir " + (root_ / parent).string());
  return Status::Ok();
}

Result<ObjectInfo> PosixBackend::Put(const fs::path& src, const ObjectPath& path,
                                     const PutOptions& options) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  if (path.empty()) return InvalidArgumentError("cannot put onto the backend root");
  HSMFS_RETURN_IF_ERROR(MakeParents(path));
  if (!options.symlink_target.empty()) return PutSymlink(full, path, options);
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoToStatus(errno, "open " + src.string());
  // Write beside the target and rename over it, so that readers of the archive
  // never see a half-written file and a crash leaves the old version intact.
  fs::path tmp = full;
  tmp.replace_filename("." + full.filename().string() + std::string(kPutMarker) + "XXXXXX");
  std::string tmpl = tmp.string();
  Fd out(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (out.get() < 0) return ErrnoToStatus(errno, "create " + tmpl);
  tmp = tmpl;
  Status s = CopyData(in.get(), out.get(), src, tmp, nullptr, *options.cancel, options.progress);
  if (s.ok() && ::fchmod(out.get(), options.mode & 07777) != 0) {
    s = ErrnoToStatus(errno, "chmod " + tmp.string());
  }
  if (s.ok() && options.mtime_ns != 0) {
    const struct timespec times[2] = {
        {0, UTIME_OMIT}, {options.mtime_ns / 1'000'000'000, options.mtime_ns % 1'000'000'000}};
    if (::futimens(out.get(), times) != 0) s = ErrnoToStatus(errno, "utimens " + tmp.string());
  }
  if (s.ok() && ::fsync(out.get()) != 0) s = ErrnoToStatus(errno, "fsync " + tmp.string());
  if (s.ok() && ::rename(tmp.c_str(), full.c_str()) != 0) {
    s = ErrnoToStatus(errno, "rename " + tmp.string() + " to " + full.string());
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return Stat(path);
}

Result<ObjectInfo> PosixBackend::PutSymlink(const fs::path& full, const ObjectPath& path,
                                            const PutOptions& options) {
  // Made beside the target, relative to the parent's descriptor, and renamed
  // over it: readers never see a half-made link, and nothing is followed.
  const fs::path parent = full.parent_path();
  const int nofollow = ParentObjectPath(path).empty() ? 0 : O_NOFOLLOW;  // the root may be one
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | nofollow));
  if (dir.get() < 0) return ErrnoToStatus(errno, "open directory " + parent.string());
  const std::string name = full.filename().string();
  std::string tmp;
  for (int attempt = 0;; ++attempt) {
    tmp = "." + name + std::string(kPutMarker) + std::to_string(::getpid()) + "-" +
          std::to_string(attempt);
    if (::symlinkat(options.symlink_target.c_str(), dir.get(), tmp.c_str()) == 0) break;
    if (errno != EEXIST || attempt > 100) {
      return ErrnoToStatus(errno, "symlink " + (parent / tmp).string());
    }
  }
  Status s;
  if (options.mtime_ns != 0) {
    const struct timespec times[2] = {
        {0, UTIME_OMIT}, {options.mtime_ns / 1'000'000'000, options.mtime_ns % 1'000'000'000}};
    if (::utimensat(dir.get(), tmp.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      s = ErrnoToStatus(errno, "utimens " + (parent / tmp).string());
    }
  }
  if (s.ok() && ::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
    s = ErrnoToStatus(errno, "rename " + (parent / tmp).string() + " to " + full.string());
  }
  if (s.ok() && ::fsync(dir.get()) != 0) s = ErrnoToStatus(errno, "fsync " + parent.string());
  if (!s.ok()) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return s;
  }
  return Stat(path);
}

Status PosixBackend::Remove(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  if (path.empty()) return InvalidArgumentError("cannot remove the backend root");
  struct stat st;
  if (::lstat(full.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + full.string());
  const int rc = S_ISDIR(st.st_mode) ? ::rmdir(full.c_str()) : ::unlink(full.c_str());
  if (rc != 0) return ErrnoToStatus(errno, "remove " + full.string());
  return Status::Ok();
}

Status PosixBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_ASSIGN_OR_RETURN(fs::path src, Resolve(from));
  HSMFS_ASSIGN_OR_RETURN(fs::path dst, Resolve(to));
  if (from.empty() || to.empty()) return InvalidArgumentError("cannot rename the backend root");
  HSMFS_RETURN_IF_ERROR(MakeParents(to));
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename " + src.string() + " to " + dst.string());
  }
  return Status::Ok();
}

Status PosixBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  if (path.empty()) return AlreadyExistsError("the backend root exists");
  if (::mkdir(full.c_str(), 0700) != 0) return ErrnoToStatus(errno, "mkdir " + full.string());
  // Exactly `mode`, whatever the umask (mkdir(2) applies it).
  if (::chmod(full.c_str(), mode & 07777) != 0)
    return ErrnoToStatus(errno, "chmod " + full.string());
  return Status::Ok();
}

Status PosixBackend::SetDirMtime(const ObjectPath& path, int64_t mtime_ns) {
  HSMFS_ASSIGN_OR_RETURN(fs::path full, Resolve(path));
  const struct timespec times[2] = {{0, UTIME_OMIT},
                                    {mtime_ns / 1'000'000'000, mtime_ns % 1'000'000'000}};
  // AT_SYMLINK_NOFOLLOW: a symlink planted in the tree is not followed out of it.
  if (::utimensat(AT_FDCWD, full.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoToStatus(errno, "set the mtime of " + full.string());
  }
  return Status::Ok();
}

}  // namespace hsmfs::backends
