// hsmctl: the user's tool for the archive (dm_ilist / dm_iget / dm_iput style).
//
//   hsmctl [-c CONF] ls [-R] [--json] [-H] PATH...
//   hsmctl [-c CONF] sync [--force] [--timeout D] [BACKEND[/PATH]]...
//   hsmctl [-c CONF] stage|get [--wait] [--preview] [--json] PATH... | -
//   hsmctl [-c CONF] release PATH... | -
//   hsmctl [-c CONF] jobs [--json] [--watch] [--all]
//   hsmctl [-c CONF] cancel ID...
//   hsmctl [-c CONF] retry ID... | --failed
//   hsmctl [-c CONF] put [--wait] [--force] LOCAL... DEST
//   hsmctl [-c CONF] daemon start|stop|status|run
//   hsmctl [-c CONF] fsck [--checksums] [--json] [--repair] [--timeout D]
//   hsmctl [-c CONF] init-root [--force] BACKEND

#include "cli/cli.h"
#include "common/logging.h"
#include "common/units.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {
namespace {

int Main(int argc, char** argv) {
  CLI::App app("The hsmfs user tool: list, stage, put and follow archive jobs.", kProgram);
  app.require_subcommand(1);
  app.fallthrough();
  Context ctx;
  app.add_option("-c,--config", ctx.config_path,
                 "config file (default $HSMFS_CONFIG or /etc/hsmfs/hsmfs.toml)");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.set_version_flag("--version", std::string(kProgram) + " " + HSMFS_VERSION);

  std::vector<std::string> ls_paths;
  bool ls_recursive = false, ls_json = false, ls_human = false;
  CLI::App* ls = app.add_subcommand(
      "ls", "list files with their DMF state (REG, MIG, DUL, OFL, UNM), like dm_ilist");
  ls->add_flag("-R,--recursive", ls_recursive, "list directories recursively");
  ls->add_flag("--json", ls_json, "print a JSON array instead of a table");
  ls->add_flag("-H,--human-readable", ls_human, "sizes like 1.5 GiB");
  ls->add_option("paths", ls_paths, "paths inside the mount, or backend-relative (vault/dir)");

  std::vector<std::string> sync_targets;
  CLI::App* sync = app.add_subcommand(
      "sync", "refresh the catalog from the backends (all, or the given BACKEND[/PATH])");
  sync->add_option("targets", sync_targets, "BACKEND or BACKEND/PATH");
  bool sync_force = false;
  sync->add_flag("--force", sync_force,
                 "confirm listings that would remove most of a directory (E-LIST-03)");
  std::string timeout;
  const std::string timeout_help =
      "give up (exit 1) when the backends have not answered for this long, e.g. 10m "
      "(default 30m; 0 waits forever)";
  sync->add_option("--timeout", timeout, timeout_help);

  StageArgs stage_args;
  CLI::App* stage = app.add_subcommand(
      "stage", "recall files (directories: everything below) in one tape-ordered batch");
  stage->alias("get");
  stage->add_flag("--wait", stage_args.wait,
                  "show progress until all are online; exit 1 listing failures");
  stage->add_flag("--preview", stage_args.preview,
                  "print files, bytes, volumes and an estimated time; queue nothing");
  stage->add_flag("--json", stage_args.json, "--preview as JSON");
  stage->add_option("paths", stage_args.paths, "PATH... or - to read paths from stdin")->required();

  std::vector<std::string> release_paths;
  CLI::App* release = app.add_subcommand(
      "release", "drop the cached copies of archived (dual) files to free cache space");
  release->add_option("paths", release_paths, "PATH... or -")->required();

  JobsArgs jobs_args;
  CLI::App* jobs = app.add_subcommand(
      "jobs", "the queue: recalls and archive jobs with state, position, progress and errors");
  jobs->add_flag("--json", jobs_args.json, "print JSON");
  jobs->add_flag("--watch", jobs_args.watch, "refresh every second until interrupted");
  jobs->add_flag("--all", jobs_args.all, "every finished job, not only the latest 20");

  std::vector<int64_t> cancel_ids;
  CLI::App* cancel = app.add_subcommand("cancel", "cancel queued or running jobs");
  cancel->add_option("ids", cancel_ids, "job IDs (hsmctl jobs)")->required();

  std::vector<int64_t> retry_ids;
  bool retry_failed = false;
  CLI::App* retry = app.add_subcommand("retry", "queue failed or cancelled jobs again");
  retry->add_option("ids", retry_ids, "job IDs");
  retry->add_flag("--failed", retry_failed, "every failed job");

  std::vector<std::string> put_args;
  bool put_wait = false, put_force = false;
  CLI::App* put = app.add_subcommand(
      "put",
      "copy local files (directories: recursively) into an archive directory and "
      "queue them for archiving, like dm_iput");
  put->add_flag("--wait", put_wait, "show progress until everything is archived");
  put->add_flag("--force", put_force, "replace files that exist in DEST");
  put->add_option("args", put_args, "LOCAL... DEST")->required()->expected(2, -1);

  std::string daemon_action = "status";
  CLI::App* daemon = app.add_subcommand(
      "daemon", "run the engine without a mount so that queued jobs drain, like dm_idaemon");
  daemon->add_option("action", daemon_action, "start, stop, status, or run (foreground)")
      ->check(CLI::IsMember({"start", "stop", "status", "run"}));

  bool fsck_checksums = false, fsck_json = false, fsck_repair = false;
  CLI::App* fsck = app.add_subcommand(
      "fsck",
      "check that the catalog, the cache and the backends agree (read-only unless --repair)");
  fsck->add_flag("--checksums", fsck_checksums, "also read back archived files and compare");
  fsck->add_flag("--json", fsck_json, "print JSON");
  fsck->add_flag("--repair", fsck_repair,
                 "fix what can be fixed without losing data: entries with names that cannot be "
                 "shown (renamed unnamed-ID), files a killed put left half copied");
  fsck->add_option("--timeout", timeout, timeout_help);

  std::string init_root_backend;
  bool init_root_force = false;
  CLI::App* init_root = app.add_subcommand(
      "init-root", "make a backend's root directory carry this catalog's identity (.hsmfs-root)");
  init_root->add_option("backend", init_root_backend, "backend name")->required();
  init_root->add_flag("--force", init_root_force, "replace another catalog's identity");

  if (auto code = cli::Parse(app, argc, argv)) return *code;
  if (!timeout.empty()) {
    auto d = ParseDuration(timeout);
    if (!d.ok()) return cli::Fail(kProgram, "--timeout: " + d.status().message(), cli::kExitUsage);
    ctx.timeout = *d;
  }
  LogOptions log;
  log.level = log_level;
  log.name = kProgram;
  if (Status s = InitLogging(log); !s.ok())
    return cli::Fail(kProgram, s.message(), cli::kExitUsage);

  if (*ls) return CmdLs(ctx, ls_paths, ls_recursive, ls_json, ls_human);
  if (*sync) return CmdSync(ctx, sync_targets, sync_force);
  if (*stage) return CmdStage(ctx, stage_args);
  if (*release) return CmdRelease(ctx, release_paths);
  if (*jobs) return CmdJobs(ctx, jobs_args);
  if (*cancel) return CmdCancel(ctx, cancel_ids);
  if (*retry) return CmdRetry(ctx, retry_ids, retry_failed);
  if (*put) return CmdPut(ctx, put_args, put_wait, put_force);
  if (*daemon) return CmdDaemon(ctx, daemon_action);
  if (*fsck) return CmdFsck(ctx, fsck_checksums, fsck_json, fsck_repair);
  if (*init_root) return CmdInitRoot(ctx, init_root_backend, init_root_force);
  return cli::kExitUsage;
}

}  // namespace
}  // namespace hsmfs::hsmctl

int main(int argc, char** argv) { return hsmfs::hsmctl::Main(argc, argv); }
