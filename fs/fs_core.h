#pragma once

// FsCore: the file system's namespace and open semantics, with no FUSE types,
// so that it can be tested without a mount. fs/fuse_ops.cc calls exactly one
// FsCore method per FUSE request.
//
// Inode numbers are catalog entry ids (the root is 1). Metadata operations
// (GetAttr, GetXattr, ListXattr, StatFs) answer from the catalog only and never
// touch a backend. Lookup and ReadDir may wait for a directory's first listing
// (at most list_timeout); they complete through a callback, so the FUSE layer
// never parks a worker thread on a backend.
//
// POSIX promises: st_size is the real size; st_blocks is 0 unless a copy is in
// the cache (so du shows what occupies local disk); directories have nlink 1
// (subdirectory count unknown, which tells find not to use the leaf
// optimisation); owner is the user running the mount.
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/job_queue.h"
#include "common/result.h"
#include "fs/engine.h"

namespace hsmfs::fs {

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type and permission bits, as in st_mode
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  int64_t mtime_ns = 0;
};

// Receives directory entries for one readdir reply. Add returns false when the
// reply is full (the entry was not taken). Finish is called exactly once.
class DirSink {
 public:
  virtual ~DirSink() = default;
  virtual bool Add(std::string_view name, const Attr& attr, uint64_t next_offset) = 0;
  virtual void Finish(Status status) = 0;
};

struct FsStats {
  uint64_t block_size = 4096;
  uint64_t blocks = 0;
  uint64_t blocks_free = 0;
  uint64_t files = 0;
  uint64_t files_free = 0;
  uint64_t name_max = 255;
};

// An open file: reads go straight to `fd`, the cached copy.
struct OpenFile {
  int fd = -1;
  bool keep_cache = true;  // the kernel may keep cached pages across opens
};

// The extended attributes hsmfs serves (DESIGN.md section 1).
inline constexpr std::string_view kXattrState = "user.hsm.state";
inline constexpr std::string_view kXattrBackend = "user.hsm.backend";
inline constexpr std::string_view kXattrLocation = "user.hsm.location";
inline constexpr std::string_view kXattrChecksum = "user.hsm.checksum";
inline constexpr std::string_view kXattrError = "user.hsm.error";
// While a file is staging: its place in the recall queue (0: running) and the
// estimated time until it is online ("45s").
inline constexpr std::string_view kXattrQueuePosition = "user.hsm.queue_position";
inline constexpr std::string_view kXattrEta = "user.hsm.eta";
// Set to queue a recall and return at once; to drop the cached copy of a dual file.
inline constexpr std::string_view kXattrStage = "user.hsm.stage";
inline constexpr std::string_view kXattrRelease = "user.hsm.release";
// On the mount root only: error-site counters ("E-LIST-01=2 ...", docs/ERRORS.md).
inline constexpr std::string_view kXattrStats = "user.hsm.stats";

class FsCore {
 public:
  struct Options {
    uint32_t uid = 0;
    uint32_t gid = 0;
  };

  // REQUIRES: `engine` runs jobs (it has a Stager) for files to be recalled.
  FsCore(Engine& engine, Options options);
  // Shuts the engine down first, so that no callback outlives the core.
  ~FsCore();
  FsCore(const FsCore&) = delete;
  FsCore& operator=(const FsCore&) = delete;

  void Lookup(uint64_t parent, std::string name, std::function<void(Result<Attr>)> done);
  Result<Attr> GetAttr(uint64_t ino);
  // Streams the entries of directory `ino` after cookie `offset` (0 = start)
  // into `sink`, then finishes it.
  void ReadDir(uint64_t ino, uint64_t offset, std::shared_ptr<DirSink> sink);
  // nullopt when the entry has no attribute `name` (ENODATA, not an error).
  Result<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Result<FsStats> StatFs();
  // Sets `name` (user.hsm.stage, user.hsm.release) on behalf of `who`.
  Status SetXattr(uint64_t ino, std::string_view name, const catalog::Requester& who);

  // Opens a file for reading (DESIGN.md section 1, docs/SEMANTICS.md). A cached
  // file opens at once. An offline file is recalled: with O_NONBLOCK `done`
  // gets kNotResident (EAGAIN) at once and the recall stays queued; otherwise
  // `done` is called when the recall finishes (the open succeeds), fails
  // (EIO with the reason), after stage_timeout (kDeadlineExceeded), or when
  // Interrupt() is called (kCancelled; the recall goes on). Processes in
  // [stage] deny_recall_from get kPermissionDenied and queue nothing.
  // Returns a wait id for Interrupt when `done` will be called later, else 0.
  uint64_t Open(uint64_t ino, int flags, const catalog::Requester& who,
                std::function<void(Result<OpenFile>)> done);
  // Ends a waiting open with kCancelled (the request was interrupted).
  void Interrupt(uint64_t wait_id);
  // The kernel closed the last reference to an open file.
  void Release(uint64_t ino, const OpenFile& file);

  Duration entry_timeout() const { return engine_.config().mount.entry_timeout; }
  Duration attr_timeout() const { return engine_.config().mount.attr_timeout; }
  Engine& engine() { return engine_; }

 private:
  struct OpenWait;
  Attr ToAttr(const catalog::Entry& e) const;
  Result<catalog::Entry> GetEntry(uint64_t ino);
  // Opens the cached copy; kNotFound if the copy is gone.
  Result<OpenFile> OpenCached(const catalog::Entry& e);
  bool DeniedRecall(const catalog::Requester& who);
  uint64_t WaitForRecall(const catalog::Entry& e, std::function<void(Result<OpenFile>)> done);
  void CompleteWait(uint64_t wait_id, const Status& s);
  static std::optional<std::string> XattrOf(const catalog::Entry& e, std::string_view name);
  // kNotFound for root children that are not configured backends.
  bool Visible(const catalog::Entry& e) const;
  void EmitEntries(const catalog::Entry& dir, uint64_t offset, DirSink& sink);

  Engine& engine_;
  const Options options_;
  std::mutex waits_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<OpenWait>> waits_;  // GUARDED_BY(waits_mu_)
  uint64_t next_wait_ = 1;                                         // GUARDED_BY(waits_mu_)
  std::atomic<uint64_t> denied_recalls_{0};
  std::mutex stats_mu_;
  TimePoint stats_until_;        // GUARDED_BY(stats_mu_)
  catalog::CatalogStats stats_;  // GUARDED_BY(stats_mu_)
};

}  // namespace hsmfs::fs
