#pragma once

// Backend: a storage system that holds file data behind the mount (a posix
// archive tier, a tape library, HPSS through hsi/htar, an iRODS zone).
//
// Paths are ObjectPaths: relative to the backend's root, '/'-separated, no "."
// or ".." parts, "" for the root itself.
//
// Contract (backend_contract_test.cc checks it for every implementation):
//  - Implementations are thread-safe; the engine calls them from worker pools.
//  - A Backend never touches the catalog or the cache; the engine moves data
//    between them. Random access is served from the cache, never from a Backend.
//  - Errors: kNotFound (no such object), kAlreadyExists, kNotDirectory,
//    kNotEmpty, kUnavailable (transient: the system is down or busy; retry with
//    backoff), kDeadlineExceeded, kCancelled (the CancelToken fired),
//    kDataLoss (data read back does not match its checksum), kUnimplemented
//    (the backend cannot do this, e.g. rename on tape: the catalog alone renames),
//    kFailedPrecondition (permanent: do not retry).
//  - Read and Put write their destination completely or report failure; a
//    failed Read may leave a partial `dest`, which the caller discards.
//  - Symbolic links (ObjectType::kSymlink) are data: a target string stored
//    and listed verbatim (lstat semantics). A backend never follows one, for
//    any call; the engine answers readlink from the catalog and never Reads or
//    Stages a symlink. A backend that cannot store them fails a symlink Put
//    with kNotPermitted (the mount refuses symlink() there up front:
//    registry.h StoresSymlinks).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/result.h"

namespace hsmfs::backends {

using ObjectPath = std::string;

enum class ObjectType { kFile, kDir, kSymlink };

// Where an object's data sits, as far as the backend knows.
enum class Residency {
  kUnknown,  // the backend does not say
  kDisk,     // on the backend's disk tier: a recall is quick
  kTape,     // only on tape (or another slow tier): a recall mounts media
};

struct ObjectInfo {
  std::string name;  // last path component
  ObjectType type = ObjectType::kFile;
  uint32_t mode = 0644;  // permission bits
  // The owner where the backend keeps one that means something on this host
  // (posix: the file's); -1 elsewhere (the mount shows the configured owner).
  int64_t uid = -1;
  int64_t gid = -1;
  uint64_t size = 0;        // a symlink's: the length of its target
  std::string link_target;  // kSymlink only: the target, verbatim
  int64_t mtime_ns = 0;
  std::string checksum;  // "algo:hex" if the backend keeps one
  // For people (user.hsm.location): e.g. "tape A00012 file 7 block 1024".
  std::string location;
  // For the scheduler: recalls are grouped by volume and sorted by position.
  std::string volume;
  int64_t position = 0;
  Residency residency = Residency::kUnknown;
  // The backend's own HSM state where it keeps one (DMF on iRODS: REG, MIG,
  // DUL, OFL, UNM, NMG, PAR, INV), for hsmctl ls and user.hsm.dmf.
  std::string hsm_state;
  // Put only: the backend itself read the stored copy back and found it has
  // `checksum` (tape units, HPSS bundles), so the archiver need not read it
  // back again.
  bool read_back = false;
};

// Receives a listing in batches as the backend produces it, so that a huge
// directory shows up in the catalog before the listing ends. Returning an error
// stops the listing with that error.
using ListSink = std::function<Status(std::vector<ObjectInfo>&& batch)>;

// Called with the bytes done so far, for progress displays.
using ProgressFn = std::function<void(uint64_t bytes_done)>;

struct ReadOptions {
  const CancelToken* cancel = &CancelToken::None();
  ProgressFn progress;
  // When set, the data read must have this checksum ("algo:hex"), else kDataLoss.
  std::string expect_checksum;
};

// What SetDirAttrs changes; an unset field is left as it is.
struct DirAttrs {
  std::optional<uint32_t> mode;  // permission bits (07777)
  std::optional<int64_t> mtime_ns;
};

struct PutOptions {
  const CancelToken* cancel = &CancelToken::None();
  ProgressFn progress;
  // The checksum of `src` computed by the caller ("algo:hex"), which backends
  // that store checksums record with the object.
  std::string checksum;
  int64_t mtime_ns = 0;  // set on the object where the backend can
  uint32_t mode = 0644;
  // Not empty: store a symbolic link with this target at `path` instead of
  // data (`src` is not read; `checksum` is empty). Replaces what is there,
  // like a file Put; the result has type kSymlink and this target.
  std::string symlink_target;
};

// A temporary file a Put left behind (the process was killed mid-copy).
struct Leftover {
  std::string name;  // as the backend names it (for RemoveLeftover and reports)
  uint64_t size = 0;
  // Provably ours and abandoned: written by this host's hsmfs under a process
  // id that no longer runs. Others may be a Put in progress (here or on
  // another host sharing the root) and are only reported.
  bool stale = false;
};

// What a backend whose data lies in a directory tree of its own (posix)
// offers the engine to keep that tree safe (docs/SEMANTICS.md, "Backend root
// identity"): an identity marker in the root, so that an empty directory where
// the real root should be (an export not mounted yet) is never taken for it,
// and the temporaries of killed Puts. Thread-safe.
class LocalRoot {
 public:
  virtual ~LocalRoot() = default;
  // The id the root's marker holds; "" if it has none. kUnavailable if the
  // root cannot be reached.
  virtual Result<std::string> ReadRootId() = 0;
  // Writes `id` as the root's marker, replacing any.
  virtual Status WriteRootId(const std::string& id) = 0;
  // From now on every operation first checks that the root carries `id` and
  // fails with kUnavailable if it does not ("" turns the check off).
  virtual void ExpectRootId(const std::string& id) = 0;
  virtual Result<std::vector<Leftover>> Leftovers() = 0;
  // Removes a leftover if it is (still) stale; kFailedPrecondition otherwise.
  virtual Status RemoveLeftover(const std::string& name) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Non-null for backends with a root directory of their own (see LocalRoot).
  virtual LocalRoot* local_root() { return nullptr; }

