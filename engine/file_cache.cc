#include "engine/file_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "common/logging.h"
#include "common/units.h"

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;
using catalog::Entry;
using catalog::EntryId;

Status FsyncPath(const stdfs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + p.string());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoToStatus(err, "fsync " + p.string());
  return Status::Ok();
}

// True for what hsmfs itself leaves in the cache's tmp directory: Fill's
// "ID.SERIAL", ReadBack's "readback-XXXXXX" (files); the HPSS backend's
// mkdtemp directories. Nothing else there is removed at start-up.
bool IsOwnScratch(const stdfs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  std::error_code ec;
  if (e.is_symlink(ec)) return false;
  if (e.is_directory(ec)) {
    for (const char* prefix : {"hpss-bundle-", "hpss-prefetch-", ".hsmfs-htar-"}) {
      if (name.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
  if (!e.is_regular_file(ec)) return false;
  if (name.rfind("readback-", 0) == 0) return true;
  const size_t dot = name.find('.');
  return dot != std::string::npos && dot > 0 && dot + 1 < name.size() &&
         name.find_first_not_of("0123456789") == dot &&
         name.find_first_not_of("0123456789", dot + 1) == std::string::npos;
}

}  // namespace

FileCache::FileCache(Options options, catalog::Catalog& catalog, Clock& clock,
                     KernelNotifier* notifier)
    : options_(std::move(options)), catalog_(catalog), clock_(clock), notifier_(notifier) {}

stdfs::path FileCache::PathOf(EntryId id) const {
  char shard[8];
  std::snprintf(shard, sizeof shard, "%02x", static_cast<unsigned>(id & 0xff));
  return options_.dir / "data" / shard / std::to_string(id);
}

Status FileCache::Recover() {
  // The config refuses such a dir; a NUL would cut every path below it short
  // (cache/\0/tmp is cache/ to the kernel) and aim the deletions above it.
  if (options_.dir.empty() || options_.dir.is_relative() ||
      options_.dir.native().find('\0') != std::string::npos) {
    return InvalidArgumentError("cache directory \"" + options_.dir.string() +
                                "\" is not an absolute path");
  }
  std::error_code ec;
  stdfs::create_directories(options_.dir / "data", ec);
  if (ec) return ErrnoToStatus(ec.value(), "create " + (options_.dir / "data").string());
  // Only what hsmfs puts there: a tmp directory that is someone else's (a
  // cache dir set to $HOME, whose tmp/ holds files) loses nothing.
  const stdfs::path scratch = options_.dir / "tmp";
  if (stdfs::is_directory(stdfs::symlink_status(scratch, ec))) {
    std::vector<stdfs::path> own;
    for (stdfs::directory_iterator it(scratch, ec), end; !ec && it != end; it.increment(ec)) {
      if (IsOwnScratch(*it)) own.push_back(it->path());
    }
    for (const stdfs::path& p : own) stdfs::remove_all(p, ec);
  }
  stdfs::create_directories(options_.dir / "tmp", ec);
  if (ec) return ErrnoToStatus(ec.value(), "create " + (options_.dir / "tmp").string());

  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  int orphans = 0;
  std::vector<stdfs::path> unowned;
  for (auto it = stdfs::recursive_directory_iterator(options_.dir / "data", ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    const auto type = it->symlink_status(ec2).type();
    if (type == stdfs::file_type::directory) continue;
    const std::string name = it->path().filename().string();
    char* end = nullptr;
    const EntryId id = std::strtoll(name.c_str(), &end, 10);
    const bool ours = type == stdfs::file_type::regular && end && *end == '\0' && !name.empty() &&
                      PathOf(id) == it->path();
    auto e = ours ? session.Get(id) : Result<Entry>(NotFoundError(name));
    if (e.ok() && e->cached) continue;  // the entry's copy
    // Deleted only where the catalog proves the backend holds the entry's
    // current data: a copy dropped (released, evicted, replaced on the
    // backend) just before a crash. Anything else may be the last copy of
    // something (an entry listed away while its root was wrong, data of a
    // deleted entry, a stranger's file): kept in lost+found, for fsck to show.
    const bool superseded =
        e.ok() && e->on_backend && !e->is_dir() &&
        (e->state == catalog::FileState::kOffline || e->state == catalog::FileState::kDual);
    if (superseded) {
      stdfs::remove(it->path(), ec2);
      ++orphans;
    } else {
      unowned.push_back(it->path());
    }
  }
  for (const stdfs::path& p : unowned) HSMFS_RETURN_IF_ERROR(MoveToLostFound(p));
  const size_t lost_found = unowned.size();
  if (lost_found > 0) {
    CountErrorSite("E-CACHE-04");
    spdlog::warn(
        "E-CACHE-04: cache {}: moved {} files that no catalog entry owns to {} (never deleted; "
        "hsmctl fsck lists them)",
        options_.dir.string(), lost_found, lost_found_dir().string());
  }
  // Copies the catalog counts but the disk lost: the entry is offline again.
  std::vector<EntryId> lost;
  {
    std::vector<EntryId> cached;
    HSMFS_RETURN_IF_ERROR(session.CachedIds(&cached));
    for (EntryId id : cached) {
      if (!stdfs::exists(PathOf(id), ec)) lost.push_back(id);
    }
  }
  for (EntryId id : lost) HSMFS_RETURN_IF_ERROR(session.MarkCachedCopyLost(id));
  if (orphans || !lost.empty()) {
    spdlog::info(
        "cache {}: removed {} superseded copies of archived data; {} cached copies were "
        "missing",
        options_.dir.string(), orphans, lost.size());
  }
  return Status::Ok();
}

Status FileCache::MoveToLostFound(const stdfs::path& p) {
  const stdfs::path dir = lost_found_dir();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "create " + dir.string());
  }
  const std::string base = p.filename().string();
  for (int n = 0;; ++n) {
    const stdfs::path dest = dir / (n == 0 ? base : base + "." + std::to_string(n));
    // renameat2(RENAME_NOREPLACE): never over an earlier find.
    if (::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) == 0) {
      return Status::Ok();
    }
    if (errno != EEXIST || n > 1000) {
      return ErrnoToStatus(errno, "move " + p.string() + " to " + dest.string());
    }
  }
}

