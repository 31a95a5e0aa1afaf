// hsmfs: mounts the archive (and runs the recall and archive engine).
//
//   hsmfs -c CONF MOUNTPOINT [-f] [-o opts]     (also: hsmfs CONF MOUNTPOINT -o opts,
//                                                which is how mount -t fuse.hsmfs calls it)
//   hsmfs --demo MOUNTPOINT
//   hsmfs -c CONF --print-config

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "cli/daemon.h"
#include "cli/paths.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/thread.h"
#include "common/units.h"
#include "engine/engine.h"
#include "fuse/demo.h"
#include "fuse/fs_core.h"
#include "fuse/fuse_ops.h"

namespace hsmfs {
namespace {

constexpr char kProgram[] = "hsmfs";

struct Args {
  std::string config;
  std::vector<std::string> positionals;
  std::vector<std::string> o_options;
  bool foreground = false;
  bool fuse_debug = false;
  bool print_config = false;
  bool demo = false;
  std::string log_level;
};

// -o options hsmfs itself understands; the rest go to libfuse and the kernel.
struct MountOverrides {
  std::string config;
  std::string log_level;
  std::string log_file;
  std::vector<std::pair<std::string, std::string>> durations;  // key, value
  std::vector<std::string> fuse_options;
};

// Options that mount(8) and fstab use but that mean nothing to FUSE.
bool IgnoredMountOption(const std::string& o) {
  for (const char* ignored : {"defaults", "auto", "noauto", "user", "users", "nouser", "_netdev",
                              "nofail", "owner", "comment"}) {
    if (o == ignored || o.rfind(std::string(ignored) + "=", 0) == 0) return true;
  }
  return o.rfind("x-", 0) == 0;
}

Result<MountOverrides> SplitMountOptions(const std::vector<std::string>& groups) {
  MountOverrides out;
  for (const std::string& group : groups) {
    size_t pos = 0;
    while (pos <= group.size()) {
      size_t comma = group.find(',', pos);
      if (comma == std::string::npos) comma = group.size();
      const std::string o = group.substr(pos, comma - pos);
      pos = comma + 1;
      if (o.empty() || IgnoredMountOption(o)) continue;
      const size_t eq = o.find('=');
      const std::string key = o.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : o.substr(eq + 1);
      if (key == "config") {
        out.config = value;
      } else if (key == "debug") {
        out.log_level = "debug";
      } else if (key == "log_level") {
        out.log_level = value;
      } else if (key == "log_file") {
        out.log_file = value;
      } else if (key == "entry_timeout" || key == "attr_timeout" || key == "list_timeout" ||
                 key == "list_ttl") {
        out.durations.emplace_back(key, value);
      } else {
        out.fuse_options.push_back(o);
      }
    }
  }
  return out;
}

Status ApplyOverrides(const MountOverrides& o, Config* config) {
  for (const auto& [key, value] : o.durations) {
    auto d = ParseDuration(value);
    if (!d.ok()) return InvalidArgumentError("-o " + key + ": " + d.status().message());
    if (key == "entry_timeout") config->mount.entry_timeout = *d;
    if (key == "attr_timeout") config->mount.attr_timeout = *d;
    if (key == "list_timeout") config->mount.list_timeout = *d;
    if (key == "list_ttl") config->mount.list_ttl = *d;
  }
  if (!o.log_file.empty()) {
    config->log.file = std::filesystem::absolute(o.log_file).lexically_normal();
    // A log file inside the cache or a backend root is refused as in the config.
    if (Status s = CheckConfigPaths(*config); !s.ok()) {
      return InvalidArgumentError("-o log_file: " + s.message());
    }
  }
  return Status::Ok();
}

// A posix backend whose root is missing still mounts (empty, with
// user.hsm.error, until the root appears: its export may come later), but the
// admin hears of it now, on the terminal, and not only in the log.
void WarnMissingRoots(const Config& config) {
  for (const BackendConfig& b : config.backends) {
    if (b.type != "posix") continue;
    struct stat st;
    const int err = ::stat(b.root.c_str(), &st) != 0 ? errno : (S_ISDIR(st.st_mode) ? 0 : ENOTDIR);
    if (err == 0) continue;
    std::cerr << kProgram << ": warning: backend " << b.name << ": root " << b.root.string() << ": "
              << std::strerror(err)
              << "; it is mounted empty, with user.hsm.error set, until the root appears\n";
  }
}

// How long the engine's workers get to stop once the session ended. A
// cancelled job stops in well under a second; a worker still busy after this
// is inside a backend call that ignores cancellation (a hung NFS export or
// FUSE file system, a stopped tape library).
constexpr std::chrono::seconds kStopGrace(5);

// Bounds a stop (docs/SEMANTICS.md, "Stopping"). Once the session has ended
// (a signal, an unmount) the engine gets kStopGrace to stop. Waiting longer
// for a worker stuck in a backend would keep the mount dead and the engine
// lock held until the backend answered; instead the mount is unmounted, the
// lock released and the process exits. The jobs those workers ran are still
// `running` in the catalog, and the next start requeues them.
class StopGuard {
 public:
  StopGuard(fs::FuseMount& mount, fs::Engine& engine)
      : mount_(mount), engine_(engine), thread_(StartThread("hsmfs-stop", [this] { Watch(); })) {}
  ~StopGuard() {
    Done();
    thread_.join();
  }
  StopGuard(const StopGuard&) = delete;
  StopGuard& operator=(const StopGuard&) = delete;

