// hsmctl put (like dm_iput), daemon (like dm_idaemon) and fsck.

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "catalog/job_queue.h"
#include "catalog/sqlite/raw_access.h"
#include "cli/cli.h"
#include "cli/daemon.h"
#include "cli/names.h"
#include "cli/paths.h"
#include "cli/progress.h"
#include "common/logging.h"
#include "common/units.h"
#include "engine/fsck.h"
#include "fuse/fs_core.h"
#include "tools/hsmctl/hsmctl.h"
#include "tools/hsmctl/stall_guard.h"

namespace hsmfs::hsmctl {
namespace {

namespace stdfs = std::filesystem;
using catalog::Entry;

struct PutTotals {
  int64_t files = 0;
  uint64_t bytes = 0;
  // Entries this put made or rewrote: --wait follows these and nothing else.
  std::vector<catalog::EntryId> entries;
};

// hsmctl itself: what it puts is its user's and group's.
catalog::Requester Me() {
  return catalog::Requester{static_cast<uint32_t>(::getuid()), static_cast<int32_t>(::getpid()),
                            "hsmctl", static_cast<uint32_t>(::getgid())};
}

// Ctrl-C (or SIGTERM) during a put: the file being copied is dropped, the put
// stops and exits 130. The handler resets itself, so a second Ctrl-C kills at
// once, which is safe too: a half-copied file is never archived (see PutFile).
volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // no SA_RESTART: a blocked read returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

Status Interrupted() { return CancelledError("interrupted"); }

Result<Entry> LookupIn(fs::FsCore& core, catalog::EntryId dir, const std::string& name) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, core.engine().catalog().Acquire());
  return session.Lookup(dir, name);
}

// Copies one local file into the archive directory `dir` as `name`, through
// the same write path as the mount. The core marks the file incomplete
// (`failed`, catalog::IncompletePutError) from its first instant; only once
// every byte is in is it made `online`, so that it settles and archives. A
// put that fails or is interrupted drops what it wrote (or, with --force over
// an archived file, goes back to the archived version); one that is killed
// leaves the mark, which the next put of the name or hsmctl fsck --repair
// clears. Nothing half-copied is ever archived.
Status PutFile(fs::FsCore& core, const Entry& dir, const stdfs::path& local,
               const std::string& name, bool force, cli::Progress& progress, PutTotals& totals) {
  HSMFS_RETURN_IF_ERROR(catalog::CheckEntryName(name));
  const int in = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, local.string());
  struct stat st;
  if (::fstat(in, &st) != 0) {
    const int err = errno;
    ::close(in);
    return ErrnoToStatus(err, local.string());
  }
  if (auto old = LookupIn(core, dir.id, name); old.ok() && fs::IncompletePutAbandoned(*old)) {
    spdlog::info("{}: dropping what an unfinished hsmctl put left", old->display());
    if (Status s = fs::DiscardIncompletePut(core.engine(), *old); !s.ok()) {
      ::close(in);
      return s;
    }
  }
  const catalog::Requester me = Me();
  auto created = core.Create(static_cast<uint64_t>(dir.id), name, st.st_mode & 07777, O_WRONLY, me);
  fs::OpenFile file;
  uint64_t ino;
  if (created.ok()) {
    ino = created->first.ino;
    file = created->second;
  } else if (created.status().code() == Code::kAlreadyExists && force) {
    auto existing = LookupIn(core, dir.id, name);
    if (!existing.ok()) {
      ::close(in);
      return existing.status();
    }
    ino = static_cast<uint64_t>(existing->id);
    std::promise<Result<fs::OpenFile>> opened;
    core.Open(ino, O_WRONLY | O_TRUNC, me, [&](Result<fs::OpenFile> r) { opened.set_value(r); });
    auto got = opened.get_future().get();
    if (!got.ok()) {
      ::close(in);
      return got.status();
    }
    file = *got;
  } else {
    ::close(in);
    if (created.status().code() == Code::kAlreadyExists) {
      return AlreadyExistsError(created.status().message() + " (use --force to replace it)");
    }
    return created.status();
  }
  std::vector<char> buf(1 << 20);
  uint64_t offset = 0;
  Status s;
  for (;;) {
    if (g_interrupted) {
      s = Interrupted();
      break;
    }
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoToStatus(errno, "read " + local.string());
      break;
    }
    if (n == 0) break;
    auto written = core.Write(ino, file, buf.data(), static_cast<size_t>(n), offset);
    if (!written.ok()) {
      s = written.status();
      break;
    }
    offset += *written;
    totals.bytes += *written;
    progress.Update(totals.files, 0, totals.bytes, 0);
  }
  ::close(in);
  // Keep the local mtime, as cp -p and dm_iput do.
  if (s.ok()) {
    fs::AttrChange change;
    change.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    std::promise<Result<fs::Attr>> done;
    core.SetAttr(ino, &file, change, me, [&](Result<fs::Attr> r) { done.set_value(r); });
    s = done.get_future().get().status();
  }
  const std::string mark = catalog::IncompletePutError(::getpid());  // as CmdPut's core marks
  if (s.ok() && g_interrupted) s = Interrupted();
  if (s.ok()) {
    // Complete: from here on it is an ordinary file that settles on close.
    auto session = core.engine().catalog().Acquire();
    auto cleared = session.ok() ? session->ClearIncomplete(static_cast<catalog::EntryId>(ino), mark)
                                : Result<bool>(session.status());
    if (!cleared.ok()) {
      s = cleared.status();
    } else if (!*cleared) {
      s = AbortedError(local.string() + ": the archive copy was changed while it was copied in");
    }
  }
  core.Release(ino, file);
  if (!s.ok()) {
    // Drop what was copied so far; only a copy still carrying our mark (a
    // writer through the mount may have taken the file over).
    auto now = LookupIn(core, dir.id, name);
    if (now.ok() && static_cast<uint64_t>(now->id) == ino && now->error == mark) {
      if (Status d = fs::DiscardIncompletePut(core.engine(), *now); !d.ok()) {
        spdlog::warn("{}: cannot drop the incomplete copy: {}", now->display(), d.message());
      }
    }
    return s.Annotate(local.string());
  }
  ++totals.files;
  totals.entries.push_back(static_cast<catalog::EntryId>(ino));
  return s;
}

