#pragma once

// Process-wide logging on spdlog. InitLogging() picks the sink once at start:
// stderr for foreground runs and tools, a log file for the daemonised mount.
// Code logs with spdlog::info(...) etc. directly.
//
// Error sites: every place that turns a failure into EIO (or another error a
// user sees without context) has a stable id such as "E-LIST-01", listed in
// docs/ERRORS.md. CountErrorSite() bumps its counter; ErrorSiteCounts() reports
// them (hsmctl status, the user.hsm.stats xattr on the mount root). Thread-safe.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hsmfs {

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  std::filesystem::path file;  // empty: stderr
  std::string name = "hsmfs";  // the program name shown in each line
};

// Configures the default logger. Safe to call again (e.g. after daemonising).
Status InitLogging(const LogOptions& options);
// Reopens the log file under its name (after logrotate moved it away: the
// mount's and the daemon's SIGHUP). Lines logged meanwhile go to the old or
// the new file, none is lost. OK and nothing done when logging to stderr.
// Thread-safe, but not async-signal-safe: call it from a thread.
Status ReopenLogFile();
// Checks that `level` is a level name InitLogging accepts.
Status ValidateLogLevel(std::string_view level);

void CountErrorSite(std::string_view id);
// Counts a failure at site `id` and returns it tagged: "<id>: <message>".
Status AtSite(std::string_view id, const Status& s);
std::map<std::string, uint64_t> ErrorSiteCounts();

// True the first time it is called with `key` in this process; lets code log a
// recurring condition once (e.g. per denied process name).
bool FirstTimeFor(std::string_view key);

}  // namespace hsmfs