FileCache::Fill::~Fill() {
  if (!committed_) {
    std::error_code ec;
    stdfs::remove(tmp_, ec);
  }
  cache_->Unreserve(bytes_);
}

Status FileCache::Fill::Commit() {
  HSMFS_RETURN_IF_ERROR(FsyncPath(tmp_, O_RDONLY));
  const stdfs::path dest = cache_->PathOf(id_);
  std::error_code ec;
  stdfs::create_directories(dest.parent_path(), ec);
  if (ec) return ErrnoToStatus(ec.value(), "create " + dest.parent_path().string());
  if (::rename(tmp_.c_str(), dest.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename " + tmp_.string() + " to " + dest.string());
  }
  committed_ = true;
  // The rename must be durable before the catalog says the copy exists.
  return FsyncPath(dest.parent_path(), O_RDONLY | O_DIRECTORY);
}

void FileCache::Unreserve(uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  reserved_ -= std::min(reserved_, bytes);
  cached_sum_valid_ = false;
}

void FileCache::InvalidateUsage() {
  std::lock_guard<std::mutex> l(mu_);
  cached_sum_valid_ = false;
}

Result<uint64_t> FileCache::Usage() {
  bool fresh;
  {
    std::lock_guard<std::mutex> l(mu_);
    fresh = cached_sum_valid_ && clock_.Now() - cached_sum_at_ <= std::chrono::seconds(1);
  }
  if (!fresh) {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(uint64_t sum, session.CachedBytes());
    std::lock_guard<std::mutex> l(mu_);
    cached_sum_ = sum;
    cached_sum_at_ = clock_.Now();
    cached_sum_valid_ = true;
  }
  std::lock_guard<std::mutex> l(mu_);
  int64_t growth = 0;
  for (const auto& [id, w] : writing_) growth += w.growth;
  return static_cast<uint64_t>(
      std::max<int64_t>(0, static_cast<int64_t>(cached_sum_ + reserved_) + growth));
}

Result<int> FileCache::CreateCopy(EntryId id) {
  const stdfs::path path = PathOf(id);
  std::error_code ec;
  stdfs::create_directories(path.parent_path(), ec);
  if (ec) return ErrnoToStatus(ec.value(), "create " + path.parent_path().string());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "create " + path.string());
  {
    std::lock_guard<std::mutex> l(mu_);
    writing_[id].known_size = 0;
  }
  return fd;
}

