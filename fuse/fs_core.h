#pragma once

// FsCore: the file system's namespace and open semantics, with no FUSE types,
// so that it can be tested without a mount. fuse/fuse_ops.cc calls exactly one
// FsCore method per FUSE request. It is the POSIX translation (inodes, open
// descriptors, flags, files unlinked while open) on top of engine::Service:
// the write path it shares with every front end (entries made, new versions,
// the open-writer registry, settle) is the Service's Writes.
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
// optimisation). Symlinks are S_IFLNK|0777 with st_size the length of their
// target, which readlink returns from the catalog (never a recall, never
// resolved by hsmfs). Owners and permission bits are real (docs/SEMANTICS.md
// "Permissions"): what a process creates is its uid's (its gid's, or a setgid
// parent's group), a chown is kept in the catalog, a posix backend's entries
// show the owner on its disk, other backends' their configured uid/gid (by
// default Options::uid/gid, the user running the mount). The kernel checks
// access against them (the mount always uses default_permissions), so
// FsCore itself checks nothing but the write rules (EROFS).
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
#include "engine/engine.h"
#include "engine/service.h"

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
  int64_t ctime_ns = 0;  // never earlier than mtime_ns (docs/SEMANTICS.md "Times")
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
  uint64_t name_max = kNameMax;
};

// An open file: reads go straight to `fd`, the cached copy.
struct OpenFile {
  int fd = -1;
  bool keep_cache = true;  // the kernel may keep cached pages across opens
  // Opened for writing. Informational: FsCore knows its writers by `fd` (a
  // file made by create is one, whatever its open flags).
  bool writable = false;
};

// What a setattr changes.
struct AttrChange {
  std::optional<uint32_t> mode;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime_ns;
  std::optional<uint32_t> uid;  // chown; the kernel checked who may
  std::optional<uint32_t> gid;  // chgrp
};