  virtual Result<ObjectInfo> Stat(const ObjectPath& path) = 0;
  // Lists the direct children of `dir` into `sink`, in batches.
  virtual Status List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) = 0;
  // Asks that `path` be brought to the backend's fast tier; may return before it
  // is (backends without tiers return OK at once).
  virtual Status Stage(const ObjectPath& path, Deadline deadline) = 0;
  // A hint from the recall engine: these objects (its queue, in dispatch
  // order) will be Read soon. A backend that can bring many objects to its
  // fast tier in one request does so here (one rule call per batch on iRODS),
  // so that its tape system sees the whole batch at once; Read must still
  // work without it. Default: nothing. Errors are logged, never fatal.
  virtual Status StageMany(const std::vector<ObjectPath>& paths, Deadline deadline);
  // Copies the whole object to the local file `dest` (created or truncated).
  // `dest` must name a regular file or nothing: a backend may remove or rename
  // over it (hsi, htar), so a device such as /dev/null is refused or worse.
  // To check an object without keeping it, use ReadBack.
  virtual Status Read(const ObjectPath& path, const std::filesystem::path& dest,
                      const ReadOptions& options) = 0;
  // Stores the local file `src` as `path`, creating missing parent directories.
  // Returns what the backend now holds.
  virtual Result<ObjectInfo> Put(const std::filesystem::path& src, const ObjectPath& path,
                                 const PutOptions& options) = 0;
  // Removes a file or an empty directory.
  virtual Status Remove(const ObjectPath& path) = 0;
  // Renames within the backend; kUnimplemented where the backend cannot.
  virtual Status Rename(const ObjectPath& from, const ObjectPath& to) = 0;
  // Creates the directory `path` with permission bits `mode` (where the backend
  // keeps them); kAlreadyExists if it exists, kNotFound without its parent.
  virtual Status MakeDir(const ObjectPath& path, uint32_t mode) = 0;
  // Sets the permission bits and/or the modification time of the existing
  // directory `path`, where the backend keeps them (posix: both; HPSS: the
  // mode), so that chmod, rsync -a and tar -x survive a catalog rebuilt from
  // the backend. A directory made by a file's Put (its missing parent) gets
  // its own mode this way. Default: kUnimplemented (the catalog alone keeps
  // them).
  virtual Status SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs);
};

// Joins a directory path and a name ("" + "a" = "a", "a" + "b" = "a/b").
std::string JoinObjectPath(std::string_view dir, std::string_view name);
// The parent of "a/b/c" is "a/b"; of "a" is "".
std::string ParentObjectPath(std::string_view path);
// kInvalidArgument unless `path` is a well-formed ObjectPath.
Status ValidateObjectPath(std::string_view path);

// Whether a backend of type `type` ("posix", "hpss", ...) can store an object
// named `name` (one path component): kInvalidArgument naming the character it
// cannot take. Not a Backend method, so that the mount can ask before any
// backend exists and refuse the name when it is created, rather than fail its
// archive job later.
Status CheckStorableName(std::string_view type, std::string_view name);

// hsi reads its commands line by line and has no escape for these (HsiQuote).
inline constexpr std::string_view kHsiUnquotableChars = "\n\r;\"";

// Reads `path` into a temporary file in `scratch_dir` and removes it again:
// for verifying an object against options.expect_checksum without keeping it.
Status ReadBack(Backend& backend, const ObjectPath& path, const std::filesystem::path& scratch_dir,
                const ReadOptions& options);

}  // namespace hsmfs::backends
