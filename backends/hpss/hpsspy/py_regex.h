#pragma once

// PyRegex: a regular expression with Python `re` semantics, run by PCRE2 (JIT).
//
// HPSSPy configs are Python regexes; what matters for compatibility is that
// re.match (anchored at the start, not at the end), re.sub (every
// non-overlapping match, Python 3.7+ empty-match rules) and the replacement
// template syntax (\1, \g<name>, \n ...) behave as in CPython. The few pattern
// spellings where PCRE2 differs ({,n}, \Z, \uXXXX, \UXXXXXXXX) are translated
// before compiling. Subjects are UTF-8 (Python str patterns are Unicode, so
// PCRE2_UTF | PCRE2_UCP); a subject that is not valid UTF-8 never matches.
//
// Thread-safety: a compiled PyRegex is immutable; Match/Sub are thread-safe
// (each call allocates its own match data).

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace hsmfs::backends::hpss::hpsspy {

class PyRegex final {
 public:
  // Compiles `pattern` (Python syntax). kInvalidArgument names the error and
  // its offset.
  static Result<std::unique_ptr<PyRegex>> Compile(std::string_view pattern);
  ~PyRegex();
  PyRegex(const PyRegex&) = delete;
  PyRegex& operator=(const PyRegex&) = delete;

  const std::string& pattern() const { return pattern_; }
  uint32_t group_count() const { return groups_; }

  // re.match: true if the pattern matches at the start of `subject`.
  // REQUIRES: IsValidUtf8(subject) (checked once per name by the caller,
  // rather than by PCRE2 once per rule).
  bool Match(std::string_view subject) const;

  // A parsed replacement template (Python's re._compile_template).
  struct Template {
    struct Piece {
      std::string literal;  // used when group < 0
      int group = -1;
    };
    std::vector<Piece> pieces;
  };
  // Parses `repl` against this pattern's groups; kInvalidArgument for bad
  // escapes or group references, as Python raises re.error.
  Result<Template> ParseTemplate(std::string_view repl) const;

  // re.sub(pattern, repl, subject): every non-overlapping match replaced.
  // REQUIRES: IsValidUtf8(subject).
  std::string Sub(const Template& repl, std::string_view subject) const;

 private:
  PyRegex() = default;

  std::string pattern_;
  uint32_t groups_ = 0;
  std::vector<std::string> group_names_;  // index = group number; "" when unnamed
  pcre2_code* anchored_ = nullptr;        // compiled with PCRE2_ANCHORED for JIT
  pcre2_code* search_ = nullptr;          // unanchored, for re.sub's later matches
};

bool IsValidUtf8(std::string_view s);

// Translates Python regex spellings that PCRE2 reads differently (exposed for
// tests).
std::string TranslatePythonPattern(std::string_view pattern);

}  // namespace hsmfs::backends::hpss::hpsspy
