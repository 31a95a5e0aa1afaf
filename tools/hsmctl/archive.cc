// hsmctl put (like dm_iput), daemon (like dm_idaemon) and fsck.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "cli/daemon.h"
#include "cli/names.h"
#include "cli/paths.h"
#include "cli/progress.h"
#include "common/logging.h"
#include "common/units.h"
#include "tools/hsmctl/hsmctl.h"
#include "tools/hsmctl/stall_guard.h"

namespace hsmfs::hsmctl {
namespace {

namespace stdfs = std::filesystem;
using catalog::Entry;

// hsmctl itself: what it puts is its user's and group's.
catalog::Requester Me() {
  return catalog::Requester{static_cast<uint32_t>(::getuid()), static_cast<int32_t>(::getpid()),
                            "hsmctl", static_cast<uint32_t>(::getgid())};
}

// Ctrl-C (or SIGTERM) during a put: the file being copied is dropped, the put
// stops and exits 130. The handler resets itself, so a second Ctrl-C kills at
// once, which is safe too: a half-copied file is never archived (Writes::Ingest).
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void OnInterrupt(int) { g_interrupted = true; }

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// "run42/", "./run42/.", "/data/run42//" -> /abs/run42: the name the archive
// gets is the last component the user meant, never "" (a trailing slash) or
// "." or "..".
Result<stdfs::path> LocalSource(const std::string& arg) {
  std::error_code ec;
  stdfs::path p = stdfs::absolute(arg, ec);
  if (ec) return ErrnoToStatus(ec.value(), arg);
  p = p.lexically_normal();
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  if (!p.has_filename()) {
    return InvalidArgumentError(arg +
                                ": cannot put the root directory (name a directory below it)");
  }
  return p;
}

// Waits until every entry this put made is archived (dual, or released since)
// or failed, with progress. Other jobs in the catalog are none of its business.
int WaitForArchives(Context& ctx, const fs::IngestTotals& totals) {
  cli::Progress progress("archive", "entries");
  fs::WaitOptions options;
  options.stop = &g_interrupted;
  auto waited = ctx.service->writes().WaitArchived(
      totals.entries, options,
      [&](int64_t done, int64_t total) { progress.Update(done, total, 0, 0); });
  progress.Finish();
  if (!waited.ok() && waited.status().code() == Code::kCancelled) {
    std::cerr << kProgram << ": interrupted; the archive jobs go on\n";
    return 130;
  }
  if (!waited.ok()) return cli::Fail(kProgram, waited.status().message(), cli::kExitFailed);
  if (!waited->failed.empty()) {
    for (const auto& [path, why] : waited->failed) {
      std::cerr << kProgram << ": FAILED " << cli::EscapeName(path) << ": " << why << "\n";
    }
    std::cerr << kProgram << ": " << waited->failed.size() << " of " << waited->total
              << " archive jobs failed (hsmctl jobs shows why; hsmctl retry --failed)\n";
    return cli::kExitFailed;
  }
  std::cout << "archived " << cli::Thousands(totals.files) << " files ("
            << FormatSizeHuman(totals.bytes) << ")\n";
  return cli::kExitOk;
}

int RunEngineUntilSignalled(Context& ctx, cli::StartupReport report, bool background) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  LogOptions log;
  log.level = ctx.config.log.level;
  log.name = "hsmctl-daemon";
  if (background) log.file = ctx.config.log.file;
  if (Status s = InitLogging(log); !s.ok()) return report.Fail(s.message(), cli::kExitFailed);
  if (Status s = OpenJobRunner(ctx, "hsmctl daemon"); !s.ok()) {
    return report.Fail(s.message(), cli::kExitFailed);
  }
  spdlog::info("hsmctl daemon running jobs for {}", ctx.config.catalog.path.string());
  report.Ok();
  if (background) cli::DetachStdio();
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // logrotate's postrotate: a new log file, and the daemon goes on.
    if (Status s = ReopenLogFile(); !s.ok()) spdlog::error("SIGHUP: {}", s.message());
    spdlog::info("SIGHUP: reopened the log file");
  }
  spdlog::info("hsmctl daemon stopping (signal {})", sig);
  // As the mount does (docs/SEMANTICS.md, "Stopping"): a worker stuck in a
  // hung backend must not keep the engine lock and the process for ever.
  if (!ctx.service->admin().ShutdownWithin(std::chrono::seconds(5))) {
    CountErrorSite("E-STOP-01");
    spdlog::error(
        "E-STOP-01: the engine did not stop within 5 s: a backend call does not return (is a "
        "backend hung?). Exiting without waiting for it; the jobs it ran resume at the next start");
    spdlog::default_logger()->flush();
    ::_exit(cli::kExitFailed);
  }
  return cli::kExitOk;
}

