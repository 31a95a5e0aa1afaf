#pragma once

// Catalog: the database that is the single source of truth for what the
// mount shows (the namespace, file states, checksums, locations) and for all
// durable work (jobs). Several processes may open one catalog at once (the
// mount, hsmctl, hsmtape). This header is the interface every user sees; it
// names no database type. The implementation is chosen by the catalog's
// location when it is opened (catalog/factory.cc): today the embedded SQLite
// one (catalog/sqlite/, WAL mode lets readers proceed while one writer
// commits); a second one implements catalog/session_impl.h in its own folder.
//
// Threading: a Catalog is thread-safe. Work is done through a Session, which
// borrows one connection (with its prepared statements) from a pool for as long
// as it lives. A Session is used by one thread at a time; a thread must not hold
// two Sessions of one Catalog at once (checked: it would deadlock a full pool).
//
// Errors: kNotFound for missing entries; kUnavailable when the database stays
// locked past the busy timeout (retry); kFailedPrecondition when the file was
// written by a newer schema; kInternal/kDataLoss for database failures.

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace hsmfs {
struct CatalogConfig;
}  // namespace hsmfs

namespace hsmfs::catalog {

using EntryId = int64_t;
inline constexpr EntryId kRootId = 1;

// Stored as the `type` column. A symlink's content is its target
// (Entry::link_target): it has no cached copy and is never recalled.
enum class EntryType { kFile = 1, kDir = 2, kSymlink = 3 };

// The states of DESIGN.md section 1. Stored by name.
enum class FileState { kOffline, kStaging, kOnline, kQueued, kArchiving, kDual, kFailed };

std::string_view StateName(FileState state);
Result<FileState> ParseState(std::string_view name);
// The DMF code users know from dm_ilist: REG, MIG, DUL, OFL, UNM ("ERR" for failed).
std::string_view DmfCode(FileState state);
// The same for an entry: an offline entry shows the backend's own code where
// the backend keeps one (Entry::hsm_state), so that an iRODS object on DMF disk
// reads DUL and one on tape OFL, as dm_ilist shows them.
struct Entry;
std::string_view DmfCode(const Entry& e);

// Set in the mode of an entry given to UpsertListed when its permission bits
// are a configured default (a backend's file_mode/dir_mode), not the backend's
// own: a new entry gets them, a known entry keeps its bits (a chmod through the
// mount stays).
inline constexpr uint32_t kListedModeIsDefault = 1u << 31;

// Whether `name` may name an entry: not empty, ".", "..", and without '/'
// or NUL. Every path that adds or renames an entry checks it: such a name can
// never be archived, and the kernel fails a whole readdir (EIO) on one of them.
bool ValidEntryName(std::string_view name);
// kInvalidArgument naming the fault unless ValidEntryName(name).
Status CheckEntryName(std::string_view name);

// hsmctl put copies a file in as `failed` with this error until the copy is
// complete, so that no engine archives it half-written (a put killed midway
// leaves it so; the next put of that name or `hsmctl fsck --repair` clears
// it). The pid tells a put still running from one that died.
std::string IncompletePutError(int64_t pid);
// The pid of IncompletePutError(pid), or nullopt for any other error.
std::optional<int64_t> IncompletePutPid(std::string_view error);

struct Entry {
  EntryId id = 0;
  EntryId parent = 0;
  std::string name;
  EntryType type = EntryType::kFile;
  uint32_t mode = 0644;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string backend;       // "" only for the root
  std::string backend_path;  // relative to the backend root; "" for a backend's top directory
  FileState state = FileState::kOffline;
  bool cached = false;
  std::string checksum;
  std::string location;
  std::string volume;
  int64_t position = 0;
  std::string error;
  int64_t seen_gen = 0;
  int64_t last_access_ns = 0;  // LRU order of cached copies
  bool pinned = false;         // eviction leaves it alone
  int64_t version = 0;         // bumped by every modification through the mount
  bool on_backend = true;      // the backend holds some version of it
  std::string hsm_state;       // the backend's HSM code from its listing (DMF), "" if none
  int64_t ctime_ns = 0;        // last change through the mount; 0: never (shown as mtime)
  bool local_mtime = false;    // a directory's mtime set through the mount: listings keep it
  // The owner (catalog columns uid, gid; NULL is -1). -1: the backend keeps
  // none and nobody chowned it; the mount shows the backend's configured owner.
  int64_t uid = -1;
  int64_t gid = -1;
  std::string link_target;  // symlinks only: what readlink returns (schema 10)

