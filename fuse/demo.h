#pragma once

// The self-contained demo behind `hsmfs --demo MOUNTPOINT` and `make demo`: a
// posix backend holding a few hundred files in a science-archive layout, with a
// config that needs nothing else.

#include <filesystem>
#include <string>

#include "common/result.h"

namespace hsmfs::fs {

// $XDG_DATA_HOME/hsmfs/demo, else ~/.local/share/hsmfs/demo.
std::filesystem::path DefaultDemoDir();

// Creates the demo under `dir` unless it is already there (a finished demo has
// a version marker; a half-built one is rebuilt). Returns its config file.
Result<std::filesystem::path> PrepareDemo(const std::filesystem::path& dir);

// What to try, printed once the demo is mounted.
// `hsmctl` is how to invoke hsmctl (a path when it is not installed).
std::string DemoHints(const std::filesystem::path& mountpoint, const std::filesystem::path& config,
                      const std::string& hsmctl);

}  // namespace hsmfs::fs
