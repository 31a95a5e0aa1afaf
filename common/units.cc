#include "common/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

namespace hsmfs {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads a non-negative decimal number at the front of `s`; advances `s`.
bool TakeNumber(std::string_view& s, double& out) {
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    ++i;
    digits = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      digits = true;
    }
  }
  if (!digits) return false;
  out = std::stod(std::string(s.substr(0, i)));
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
  double number = 0;
  if (!TakeNumber(s, number)) {
    return InvalidArgumentError("\"" + std::string(text) + "\" is not a size (e.g. \"50GiB\")");
  }
  const std::string unit = Lower(Trim(s));
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1.0},
      {"b", 1.0},
      {"k", 1024.0},
      {"kib", 1024.0},
      {"kb", 1e3},
      {"m", 1048576.0},
      {"mib", 1048576.0},
      {"mb", 1e6},
      {"g", 1073741824.0},
      {"gib", 1073741824.0},
      {"gb", 1e9},
      {"t", 1099511627776.0},
      {"tib", 1099511627776.0},
      {"tb", 1e12},
      {"p", 1125899906842624.0},
      {"pib", 1125899906842624.0},
      {"pb", 1e15},
  };
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      const double bytes = std::round(number * factor);
      if (bytes > 1.8e19)
        return InvalidArgumentError("size \"" + std::string(text) + "\" is too large");
      return static_cast<uint64_t>(bytes);
    }
  }
  return InvalidArgumentError("\"" + std::string(text) + "\" has an unknown size unit \"" +
                              std::string(Trim(s)) +
                              "\" (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
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
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not a duration (e.g. \"30s\", \"200ms\", \"1h30m\")");
  };
  if (s.empty()) return bad();
  double total_ns = 0;
  while (!s.empty()) {
    double number = 0;
    if (!TakeNumber(s, number)) return bad();
    size_t i = 0;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    const std::string unit = Lower(s.substr(0, i));
    s.remove_prefix(i);
    double factor = 0;
    if (unit.empty() || unit == "s") {
      factor = 1e9;
    } else if (unit == "ms") {
      factor = 1e6;
    } else if (unit == "us") {
      factor = 1e3;
    } else if (unit == "m" || unit == "min") {
      factor = 60e9;
    } else if (unit == "h") {
      factor = 3600e9;
    } else if (unit == "d") {
      factor = 86400e9;
    } else {
      return bad();
    }
    total_ns += number * factor;
    s = Trim(s);
  }
  if (total_ns > 9e18) return bad();
  return Duration(static_cast<int64_t>(std::llround(total_ns)));
}

std::string FormatDurationExact(Duration d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  if (ns % 1'000'000'000 != 0) {
    if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
    return std::to_string(ns / 1000) + "us";
  }
  int64_t s = ns / 1'000'000'000;
  std::string out;
  if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
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
