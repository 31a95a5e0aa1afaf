#pragma once

// Fsck: checks that the catalog, the cache and the backends agree (hsmctl
// fsck). Read-only but for one repair: temporaries that killed archive copies
// left in a backend root, proven abandoned, are removed (and reported).
//
// Checked for every file: a cached copy exists where the catalog says so,
// with the catalog's size once the file is closed; a file the backend should
// hold is there with the catalog's size (and, with `checksums`, the catalog's
// checksum, read back); states agree with the jobs (staging has an active
// recall, queued/archiving an active archive job); no cache file belongs
// to no entry; the cache's lost+found is empty.

#include <functional>
#include <string>
#include <vector>

#include "fs/engine.h"

namespace hsmfs::fs {

struct FsckOptions {
  bool checksums = false;  // also read back archived files and compare checksums
  std::function<void(int64_t entries)> progress;
};

struct FsckProblem {
  std::string path;  // "vault/dir/file", or the cache file
  std::string what;
};

struct FsckReport {
  int64_t entries = 0;
  int64_t cached = 0;
  int64_t on_backend = 0;
  std::vector<FsckProblem> problems;
  // What fsck fixed by itself (temporaries of killed archive copies): shown,
  // but not problems any more.
  std::vector<FsckProblem> repaired;
};

Result<FsckReport> Fsck(Engine& engine, const FsckOptions& options);

}  // namespace hsmfs::fs