// The pid in an engine lock description ("hsmctl daemon, pid 123").
pid_t PidOf(const std::string& holder) {
  const size_t at = holder.rfind("pid ");
  return at == std::string::npos ? 0 : static_cast<pid_t>(std::atoi(holder.c_str() + at + 4));
}

}  // namespace

int CmdPut(Context& ctx, const std::vector<std::string>& args, bool wait, bool force) {
  if (args.size() < 2) return cli::Fail(kProgram, "put: give LOCAL... DEST", cli::kExitUsage);
  std::vector<stdfs::path> sources;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    auto source = LocalSource(args[i]);
    if (!source.ok()) return cli::Fail(kProgram, source.status().message(), cli::kExitUsage);
    sources.push_back(std::move(source).value());
  }
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  const std::string dest_arg = args.back();
  auto cpath = cli::ToCatalogPath(dest_arg);
  if (!cpath.ok()) return cli::Fail(kProgram, cpath.status().message(), cli::kExitUsage);
  auto dest = ctx.service->names().Resolve(*cpath, CancelToken::None());
  if (!dest.ok()) return cli::Fail(kProgram, dest.status().message(), cli::kExitFailed);
  if (!dest->is_dir()) return cli::Fail(kProgram, dest_arg + ": not a directory", cli::kExitUsage);
  InstallInterruptHandler();
  fs::IngestTotals totals;
  int rc = cli::kExitOk;
  {
    cli::Progress progress("put", "files");
    fs::IngestOptions options;
    options.who = Me();
    options.force = force;
    options.incomplete_error = catalog::IncompletePutError(::getpid());
    options.interrupted = &g_interrupted;
    options.progress = [&](int64_t files, uint64_t bytes) { progress.Update(files, 0, bytes, 0); };
    // Each source on its own: a failed one is reported, the others still go in.
    for (const stdfs::path& source : sources) {
      Status s = ctx.service->writes().Ingest({source}, *dest, options, &totals);
      if (s.ok()) continue;
      if (s.code() == Code::kCancelled) {
        rc = 130;
        break;
      }
      rc = cli::Fail(kProgram, s.message(), cli::ExitCodeFor(s));
    }
    progress.Finish();
  }
  if (rc == 130) {
    std::cerr << kProgram << ": interrupted: " << cli::Thousands(totals.files)
              << " files were copied in completely and are queued for archiving; the file "
                 "being copied was dropped\n";
    return rc;
  }
  std::cout << "queued " << cli::Thousands(totals.files) << " files ("
            << FormatSizeHuman(totals.bytes) << ") for archiving\n";
  if (ctx.service->jobs().Runner().empty()) {
    if (!wait) {
      std::cerr << kProgram << ": no hsmfs engine runs for this catalog: archiving starts when "
                << "one does (hsmctl daemon start, or mount it)\n";
      return rc;
    }
    if (Status s = OpenJobRunner(ctx, "hsmctl put --wait"); !s.ok()) {
      return cli::Fail(kProgram, s.message(), cli::kExitFailed);
    }
  }
  if (!wait) return rc;
  const int waited = WaitForArchives(ctx, totals);
  return rc != cli::kExitOk ? rc : waited;
}

