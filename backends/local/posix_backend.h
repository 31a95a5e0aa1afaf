#pragma once

// PosixBackend: the archive tier is a plain directory tree `root` (a local disk,
// an NFS or Lustre export, a mounted object store). Used for vault-style
// backends and as the reference implementation of the Backend contract.
//
// Regular files, directories and symlinks are objects; sockets, fifos and
// devices under the root are not listed. A symlink is listed with lstat's
// attributes and its target (readlinkat) and is never followed; Put of one
// makes a real symlink with symlinkat in its parent directory. If the root itself is missing (the
// export is unmounted or renamed away) every call fails with kUnavailable, so
// the engine keeps the catalog as it is instead of concluding files were deleted.
// `stage_delay` makes every Read wait that long first (on the injected Clock),
// to simulate tape recall latency. Thread-safe (no shared mutable state).

#include <filesystem>

#include "backends/backend.h"

namespace hsmfs::backends {

class PosixBackend final : public Backend {
 public:
  PosixBackend(std::filesystem::path root, Duration stage_delay, Clock& clock);

  Result<ObjectInfo> Stat(const ObjectPath& path) override;
  Status List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) override;
  Status Stage(const ObjectPath& path, Deadline deadline) override;
  Status Read(const ObjectPath& path, const std::filesystem::path& dest,
              const ReadOptions& options) override;
  Result<ObjectInfo> Put(const std::filesystem::path& src, const ObjectPath& path,
                         const PutOptions& options) override;
  Status Remove(const ObjectPath& path) override;
  Status Rename(const ObjectPath& from, const ObjectPath& to) override;
  Status MakeDir(const ObjectPath& path, uint32_t mode) override;

 private:
  // Validates `path` and checks that the root is reachable; returns the full path.
  Result<std::filesystem::path> Resolve(const ObjectPath& path) const;
  Status MakeParents(const ObjectPath& path) const;
  // Put of a symlink (options.symlink_target) at `full` (= Resolve(path)).
  Result<ObjectInfo> PutSymlink(const std::filesystem::path& full, const ObjectPath& path,
                                const PutOptions& options);

  const std::filesystem::path root_;
  const Duration stage_delay_;
  Clock& clock_;
};

}  // namespace hsmfs::backends
