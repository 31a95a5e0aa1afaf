#include "backends/hpss/hpsspy/py_regex.h"

#include <algorithm>
#include <cstring>

namespace hsmfs::backends::hpss::hpsspy {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctal(char c) { return c >= '0' && c <= '7'; }
bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// One match data block per thread, grown on demand: allocating one per call
// would cost more than a JIT match of a short path.
pcre2_match_data* ThreadMatchData(uint32_t pairs) {
  struct Holder {
    pcre2_match_data* md = nullptr;
    uint32_t pairs = 0;
    ~Holder() { pcre2_match_data_free(md); }
  };
  thread_local Holder h;
  if (h.pairs < pairs) {
    pcre2_match_data_free(h.md);
    h.md = pcre2_match_data_create(pairs, nullptr);
    h.pairs = pairs;
  }
  return h.md;
}

// pcre2_match, falling back to the interpreter when the JIT stack is too small
// for a pathological pattern (the answer must not depend on the JIT).
int RunMatch(const pcre2_code* code, std::string_view s, size_t start, uint32_t options,
             pcre2_match_data* md) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  int rc = pcre2_match(code, subject, s.size(), start, options | PCRE2_NO_UTF_CHECK, md, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code, subject, s.size(), start, options | PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                     md, nullptr);
  }
  return rc;
}

Result<pcre2_code*> CompileOne(const std::string& translated, uint32_t options,
                               std::string_view original) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
  // Python's `.` and `$` treat only \n as a line end.
  pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    options | PCRE2_UTF | PCRE2_UCP, &err, &offset, ctx);
  pcre2_compile_context_free(ctx);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return InvalidArgumentError("bad regular expression '" + std::string(original) +
                                "': " + reinterpret_cast<char*>(buf) + " at offset " +
                                std::to_string(offset));
  }
  // A failed JIT compile is not an error: matching falls back to the interpreter.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return code;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string TranslatePythonPattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 8);
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 'Z' && !in_class) {
        out += "\\z";  // Python's \Z is the absolute end, PCRE2's \z
        ++i;
        continue;
      }
      const size_t digits = e == 'u' ? 4 : e == 'U' ? 8 : 0;
      if (digits != 0 && i + 1 + digits < p.size() + 1) {
        bool ok = i + 2 + digits <= p.size();
        for (size_t k = 0; ok && k < digits; ++k) ok = IsHex(p[i + 2 + k]);
        if (ok) {
          out += "\\x{";
          out.append(p.substr(i + 2, digits));
          out += '}';
          i += 1 + digits;
          continue;
        }
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (in_class) {
      // A ']' right after '[' or '[^' is a literal in both dialects.
      if (c == ']' && i > class_start) in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      class_start = i + 1;
      if (class_start < p.size() && p[class_start] == '^') ++class_start;
      out += c;
      continue;
    }
    if (c == '{' && i + 1 < p.size() && p[i + 1] == ',') {
      // Python reads {,n} and {,} as {0,n} and {0,}; PCRE2 10.42 as literals.
      size_t j = i + 2;
      while (j < p.size() && IsDigit(p[j])) ++j;
      if (j < p.size() && p[j] == '}') {
        out += "{0";
        continue;
      }
    }
    out += c;
  }
  return out;
}

