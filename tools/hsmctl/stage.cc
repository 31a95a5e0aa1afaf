// hsmctl stage (get) and release: bulk recalls, like dm_iget, with a preview
// of what a recall will cost and a progress bar while it runs.

#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "catalog/job_queue.h"
#include "catalog/sqlite/raw_access.h"
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
using catalog::JobQueue;
using catalog::JobState;

struct BackendPlan {
  int64_t files = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> volumes;  // volume -> files
};

int Preview(Context& ctx, const std::map<std::string, BackendPlan>& plans, int64_t online,
            bool json) {
  auto session = ctx.engine->catalog().Acquire();
  if (!session.ok()) return cli::Fail(kProgram, session.status().message(), cli::kExitFailed);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [backend, plan] : plans) {
    const BackendConfig* config = ctx.config.FindBackend(backend);
    const int workers =
        config && config->stage_workers > 0 ? config->stage_workers : ctx.config.stage.workers;
    // Estimate: recent recalls of this backend if any, else the configured
    // delay plus reading at disk speed.
    double per_job = 0;
    std::string basis;
    auto st = catalog::RawSqlite(*session).Prepare(
        "SELECT COUNT(*), COALESCE(AVG((finished_ns - started_ns) / 1000000), 0) FROM (SELECT "
        "finished_ns, started_ns FROM jobs WHERE kind = 'stage' AND state = 'done' AND "
        "backend = ? AND started_ns > 0 ORDER BY id DESC LIMIT 200)");
    if (st.ok()) {
      st->Bind(1, backend);
      auto row = st->Step();
      if (row.ok() && *row && st->Int(0) > 0) {
        per_job = static_cast<double>(st->Int(1)) / 1000.0;
        basis = "from the last " + std::to_string(st->Int(0)) + " recalls of " + backend;
      }
    }
    double seconds;
    if (basis.empty()) {
      const double delay = config ? std::chrono::duration<double>(config->stage_delay).count() : 0;
      constexpr double kAssumedBytesPerSecond = 200e6;
      seconds = std::ceil(static_cast<double>(plan.files) / workers) * delay +
                static_cast<double>(plan.bytes) / kAssumedBytesPerSecond;
      basis = "no recalls of " + backend + " timed yet: configured stage_delay, 200 MB/s";
    } else {
      seconds = std::ceil(static_cast<double>(plan.files) / workers) * per_job;
    }
    const Duration eta =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
    if (json) {
      nlohmann::json volumes = nlohmann::json::object();
      for (const auto& [v, n] : plan.volumes) volumes[v.empty() ? "-" : v] = n;
      out.push_back({{"backend", backend},
                     {"files", plan.files},
                     {"bytes", plan.bytes},
                     {"volumes", volumes},
                     {"estimated_seconds", seconds},
                     {"estimate_basis", basis}});
      continue;
    }
    std::cout << backend << ": " << cli::Thousands(plan.files) << " files, "
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
    std::cout << "  estimated time: " << FormatDuration(eta) << " with " << workers << " workers ("
              << basis << ")\n";
  }
  if (json) {
    std::cout << cli::DumpJson(nlohmann::json{{"already_online", online}, {"backends", out}}, 2)
              << "\n";
  } else if (online > 0) {
    std::cout << cli::Thousands(online) << " files are already online\n";
  }
  return cli::kExitOk;
}

