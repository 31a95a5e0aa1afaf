#pragma once

// Shared pieces of the hsmctl commands (one file per command group).

#include <memory>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "common/config.h"
#include "engine/service.h"

namespace hsmfs::hsmctl {

inline constexpr char kProgram[] = "hsmctl";

struct Context {
  std::string config_path;
  Config config;
  // The one way into the engine (engine::Service); hsmctl reaches the
  // catalog and the workers through nothing else.
  std::unique_ptr<fs::Service> service;
  // sync, fsck: give up when the backends have not answered for this long
  // (StallGuard); zero waits forever.
  Duration timeout = std::chrono::minutes(30);
};

// Loads the config and opens a service whose engine runs no jobs.
Status OpenEngine(Context& ctx);
// Replaces ctx.service by one whose engine runs the jobs (when no other
// engine does), as `description` ("hsmctl stage --wait").
Status OpenJobRunner(Context& ctx, const std::string& description);

// "vault/act6/tod.dat" for an entry; "" for the root.
std::string CatalogPathOf(const catalog::Entry& e);
// Local time "2024-05-01 12:00", or UTC ISO 8601 for JSON.
std::string FormatMtime(int64_t ns, bool utc_iso);

// Resolves user paths (inside the mount or backend-relative) to entries; a
// directory contributes every file below it. Problems are printed and make
// `*ok` false; the rest is returned.
std::vector<catalog::Entry> CollectFiles(Context& ctx, const std::vector<std::string>& args,
                                         bool* ok);
// PATH... arguments, or lines of stdin when the only argument is "-".
std::vector<std::string> ExpandStdin(const std::vector<std::string>& args);

int CmdLs(Context& ctx, const std::vector<std::string>& paths, bool recursive, bool json,
          bool human);
// `force` confirms suspect listings (E-LIST-01): their removals are made.
int CmdSync(Context& ctx, const std::vector<std::string>& targets, bool force = false);
int CmdInitRoot(Context& ctx, const std::string& backend, bool force);

struct StageArgs {
  std::vector<std::string> paths;
  bool wait = false;
  bool preview = false;
  bool json = false;
};
int CmdStage(Context& ctx, const StageArgs& args);
int CmdRelease(Context& ctx, const std::vector<std::string>& paths);

struct JobsArgs {
  bool json = false;
  bool watch = false;
  bool all = false;
};
int CmdJobs(Context& ctx, const JobsArgs& args);
int CmdCancel(Context& ctx, const std::vector<int64_t>& ids);
// put LOCAL... DEST: args holds the LOCALs then DEST.
int CmdPut(Context& ctx, const std::vector<std::string>& args, bool wait, bool force);
int CmdDaemon(Context& ctx, const std::string& action);
// With `repair`, fixes what it can without losing data (FsckOptions::repair).
int CmdFsck(Context& ctx, bool checksums, bool json, bool repair);
int CmdRetry(Context& ctx, const std::vector<int64_t>& ids, bool failed);

}  // namespace hsmfs::hsmctl
