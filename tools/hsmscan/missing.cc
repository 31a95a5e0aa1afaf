#include "tools/hsmscan/missing.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>

namespace hsmfs::hsmscan {

MissingFinder::MissingFinder(const SectionRules& rules, const HpssIndex& hpss, const Log& log)
    : rules_(rules), hpss_(hpss), log_(log) {
  used_.reserve(rules.rules.size());
  for (const auto& r : rules.rules) used_.emplace_back(r.size(), 0);
}

void MissingFinder::Add(const std::string& name, int64_t size, int64_t mtime, uint64_t row) {
  ++files_;
  if (rules_.exclude.count(name) != 0) {
    ++excluded_;
    log_.Info(name + " is excluded.");
    return;
  }
  const size_t slash = name.find('/');
  if (slash == std::string::npos) {
    top_ = "__top__";  // a file directly in the section
  } else {
    top_.assign(name, 0, slash);
  }
  auto key = rules_.key_index.find(top_);
  if (key == rules_.key_index.end() || rules_.rules[key->second].empty()) {
    if (warned_.insert(top_).second) {
      ++undescribed_;
      log_.Warning(key == rules_.key_index.end()
                       ? "Directory " + top_ + " is not described in the configuration!"
                       : "Directory " + top_ + " is not configured!");
    }
    return;
  }
  const std::vector<Rule>& rules = rules_.rules[key->second];
  std::vector<int64_t>& used = used_[key->second];
  // Python strings are Unicode; a name that is not UTF-8 cannot match anything.
  const bool valid = IsValidUtf8(name);
  int mapped = 0;
  for (size_t i = 0; valid && i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    if (!rule.re->Match(name)) continue;
    ++used[i];
    ++mapped;
    if (rule.kind == Rule::Kind::kExclude) {
      if (log_.Enabled(Level::kDebug)) log_.Debug(name + " is excluded from backups.");
      continue;
    }
    if (rule.kind == Rule::Kind::kAutomated) {
      if (log_.Enabled(Level::kDebug)) {
        log_.Debug(name + " is backed up by some other automated process.");
      }
      continue;
    }
    std::string target = rule.re->Sub(rule.tmpl, name);
    if (log_.Enabled(Level::kDebug)) log_.Debug(name + " in " + target + ".");
    auto h = hpss_.find(target);
    const bool exists = h != hpss_.end();
    const bool newer = exists && mtime > h->second.mtime;
    if (newer) log_.Warning(name + " is newer than " + target + ", marking as missing!");
    // find first: emplace would allocate a node per file only to drop it.
    auto it = index_.find(target);
    if (it == index_.end()) {
      it = index_.emplace(std::move(target), static_cast<uint32_t>(archives_.size())).first;
      archives_.push_back(Archive{it->first, {}, 0, newer, exists});
    }
    Archive& a = archives_[it->second];
    a.rows.push_back(row);
    a.size += size;
    // 'newer' can change from false to true, never back.
    if (newer) a.newer = true;
  }
  if (mapped == 0) {
    ++unmapped_;
    log_.Error(name + (valid ? " is not mapped to any file on HPSS!"
                             : " is not valid UTF-8 and cannot be mapped!"));
  }
  if (mapped > 1) {
    ++multiple_;
    log_.Error(name + " is mapped to multiple files on HPSS!");
  }
}

FindSummary MissingFinder::Finish(double limit_gb) {
  FindSummary s;
  s.files = files_;
  s.excluded = excluded_;
  s.unmapped = unmapped_;
  s.multiple = multiple_;
  s.undescribed = undescribed_;
  // HPSSPy counts uses per pattern text; so do we, over every key of the section.
  std::map<std::string, int64_t> by_pattern;
  std::vector<std::string> order;
  for (size_t k = 0; k < rules_.rules.size(); ++k) {
    for (size_t i = 0; i < rules_.rules[k].size(); ++i) {
      const std::string& p = rules_.rules[k][i].re->pattern();
      auto [it, inserted] = by_pattern.emplace(p, 0);
      if (inserted) order.push_back(p);
      it->second += used_[k][i];
    }
  }
  for (const std::string& p : order) {
    if (by_pattern[p] == 0) {
      ++s.unused_rules;
      log_.Warning("Pattern '" + p + "' was never used, maybe files have been removed from disk?");
    }
  }
  for (const Archive& a : archives_) {
    if (a.exists && !a.newer) {
      if (log_.Enabled(Level::kDebug)) log_.Debug(a.name + " is a valid backup.");
      continue;
    }
    log_.Info(a.name + " is " + std::to_string(a.size) + " bytes.");
    if (static_cast<double>(a.size) / 1024 / 1024 / 1024 > limit_gb) {
      ++s.too_large;
      log_.Error("HPSS file " + a.name + " would be too large, skipping backup!");
      continue;
    }
    s.selected_files += static_cast<int64_t>(a.rows.size());
    s.missing.push_back(&a);
  }
  if (s.selected_files > 0)
    log_.Info(std::to_string(s.selected_files) + " files selected for backup.");
  return s;
}

std::string MissingFinder::TargetFor(const SectionRules& rules, const std::string& name) {
  const Rule* r = FirstMatch(rules, name);
  if (r == nullptr || r->kind != Rule::Kind::kArchive) return "";
  return r->re->Sub(r->tmpl, name);
}

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  auto u = [&](uint32_t v) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xF];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    // Runs of characters json.dumps keeps as they are (printable ASCII but
    // for the quote and backslash), appended at once.
    size_t j = i;
    while (j < s.size()) {
      const auto p = static_cast<unsigned char>(s[j]);
      if (p < 0x20 || p >= 0x7f || p == '"' || p == '\\') break;
      ++j;
    }
    if (j > i) {
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            u(c);  // json.dumps escapes everything outside ' '..'~'
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len != 0 && i + len <= s.size() && IsValidUtf8(s.substr(i, len))) {
      uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        u(0xD800 + (cp >> 10));
        u(0xDC00 + (cp & 0x3FF));
      } else {
        u(cp);
      }
      i += len;
      continue;
    }
    u(0xDC00 + c);  // os.fsdecode's surrogateescape
    ++i;
  }
  out += '"';
}