Status FileCache::Grow(EntryId id, uint64_t current_size, uint64_t new_size, Duration wait) {
  if (new_size > options_.size) {
    // Written data stays cached until it is archived, so no wait can make
    // room for a file larger than the whole cache.
    return Status(Code::kFileTooLarge, "a size of " + FormatSizeHuman(new_size) +
                                           " is larger than the whole cache (" +
                                           FormatSizeHuman(options_.size) +
                                           ", [cache] size): a file must fit in the cache "
                                           "until it is archived");
  }
  uint64_t delta;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto [it, fresh] = writing_.try_emplace(id);
    if (fresh) it->second.known_size = current_size;
    if (new_size <= it->second.known_size) return Status::Ok();
    delta = new_size - it->second.known_size;
  }
  const TimePoint deadline = clock_.Now() + wait;
  for (bool evicted = false;;) {
    HSMFS_ASSIGN_OR_RETURN(uint64_t usage, Usage());
    if (usage + delta <= options_.size) break;
    if (!evicted) {
      const auto low =
          static_cast<uint64_t>(static_cast<double>(options_.size) * options_.low_watermark);
      HSMFS_RETURN_IF_ERROR(EvictDownTo(low, delta).status());
      evicted = true;
      continue;
    }
    if (clock_.Now() >= deadline) {
      return ResourceExhaustedError("the cache (" + FormatSizeHuman(options_.size) +
                                    ") is full of data not archived yet; waited " +
                                    FormatDuration(wait) +
                                    " for archiving to free some ([cache] size, write_wait)");
    }
    // Archiving turns copies dual, which makes them evictable.
    clock_.SleepFor(std::chrono::milliseconds(250));
    InvalidateUsage();
    evicted = false;
  }
  std::lock_guard<std::mutex> l(mu_);
  Writing& w = writing_[id];
  if (new_size > w.known_size) {
    w.growth += static_cast<int64_t>(new_size - w.known_size);
    w.known_size = new_size;
  }
  return Status::Ok();
}

void FileCache::Shrunk(EntryId id, uint64_t new_size) {
  std::lock_guard<std::mutex> l(mu_);
  auto [it, fresh] = writing_.try_emplace(id);
  if (!fresh)
    it->second.growth -= static_cast<int64_t>(it->second.known_size) -
                         static_cast<int64_t>(std::min(new_size, it->second.known_size));
  it->second.known_size = new_size;
}

void FileCache::SizeRecorded(EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  writing_.erase(id);
  cached_sum_valid_ = false;
}

void FileCache::RemoveCopyOf(EntryId id) {
  std::error_code ec;
  stdfs::remove(PathOf(id), ec);
  std::lock_guard<std::mutex> l(mu_);
  writing_.erase(id);
  cached_sum_valid_ = false;
}

Status FileCache::RemoveCopy(const Entry& e) {
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(bool dropped, session.DropCachedCopy(e.id, clock_.WallNanos()));
    if (!dropped) return Status::Ok();  // changed meanwhile (rewritten, released)
  }
  // A reader that opened the copy before this keeps reading the unlinked file.
  std::error_code ec;
  stdfs::remove(PathOf(e.id), ec);
  InvalidateUsage();
  if (notifier_) notifier_->InvalidateInode(static_cast<uint64_t>(e.id));
  return Status::Ok();
}

