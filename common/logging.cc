#include "common/logging.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
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

constexpr char kFilePattern[] = "%Y-%m-%d %H:%M:%S.%e %l [%t] %v";

// The file sink sits inside a dist_sink so that ReopenLogFile can swap it
// under the dist_sink's lock while other threads log.
struct FileLog {
  std::mutex mu;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;  // GUARDED_BY(mu)
  std::filesystem::path file;                         // GUARDED_BY(mu)
};
FileLog& TheFileLog() {
  static auto* log = new FileLog();
  return *log;
}

// The log names users' files: it is its owner's only, also a log made by an
// older version (spdlog would create it 0644).
void OwnerOnly(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::fchmod(fd, 0600);
    ::close(fd);
  }
}

}  // namespace

Status ReopenLogFile() {
  FileLog& log = TheFileLog();
  std::lock_guard<std::mutex> l(log.mu);
  if (!log.dist) return Status::Ok();
  std::shared_ptr<spdlog::sinks::sink> sink;
  OwnerOnly(log.file);
  try {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log.file.string());
  } catch (const spdlog::spdlog_ex& e) {
    return UnavailableError("cannot reopen log " + log.file.string() + ": " + e.what());
  }
  sink->set_pattern(kFilePattern);
  log.dist->set_sinks({sink});
  return Status::Ok();
}

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
  std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;
  try {
    if (options.file.empty()) {
      logger = std::make_shared<spdlog::logger>(
          options.name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    } else {
      OwnerOnly(options.file);
      dist = std::make_shared<spdlog::sinks::dist_sink_mt>();
      dist->add_sink(std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file.string()));
      logger = std::make_shared<spdlog::logger>(options.name, dist);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return UnavailableError("cannot open log " + options.file.string() + ": " + e.what());
  }
  logger->set_level(spdlog::level::from_str(options.level));
  logger->set_pattern(options.file.empty() ? "%n: %^%l%$: %v" : kFilePattern);
  {
    FileLog& log = TheFileLog();
    std::lock_guard<std::mutex> l(log.mu);
    log.dist = dist;
    log.file = options.file;
  }
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
