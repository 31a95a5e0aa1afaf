#pragma once

// The whole `missing_from_hpss` run (HPSSPy's scan.main) as a library call, so
// tests and the -p path can drive it without a process.

#include <string>

namespace hsmfs::hsmscan {

struct ScanOptions {
  std::string config;
  std::string section;
  std::string cache_dir;
  bool overwrite_disk = false;  // -D
  bool overwrite_hpss = false;  // -H
  bool strict = false;          // -E
  bool process = false;         // -p
  bool test = false;            // -t
  bool verbose = false;         // -v
  double limit_gb = 1024.0;     // -l
  int report = 10000;           // -r
  std::string hsi;              // hsi program ("" = $HPSS_DIR/bin/hsi or PATH)
  std::string htar;             // htar program ("" = $HPSS_DIR/bin/htar or PATH)
  // hsmfs extension: after -p, `hsmctl -c hsmfs_config sync` the directories
  // that got new archives, so that the mount shows them at once.
  std::string hsmfs_config;
  std::string hsmfs_backend;  // its hpss backend ("" = the only one)
};

// Runs the scan and returns the exit code (0, 1 or 2), reporting on stderr.
int RunScan(const ScanOptions& options);

}  // namespace hsmfs::hsmscan
