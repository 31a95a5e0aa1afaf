#pragma once

// DiskWalker: HPSSPy's scan_disk (os.walk, symlinks skipped) done in parallel.
//
// Worker threads read directories with getdents64 into large buffers and stat
// files with statx (size and mtime only). Results are handed to the caller in
// exactly os.walk's top-down order (a directory's files in directory order,
// then its subdirectories in directory order), so the cache CSV lists files as
// HPSSPy would. Workers always take the pending directory that comes first in
// that order, so finished-but-not-yet-delivered results stay few and memory
// stays flat however large the tree.
//
// Thread-safety: Walk() is called from one thread; `sink` runs on that thread.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hsmfs::hsmscan {

struct WalkOptions {
  int threads = 0;  // 0: a default from the CPU count (HSMSCAN_THREADS overrides)
};

// Called per regular (non-symlink) file: its path relative to the root, its
// size and integral mtime (seconds, truncated as int(st_mtime)).
using FileSink = std::function<void(std::string_view rel, int64_t size, int64_t mtime)>;
// Called per directory or file that could not be read (os.walk ignores them).
using WalkErrorSink = std::function<void(const std::string& what)>;

// Walks `root`. Returns an error only when `root` itself cannot be opened.
Status WalkTree(const std::string& root, const WalkOptions& options, const FileSink& sink,
                const WalkErrorSink& on_error);

}  // namespace hsmfs::hsmscan
