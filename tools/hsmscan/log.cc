#include "tools/hsmscan/log.h"

#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

namespace hsmfs::hsmscan {

void Log::Write(Level level, std::string_view message) const {
  if (!Enabled(level)) return;
  // Test mode logs a few lines per archive (tens of thousands): one write(2)
  // per line (std::cerr is unit-buffered and would write every piece), and the
  // time stamp formatted once per second.
  thread_local std::time_t last = -1;
  thread_local char stamp[32];
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    std::tm tm{};
    localtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    last = now;
  }
  const char* name = level == Level::kDebug     ? "DEBUG"
                     : level == Level::kInfo    ? "INFO"
                     : level == Level::kWarning ? "WARNING"
                     : level == Level::kError   ? "ERROR"
                                                : "CRITICAL";
  thread_local std::string line;
  line.assign(stamp);
  line += " hsmscan ";
  line += name;
  line += ": ";
  line += message;
  line += '\n';
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(2, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to report a failing stderr
    done += static_cast<size_t>(n);
  }
}

}  // namespace hsmfs::hsmscan