Result<std::unique_ptr<PyRegex>> PyRegex::Compile(std::string_view pattern) {
  if (!IsValidUtf8(pattern)) {
    return InvalidArgumentError("bad regular expression '" + std::string(pattern) +
                                "': not valid UTF-8");
  }
  std::unique_ptr<PyRegex> re(new PyRegex());
  re->pattern_ = std::string(pattern);
  const std::string translated = TranslatePythonPattern(pattern);
  HSMFS_ASSIGN_OR_RETURN(re->anchored_, CompileOne(translated, PCRE2_ANCHORED, pattern));
  HSMFS_ASSIGN_OR_RETURN(re->search_, CompileOne(translated, 0, pattern));
  pcre2_pattern_info(re->search_, PCRE2_INFO_CAPTURECOUNT, &re->groups_);
  re->group_names_.assign(re->groups_ + 1, "");
  uint32_t name_count = 0, entry_size = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(re->search_, PCRE2_INFO_NAMECOUNT, &name_count);
  pcre2_pattern_info(re->search_, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
  pcre2_pattern_info(re->search_, PCRE2_INFO_NAMETABLE, &table);
  for (uint32_t k = 0; k < name_count; ++k) {
    const PCRE2_SPTR entry = table + static_cast<size_t>(k) * entry_size;
    const uint32_t n = (static_cast<uint32_t>(entry[0]) << 8) | entry[1];
    if (n <= re->groups_) re->group_names_[n] = reinterpret_cast<const char*>(entry + 2);
  }
  return re;
}

PyRegex::~PyRegex() {
  pcre2_code_free(anchored_);
  pcre2_code_free(search_);
}

bool PyRegex::Match(std::string_view subject) const {
  pcre2_match_data* md = ThreadMatchData(groups_ + 1);
  return RunMatch(anchored_, subject, 0, 0, md) >= 0;
}

Result<PyRegex::Template> PyRegex::ParseTemplate(std::string_view repl) const {
  Template t;
  std::string lit;
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("bad replacement '" + std::string(repl) + "' for '" + pattern_ +
                                "': " + why);
  };
  auto flush = [&] {
    if (!lit.empty()) t.pieces.push_back({std::move(lit), -1});
    lit.clear();
  };
  auto add_group = [&](int g) {
    flush();
    t.pieces.push_back({"", g});
  };
  for (size_t i = 0; i < repl.size(); ++i) {
    const char c = repl[i];
    if (c != '\\') {
      lit += c;
      continue;
    }
    if (i + 1 >= repl.size()) return bad("bad escape (end of pattern)");
    const char e = repl[++i];
    if (e == 'g') {
      if (i + 1 >= repl.size() || repl[i + 1] != '<') return bad("missing <");
      const size_t close = repl.find('>', i + 2);
      if (close == std::string_view::npos) return bad("missing >, unterminated name");
      const std::string name(repl.substr(i + 2, close - i - 2));
      if (name.empty()) return bad("missing group name");
      int g = -1;
      if (std::all_of(name.begin(), name.end(), IsDigit)) {
        g = std::stoi(name.size() > 9 ? "999999999" : name);
      } else {
        for (uint32_t k = 1; k <= groups_; ++k) {
          if (group_names_[k] == name) g = static_cast<int>(k);
        }
        if (g < 0) return bad("unknown group name '" + name + "'");
      }
      if (g > static_cast<int>(groups_)) return bad("invalid group reference " + name);
      add_group(g);
      i = close;
      continue;
    }
    if (e == '0') {
      // \0, \0o, \0oo: an octal escape of at most three digits.
      int v = 0;
      size_t k = i + 1;
      while (k < repl.size() && k < i + 3 && IsOctal(repl[k])) v = v * 8 + (repl[k++] - '0');
      lit += static_cast<char>(v);
      i = k - 1;
      continue;
    }
    if (IsDigit(e)) {
      if (i + 1 < repl.size() && IsDigit(repl[i + 1])) {
        if (IsOctal(e) && IsOctal(repl[i + 1]) && i + 2 < repl.size() && IsOctal(repl[i + 2])) {
          const int v = (e - '0') * 64 + (repl[i + 1] - '0') * 8 + (repl[i + 2] - '0');
          if (v > 0377) return bad("octal escape value outside of range 0-0o377");
          // Python appends chr(v): UTF-8 encode it.
          if (v < 0x80) {
            lit += static_cast<char>(v);
          } else {
            lit += static_cast<char>(0xC0 | (v >> 6));
            lit += static_cast<char>(0x80 | (v & 0x3F));
          }
          i += 2;
          continue;
        }
        const int g = (e - '0') * 10 + (repl[i + 1] - '0');
        if (g > static_cast<int>(groups_))
          return bad("invalid group reference " + std::to_string(g));
        add_group(g);
        ++i;
        continue;
      }
      const int g = e - '0';
      if (g > static_cast<int>(groups_)) return bad("invalid group reference " + std::to_string(g));
      add_group(g);
      continue;
    }
    switch (e) {
      case 'a':
        lit += '\a';
        continue;
      case 'b':
        lit += '\b';
        continue;
      case 'f':
        lit += '\f';
        continue;
      case 'n':
        lit += '\n';
        continue;
      case 'r':
        lit += '\r';
        continue;
      case 't':
        lit += '\t';
        continue;
      case 'v':
        lit += '\v';
        continue;
      case '\\':
        lit += '\\';
        continue;
      default:
        break;
    }
    if (IsAsciiLetter(e)) return bad(std::string("bad escape \\") + e);
    // Python keeps unknown non-letter escapes as they are.
    lit += '\\';
    lit += e;
  }
  flush();
  return t;
}

std::string PyRegex::Sub(const Template& repl, std::string_view subject) const {
  pcre2_match_data* md = ThreadMatchData(groups_ + 1);
  std::string out;
  size_t pos = 0, copied = 0;
  bool must_advance = false;
  while (pos <= subject.size()) {
    const int rc = RunMatch(search_, subject, pos, must_advance ? PCRE2_NOTEMPTY_ATSTART : 0, md);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    out.append(subject.substr(copied, b - copied));
    for (const Template::Piece& piece : repl.pieces) {
      if (piece.group < 0) {
        out += piece.literal;
      } else if (piece.group < rc && ov[2 * piece.group] != PCRE2_UNSET) {
        // Groups that did not take part in the match expand to "" (Python 3.5+).
        out.append(
            subject.substr(ov[2 * piece.group], ov[2 * piece.group + 1] - ov[2 * piece.group]));
      }
    }
    copied = e;
    must_advance = (b == e);
    pos = e;
  }
  out.append(subject.substr(copied));
  return out;
}

}  // namespace hsmfs::backends::hpss::hpsspy
