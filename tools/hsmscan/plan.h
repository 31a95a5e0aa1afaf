#pragma once

// The archive plan: HPSSPy's process_missing as data, so that -t can print it
// and -p can hand it to the HPSS backend (backends/hpss) when that exists.
//
//   NAME.tar        htar of directories: the directory name comes from the
//                   archive name (ExtractDirectoryName); a name ending in X
//                   is a pattern, each X any one character.
//   NAME_files.tar  htar -L of a list of the member files (basenames).
//   anything else   hsi put of the single member file.
//
// Thread-compatible.

#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/result.h"

namespace hsmfs::hsmscan {

struct ArchivePlan {
  enum class Kind { kHtarDirectories, kHtarFileList, kPut };
  Kind kind = Kind::kPut;
  std::string archive;               // relative to the section (the missing_files key)
  std::string hpss_path;             // hpss_release_root/archive
  std::string hpss_mkdir;            // directory to create first ("" if already created)
  std::string disk_dir;              // where htar runs (release_root/dirname(archive))
  std::vector<std::string> members;  // directories, or file basenames, or the put source
  std::string error;                 // non-empty: no plan (HPSSPy: "Could not find directories")

  // The commands, one per line, as `hsi`/`htar` argv joined by spaces.
  std::vector<std::string> Commands() const;
};

// HPSSPy's extract_directory_name (prefix stripping that allows underscores).
std::string ExtractDirectoryName(std::string_view archive);

// Builds plans one archive at a time (directories created once per run).
class Planner final {
 public:
  Planner(std::string release_root, std::string hpss_release_root)
      : release_root_(std::move(release_root)), hpss_release_root_(std::move(hpss_release_root)) {}
  // `files`: the members, relative to the section.
  ArchivePlan Plan(const std::string& archive, const std::vector<std::string>& files);

 private:
  std::string release_root_, hpss_release_root_;
  std::unordered_set<std::string> created_;
};

}  // namespace hsmfs::hsmscan
