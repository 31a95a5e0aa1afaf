#include "backends/tape/device_spec.h"

#include <charconv>
#include <regex>

namespace hsmfs::tape {

std::string DeviceSpec::ToString() const {
  if (kind == Kind::kStDevice) return path.string();
  std::string s = "vtl:" + path.string();
  if (drive != 0) s += "#" + std::to_string(drive);
  return s;
}

Result<DeviceSpec> ParseDeviceSpec(std::string_view text, const std::filesystem::path& base_dir) {
  const std::string quoted = "tape device '" + std::string(text) + "'";
  DeviceSpec spec;
  if (text.substr(0, 4) == "vtl:") {
    std::string_view rest = text.substr(4);
    auto hash = rest.rfind('#');
    if (hash != std::string_view::npos) {
      std::string_view num = rest.substr(hash + 1);
      int drive = -1;
      auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), drive);
      if (num.empty() || ec != std::errc() || end != num.data() + num.size() || drive < 0) {
        return InvalidArgumentError(quoted + ": drive after '#' must be a number >= 0");
      }
      spec.drive = drive;
      rest = rest.substr(0, hash);
    }
    if (rest.empty()) return InvalidArgumentError(quoted + ": vtl: needs a directory");
    spec.kind = DeviceSpec::Kind::kVirtualLibrary;
    spec.path = std::filesystem::path(rest);
    if (spec.path.is_relative() && !base_dir.empty()) spec.path = base_dir / spec.path;
    spec.path = spec.path.lexically_normal();
    return spec;
  }
  if (!text.empty() && text.front() == '/') {
    static const std::regex rewinding("^/dev/st[0-9]+[lma]?$");
    const std::string s(text);
    if (std::regex_match(s, rewinding)) {
      return InvalidArgumentError(quoted + " is a rewinding node; use /dev/n" + s.substr(5));
    }
    spec.kind = DeviceSpec::Kind::kStDevice;
    spec.path = s;
    return spec;
  }
  return InvalidArgumentError(quoted + ": expected vtl:DIR[#N] or a /dev/nstN device path");
}

}  // namespace hsmfs::tape