// The extended attributes hsmfs serves (DESIGN.md section 1).
inline constexpr std::string_view kXattrState = "user.hsm.state";
inline constexpr std::string_view kXattrBackend = "user.hsm.backend";
inline constexpr std::string_view kXattrLocation = "user.hsm.location";
inline constexpr std::string_view kXattrChecksum = "user.hsm.checksum";
inline constexpr std::string_view kXattrError = "user.hsm.error";
// The DMF code dm_ilist users know (REG, MIG, DUL, OFL, UNM, ...; catalog DmfCode).
inline constexpr std::string_view kXattrDmf = "user.hsm.dmf";
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
    // The owner of the root, and of what a backend lists without an owner
    // unless its config says otherwise.
    uint32_t uid = 0;
    uint32_t gid = 0;
    // Non-empty (hsmctl put): files created or rewritten through this core
    // stay `failed` with this error (catalog::IncompletePutError) until the
    // caller clears it, so that nothing archives a copy still being written.
    std::string incomplete_error = {};
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
  // The kernel closed the last reference to an open file. The last writer's
  // close starts the file's settle time (then it is archived). The last close
  // of a file unlinked while open drops its cached copy.
  void Release(uint64_t ino, const OpenFile& file);

  // The write path (docs/SEMANTICS.md "Writing"): only where the backend's
  // `writable` allows, EROFS elsewhere. Names longer than NAME_MAX give
  // kNameTooLong, names the backend cannot store kInvalidArgument. A change
  // inside a directory sets its mtime and ctime. A file unlinked (or renamed
  // over) while open keeps working through its open descriptors (GetAttr,
  // Write, SetAttr) until its last Release, and is never archived.
  Result<std::pair<Attr, OpenFile>> Create(uint64_t parent, std::string_view name, uint32_t mode,
                                           int flags, const catalog::Requester& who);
  // Made by `who` (its uid and gid own it; a setgid parent's group wins).
  Result<Attr> MakeDir(uint64_t parent, std::string_view name, uint32_t mode,
                       const catalog::Requester& who);
  // Makes the symlink `name` -> `target` (stored verbatim, archived like a
  // file); kNotPermitted (EPERM) on a backend that cannot store symlinks.
  Result<Attr> Symlink(uint64_t parent, std::string_view name, std::string_view target,
                       const catalog::Requester& who);
  // The target of symlink `ino`, from the catalog; kInvalidArgument (EINVAL,
  // as readlink(2)) for anything else.
  Result<std::string> ReadLink(uint64_t ino);
  // Hard links: always kNotPermitted (EPERM); archives hold one path per file.
  Status Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status Unlink(uint64_t parent, std::string_view name);
  Status RemoveDir(uint64_t parent, std::string_view name);
  // `flags`: 0 or RENAME_NOREPLACE (RENAME_EXCHANGE is not supported).
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, unsigned flags);
  Result<size_t> Write(uint64_t ino, const OpenFile& file, const char* data, size_t size,
                       uint64_t offset);
  Status Fsync(uint64_t ino, const OpenFile& file);
  // Changes attributes; may wait for a recall (truncating an offline file to
  // a size other than 0), so it completes through `done`.
  void SetAttr(uint64_t ino, const OpenFile* file, const AttrChange& change,
               const catalog::Requester& who, std::function<void(Result<Attr>)> done);

  Duration entry_timeout() const { return engine_.config().mount.entry_timeout; }
  Duration attr_timeout() const { return engine_.config().mount.attr_timeout; }
  Engine& engine() { return engine_; }

 private:
  struct OpenWait;
  Attr ToAttr(const catalog::Entry& e) const;
  // The owner `e` shows: its own, else its backend's configured one, else ours.
  std::pair<uint32_t, uint32_t> OwnerOf(const catalog::Entry& e) const;
  Result<catalog::Entry> GetEntry(uint64_t ino);
  // Opens the cached copy; kNotFound if the copy is gone.
  Result<OpenFile> OpenCached(const catalog::Entry& e);
  bool DeniedRecall(const catalog::Requester& who);
  // Waits for `e`'s recall, then calls `then` (OK: cached now).
  uint64_t WaitForRecall(const catalog::Entry& e, std::function<void(Status)> then);
  void CompleteWait(uint64_t wait_id, const Status& s);
  // Opens the cached copy read-write, for an open that may write.
  Result<OpenFile> OpenForWrite(const catalog::Entry& e, int flags);
  // Writes::BeginModify, with this core's incomplete mark.
  Status BeginModify(catalog::EntryId id, bool cached);
  // Adds a file or directory made through the mount to the catalog: `online`,
  // not on the backend yet (create and mkdir).
  Result<catalog::Entry> AddLocalEntry(uint64_t parent, std::string_view name,
                                       catalog::EntryType type, uint32_t mode,
                                       const catalog::Requester& who,
                                       std::string_view link_target = {});
  // SetAttr of a symlink: a new mtime (lutimes, cp -a) is archived again with it.
  Result<Attr> SetSymlinkAttr(const catalog::Entry& e, const AttrChange& change);
  // kNameTooLong past NAME_MAX; kInvalidArgument if `backend` cannot store it.
  Status CheckName(const std::string& backend, std::string_view name) const;
  // Counts an open descriptor of `id` (Release uncounts it): for files unlinked
  // while open.
  void CountOpen(catalog::EntryId id);
  // The attributes of a file unlinked while open; nullopt if `id` is not one.
  std::optional<Attr> UnlinkedAttr(catalog::EntryId id);
  Result<Attr> SetUnlinkedAttr(catalog::EntryId id, const OpenFile* file, const AttrChange& change);
  // EROFS unless backend-relative `path` of `backend` is writable.
  Status CheckWritable(const std::string& backend, const std::string& path) const;
  void Settle(catalog::EntryId id) { service_.writes().Settle(id); }
  Result<catalog::Entry> LookupChild(uint64_t parent, std::string_view name);
  // Deletes an entry (and its copy, and its backend object where allowed).
  Status DeleteEntry(const catalog::Entry& e);
  // Sets the size of `id`'s cached copy (through `file` if given). With
  // `modified`, the entry becomes a new version first (BeginModify; *modified
  // says whether it did, so that it settles even if truncating then failed).
  // A size the cache can never hold fails before anything changes (EFBIG).
  Status Truncate(catalog::EntryId id, const OpenFile* file, uint64_t size, bool* modified);
  static std::optional<std::string> XattrOf(const catalog::Entry& e, std::string_view name);
  // kNotFound for root children that are not configured backends.
  bool Visible(const catalog::Entry& e) const;
  void EmitEntries(const catalog::Entry& dir, uint64_t offset, DirSink& sink);

  Engine& engine_;
  Service service_;
  const Options options_;
  std::mutex waits_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<OpenWait>> waits_;  // GUARDED_BY(waits_mu_)
  uint64_t next_wait_ = 1;                                         // GUARDED_BY(waits_mu_)
  std::atomic<uint64_t> denied_recalls_{0};

  // Descriptors open for writing: whether each wrote. (Which entries have
  // writers, and whether any wrote, is the engine's OpenWriters.)
  std::mutex write_mu_;                            // Acquire after no other lock of ours.
  std::unordered_map<int, bool> handle_modified_;  // GUARDED_BY(write_mu_): fd -> wrote
  // Open descriptors per entry, and the files unlinked while open (their
  // attributes as at the unlink; size and times come from the cached copy,
  // which stays until the last close).
  std::unordered_map<catalog::EntryId, int> open_count_;  // GUARDED_BY(write_mu_)
  std::unordered_map<catalog::EntryId, Attr> unlinked_;   // GUARDED_BY(write_mu_)
  std::mutex stats_mu_;
  TimePoint stats_until_;        // GUARDED_BY(stats_mu_)
  catalog::CatalogStats stats_;  // GUARDED_BY(stats_mu_)
};

}  // namespace hsmfs::fs
