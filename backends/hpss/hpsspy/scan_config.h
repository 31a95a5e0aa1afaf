#pragma once

// The HPSSPy JSON configuration (doc/configuration.rst of HPSSPy), loaded and
// validated the way `missing_from_hpss` does, but with exit-2 errors instead of
// tracebacks:
//
//   {"__config__": {"root": R, "hpss_root": H, "physical_disks": [...]},
//    "SECTION": {"__exclude__": [exact paths],
//                "TOPDIR": {"REGEX": "TARGET", ...}, "__top__": {...}}}
//
// Every regex of every section is compiled (a bad one anywhere is an error,
// as in HPSSPy's validate_configuration), and every replacement template is
// checked against its regex (HPSSPy only finds a bad \N at re.sub time).
// Key order is kept: rules are tried in file order, like Python dicts.
//
// Thread-safety: a loaded ScanConfig is immutable.

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/hpss/hpsspy/py_regex.h"
#include "common/result.h"

namespace hsmfs::backends::hpss::hpsspy {

struct Rule {
  enum class Kind { kArchive, kExclude, kAutomated };
  std::unique_ptr<PyRegex> re;
  std::string target;
  Kind kind = Kind::kArchive;
  PyRegex::Template tmpl;  // for kArchive
};

// The rules of one section, dispatched by the first path component.
struct SectionRules {
  std::unordered_set<std::string> exclude;  // exact relative paths
  bool has_exclude = false;
  std::vector<std::string> keys;         // file order
  std::vector<std::vector<Rule>> rules;  // parallel to keys
  std::unordered_map<std::string, size_t> key_index;

  // The rules for `top` ("__top__" for files directly in the section), or
  // nullptr when the key is not described.
  const std::vector<Rule>* Find(const std::string& top) const {
    auto it = key_index.find(top);
    return it == key_index.end() ? nullptr : &rules[it->second];
  }
};

struct ScanConfig {
  std::string path;  // the JSON file
  std::string section;
  std::string root;
  std::string hpss_root;
  std::vector<std::string> physical_disks;  // empty: not given or false-y
  std::vector<std::string> warnings;        // HPSSPy's validation warnings
  SectionRules rules;
};

// Loads `path` and compiles section `section`. kInvalidArgument (exit 2) for a
// missing or unreadable file, invalid JSON, no "__config__", a bad regex or
// template in any section, an unknown section, or wrong value types; the
// message names the file, the section and the regex.
Result<ScanConfig> LoadScanConfig(const std::string& path, const std::string& section);

// Parses JSON text (exposed for tests; `path` only names the source in errors).
Result<ScanConfig> ParseScanConfig(std::string_view text, const std::string& path,
                                   const std::string& section);

// The first rule of `rules` that matches `name` (a path relative to the
// section), as HPSSPy's find_missing tries them; nullptr when none does or the
// name is not UTF-8. The archive it names is rule->re->Sub(rule->tmpl, name).
const Rule* FirstMatch(const SectionRules& rules, const std::string& name);

// HPSSPy's physical_disks(): the directories to walk for `release_root`.
std::vector<std::string> PhysicalDisks(const std::string& release_root, const ScanConfig& cfg);

// os.path.join and os.path.basename / dirname, as HPSSPy uses them.
std::string PathJoin(std::string_view a, std::string_view b);
std::string_view BaseName(std::string_view p);
std::string_view DirName(std::string_view p);

}  // namespace hsmfs::backends::hpss::hpsspy
