// hsmctl stage (get) and release: bulk recalls, like dm_iget, with a preview
// of what a recall will cost and a progress bar while it runs.

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "cli/names.h"
#include "cli/paths.h"
#include "cli/progress.h"
#include "common/process.h"
#include "common/units.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {
namespace {

using catalog::Entry;
using catalog::Job;
using catalog::JobState;

int Preview(const fs::RecallPreview& preview, bool json) {
  nlohmann::json out = nlohmann::json::array();
  for (const fs::RecallPlan& plan : preview.backends) {
    const double seconds = std::chrono::duration<double>(plan.eta).count();
    if (json) {
      nlohmann::json volumes = nlohmann::json::object();
      for (const auto& [v, n] : plan.volumes) volumes[v.empty() ? "-" : v] = n;
      out.push_back({{"backend", plan.backend},
                     {"files", plan.files},
                     {"bytes", plan.bytes},
                     {"volumes", volumes},
                     {"estimated_seconds", seconds},
                     {"estimate_basis", plan.timing.basis}});
      continue;
    }
    std::cout << plan.backend << ": " << cli::Thousands(plan.files) << " files, "
              << FormatSizeHuman(plan.bytes) << " to recall\n";
    std::cout << "  volumes: ";
    if (plan.volumes.size() == 1 && plan.volumes.begin()->first.empty()) {
      std::cout << "none (disk-based backend)\n";
    } else {
      std::cout << plan.volumes.size() << " (";
      bool first = true;
      for (const auto& [v, n] : plan.volumes) {
        std::cout << (first ? "" : ", ") << (v.empty() ? "-" : v) << ": " << n << " files";
        first = false;
      }
      std::cout << ")\n";
    }
    std::cout << "  estimated time: " << FormatDuration(plan.eta) << " with " << plan.timing.workers
              << " workers (" << plan.timing.basis << ")\n";
  }
  if (json) {
    std::cout << cli::DumpJson(
                     nlohmann::json{{"already_online", preview.already_online}, {"backends", out}},
                     2)
              << "\n";
  } else if (preview.already_online > 0) {
    std::cout << cli::Thousands(preview.already_online) << " files are already online\n";
  }
  return cli::kExitOk;
}

// Waits until none of the recalls is active, drawing one progress bar.
int Wait(Context& ctx, const std::vector<int64_t>& ids, int64_t already_online) {
  cli::Progress progress("stage", "files");
  auto jobs = ctx.service->recalls().Wait(ids, fs::WaitOptions{}, [&](const std::vector<Job>& now) {
    int64_t done = already_online;
    uint64_t bytes = 0, total_bytes = 0;
    for (const Job& j : now) {
      total_bytes += j.bytes_total;
      if (j.state == JobState::kDone) {
        ++done;
        bytes += j.bytes_total;
      } else if (j.state == JobState::kQueued || j.state == JobState::kRunning) {
        bytes += j.bytes_done;
      }
    }
    progress.Update(done, static_cast<int64_t>(ids.size()) + already_online, bytes, total_bytes);
  });
  progress.Finish();
  if (!jobs.ok()) return cli::Fail(kProgram, jobs.status().message(), cli::kExitFailed);
  int failed = 0;
  for (const Job& j : *jobs) {
    if (j.state == JobState::kDone) continue;
    ++failed;
    std::cerr << kProgram << ": " << (j.state == JobState::kCancelled ? "cancelled" : "FAILED")
              << " " << cli::EscapeName(CatalogPathOf(j.entry)) << ": " << j.last_error << "\n";
  }
  if (failed) {
    std::cerr << kProgram << ": " << failed << " of " << ids.size()
              << " recalls did not complete\n";
    return cli::kExitFailed;
  }
  return cli::kExitOk;
}

}  // namespace

int CmdStage(Context& ctx, const StageArgs& args) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  const std::vector<std::string> paths = ExpandStdin(args.paths);
  if (paths.empty()) return cli::Fail(kProgram, "stage: no paths given", cli::kExitUsage);
  bool ok = true;
  const std::vector<Entry> files = CollectFiles(ctx, paths, &ok);
  if (args.preview) {
    auto preview = ctx.service->recalls().Preview(files);
    if (!preview.ok()) return cli::Fail(kProgram, preview.status().message(), cli::kExitFailed);
    const int rc = Preview(*preview, args.json);
    return ok ? rc : cli::kExitFailed;
  }

  const catalog::Requester me{static_cast<uint32_t>(::getuid()), static_cast<int32_t>(::getpid()),
                              "hsmctl"};
  auto batch = ctx.service->recalls().Request(files, me);
  if (!batch.ok()) return cli::Fail(kProgram, batch.status().message(), cli::kExitFailed);
  const std::vector<int64_t>& ids = batch->jobs;
  const int64_t created = batch->created;
  const int64_t online = batch->already_online;
  std::cout << "queued " << cli::Thousands(created) << " recalls";
  if (static_cast<size_t>(created) < ids.size()) {
    std::cout << " (" << cli::Thousands(static_cast<int64_t>(ids.size()) - created)
              << " already queued)";
  }
  if (online) std::cout << "; " << cli::Thousands(online) << " files already online";
  std::cout << "\n";

  if (ctx.service->jobs().Runner().empty() && !ids.empty()) {
    if (!args.wait) {
      std::cerr << kProgram << ": no hsmfs engine runs for this catalog: the recalls start "
                << "when one does (mount it, or run hsmctl stage --wait)\n";
      return ok ? cli::kExitOk : cli::kExitFailed;
    }
    // Nobody else will run them: run the engine here until they are done.
    if (Status s = OpenJobRunner(ctx, "hsmctl stage --wait"); !s.ok()) {
      return cli::Fail(kProgram, s.message(), cli::kExitFailed);
    }
  }
  if (!args.wait) return ok ? cli::kExitOk : cli::kExitFailed;
  // Only this request's recalls: with none (everything online already) there
  // is nothing to wait for, whatever else the queue holds.
  if (ids.empty()) return ok ? cli::kExitOk : cli::kExitFailed;
  const int rc = Wait(ctx, ids, online);
  return ok ? rc : cli::kExitFailed;
}

int CmdRelease(Context& ctx, const std::vector<std::string>& paths) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  int rc = cli::kExitOk;
  // A reader that has the file open keeps reading its copy (an unlinked file
  // stays readable), so releasing from outside the mount is safe.
  for (const std::string& arg : ExpandStdin(paths)) {
    bool ok = true;
    std::vector<Entry> files = CollectFiles(ctx, {arg}, &ok);
    if (!ok) rc = cli::kExitFailed;
    for (const Entry& e : files) {
      Status s = ctx.service->recalls().Release(e.id);
      if (!s.ok()) {
        rc = cli::Fail(kProgram, s.message(), cli::kExitFailed);
      }
    }
  }
  return rc;
}

}  // namespace hsmfs::hsmctl
