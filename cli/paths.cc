#include "cli/paths.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace hsmfs::cli {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "vault//run42/./a/" -> "vault/run42/a"; ".." takes back one component
// (refused above the top: archive paths have no parent). "" is the root.
Result<std::string> Normalised(std::string_view arg) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= arg.size()) {
    size_t slash = arg.find('/', pos);
    if (slash == std::string_view::npos) slash = arg.size();
    const std::string_view part = arg.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return InvalidArgumentError(std::string(arg) + ": goes above the top of the archive");
      }
      parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

}  // namespace

std::vector<std::string> HsmfsMounts() {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "fuse.hsmfs") continue;
    std::istringstream head(line.substr(0, sep));
    std::string field;
    int fields = 0;
    while (fields < 5 && head >> field) ++fields;  // the 5th field is the mount point
    if (fields == 5) mounts.push_back(Unescape(field));
  }
  return mounts;
}

Result<std::string> ToCatalogPath(std::string_view arg) {
  const std::string s(arg);
  const bool absolute = !s.empty() && s.front() == '/';
  const bool explicit_local = absolute || s.rfind("./", 0) == 0 || s.rfind("../", 0) == 0;
  struct stat st;
  if (explicit_local || ::lstat(s.c_str(), &st) == 0) {
    char* real = ::realpath(s.c_str(), nullptr);
    if (!real) {
      if (explicit_local) return ErrnoToStatus(errno, s);
      return Normalised(arg);
    }
    const std::string full(real);
    std::free(real);
    std::string best;
    for (const std::string& m : HsmfsMounts()) {
      const bool under =
          full == m || (full.size() > m.size() && full.compare(0, m.size(), m) == 0 &&
                        (m == "/" || full[m.size()] == '/'));
      if (under && m.size() > best.size()) best = m;
    }
    if (!best.empty()) return Normalised(full.substr(std::min(full.size(), best.size() + 1)));
    // A relative name that merely exists here (say, the backend's own root
    // directory) still means the archive path it spells.
    if (explicit_local) {
      return InvalidArgumentError(s +
                                  " is not inside an hsmfs mount (give a path inside the "
                                  "mount, or one like vault/dir relative to the archive)");
    }
  }
  return Normalised(arg);
}
}  // namespace hsmfs::cli