  bool is_dir() const { return type == EntryType::kDir; }
  bool is_symlink() const { return type == EntryType::kSymlink; }
  // Data that exists only in the cache must never be dropped by a listing.
  bool holds_unarchived_data() const;
  // "backend/path" for messages and logs ("backend/" for a backend's root).
  std::string display() const;
};

struct DirSync {
  int64_t listed_ns = 0;  // wall clock of the listing's end
  std::string listed_by;  // "hsmfs", "hsmctl sync", ...
  int64_t gen = 0;        // generation stamped on every entry the listing saw
  int64_t entries = 0;    // how many entries it saw
};

// What a listing changed, so that the mount can invalidate kernel caches.
struct ListingDelta {
  std::vector<EntryId> changed;                          // attributes changed
  std::vector<std::pair<EntryId, std::string>> added;    // (parent, name)
  std::vector<std::pair<EntryId, std::string>> removed;  // (parent, name)
  // FinishListing held back this many removals of a suspect listing (none
  // were made) out of `known` children.
  int64_t held = 0;
  int64_t known = 0;
};

// A listing that would remove more than half of at least this many known
// children of a directory is suspect (an export not mounted, a directory
// swapped for an empty one): its removals wait for confirmation.
inline constexpr int64_t kSuspectMinKnown = 10;

struct CatalogStats {
  int64_t files = 0;
  int64_t dirs = 0;
  uint64_t bytes = 0;         // sum of file sizes
  uint64_t cached_bytes = 0;  // sum of sizes of files with a cached copy
};

class Catalog;
class SessionImpl;
class CatalogImpl;

class Session {
 public:
  ~Session();
  Session(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session& operator=(Session&&) = delete;

  // A write transaction (it takes the write lock at once); rolled back
  // unless committed.
  class Transaction {
   public:
    Transaction(Transaction&& o) noexcept : impl_(o.impl_) { o.impl_ = nullptr; }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();
    Status Commit();

   private:
    friend class Session;
    explicit Transaction(SessionImpl* impl) : impl_(impl) {}
    SessionImpl* impl_;
  };
  Result<Transaction> Begin();

  Result<Entry> Get(EntryId id);
  // kNotFound if `parent` has no child `name`.
  Result<Entry> Lookup(EntryId parent, std::string_view name);
  // Appends up to `limit` children of `dir` with id > `after`, in id order
  // (stable under concurrent inserts, so it can back readdir offsets).
  Status Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out);
  // Resolves "backend/dir/file" (no leading slash; "" is the root).
  Result<Entry> Resolve(std::string_view path);
  // Ensures the top directory for `backend` exists under the root (created
  // with mtime `now_ns` and mode 0755). A configured `mode` is set on it even
  // if it exists: the config is the truth for a backend's top directory.
  Result<Entry> EnsureBackendRoot(std::string_view backend, int64_t now_ns,
                                  std::optional<uint32_t> mode = std::nullopt);

  Result<std::optional<DirSync>> GetSync(EntryId dir);
  // Records one object a backend listing of `dir` reported. Files with data
  // only in the cache keep their local attributes; a cached copy whose backend
  // version changed (size or mtime) is marked offline again, unless the engine
  // changed the file after the listing began (seen_gen > gen). A listed owner
  // (uid/gid >= 0) replaces the catalog's only for a new entry, one without an
  // owner, or a file changed on the backend, so that a chown through the mount
  // stays. With `add_names` false, a name the catalog does not have (or has
  // with another type) is left alone: the listing may predate a change made
  // through the mount.
  Status UpsertListed(const Entry& dir, const Entry& listed, int64_t gen, ListingDelta* delta,
                      bool add_names = true);
  // Ends a complete listing: drops children not seen by generation `gen`
  // (never entries holding unarchived data) and records the sync. A suspect
  // listing (see kSuspectMinKnown) drops nothing and records no sync unless
  // `confirmed`; delta->held then says how many removals it held back.
  Status FinishListing(const Entry& dir, int64_t gen, std::string_view listed_by, int64_t count,
                       int64_t now_ns, ListingDelta* delta, bool confirmed = false);

  Result<CatalogStats> Stats();

  // The file cache's view. Bytes of all cached copies.
  Result<uint64_t> CachedBytes();
  // Cached `dual` copies that eviction may drop (not pinned), least recently
  // used first.
  Status EvictionCandidates(int limit, std::vector<Entry>* out);
  // Drops the cached flag of a `dual` entry (state `offline`). False if the
  // entry was not a cached dual copy any more.
  Result<bool> DropCachedCopy(EntryId id, int64_t now_ns);
  // Records that cached copies were used (LRU order).
  Status Touch(const std::vector<EntryId>& ids, int64_t now_ns);
  Status SetPinned(EntryId id, bool pinned);
  // Appends the ids of all entries with a cached copy (the cache's check at
  // start).
  Status CachedIds(std::vector<EntryId>* out);
  // The cached copy of `id` is gone from disk: a `dual` entry becomes
  // `offline`; any other becomes `failed` (its data was never archived).
  Status MarkCachedCopyLost(EntryId id);