Status PutTree(fs::FsCore& core, const Entry& dir, const stdfs::path& local, bool force,
               cli::Progress& progress, PutTotals& totals) {
  if (g_interrupted) return Interrupted();
  const std::string name = local.filename().string();
  HSMFS_RETURN_IF_ERROR(catalog::CheckEntryName(name));
  struct stat st;
  if (::stat(local.c_str(), &st) != 0) return ErrnoToStatus(errno, local.string());
  if (!S_ISDIR(st.st_mode)) return PutFile(core, dir, local, name, force, progress, totals);
  auto made = core.MakeDir(static_cast<uint64_t>(dir.id), name, st.st_mode & 07777, Me());
  if (!made.ok() && made.status().code() != Code::kAlreadyExists) return made.status();
  HSMFS_ASSIGN_OR_RETURN(Entry sub, LookupIn(core, dir.id, name));
  if (!sub.is_dir()) return Status(Code::kNotDirectory, name + " exists and is not a directory");
  if (made.ok()) totals.entries.push_back(sub.id);
  std::error_code ec;
  for (const auto& child : stdfs::directory_iterator(local, ec)) {
    HSMFS_RETURN_IF_ERROR(PutTree(core, sub, child.path(), force, progress, totals));
  }
  if (ec) return ErrnoToStatus(ec.value(), local.string());
  return Status::Ok();
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
// or failed, polling the catalog, with progress. Other jobs in the catalog are
// none of its business.
int WaitForArchives(Context& ctx, const PutTotals& totals) {
  cli::Progress progress("archive", "entries");
  std::vector<catalog::EntryId> pending = totals.entries;
  const auto total = static_cast<int64_t>(pending.size());
  std::vector<std::pair<std::string, std::string>> failed;  // path, why
  while (!pending.empty()) {
    if (g_interrupted) {
      progress.Finish();
      std::cerr << kProgram << ": interrupted; the archive jobs go on\n";
      return 130;
    }
    std::vector<catalog::EntryId> still;
    {
      auto session = ctx.engine->catalog().Acquire();
      if (!session.ok()) return cli::Fail(kProgram, session.status().message(), cli::kExitFailed);
      for (catalog::EntryId id : pending) {
        auto e = session->Get(id);
        if (!e.ok()) {
          if (e.status().code() != Code::kNotFound) {
            return cli::Fail(kProgram, e.status().message(), cli::kExitFailed);
          }
          failed.emplace_back("entry " + std::to_string(id), "removed before it was archived");
          continue;
        }
        switch (e->state) {
          case catalog::FileState::kDual:
          case catalog::FileState::kOffline:
            break;
          case catalog::FileState::kFailed:
            failed.emplace_back(e->display(), e->error);
            break;
          default:
            still.push_back(id);
        }
      }
    }
    pending = std::move(still);
    progress.Update(total - static_cast<int64_t>(pending.size()), total, 0, 0);
    if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  progress.Finish();
  if (!failed.empty()) {
    for (const auto& [path, why] : failed) {
      std::cerr << kProgram << ": FAILED " << cli::EscapeName(path) << ": " << why << "\n";
    }
    std::cerr << kProgram << ": " << failed.size() << " of " << total
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
  ctx.engine.reset();
  fs::EngineOptions options;
  options.program = "hsmctl";
  options.run_jobs = true;
  options.description = "hsmctl daemon";
  auto engine = fs::Engine::Open(ctx.config, Clock::Real(), std::move(options));
  if (!engine.ok()) return report.Fail(engine.status().message(), cli::kExitFailed);
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
  if (!(*engine)->ShutdownWithin(std::chrono::seconds(5))) {
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
  auto dest = ctx.engine->sync().Resolve(*cpath, CancelToken::None());
  if (!dest.ok()) return cli::Fail(kProgram, dest.status().message(), cli::kExitFailed);
  if (!dest->is_dir()) return cli::Fail(kProgram, dest_arg + ": not a directory", cli::kExitUsage);
  InstallInterruptHandler();
  PutTotals totals;
  int rc = cli::kExitOk;
  {
    fs::FsCore::Options core_options{::getuid(), ::getgid()};
    core_options.incomplete_error = catalog::IncompletePutError(::getpid());
    fs::FsCore core(*ctx.engine, core_options);
    cli::Progress progress("put", "files");
    for (const stdfs::path& source : sources) {
      if (Status s = PutTree(core, *dest, source, force, progress, totals); !s.ok()) {
        if (s.code() == Code::kCancelled) {
          rc = 130;
          break;
        }
        rc = cli::Fail(kProgram, s.message(), cli::ExitCodeFor(s));
      }
    }
    progress.Finish();
  }
  if (rc == 130) {
    std::cerr << kProgram << ": interrupted: " << cli::Thousands(totals.files)
              << " files were copied in completely and are queued for archiving; the file "
                 "being copied was dropped\n";
    return rc;
  }
  // The core shut the engine down when it went: open a fresh one to wait with.
  if (Status s = OpenEngine(ctx); !s.ok())
    return cli::Fail(kProgram, s.message(), cli::kExitFailed);
  std::cout << "queued " << cli::Thousands(totals.files) << " files ("
            << FormatSizeHuman(totals.bytes) << ") for archiving\n";
  if (fs::EngineLockHolder(ctx.config.catalog.path).empty()) {
    if (!wait) {
      std::cerr << kProgram << ": no hsmfs engine runs for this catalog: archiving starts when "
                << "one does (hsmctl daemon start, or mount it)\n";
      return rc;
    }
    ctx.engine.reset();
    fs::EngineOptions options;
    options.program = "hsmctl";
    options.run_jobs = true;
    options.description = "hsmctl put --wait";
    auto opened = fs::Engine::Open(ctx.config, Clock::Real(), std::move(options));
    if (!opened.ok()) return cli::Fail(kProgram, opened.status().message(), cli::kExitFailed);
    ctx.engine = std::move(opened).value();
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
      auto session = ctx.engine->catalog().Acquire();
      if (session.ok()) {
        auto st = catalog::RawSqlite(*session).Prepare(
            "SELECT kind, state, COUNT(*) FROM jobs WHERE state IN ('queued', 'running', "
            "'failed') GROUP BY kind, state ORDER BY kind, state");
        if (st.ok()) {
          while (true) {
            auto row = st->Step();
            if (!row.ok() || !*row) break;
            std::cout << "  " << st->Text(0) << " jobs " << st->Text(1) << ": " << st->Int(2)
                      << "\n";
          }
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
    report = fs::Fsck(*ctx.engine, options);
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
