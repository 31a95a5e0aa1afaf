#pragma once

// PosixBackend: the archive tier is a plain directory tree `root` (a local disk,
// an NFS or Lustre export, a mounted object store). Used for vault-style
// backends and as the reference implementation of the Backend contract.
//
// Regular files, directories and symlinks are objects; sockets, fifos and
// devices under the root are not listed. A symlink is listed with lstat's
// attributes and its target (readlinkat) and is never followed; Put of one
// makes a real symlink with symlinkat (in .hsmfs-tmp, renamed into place).
// If the root itself is missing (the
// export is unmounted or renamed away) every call fails with kUnavailable, so
// the engine keeps the catalog as it is instead of concluding files were deleted.
//
// Confinement: every path is resolved beneath the root and never through a
// symlink (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk of
// O_NOFOLLOW opens where the kernel lacks openat2), so a symlink planted in
// the tree can neither serve a file from elsewhere nor send an archived file
// elsewhere: such a call fails with kPermissionDenied. (A symlink stored as
// data is listed and Stat'ed as one; only passing through it is refused.)
//
// The root's top holds two reserved names, never listed: `.hsmfs-root` (the
// identity marker, see LocalRoot) and `.hsmfs-tmp/`, where Put writes its
// temporaries (`<16 hex>.<pid>.<host>`, always within NAME_MAX) before renaming
// them into place; a temporary left by a killed Put stays there, outside the
// namespace, until hsmctl fsck removes it.
// `stage_delay` makes every Read wait that long first (on the injected Clock),
// to simulate tape recall latency. Thread-safe (no shared mutable state).

#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "common/fd.h"

namespace hsmfs::backends {

class PosixBackend final : public Backend, public LocalRoot {
 public:
  PosixBackend(std::filesystem::path root, Duration stage_delay, Clock& clock);

  LocalRoot* local_root() override { return this; }
  Result<std::string> ReadRootId() override;
  Status WriteRootId(const std::string& id) override;
  void ExpectRootId(const std::string& id) override;
  Result<std::vector<Leftover>> Leftovers() override;
  Status RemoveLeftover(const std::string& name) override;

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
  Status SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) override;

 private:
  // Opens the root directory: kUnavailable if it cannot be reached or does
  // not carry the expected id.
  Result<Fd> OpenRoot();
  // Validates `path`, refuses the reserved names and opens the root.
  Result<Fd> Resolve(const ObjectPath& path);
  // Put of a symlink (options.symlink_target): `root` and `parent` are open
  // descriptors of the root and of the target's directory.
  Result<ObjectInfo> PutSymlink(int root, int parent, const ObjectPath& path,
                                const PutOptions& options);
  // Writes `src` into a new temporary `name` in directory `dir`.
  Status WriteTemp(int in, int dir, const std::string& name, const std::filesystem::path& src,
                   const PutOptions& options);

  const std::filesystem::path root_;
  const Duration stage_delay_;
  Clock& clock_;
  std::mutex mu_;
  std::string expected_id_;  // GUARDED_BY(mu_)
  // The root directory (st_dev, st_ino) last found to carry expected_id_: the
  // marker is read again only when the directory there changes.
  dev_t verified_dev_ = 0;  // GUARDED_BY(mu_)
  ino_t verified_ino_ = 0;  // GUARDED_BY(mu_)
};

// Tests: makes every PosixBackend resolve paths by the O_NOFOLLOW walk, as on
// a kernel without openat2 (false: use openat2 again where it exists).
void UseOpenat2FallbackForTesting(bool on);

}  // namespace hsmfs::backends
