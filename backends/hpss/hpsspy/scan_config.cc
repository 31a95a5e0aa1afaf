#include "backends/hpss/hpsspy/scan_config.h"

#include <nlohmann/json.hpp>

#include "common/config.h"

namespace hsmfs::backends::hpss::hpsspy {
namespace {

using Json = nlohmann::ordered_json;

Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgumentError(path + ": " + what);
}

Result<SectionRules> CompileSection(const Json& value, const std::string& path,
                                    const std::string& name) {
  SectionRules out;
  if (!value.is_object()) return Bad(path, "section '" + name + "' is not an object");
  for (const auto& [key, sub] : value.items()) {
    if (key == "__exclude__") {
      if (!sub.is_array()) return Bad(path, "section '" + name + "': __exclude__ is not a list");
      for (const Json& e : sub) {
        if (!e.is_string()) {
          return Bad(path, "section '" + name + "': __exclude__ holds a non-string");
        }
        out.exclude.insert(e.get<std::string>());
      }
      out.has_exclude = true;
      continue;
    }
    if (!sub.is_object()) {
      return Bad(path, "section '" + name + "', key '" + key + "' is not an object of rules");
    }
    std::vector<Rule> rules;
    for (const auto& [pattern, target] : sub.items()) {
      auto re = PyRegex::Compile(pattern);
      if (!re.ok()) {
        return Bad(path, "section '" + name + "', key '" + key + "': " + re.status().message());
      }
      if (!target.is_string()) {
        return Bad(path, "section '" + name + "', regex '" + pattern + "': target is not a string");
      }
      Rule rule;
      rule.target = target.get<std::string>();
      if (rule.target == "EXCLUDE") {
        rule.kind = Rule::Kind::kExclude;
      } else if (rule.target == "AUTOMATED") {
        rule.kind = Rule::Kind::kAutomated;
      } else {
        auto tmpl = (*re)->ParseTemplate(rule.target);
        if (!tmpl.ok()) {
          return Bad(path, "section '" + name + "', key '" + key + "': " + tmpl.status().message());
        }
        rule.tmpl = std::move(*tmpl);
      }
      rule.re = std::move(*re);
      rules.push_back(std::move(rule));
    }
    // Python dicts keep the first position of a repeated key with its last value.
    auto [it, inserted] = out.key_index.emplace(key, out.keys.size());
    if (inserted) {
      out.keys.push_back(key);
      out.rules.push_back(std::move(rules));
    } else {
      out.rules[it->second] = std::move(rules);
    }
  }
  return out;
}

Json ParseJson(std::string_view text, std::string* error) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    *error = e.what();
    return Json();
  }
}

}  // namespace

std::string PathJoin(std::string_view a, std::string_view b) {
  if (!b.empty() && b.front() == '/') return std::string(b);
  std::string out(a);
  if (!out.empty() && out.back() != '/') out += '/';
  out += b;
  return out;
}

std::string_view BaseName(std::string_view p) {
  const size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

std::string_view DirName(std::string_view p) {
  const size_t slash = p.rfind('/');
  if (slash == std::string_view::npos) return {};
  std::string_view head = p.substr(0, slash + 1);
  // os.path.dirname strips trailing slashes unless the head is all slashes.
  size_t end = head.size();
  while (end > 0 && head[end - 1] == '/') --end;
  return end == 0 ? head : head.substr(0, end);
}

Result<ScanConfig> ParseScanConfig(std::string_view text, const std::string& path,
                                   const std::string& section) {
  std::string error;
  const Json doc = ParseJson(text, &error);
  if (!error.empty()) return Bad(path, "not valid JSON: " + error);
  if (!doc.is_object()) return Bad(path, "the top level is not a JSON object");
  ScanConfig cfg;
  cfg.path = path;
  cfg.section = section;
  auto config_it = doc.find("__config__");
  if (config_it == doc.end()) return Bad(path, "does not contain a '__config__' section");
  const Json& meta = *config_it;
  if (!meta.is_object()) return Bad(path, "'__config__' is not an object");
  for (const char* key : {"root", "hpss_root"}) {
    auto it = meta.find(key);
    if (it == meta.end()) return Bad(path, std::string("'__config__' has no '") + key + "'");
    if (!it->is_string())
      return Bad(path, std::string("'__config__' '") + key + "' is not a string");
  }
  cfg.root = meta["root"].get<std::string>();
  cfg.hpss_root = meta["hpss_root"].get<std::string>();
  auto pd = meta.find("physical_disks");
  if (pd == meta.end()) {
    cfg.warnings.push_back(path + " '__config__' section does not contain an entry for " +
                           "'physical_disks'.");
  } else if (pd->is_array()) {
    for (const Json& d : *pd) {
      if (!d.is_string()) return Bad(path, "'__config__' 'physical_disks' holds a non-string");
      cfg.physical_disks.push_back(d.get<std::string>());
    }
  } else if (!(pd->is_null() || (pd->is_boolean() && !pd->get<bool>()))) {
    return Bad(path, "'__config__' 'physical_disks' is not a list");
  }
  bool found = false;
  // Every section is compiled, as HPSSPy validates the whole file first.
  for (const auto& [name, value] : doc.items()) {
    if (name == "__config__") continue;
    HSMFS_ASSIGN_OR_RETURN(SectionRules rules, CompileSection(value, path, name));
    if (!rules.has_exclude) {
      cfg.warnings.push_back("Section '" + name + "' should at least have an '__exclude__' entry.");
    }
    if (name == section) {
      cfg.rules = std::move(rules);
      found = true;
    }
  }
  if (!found) return Bad(path, "no section '" + section + "'");
  return cfg;
}

Result<ScanConfig> LoadScanConfig(const std::string& path, const std::string& section) {
  // As hsmfs's own config: a FIFO or device is refused rather than waited on.
  auto text = ReadConfigFile(path, "HPSSPy config");
  if (!text.ok()) {
    if (text.status().code() == Code::kInvalidArgument) return text.status();
    return Bad(path, "cannot be read (does it exist?)");
  }
  return ParseScanConfig(*text, path, section);
}

const Rule* FirstMatch(const SectionRules& rules, const std::string& name) {
  const size_t slash = name.find('/');
  const std::vector<Rule>* rs =
      rules.Find(slash == std::string::npos ? "__top__" : name.substr(0, slash));
  if (rs == nullptr || !IsValidUtf8(name)) return nullptr;
  for (const Rule& r : *rs) {
    if (r.re->Match(name)) return &r;
  }
  return nullptr;
}

std::vector<std::string> PhysicalDisks(const std::string& release_root, const ScanConfig& cfg) {
  const std::vector<std::string>& pd = cfg.physical_disks;
  if (pd.empty()) return {release_root};
  const std::string broot(BaseName(cfg.root));
  if (pd.size() == 1 && pd[0] == broot) return {release_root};
  std::vector<std::string> out;
  if (!pd[0].empty() && pd[0][0] == '/') {
    for (const std::string& d : pd) out.push_back(PathJoin(d, BaseName(release_root)));
    return out;
  }
  for (const std::string& d : pd) {
    // str.replace: every occurrence of the root's basename.
    std::string r;
    size_t pos = 0;
    if (broot.empty()) {
      out.push_back(release_root);
      continue;
    }
    while (true) {
      const size_t hit = release_root.find(broot, pos);
      if (hit == std::string::npos) break;
      r.append(release_root, pos, hit - pos);
      r += d;
      pos = hit + broot.size();
    }
    r.append(release_root, pos);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace hsmfs::backends::hpss::hpsspy