  // Run has returned: the grace starts now if the session's end was not
  // noticed yet.
  void SessionEnded() {
    {
      std::lock_guard<std::mutex> l(mu_);
      session_over_ = true;
    }
    cv_.notify_all();
  }
  // The engine stopped in time. Blocks for good if the guard is abandoning
  // the mount right now: the process is exiting.
  void Done() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }

 private:
  void Watch() {
    std::unique_lock<std::mutex> l(mu_);
    // libfuse's signal handler has no hook: look for the session's end. A
    // FUSE worker stuck in a backend call keeps Run from returning, so
    // SessionEnded alone would not do.
    while (!done_ && !session_over_ && !mount_.Exiting()) {
      cv_.wait_for(l, std::chrono::milliseconds(100));
    }
    if (cv_.wait_for(l, kStopGrace, [&] { return done_; })) return;
    // Holding mu_ from here on: Done() cannot race the exit.
    CountErrorSite("E-STOP-01");
    spdlog::error(
        "E-STOP-01: the engine did not stop within {} s of the stop request: a backend call does "
        "not return (is a backend hung?). Unmounting and exiting without waiting for it; the "
        "jobs it ran resume at the next start",
        kStopGrace.count());
    mount_.Abandon();
    engine_.ReleaseLock();
    spdlog::default_logger()->flush();
    ::_exit(cli::kExitFailed);
  }

