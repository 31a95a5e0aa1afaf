#pragma once

// MissingFinder: HPSSPy's find_missing. Each disk file is matched against the
// rules of its top-level key; the archive each rule names (after re.sub) is
// missing unless HPSS has it and no member is newer than it. The same checks
// as HPSSPy's test mode are counted: files mapped by no rule or by several,
// rules never used, archives over the size limit, undescribed directories.
//
// Memory: one entry per archive, plus 8 bytes per member (the member's row
// offset in the disk cache CSV); names are read back from the CSV when the
// JSON is written. Thread-compatible.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "tools/hsmscan/log.h"
#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {

struct HpssEntry {
  int64_t size = 0;
  int64_t mtime = 0;
};
using HpssIndex = std::unordered_map<std::string, HpssEntry>;

struct Archive {
  std::string name;            // relative to the section on HPSS
  std::vector<uint64_t> rows;  // members: row offsets in the disk CSV
  int64_t size = 0;
  bool newer = false;
  bool exists = false;
};

struct FindSummary {
  int64_t files = 0;
  int64_t excluded = 0;                 // __exclude__ hits
  int64_t unmapped = 0;                 // no rule matched (HPSSPy: "not mapped")
  int64_t multiple = 0;                 // several rules matched
  int64_t undescribed = 0;              // top-level directories with no key, or an empty one
  int64_t too_large = 0;                // archives over the limit (left out, as HPSSPy does)
  int64_t unused_rules = 0;             // regexes that matched nothing
  int64_t selected_files = 0;           // members of missing archives
  std::vector<const Archive*> missing;  // in first-seen order
};

class MissingFinder final {
 public:
  // `hpss` may be empty (test mode pretends nothing is on HPSS).
  MissingFinder(const SectionRules& rules, const HpssIndex& hpss, const Log& log);
  MissingFinder(const MissingFinder&) = delete;
  MissingFinder& operator=(const MissingFinder&) = delete;

  // One disk file, its size, mtime and row offset in the disk CSV.
  void Add(const std::string& name, int64_t size, int64_t mtime, uint64_t row);

  // Decides the missing archives; `limit_gb` as HPSSPy's -l.
  FindSummary Finish(double limit_gb);

  int64_t files() const { return files_; }

  // For tests: the archive a name maps to through `rules` (first match), or ""
  // for EXCLUDE/AUTOMATED/no match.
  static std::string TargetFor(const SectionRules& rules, const std::string& name);

 private:
  const SectionRules& rules_;
  const HpssIndex& hpss_;
  const Log& log_;
  std::vector<std::vector<int64_t>> used_;  // parallel to rules_.rules
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<Archive> archives_;
  std::unordered_set<std::string> warned_;
  std::string top_;
  int64_t files_ = 0, excluded_ = 0, unmapped_ = 0, multiple_ = 0, undescribed_ = 0;
};

// Writes `missing` as HPSSPy's json.dump(missing, indent=2, separators=(',',
// ': ')) would (ASCII-only escapes, key order kept), member names read from
// `name_at`. Written to a temporary file and renamed into place.
Status WriteMissingJson(const std::string& path, const std::vector<const Archive*>& missing,
                        const std::function<Result<std::string>(uint64_t)>& name_at);

// json.dumps of one string (ensure_ascii; invalid UTF-8 bytes as Python's
// surrogateescape \udcXX). Exposed for tests.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace hsmfs::hsmscan