Result<uint64_t> FileCache::EvictDownTo(uint64_t target, uint64_t incoming) {
  std::lock_guard<std::mutex> evicting(evict_mu_);
  HSMFS_ASSIGN_OR_RETURN(uint64_t usage, Usage());
  int evicted = 0;
  uint64_t freed = 0;
  std::unordered_set<EntryId> skipped;
  while (usage + incoming > target) {
    std::vector<Entry> candidates;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
      HSMFS_RETURN_IF_ERROR(
          session.EvictionCandidates(static_cast<int>(skipped.size()) + 64, &candidates));
    }
    bool progress = false;
    for (const Entry& e : candidates) {
      if (usage + incoming <= target) break;
      if (skipped.count(e.id)) continue;
      if (IsOpen(e.id)) {
        skipped.insert(e.id);
        continue;
      }
      HSMFS_RETURN_IF_ERROR(RemoveCopy(e));
      usage -= std::min(usage, e.size);
      freed += e.size;
      ++evicted;
      progress = true;
    }
    if (!progress) break;
  }
  if (evicted > 0) {
    spdlog::info("cache: evicted {} copies ({}), usage now {} of {}", evicted,
                 FormatSizeHuman(freed), FormatSizeHuman(usage), FormatSizeHuman(options_.size));
  }
  return usage;
}

Status FileCache::EvictIfNeeded() {
  HSMFS_ASSIGN_OR_RETURN(uint64_t usage, Usage());
  const auto high =
      static_cast<uint64_t>(static_cast<double>(options_.size) * options_.high_watermark);
  if (usage <= high) return Status::Ok();
  const auto low =
      static_cast<uint64_t>(static_cast<double>(options_.size) * options_.low_watermark);
  return EvictDownTo(low, 0).status();
}

Result<std::unique_ptr<FileCache::Fill>> FileCache::BeginFill(EntryId id, uint64_t bytes) {
  if (bytes > options_.size) {
    return FailedPreconditionError("the file (" + FormatSizeHuman(bytes) +
                                   ") is larger than the whole cache (" +
                                   FormatSizeHuman(options_.size) + ")");
  }
  const auto high =
      static_cast<uint64_t>(static_cast<double>(options_.size) * options_.high_watermark);
  HSMFS_ASSIGN_OR_RETURN(uint64_t usage, Usage());
  if (usage + bytes > high) {
    const auto low =
        static_cast<uint64_t>(static_cast<double>(options_.size) * options_.low_watermark);
    HSMFS_ASSIGN_OR_RETURN(usage, EvictDownTo(std::max(low, bytes), bytes));
    if (usage + bytes > options_.size) {
      return ResourceExhaustedError("cache full: " + FormatSizeHuman(usage) + " of " +
                                    FormatSizeHuman(options_.size) +
                                    " held by copies that are open, pinned or not yet archived");
    }
  }
  uint64_t serial;
  {
    std::lock_guard<std::mutex> l(mu_);
    reserved_ += bytes;
    serial = ++fill_serial_;
  }
  auto fill = std::unique_ptr<Fill>(new Fill(
      this, id, bytes, options_.dir / "tmp" / (std::to_string(id) + "." + std::to_string(serial))));
  return fill;
}

void FileCache::Opened(EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  ++open_[id];
  touched_.insert(id);
}

void FileCache::Closed(EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = open_.find(id);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

bool FileCache::IsOpen(EntryId id) const {
  std::lock_guard<std::mutex> l(mu_);
  return open_.count(id) > 0;
}

void FileCache::Touch(EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  touched_.insert(id);
}

Status FileCache::FlushTouches() {
  std::vector<EntryId> ids;
  {
    std::lock_guard<std::mutex> l(mu_);
    ids.assign(touched_.begin(), touched_.end());
    touched_.clear();
  }
  if (ids.empty()) return Status::Ok();
  Status s = [&]() -> Status {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    HSMFS_RETURN_IF_ERROR(session.Touch(ids, clock_.WallNanos()));
    return tx.Commit();
  }();
  if (!s.ok()) {
    // Kept for the next flush: a lost use would make its copy look idle and
    // be evicted first.
    std::lock_guard<std::mutex> l(mu_);
    touched_.insert(ids.begin(), ids.end());
  }
  return s;
}

Status FileCache::Release(EntryId id) {
  Entry e;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(e, session.Get(id));
  }
  if (!e.cached) return Status::Ok();
  if (e.state != catalog::FileState::kDual) {
    return NotPermittedError(e.backend + "/" + e.backend_path + " is " +
                             std::string(catalog::StateName(e.state)) +
                             ": only archived (dual) copies can be released");
  }
  if (IsOpen(id)) return Status(Code::kBusy, e.backend + "/" + e.backend_path + " is open");
  return RemoveCopy(e);
}

}  // namespace hsmfs::fs