// Polls the jobs until none is active, drawing one progress bar.
int Wait(Context& ctx, const std::vector<int64_t>& ids, int64_t already_online) {
  uint64_t total_bytes = 0;
  cli::Progress progress("stage", "files");
  catalog::JobFilter filter;
  filter.ids = ids;
  std::vector<Job> jobs;
  for (;;) {
    {
      auto session = ctx.engine->catalog().Acquire();
      if (!session.ok()) return cli::Fail(kProgram, session.status().message(), cli::kExitFailed);
      auto listed = JobQueue::List(*session, filter);
      if (!listed.ok()) return cli::Fail(kProgram, listed.status().message(), cli::kExitFailed);
      jobs = std::move(listed).value();
    }
    int64_t done = already_online, active = 0;
    uint64_t bytes = 0;
    total_bytes = 0;
    for (const Job& j : jobs) {
      total_bytes += j.bytes_total;
      if (j.state == JobState::kDone) {
        ++done;
        bytes += j.bytes_total;
      } else if (j.state == JobState::kQueued || j.state == JobState::kRunning) {
        ++active;
        bytes += j.bytes_done;
      }
    }
    progress.Update(done, static_cast<int64_t>(ids.size()) + already_online, bytes, total_bytes);
    if (active == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  progress.Finish();
  int failed = 0;
  for (const Job& j : jobs) {
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
  std::vector<Entry> files = CollectFiles(ctx, paths, &ok);
  std::map<std::string, BackendPlan> plans;
  std::vector<Entry> offline;
  int64_t online = 0;
  for (Entry& e : files) {
    if (e.cached) {
      ++online;
      continue;
    }
    BackendPlan& plan = plans[e.backend];
    ++plan.files;
    plan.bytes += e.size;
    ++plan.volumes[e.volume];
    offline.push_back(std::move(e));
  }
  if (args.preview) {
    const int rc = Preview(ctx, plans, online, args.json);
    return ok ? rc : cli::kExitFailed;
  }

  // One transaction for the whole batch: the engine sorts it as one.
  catalog::Requester me{static_cast<uint32_t>(::getuid()), static_cast<int32_t>(::getpid()),
                        "hsmctl"};
  std::vector<int64_t> ids;
  int64_t created = 0;
  {
    auto session = ctx.engine->catalog().Acquire();
    if (!session.ok()) return cli::Fail(kProgram, session.status().message(), cli::kExitFailed);
    auto tx = session->Begin();
    if (!tx.ok()) return cli::Fail(kProgram, tx.status().message(), cli::kExitFailed);
    for (const Entry& e : offline) {
      bool fresh = false;
      auto job = JobQueue::EnqueueStage(*session, e, me, Clock::Real().WallNanos(), &fresh);
      if (!job.ok()) return cli::Fail(kProgram, job.status().message(), cli::kExitFailed);
      if (!*job) {
        ++online;  // recalled since we looked
        continue;
      }
      ids.push_back((*job)->id);
      created += fresh;
    }
    if (Status s = tx->Commit(); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitFailed);
  }
  std::cout << "queued " << cli::Thousands(created) << " recalls";
  if (static_cast<size_t>(created) < ids.size()) {
    std::cout << " (" << cli::Thousands(static_cast<int64_t>(ids.size()) - created)
              << " already queued)";
  }
  if (online) std::cout << "; " << cli::Thousands(online) << " files already online";
  std::cout << "\n";

  const std::string engine = fs::EngineLockHolder(ctx.config.catalog.path);
  std::unique_ptr<fs::Engine> own_engine;
  if (engine.empty() && !ids.empty()) {
    if (!args.wait) {
      std::cerr << kProgram << ": no hsmfs engine runs for this catalog: the recalls start "
                << "when one does (mount it, or run hsmctl stage --wait)\n";
      return ok ? cli::kExitOk : cli::kExitFailed;
    }
    // Nobody else will run them: run the engine here until they are done.
    ctx.engine.reset();
    fs::EngineOptions options;
    options.program = "hsmctl";
    options.run_jobs = true;
    options.description = "hsmctl stage --wait";
    auto opened = fs::Engine::Open(ctx.config, Clock::Real(), std::move(options));
    if (!opened.ok()) return cli::Fail(kProgram, opened.status().message(), cli::kExitFailed);
    ctx.engine = std::move(opened).value();
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
      Status s = ctx.engine->cache().Release(e.id);
      if (!s.ok()) {
        rc = cli::Fail(kProgram, s.message(), cli::kExitFailed);
      }
    }
  }
  return rc;
}

}  // namespace hsmfs::hsmctl