  // The write path: entries created and changed through the mount.
  // Inserts `e` (id assigned); kAlreadyExists if its name is taken.
  Result<Entry> Create(const Entry& e);
  // Removes an entry and, for a directory, everything below it.
  Status Remove(EntryId id);
  Result<bool> HasChildren(EntryId dir);
  // Starts a modification of a file's data: state online, version + 1, error
  // cleared, `cached` as given. Returns the entry as it is now.
  Result<Entry> BeginModify(EntryId id, bool cached, int64_t now_ns);
  Status SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns);
  Status SetMode(EntryId id, uint32_t mode);
  // chown: -1 leaves that id as it is.
  Status SetOwner(EntryId id, int64_t uid, int64_t gid);
  // Sets the mtime; a directory's stays as set (listings no longer change it).
  Status SetMtime(EntryId id, int64_t mtime_ns);
  // Records a change of `id`'s metadata at `now_ns` (st_ctime).
  Status SetCtime(EntryId id, int64_t now_ns);
  // A name was added to or removed from directory `dir` at `now_ns`: its
  // mtime and ctime change, as on a local disk, and listings keep them.
  Status DirChanged(EntryId dir, int64_t now_ns);
  // Makes a file `failed` with `error` (IncompletePutError): nothing archives
  // it until ClearIncomplete.
  Status MarkIncomplete(EntryId id, std::string_view error);
  // Ends MarkIncomplete: the file is `online` again (it settles and archives
  // as usual). False if it no longer carries `error` (changed meanwhile).
  Result<bool> ClearIncomplete(EntryId id, std::string_view error);
  // Moves `id` to `new_parent`/`new_name` with backend path `new_path`; the
  // backend paths of everything below a directory follow.
  Status Move(EntryId id, EntryId new_parent, std::string_view new_name, std::string_view new_path);
  // Marks an entry and its parent chain as present on the backend (directories
  // made through the mount become `dual`: the backend made them for us).
  Status SetOnBackend(EntryId id);

  // Checks and repairs (hsmctl fsck).
  // Appends `id` and everything below it, top down (by depth, then id).
  Status Subtree(EntryId id, std::vector<Entry>* out);
  // Appends the entries (the root aside) whose name ValidEntryName refuses,
  // in id order.
  Status BadlyNamed(std::vector<Entry>* out);
  // Appends up to `limit` files (no directories or symlinks) with id >
  // `after`, in id order.
  Status Files(EntryId after, int limit, std::vector<Entry>* out);
  // Makes `id` a new version to archive: state `online`, error cleared, not
  // on the backend, version + 1.
  Status ResetForArchive(EntryId id);
  // Drops what the mount holds of `id` beyond the backend's version: state
  // `offline`, not cached, error cleared, version + 1.
  Status RevertToBackendVersion(EntryId id);
  // Forgets that `dir` was listed, so that its next use lists it again.
  Status ForgetListing(EntryId dir);

  Result<std::optional<std::string>> GetMeta(std::string_view key);
  Status SetMeta(std::string_view key, std::string_view value);

 private:
  friend class Catalog;
  friend class SessionAccess;
  Session(Catalog* catalog, std::unique_ptr<SessionImpl> impl);

  Catalog* catalog_;
  std::unique_ptr<SessionImpl> impl_;
};

class Catalog {
 public:
  struct Options {
    bool create = true;            // create the file if missing
    int busy_timeout_ms = 10'000;  // wait this long for another writer
    int max_connections = 64;
  };

  // Opens (creating and migrating as allowed) the catalog at `path`, with the
  // implementation that serves that location (today: a SQLite file).
  // ":memory:" gives a private in-memory catalog served by a single
  // connection.
  static Result<std::unique_ptr<Catalog>> Open(const std::filesystem::path& path, Options options);
  static Result<std::unique_ptr<Catalog>> Open(const std::filesystem::path& path) {
    return Open(path, Options());
  }
  // The catalog a config's [catalog] table names.
  static Result<std::unique_ptr<Catalog>> Open(const CatalogConfig& config);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Borrows a connection; blocks while all max_connections are in use.
  Result<Session> Acquire();
  const std::filesystem::path& path() const { return path_; }

 private:
  friend class Session;
  Catalog(std::filesystem::path path, Options options, std::unique_ptr<CatalogImpl> impl);
  void Release(std::unique_ptr<SessionImpl> impl);

  const std::filesystem::path path_;
  const Options options_;
  const std::unique_ptr<CatalogImpl> impl_;
  const int max_connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SessionImpl>> free_;  // GUARDED_BY(mu_)
  int open_ = 0;                                    // GUARDED_BY(mu_)
};

}  // namespace hsmfs::catalog
