#include "common/logging.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <set>

namespace hsmfs {
namespace {

std::mutex& SitesMu() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}
std::map<std::string, uint64_t>& Sites() {
  static auto* sites = new std::map<std::string, uint64_t>();
  return *sites;
}
std::set<std::string, std::less<>>& Seen() {
  static auto* seen = new std::set<std::string, std::less<>>();
  return *seen;
}

}  // namespace

Status ValidateLogLevel(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  // from_str returns off for unknown names; only "off" itself may map to off.
  if (parsed == spdlog::level::off && level != "off") {
    return InvalidArgumentError("unknown log level \"" + std::string(level) +
                                "\" (use trace, debug, info, warn, error or off)");
  }
  return Status::Ok();
}

Status InitLogging(const LogOptions& options) {
  HSMFS_RETURN_IF_ERROR(ValidateLogLevel(options.level));
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (options.file.empty()) {
      logger = std::make_shared<spdlog::logger>(
          options.name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    } else {
      // The log names users' files: its owner's only (also a log made by an
      // older version; spdlog would create it 0644).
      const int fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::fchmod(fd, 0600);
        ::close(fd);
      }
      logger = std::make_shared<spdlog::logger>(
          options.name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file.string()));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return UnavailableError("cannot open log " + options.file.string() + ": " + e.what());
  }
  logger->set_level(spdlog::level::from_str(options.level));
  logger->set_pattern(options.file.empty() ? "%n: %^%l%$: %v" : "%Y-%m-%d %H:%M:%S.%e %l [%t] %v");
  // Info and above are rare (start-up, failures) and worth having on disk at once.
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  if (!options.file.empty()) spdlog::flush_every(std::chrono::seconds(2));
  return Status::Ok();
}

void CountErrorSite(std::string_view id) {
  std::lock_guard<std::mutex> l(SitesMu());
  ++Sites()[std::string(id)];
}

Status AtSite(std::string_view id, const Status& s) {
  CountErrorSite(id);
  return s.Annotate(id);
}

std::map<std::string, uint64_t> ErrorSiteCounts() {
  std::lock_guard<std::mutex> l(SitesMu());
  return Sites();
}

bool FirstTimeFor(std::string_view key) {
  std::lock_guard<std::mutex> l(SitesMu());
  return Seen().emplace(key).second;
}

}  // namespace hsmfs