  fs::FuseMount& mount_;
  fs::Engine& engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool session_over_ = false;  // GUARDED_BY(mu_)
  bool done_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;         // last: it uses the members above
};

// SIGHUP reopens the log file (logrotate's postrotate) and keeps the mount;
// libfuse would unmount on it. fuse_set_signal_handlers leaves alone a signal
// that already has a handler, so installing this before FuseMount::Run is
// enough. The handler only writes to a pipe; a thread does the reopening.
class HangupReopensLog {
 public:
  HangupReopensLog() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) return;
    hup_fd_ = fds_[1];
    thread_ = StartThread("hsmfs-sighup", [this] { Loop(); });
    struct sigaction sa {};
    sa.sa_handler = OnHangup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGHUP, &sa, nullptr);
  }
  ~HangupReopensLog() {
    if (fds_[0] < 0) return;
    ::signal(SIGHUP, SIG_IGN);  // shutting down: a late HUP must not kill the cleanup
    const char quit = 'q';
    while (::write(fds_[1], &quit, 1) < 0 && errno == EINTR) {
    }
    if (thread_.joinable()) thread_.join();
    hup_fd_ = -1;
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  HangupReopensLog(const HangupReopensLog&) = delete;
  HangupReopensLog& operator=(const HangupReopensLog&) = delete;

 private:
  static void OnHangup(int) {
    const int saved = errno;
    const char hup = 'h';
    if (hup_fd_ >= 0 && ::write(hup_fd_, &hup, 1) < 0) {
      // Nothing to do in a signal handler: this HUP is lost.
    }
    errno = saved;
  }
  void Loop() {
    char c;
    for (;;) {
      const ssize_t n = ::read(fds_[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == 'q') return;
      if (Status s = ReopenLogFile(); !s.ok()) {
        spdlog::error("SIGHUP: {}", s.message());
      } else {
        spdlog::info("SIGHUP: reopened the log file; the mount stays");
      }
    }
  }

  static inline volatile sig_atomic_t hup_fd_ = -1;
  int fds_[2] = {-1, -1};
  std::thread thread_;
};

// Everything after the decision to mount: runs in the foreground process or in
// the background child.
int Serve(const Config& config, const std::filesystem::path& mountpoint,
          const MountOverrides& overrides, const Args& args, const std::string& log_level,
          cli::StartupReport report, bool background) {
  LogOptions log;
  log.level = log_level;
  if (background) log.file = config.log.file;
  if (Status s = InitLogging(log); !s.ok()) return report.Fail(s.message(), cli::kExitFailed);
  std::optional<HangupReopensLog> hangup;
  hangup.emplace();

  fs::FuseNotifier notifier;
  fs::EngineOptions engine_options;
  engine_options.program = kProgram;
  engine_options.notifier = &notifier;
  engine_options.run_jobs = true;
  engine_options.description = "hsmfs mount on " + mountpoint.string();
  auto engine = fs::Engine::Open(config, Clock::Real(), std::move(engine_options));
  if (!engine.ok())
    return report.Fail(engine.status().message(), cli::ExitCodeFor(engine.status()));
  fs::FsCore core(**engine, fs::FsCore::Options{::getuid(), ::getgid()});

  fs::MountOptions mount_options;
  mount_options.mountpoint = mountpoint;
  mount_options.fuse_options = overrides.fuse_options;
  // Always: the kernel checks every access against the owners and modes the
  // core reports (docs/SEMANTICS.md "Permissions"). Without it, FUSE checks
  // nothing, and with allow_other any user could read or delete any file.
  if (std::find(mount_options.fuse_options.begin(), mount_options.fuse_options.end(),
                "default_permissions") == mount_options.fuse_options.end()) {
    mount_options.fuse_options.push_back("default_permissions");
  }
  mount_options.fuse_debug = args.fuse_debug;
  auto mount = fs::FuseMount::Create(core, notifier, mount_options);
  if (!mount.ok()) return report.Fail(mount.status().message(), cli::ExitCodeFor(mount.status()));
  spdlog::info("mounted {} on {} ({} backend(s))", config.file.string(), mountpoint.string(),
               config.backends.size());
  report.Ok();
  if (background) cli::DetachStdio();

  Status s;
  {
    StopGuard guard(**mount, **engine);
    s = (*mount)->Run();
    guard.SessionEnded();
    hangup.reset();
    // Answer requests still waiting (recalls in flight go back to the queue)
    // while the session exists, then unmount. The core goes before the engine.
    (*engine)->Shutdown();
  }
  mount->reset();
  if (!s.ok()) {
    spdlog::error("{}", s.message());
    return cli::kExitFailed;
  }
  spdlog::info("unmounted {}", mountpoint.string());
  return cli::kExitOk;
}

int Main(int argc, char** argv) {
  Args args;
  CLI::App app("Mount tape and hierarchical storage as one file system.", kProgram);
  app.add_option("-c,--config", args.config,
                 "config file (default $HSMFS_CONFIG or /etc/hsmfs/hsmfs.toml)");
  app.add_option("-o", args.o_options,
                 "mount options, comma separated: config=FILE, debug, log_level=L, log_file=F, "
                 "entry_timeout=D, attr_timeout=D, list_timeout=D, list_ttl=D, and FUSE options "
                 "such as allow_other or ro")
      ->expected(1)
      // One value per -o: without this CLI11 takes the mountpoint after
      // "-o ro" as a second value.
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("-f,--foreground", args.foreground, "stay in the foreground, log to stderr");
  app.add_flag("-d", args.fuse_debug, "print every FUSE request (implies -f)");
  app.add_flag("--print-config", args.print_config, "print the effective config and exit");
  app.add_flag("--demo", args.demo,
               "mount a self-contained demo archive (created once under "
               "~/.local/share/hsmfs/demo)");
  app.add_option("--log-level", args.log_level, "trace, debug, info, warn, error");
  app.add_option("args", args.positionals, "[CONFIG] MOUNTPOINT");
  app.set_version_flag("--version", std::string(kProgram) + " " + HSMFS_VERSION);
  if (auto code = cli::Parse(app, argc, argv)) return *code;

  auto overrides = SplitMountOptions(args.o_options);
  if (!overrides.ok()) return cli::Fail(kProgram, overrides.status().message(), cli::kExitUsage);
  std::string mountpoint_arg;
  std::string config_path = !args.config.empty() ? args.config : overrides->config;
  if (args.positionals.size() > 2) {
    return cli::Fail(kProgram, "too many arguments (usage: hsmfs [-c CONFIG] MOUNTPOINT)",
                     cli::kExitUsage);
  }
  if (args.positionals.size() == 2) {
    if (!config_path.empty() || args.demo) {
      return cli::Fail(kProgram, "config given twice: as -c/-o config= and as an argument",
                       cli::kExitUsage);
    }
    config_path = args.positionals[0];
    mountpoint_arg = args.positionals[1];
  } else if (args.positionals.size() == 1) {
    mountpoint_arg = args.positionals[0];
  }
  if (mountpoint_arg.empty() && !args.print_config) {
    return cli::Fail(kProgram, "missing MOUNTPOINT (usage: hsmfs [-c CONFIG] MOUNTPOINT)",
                     cli::kExitUsage);
  }
  if (args.demo) {
    auto demo = fs::PrepareDemo(fs::DefaultDemoDir());
    if (!demo.ok()) return cli::Fail(kProgram, demo.status().message(), cli::kExitFailed);
    config_path = demo->string();
  }
  if (config_path.empty()) config_path = cli::DefaultConfigPath();

  auto config = LoadConfig(config_path);
  if (!config.ok()) return cli::Fail(kProgram, config.status().message(), cli::kExitUsage);
  if (Status s = ApplyOverrides(*overrides, &*config); !s.ok()) {
    return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  }
  if (args.print_config) {
    std::cout << RenderConfig(*config);
    return cli::kExitOk;
  }

  {
    // Checked before anything starts, so a typo is one line and exit 2.
    fs::MountOptions check;
    check.fuse_options = overrides->fuse_options;
    if (Status s = fs::FuseMount::CheckOptions(check); !s.ok()) {
      return cli::Fail(kProgram, s.message(), cli::kExitUsage);
    }
  }

  std::string log_level = config->log.level;
  if (!overrides->log_level.empty()) log_level = overrides->log_level;
  if (!args.log_level.empty()) log_level = args.log_level;
  if (Status s = ValidateLogLevel(log_level); !s.ok()) {
    return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  }

  struct stat st;
  if (::stat(mountpoint_arg.c_str(), &st) != 0) {
    return cli::Fail(kProgram, "mountpoint " + mountpoint_arg + ": " + std::strerror(errno),
                     cli::kExitUsage);
  }
  if (!S_ISDIR(st.st_mode)) {
    return cli::Fail(kProgram, "mountpoint " + mountpoint_arg + ": not a directory",
                     cli::kExitUsage);
  }
  const std::filesystem::path mountpoint =
      std::filesystem::absolute(mountpoint_arg).lexically_normal();
  if (Status s = CheckMountpoint(*config, mountpoint); !s.ok()) {
    return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  }
  const std::string hints =
      args.demo ? fs::DemoHints(mountpoint, config->file, cli::SiblingProgram("hsmctl")) : "";
  if (args.demo) {
    // Running the demo twice is harmless: the second run only repeats the hints.
    for (const std::string& m : cli::HsmfsMounts()) {
      if (m == mountpoint.string()) {
        std::cout << "The demo is already mounted.\n" << hints;
        return cli::kExitOk;
      }
    }
  }

  WarnMissingRoots(*config);
  const bool foreground = args.foreground || args.fuse_debug;
  if (foreground) {
    if (!hints.empty()) std::cout << hints << std::flush;
    return Serve(*config, mountpoint, *overrides, args, log_level, cli::StartupReport(kProgram, -1),
                 false);
  }
  int report_fd = -1;
  const int parent_exit = cli::Daemonise(kProgram, &report_fd, hints);
  if (parent_exit >= 0) return parent_exit;
  return Serve(*config, mountpoint, *overrides, args, log_level,
               cli::StartupReport(kProgram, report_fd), true);
}

}  // namespace
}  // namespace hsmfs

int main(int argc, char** argv) { return hsmfs::Main(argc, argv); }
