#pragma once

// Log lines in HPSSPy's format ("2024-05-01T12:00:00 hsmscan WARNING: ..."),
// at HPSSPy's levels: WARNING by default, INFO with -t, DEBUG with -v.
// Not thread-safe: the scan logs from one thread.

#include <string_view>

namespace hsmfs::hsmscan {

enum class Level { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40, kCritical = 50 };

class Log final {
 public:
  explicit Log(Level threshold) : threshold_(threshold) {}
  bool Enabled(Level level) const { return level >= threshold_; }
  void Write(Level level, std::string_view message) const;
  void Debug(std::string_view m) const { Write(Level::kDebug, m); }
  void Info(std::string_view m) const { Write(Level::kInfo, m); }
  void Warning(std::string_view m) const { Write(Level::kWarning, m); }
  void Error(std::string_view m) const { Write(Level::kError, m); }
  void Critical(std::string_view m) const { Write(Level::kCritical, m); }

 private:
  Level threshold_;
};

}  // namespace hsmfs::hsmscan
