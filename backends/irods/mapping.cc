#include "backends/irods/mapping.h"

#include <charconv>
#include <limits>

#include "backends/irods/codec.h"

namespace hsmfs::irods {

backends::Residency ResidencyOfDmfState(std::string_view state) {
  if (state == "OFL" || state == "UNM" || state == "PAR") return backends::Residency::kTape;
  if (state == "REG" || state == "MIG" || state == "DUL" || state == "NMG") {
    return backends::Residency::kDisk;
  }
  return backends::Residency::kUnknown;
}

std::string HsmChecksum(std::string_view irods_checksum) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (irods_checksum.empty()) return "";
  if (irods_checksum.substr(0, 5) == "sha2:") {
    Result<std::string> raw = Base64Decode(irods_checksum.substr(5));
    if (!raw.ok() || raw->size() != 32) return std::string(irods_checksum);
    std::string out = "sha256:";
    for (unsigned char c : *raw) {
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    return out;
  }
  if (irods_checksum.size() == 32 &&
      irods_checksum.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos) {
    std::string out = "md5:";
    for (char c : irods_checksum) out += static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
    return out;
  }
  return std::string(irods_checksum);
}

int64_t IrodsTimeToNanos(std::string_view seconds) {
  int64_t s = 0;
  auto [p, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), s);
  if (ec != std::errc() || p != seconds.data() + seconds.size()) return 0;
  // A time past 2262 does not fit in nanoseconds: unknown, like a bad one.
  constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 1'000'000'000;
  if (s > kLimit || s < -kLimit) return 0;
  return s * 1'000'000'000;
}

std::string MtimeAvuValue(int64_t mtime_ns, std::string_view modify_time) {
  return std::to_string(mtime_ns) + " " +
         std::to_string(IrodsTimeToNanos(modify_time) / 1'000'000'000);
}

int64_t ResolveMtime(std::string_view avu_value, std::string_view modify_time) {
  const int64_t modified = IrodsTimeToNanos(modify_time);
  const size_t sp = avu_value.find(' ');
  if (sp == std::string_view::npos) return modified;
  const int64_t recorded = IrodsTimeToNanos(avu_value.substr(sp + 1));
  int64_t mtime = 0;
  auto [p, ec] = std::from_chars(avu_value.data(), avu_value.data() + sp, mtime);
  if (ec != std::errc() || p != avu_value.data() + sp || recorded != modified || modified == 0) {
    return modified;
  }
  return mtime;
}

std::string EqualsCondition(std::string_view value) { return "= '" + std::string(value) + "'"; }

std::string InCondition(const std::vector<std::string>& values) {
  std::string out = "in (";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += "'" + values[i] + "'";
  }
  return out + ")";
}

std::string DmfRuleText(std::string_view rule, bool with_output) {
  if (rule.find('{') != std::string_view::npos) return std::string(rule);
  std::string call = std::string(rule) + (with_output ? "(*paths, *out)" : "(*paths)");
  // The length is taken after the call: it says the rule ran to its end.
  return "@external\nhsmfs_dmf { " + call + "; " + std::string(kRuleLenParam) +
         " = str(strlen(*paths)); }";
}

std::string DmfRulePathsParam(const std::vector<std::string>& paths) {
  // Two for the quotes; an escape pair never straddles two literals.
  constexpr size_t kBody = kMaxRuleLiteral - 2;
  std::string out;
  std::string literal;
  auto add = [&](std::string_view unit) {
    if (literal.size() + unit.size() > kBody) {
      out += (out.empty() ? "\"" : " ++ \"") + literal + "\"";
      literal.clear();
    }
    literal += unit;
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i > 0) add("\n");
    for (char c : paths[i]) {
      if (c == '"' || c == '\\' || c == '*' || c == '$') {
        const char pair[2] = {'\\', c};
        add(std::string_view(pair, 2));
      } else {
        add(std::string_view(&c, 1));
      }
    }
  }
  return out + (out.empty() ? "\"" : " ++ \"") + literal + "\"";
}

size_t DmfRulePathsLength(const std::vector<std::string>& paths) {
  size_t n = paths.empty() ? 0 : paths.size() - 1;
  for (const std::string& p : paths) n += p.size();
  return n;
}

std::unordered_map<std::string, std::string> ParseDmfStateLines(std::string_view text) {
  std::unordered_map<std::string, std::string> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 >= line.size()) continue;
    std::string_view state = line.substr(0, sp);
    if (state.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) continue;
    out[std::string(line.substr(sp + 1))] = std::string(state);
  }
  return out;
}

std::string_view LastComponent(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string ParentCollection(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace hsmfs::irods