int CmdDaemon(Context& ctx, const std::string& action) {
  if (ctx.config_path.empty()) ctx.config_path = cli::DefaultConfigPath();
  auto config = LoadConfig(ctx.config_path);
  if (!config.ok()) return cli::Fail(kProgram, config.status().message(), cli::kExitUsage);
  ctx.config = std::move(config).value();
  const std::string holder = fs::EngineLockHolder(ctx.config.catalog.path);
  if (action == "status") {
    if (holder.empty()) {
      std::cout << "not running: no engine runs jobs for " << ctx.config.catalog.path.string()
                << "\n";
    } else {
      std::cout << "running: " << holder << "\n";
    }
    if (Status s = OpenEngine(ctx); s.ok()) {
      if (auto counts = ctx.service->jobs().Summary(); counts.ok()) {
        for (const catalog::JobCount& c : *counts) {
          std::cout << "  " << catalog::JobKindName(c.kind) << " jobs "
                    << catalog::JobStateName(c.state) << ": " << c.count << "\n";
        }
      }
    }
    return holder.empty() ? 3 : cli::kExitOk;  // 3: not running, as init scripts expect
  }
  if (action == "stop") {
    if (holder.empty()) return cli::Fail(kProgram, "daemon: not running", cli::kExitFailed);
    if (holder.rfind("hsmctl daemon", 0) != 0) {
      return cli::Fail(kProgram, "daemon: the engine runs in " + holder + "; stop that instead",
                       cli::kExitFailed);
    }
    const pid_t pid = PidOf(holder);
    if (pid <= 0 || ::kill(pid, SIGTERM) != 0) {
      return cli::Fail(kProgram, "daemon: cannot signal " + holder, cli::kExitFailed);
    }
    for (int i = 0; i < 600; ++i) {
      if (fs::EngineLockHolder(ctx.config.catalog.path).empty()) {
        std::cout << "stopped (" << holder << ")\n";
        return cli::kExitOk;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return cli::Fail(kProgram, "daemon: still running after 30 s: " + holder, cli::kExitFailed);
  }
  if (!holder.empty()) {
    return cli::Fail(kProgram, "daemon: an engine already runs for this catalog: " + holder,
                     cli::kExitFailed);
  }
  if (action == "run") return RunEngineUntilSignalled(ctx, cli::StartupReport(kProgram, -1), false);
  if (action == "start") {
    int report_fd = -1;
    const int parent = cli::Daemonise(
        kProgram, &report_fd, "hsmctl daemon started; log: " + ctx.config.log.file.string() + "\n");
    if (parent >= 0) return parent;
    return RunEngineUntilSignalled(ctx, cli::StartupReport(kProgram, report_fd), true);
  }
  return cli::Fail(kProgram, "daemon: unknown action \"" + action + "\" (start, stop, status, run)",
                   cli::kExitUsage);
}

int CmdFsck(Context& ctx, bool checksums, bool json, bool repair) {
  Result<fs::FsckReport> report = InternalError("fsck did not run");
  // Made once the engine is open: a config error is one line, no progress.
  std::optional<cli::Progress> progress;
  {
    // Before the engine: opening a backend may already touch a hung one.
    StallGuard guard("fsck", ctx.timeout);
    if (Status s = OpenEngine(ctx); !s.ok()) {
      return cli::Fail(kProgram, s.message(), cli::kExitUsage);
    }
    progress.emplace("fsck", "files");
    fs::FsckOptions options;
    options.checksums = checksums;
    options.repair = repair;
    options.progress = [&](int64_t n) {
      guard.Touch();
      progress->Update(n, 0, 0, 0);
    };
    report = ctx.service->admin().Fsck(options);
  }
  progress->Finish();
  if (!report.ok()) return cli::Fail(kProgram, report.status().message(), cli::kExitFailed);
  if (json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : report->problems)
      problems.push_back({{"path", p.path}, {"problem", p.what}});
    nlohmann::json repaired = nlohmann::json::array();
    for (const auto& p : report->repaired)
      repaired.push_back({{"path", p.path}, {"repaired", p.what}});
    std::cout << cli::DumpJson(nlohmann::json{{"entries", report->entries},
                                              {"cached", report->cached},
                                              {"on_backend", report->on_backend},
                                              {"problems", problems},
                                              {"repaired", repaired}},
                               2)
              << "\n";
  } else {
    for (const auto& p : report->repaired) {
      std::cout << cli::EscapeName(p.path) << ": " << cli::EscapeName(p.what) << "\n";
    }
    for (const auto& p : report->problems) {
      std::cout << cli::EscapeName(p.path) << ": " << cli::EscapeName(p.what) << "\n";
    }
    std::cout << "fsck: " << cli::Thousands(report->entries) << " files, "
              << cli::Thousands(report->cached) << " cached copies, "
              << cli::Thousands(report->on_backend) << " backend copies checked; "
              << (report->problems.empty()
                      ? "no problems"
                      : cli::Thousands(static_cast<int64_t>(report->problems.size())) + " problems")
              << "\n";
  }
  return report->problems.empty() ? cli::kExitOk : cli::kExitFailed;
}

}  // namespace hsmfs::hsmctl
