#include "cli/names.h"

#include <cstdint>
#include <cstdio>

namespace hsmfs::cli {
namespace {

// Length of the valid UTF-8 sequence starting at s[i] (1-4), or 0 if the
// byte there does not start one (overlong forms, surrogates and code points
// above U+10FFFF are invalid, as in RFC 3629).
size_t Utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

// Escaped bytes travel through nlohmann::json as the code points
// U+10FF00 + byte (Private Use, plane 16: F4 8F BC..BF xx), which DumpJson
// then rewrites as \udcXX. Genuine U+10FF00..U+10FFFF in a name are escaped
// byte by byte too, so that no sentinel is ever ambiguous.
constexpr uint32_t kSentinelBase = 0x10FF00;

void AppendSentinel(std::string& out, uint8_t byte) {
  const uint32_t cp = kSentinelBase + byte;
  out += static_cast<char>(0xF0 | (cp >> 18));
  out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out += static_cast<char>(0x80 | (cp & 0x3F));
}

bool IsSentinelAt(std::string_view s, size_t i) {
  return i + 4 <= s.size() && static_cast<uint8_t>(s[i]) == 0xF4 &&
         static_cast<uint8_t>(s[i + 1]) == 0x8F && (static_cast<uint8_t>(s[i + 2]) & 0xFC) == 0xBC;
}

std::string ToSentinels(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Length(s, i);
    if (n == 0 || (n == 4 && IsSentinelAt(s, i))) {
      for (size_t k = 0; k < (n == 0 ? 1 : n); ++k) {
        AppendSentinel(out, static_cast<uint8_t>(s[i + k]));
      }
      i += n == 0 ? 1 : n;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

nlohmann::json Sanitised(const nlohmann::json& v) {
  if (v.is_string()) return ToSentinels(v.get_ref<const std::string&>());
  if (v.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : v) out.push_back(Sanitised(item));
    return out;
  }
  if (v.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = v.begin(); it != v.end(); ++it) out[ToSentinels(it.key())] = Sanitised(*it);
    return out;
  }
  return v;
}

}  // namespace

std::string EscapeName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  char oct[8];
  for (size_t i = 0; i < name.size();) {
    const auto c = static_cast<uint8_t>(name[i]);
    const size_t n = Utf8Length(name, i);
    if (n > 1) {
      out.append(name.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\a':
        out += "\\a";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\v':
        out += "\\v";
        continue;
      case 0x1B:
        out += "\\e";
        continue;
      default:
        break;
    }
    if (n == 0 || c < 0x20 || c == 0x7F) {
      std::snprintf(oct, sizeof oct, "\\%03o", c);
      out += oct;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string DumpJson(const nlohmann::json& value, int indent) {
  const std::string text = Sanitised(value).dump(indent);
  std::string out;
  out.reserve(text.size());
  char esc[8];
  for (size_t i = 0; i < text.size();) {
    if (IsSentinelAt(text, i)) {
      const uint32_t cp = ((static_cast<uint8_t>(text[i + 2]) & 0x3F) << 6) |
                          (static_cast<uint8_t>(text[i + 3]) & 0x3F);
      std::snprintf(esc, sizeof esc, "\\udc%02x", static_cast<unsigned>(cp & 0xFF));
      out += esc;
      i += 4;
      continue;
    }
    out += text[i++];
  }
  return out;
}

}  // namespace hsmfs::cli
