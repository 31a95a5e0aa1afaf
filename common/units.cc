#include "common/units.h"

#include <cctype>
#include <cstdio>
#include <string>
#include <utility>

namespace hsmfs {
namespace {

// Wide enough for a 20-digit number times the largest unit (days in
// nanoseconds) without overflow: every range check happens after the product.
__extension__ typedef unsigned __int128 Wide;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `text` for an error message: control bytes (a NUL among them) escaped, and a
// very long value (a 400-digit number) shortened, so that the message stays one
// readable line.
std::string Quoted(std::string_view text) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "\"";
}

// A non-negative decimal number read from the front of a string, exactly:
// the whole part, and the first kFractionDigits digits of the fraction (later
// digits change no size by a byte and no duration by a nanosecond).
struct Decimal {
  static constexpr int kFractionDigits = 18;
  Wide whole = 0;
  bool huge = false;  // more than 20 significant whole digits: out of any range
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;  // 10^(fraction digits kept)

  // this * factor, rounded to the nearest unit; saturates when huge.
  Wide Times(uint64_t factor) const {
    if (huge) return ~Wide{0};
    const Wide scale = fraction_scale;
    return whole * factor + (Wide{fraction} * factor + scale / 2) / scale;
  }
};

// Reads a number at the front of `s` and advances `s`; false if there is none.
bool TakeNumber(std::string_view& s, Decimal& out) {
  size_t i = 0;
  bool digits = false;
  int significant = 0;
  out = Decimal{};
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    digits = true;
    if (significant == 0 && s[i] == '0') continue;
    if (++significant > 20) {
      out.huge = true;
      continue;
    }
    out.whole = out.whole * 10 + static_cast<unsigned>(s[i] - '0');
  }
  if (i < s.size() && s[i] == '.') {
    int kept = 0;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      digits = true;
      if (kept == Decimal::kFractionDigits) continue;
      out.fraction = out.fraction * 10 + static_cast<unsigned>(s[i] - '0');
      out.fraction_scale *= 10;
      ++kept;
    }
  }
  if (!digits) return false;
  s.remove_prefix(i);
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = Trim(text);
  Decimal number;
  if (!TakeNumber(s, number)) {
    return InvalidArgumentError(Quoted(text) + " is not a size (e.g. \"50GiB\")");
  }
  const std::string unit = Lower(Trim(s));
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", uint64_t{1} << 10},
      {"kib", uint64_t{1} << 10},
      {"kb", 1'000},
      {"m", uint64_t{1} << 20},
      {"mib", uint64_t{1} << 20},
      {"mb", 1'000'000},
      {"g", uint64_t{1} << 30},
      {"gib", uint64_t{1} << 30},
      {"gb", 1'000'000'000},
      {"t", uint64_t{1} << 40},
      {"tib", uint64_t{1} << 40},
      {"tb", 1'000'000'000'000},
      {"p", uint64_t{1} << 50},
      {"pib", uint64_t{1} << 50},
      {"pb", 1'000'000'000'000'000},
  };
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      const Wide bytes = number.Times(factor);
      if (bytes > kMaxSize) {
        return InvalidArgumentError("size " + Quoted(text) + " is too large (at most " +
                                    FormatSizeExact(kMaxSize) + ")");
      }
      return static_cast<uint64_t>(bytes);
    }
  }
  return InvalidArgumentError(Quoted(text) + " has an unknown size unit " + Quoted(Trim(s)) +
                              " (use B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB, PB)");
}

std::string FormatSizeExact(uint64_t bytes) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"PiB", uint64_t{1} << 50}, {"TiB", uint64_t{1} << 40}, {"GiB", uint64_t{1} << 30},
      {"MiB", uint64_t{1} << 20}, {"KiB", uint64_t{1} << 10},
  };
  if (bytes != 0) {
    for (const auto& [name, factor] : kUnits) {
      if (bytes % factor == 0) return std::to_string(bytes / factor) + name;
    }
  }
  return std::to_string(bytes) + "B";
}

std::string FormatSizeHuman(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  }
  return buf;
}

Result<Duration> ParseDuration(std::string_view text) {
  std::string_view s = Trim(text);
  const auto bad = [&] {
    return InvalidArgumentError(Quoted(text) +
                                " is not a duration (e.g. \"30s\", \"200ms\", \"1h30m\")");
  };
  if (s.empty()) return bad();
  const Wide max_ns = static_cast<uint64_t>(kMaxDuration.count());
  Wide total_ns = 0;
  while (!s.empty()) {
    Decimal number;
    if (!TakeNumber(s, number)) return bad();
    size_t i = 0;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    const std::string unit = Lower(s.substr(0, i));
    s.remove_prefix(i);
    uint64_t factor = 0;
    if (unit.empty() || unit == "s") {
      factor = 1'000'000'000;
    } else if (unit == "ms") {
      factor = 1'000'000;
    } else if (unit == "us") {
      factor = 1'000;
    } else if (unit == "ns") {
      factor = 1;
    } else if (unit == "m" || unit == "min") {
      factor = 60'000'000'000;
    } else if (unit == "h") {
      factor = 3'600'000'000'000;
    } else if (unit == "d") {
      factor = 86'400'000'000'000;
    } else {
      return bad();
    }
    // Checked part by part, so that the sum cannot wrap either.
    total_ns += number.Times(factor);
    if (number.huge || total_ns > max_ns) {
      return InvalidArgumentError("duration " + Quoted(text) + " is too long (at most " +
                                  FormatDurationExact(kMaxDuration) + ")");
    }
    s = Trim(s);
  }
  return Duration(static_cast<int64_t>(total_ns));
}

std::string FormatDurationExact(Duration d) {
  // Magnitude in unsigned arithmetic: even the most negative value has one.
  const bool negative = d.count() < 0;
  const uint64_t ns =
      negative ? uint64_t{0} - static_cast<uint64_t>(d.count()) : static_cast<uint64_t>(d.count());
  const std::string sign = negative ? "-" : "";
  if (ns == 0) return "0s";
  if (ns % 1'000'000'000 != 0) {
    if (ns % 1'000'000 == 0) return sign + std::to_string(ns / 1'000'000) + "ms";
    if (ns % 1'000 == 0) return sign + std::to_string(ns / 1000) + "us";
    return sign + std::to_string(ns) + "ns";
  }
  uint64_t s = ns / 1'000'000'000;
  std::string out = sign;
  if (s >= 86400 && s % 86400 == 0) return sign + std::to_string(s / 86400) + "d";
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace hsmfs