Status WriteMissingJson(const std::string& path, const std::vector<const Archive*>& missing,
                        const std::function<Result<std::string>(uint64_t)>& name_at) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return ErrnoToStatus(errno, "creating " + tmp);
  std::string out;
  Status status;
  auto flush = [&] {
    if (!out.empty() && std::fwrite(out.data(), 1, out.size(), f) != out.size() && status.ok()) {
      status = ErrnoToStatus(errno, "writing " + tmp);
    }
    out.clear();
  };
  if (missing.empty()) {
    out = "{}";
  } else {
    out = "{";
    bool first = true;
    for (const Archive* a : missing) {
      out += first ? "\n  " : ",\n  ";
      first = false;
      AppendJsonString(out, a->name);
      out += ": {\n    \"files\": [";
      bool first_file = true;
      for (uint64_t row : a->rows) {
        auto name = name_at(row);
        if (!name.ok()) {
          status = name.status();
          break;
        }
        out += first_file ? "\n      " : ",\n      ";
        first_file = false;
        AppendJsonString(out, *name);
        if (out.size() > (1 << 20)) flush();
      }
      out += first_file ? "]" : "\n    ]";
      out += ",\n    \"size\": " + std::to_string(a->size);
      out += std::string(",\n    \"newer\": ") + (a->newer ? "true" : "false");
      out += std::string(",\n    \"exists\": ") + (a->exists ? "true" : "false");
      out += "\n  }";
      if (!status.ok()) break;
    }
    out += "\n}";
  }
  flush();
  if (std::fclose(f) != 0 && status.ok()) status = ErrnoToStatus(errno, "closing " + tmp);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoToStatus(errno, "renaming " + tmp);
  }
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

}  // namespace hsmfs::hsmscan
