#include "sources/local_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace hsmfs::hsmtape {
namespace {

std::string Join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir + "/" + name;
}

EntryType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return EntryType::kFile;
  if (S_ISDIR(mode)) return EntryType::kDir;
  if (S_ISLNK(mode)) return EntryType::kSymlink;
  return EntryType::kOther;
}

// Lists one directory: its entries, each with lstat data.
Result<std::vector<SourceEntry>> ListDir(const std::string& abs_dir, const std::string& rel_dir) {
  // O_NOFOLLOW: below the root every directory was reached through lstat, so a
  // directory swapped for a symlink in between must not be followed.
  int fd = ::open(abs_dir.c_str(),
                  O_RDONLY | O_DIRECTORY | O_CLOEXEC | (rel_dir.empty() ? 0 : O_NOFOLLOW));
  if (fd < 0) return ErrnoToStatus(errno, "listing " + abs_dir);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "listing " + abs_dir);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(dir)) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  if (errno != 0) {
    int err = errno;
    ::closedir(dir);
    return ErrnoToStatus(err, "listing " + abs_dir);
  }
  std::vector<SourceEntry> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      int err = errno;
      // Deleted between readdir and stat: it is simply not part of the target.
      if (err == ENOENT) continue;
      ::closedir(dir);
      return ErrnoToStatus(err, "stat " + abs_dir + "/" + name);
    }
    SourceEntry e;
    e.path = Join(rel_dir, name);
    e.type = TypeOf(st.st_mode);
    e.size = e.type == EntryType::kFile ? static_cast<uint64_t>(st.st_size) : 0;
    e.mtime = st.st_mtim.tv_sec;
    e.mode = st.st_mode & 07777;
    if (e.type == EntryType::kSymlink) {
      std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
      ssize_t n = ::readlinkat(::dirfd(dir), name.c_str(), target.data(), target.size());
      if (n < 0) {
        int err = errno;
        ::closedir(dir);
        return ErrnoToStatus(err, "readlink " + abs_dir + "/" + name);
      }
      target.resize(static_cast<size_t>(n));
      e.target = std::move(target);
    }
    out.push_back(std::move(e));
  }
  ::closedir(dir);
  return out;
}

class LocalReader final : public FileReader {
 public:
  LocalReader(int fd, uint64_t size, std::string path, ChecksumAlgo algo)
      : fd_(fd), size_(size), path_(std::move(path)), hasher_(Hasher::Create(algo)) {}
  LocalReader(const LocalReader&) = delete;
  LocalReader& operator=(const LocalReader&) = delete;

  Result<size_t> Read(void* buf, size_t len) override {
    while (true) {
      ssize_t n = ::read(fd_.get(), buf, len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, "reading " + path_);
      if (n == 0) at_end_ = true;
      hasher_->Update(buf, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
  }
  uint64_t size() const override { return size_; }
  Result<std::string> Checksum() override {
    if (!at_end_) return FailedPreconditionError("checksum of " + path_ + " before its end");
    if (digest_.empty()) digest_ = hasher_->Finish();
    return digest_;
  }

 private:
  Fd fd_;
  uint64_t size_;
  std::string path_;
  std::unique_ptr<Hasher> hasher_;
  bool at_end_ = false;
  std::string digest_;
};

}  // namespace

Status LocalSource::Walk(const std::string& root, const WalkSink& sink, const CancelToken& cancel) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) return ErrnoToStatus(errno, "target " + root);
  if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kNotDirectory, "target " + root + " is not a directory");
  }
  return WalkSorted(
      [&](const std::string& rel) { return ListDir(rel.empty() ? root : root + "/" + rel, rel); },
      sink, cancel, root);
}

Result<std::unique_ptr<FileReader>> LocalSource::Open(const std::string& path, ChecksumAlgo algo) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "stat " + path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status(S_ISDIR(st.st_mode) ? Code::kIsDirectory : Code::kFailedPrecondition,
                  "opening " + path + ": not a regular file");
  }
  // Import and archive read every file once, front to back.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<FileReader> reader =
      std::make_unique<LocalReader>(fd, static_cast<uint64_t>(st.st_size), path, algo);
  return reader;
}

}  // namespace hsmfs::hsmtape
