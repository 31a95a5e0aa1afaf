#include "tools/hsmscan/plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string ExtractDirectoryName(std::string_view archive) {
  const std::string d(DirName(archive));
  std::string base(BaseName(archive));
  if (const size_t dot = base.rfind('.'); dot != std::string::npos) base.resize(dot);
  if (d.empty()) return base;
  std::string prefix = d;
  std::replace(prefix.begin(), prefix.end(), '/', '_');
  prefix += '_';
  size_t i = base.find(prefix);
  if (i == std::string::npos) {
    // '_'.join(prefix.split('_')[1:]): drop the first component.
    const size_t u = prefix.find('_');
    prefix = prefix.substr(u + 1);
    i = base.find(prefix);
    if (i == std::string::npos) return base;
  }
  return base.substr(i + prefix.size());
}

std::vector<std::string> ArchivePlan::Commands() const {
  std::vector<std::string> out;
  if (!error.empty()) return out;
  if (!hpss_mkdir.empty()) out.push_back("hsi mkdir -p -m 2770 " + hpss_mkdir);
  switch (kind) {
    case Kind::kHtarDirectories: {
      std::string c = "cd " + disk_dir + " && htar -cvf " + hpss_path + " -H crc:verify=all";
      for (const std::string& m : members) c += " " + m;
      out.push_back(c);
      break;
    }
    case Kind::kHtarFileList:
      out.push_back("cd " + disk_dir + " && htar -cvf " + hpss_path +
                    " -H crc:verify=all -L LISTFILE (" + std::to_string(members.size()) +
                    " files)");
      break;
    case Kind::kPut:
      out.push_back("hsi put " + members.front() + " : " + hpss_path);
      break;
  }
  return out;
}

ArchivePlan Planner::Plan(const std::string& archive, const std::vector<std::string>& files) {
  ArchivePlan p;
  p.archive = archive;
  p.hpss_path = PathJoin(hpss_release_root_, archive);
  std::string mkdir;
  if (EndsWith(archive, ".tar")) {
    const std::string disk_chdir(DirName(archive));
    p.disk_dir = PathJoin(release_root_, disk_chdir);
    mkdir = PathJoin(hpss_release_root_, disk_chdir);
    if (EndsWith(archive, "_files.tar")) {
      p.kind = ArchivePlan::Kind::kHtarFileList;
      for (const std::string& f : files) p.members.emplace_back(BaseName(f));
    } else {
      p.kind = ArchivePlan::Kind::kHtarDirectories;
      const std::string b = ExtractDirectoryName(archive);
      if (IsDir(PathJoin(p.disk_dir, b))) {
        p.members.push_back(b);
      } else if (EndsWith(b, "X")) {
        std::string pattern = b;
        std::replace(pattern.begin(), pattern.end(), 'X', '.');
        auto re = PyRegex::Compile(pattern + "$");
        std::error_code ec;
        if (re.ok()) {
          for (const auto& e : std::filesystem::directory_iterator(p.disk_dir, ec)) {
            const std::string name = e.path().filename().string();
            if (IsDir(e.path().string()) && IsValidUtf8(name) && (*re)->Match(name)) {
              p.members.push_back(name);
            }
          }
        }
        // listdir order is arbitrary; sorted makes plans reproducible.
        std::sort(p.members.begin(), p.members.end());
      } else {
        p.error = "Could not find directories corresponding to " + archive + "!";
        return p;
      }
    }
  } else {
    p.kind = ArchivePlan::Kind::kPut;
    p.members.push_back(PathJoin(release_root_, files.front()));
    mkdir = std::string(DirName(p.hpss_path));
  }
  if (created_.insert(mkdir).second) p.hpss_mkdir = mkdir;
  return p;
}

}  // namespace hsmfs::hsmscan
