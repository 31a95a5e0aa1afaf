// hsmctl jobs, cancel and retry: the queue of recalls and archive jobs, with
// the transfer status dm_ilist shows.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "cli/names.h"
#include "cli/progress.h"
#include "common/units.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {
namespace {

using catalog::Job;
using catalog::JobState;

constexpr int kRecentFinished = 20;

// Queue positions of queued jobs, per kind and backend, in dispatch order.
std::map<int64_t, int64_t> Positions(const std::vector<Job>& jobs) {
  std::vector<const Job*> queued;
  for (const Job& j : jobs) {
    if (j.state == JobState::kQueued) queued.push_back(&j);
  }
  std::sort(queued.begin(), queued.end(), [](const Job* a, const Job* b) {
    return std::tie(a->kind, a->backend, a->volume, a->position, a->id) <
           std::tie(b->kind, b->backend, b->volume, b->position, b->id);
  });
  std::map<int64_t, int64_t> positions;
  std::map<std::pair<catalog::JobKind, std::string>, int64_t> counters;
  for (const Job* j : queued) positions[j->id] = ++counters[{j->kind, j->backend}];
  return positions;
}

std::string Age(int64_t since_ns, int64_t now_ns) {
  return FormatDuration(Duration(std::max<int64_t>(0, now_ns - since_ns)));
}

std::string ProgressText(const Job& j) {
  if (j.state == JobState::kDone) return FormatSizeHuman(j.bytes_total);
  if (j.bytes_total == 0) return "-";
  const int percent = static_cast<int>(100.0 * static_cast<double>(j.bytes_done) /
                                       static_cast<double>(j.bytes_total));
  return std::to_string(percent) + "% of " + FormatSizeHuman(j.bytes_total);
}

// Bytes per second of a running job, or of a finished one over its run time.
std::string RateText(const Job& j, int64_t now_ns) {
  if (j.started_ns == 0) return "-";
  const int64_t end = j.state == JobState::kRunning ? now_ns : j.finished_ns;
  const uint64_t bytes = j.state == JobState::kDone ? j.bytes_total : j.bytes_done;
  if (end <= j.started_ns || bytes == 0 ||
      (j.state != JobState::kRunning && j.state != JobState::kDone)) {
    return "-";
  }
  const double seconds = static_cast<double>(end - j.started_ns) / 1e9;
  return FormatSizeHuman(static_cast<uint64_t>(static_cast<double>(bytes) / seconds)) + "/s";
}

void PrintTable(const std::vector<Job>& jobs, int64_t now_ns) {
  const auto positions = Positions(jobs);
  std::printf("%6s  %-7s  %-9s  %-3s  %4s  %-16s  %11s  %8s  %-16s  %s\n", "ID", "KIND", "STATE",
              "DMF", "POS", "PROGRESS", "RATE", "AGE", "REQUESTER", "FILE");
  for (const Job& j : jobs) {
    auto pos = positions.find(j.id);
    const std::string pos_text = pos == positions.end() ? "-" : std::to_string(pos->second);
    const std::string who = j.requester.command.empty()
                                ? "-"
                                : j.requester.command + "[" + std::to_string(j.requester.pid) + "]";
    std::printf("%6lld  %-7s  %-9s  %-3s  %4s  %-16s  %11s  %8s  %-16s  %s",
                static_cast<long long>(j.id), std::string(catalog::JobKindName(j.kind)).c_str(),
                std::string(catalog::JobStateName(j.state)).c_str(),
                std::string(catalog::DmfCode(j.entry)).c_str(), pos_text.c_str(),
                ProgressText(j).c_str(), RateText(j, now_ns).c_str(),
                Age(j.created_ns, now_ns).c_str(), cli::EscapeName(who).c_str(),
                cli::EscapeName(CatalogPathOf(j.entry)).c_str());
    if (!j.last_error.empty() && j.state != JobState::kDone) {
      std::printf("  [%s]", cli::EscapeName(j.last_error).c_str());
    }
    std::printf("\n");
  }
  if (jobs.empty()) std::printf("(no jobs)\n");
}

nlohmann::json ToJson(const std::vector<Job>& jobs, int64_t now_ns) {
  const auto positions = Positions(jobs);
  nlohmann::json out = nlohmann::json::array();
  for (const Job& j : jobs) {
    auto pos = positions.find(j.id);
    nlohmann::json row = {
        {"id", j.id},
        {"kind", catalog::JobKindName(j.kind)},
        {"state", catalog::JobStateName(j.state)},
        {"path", CatalogPathOf(j.entry)},
        {"file_state", catalog::StateName(j.entry.state)},
        {"dmf", catalog::DmfCode(j.entry)},
        {"attempts", j.attempts},
        {"bytes_total", j.bytes_total},
        {"bytes_done", j.bytes_done},
        {"rate", RateText(j, now_ns)},
        {"created", FormatMtime(j.created_ns, true)},
        {"requester",
         {{"uid", j.requester.uid}, {"pid", j.requester.pid}, {"command", j.requester.command}}}};
    row["queue_position"] =
        pos == positions.end() ? nlohmann::json(nullptr) : nlohmann::json(pos->second);
    if (!j.volume.empty()) row["volume"] = j.volume;
    if (j.started_ns) row["started"] = FormatMtime(j.started_ns, true);
    if (j.finished_ns) row["finished"] = FormatMtime(j.finished_ns, true);
    if (!j.last_error.empty()) row["error"] = j.last_error;
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

int CmdJobs(Context& ctx, const JobsArgs& args) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  for (;;) {
    // All active jobs and the most recent finished ones (or all).
    auto jobs = ctx.service->jobs().Recent(args.all ? 0 : kRecentFinished);
    if (!jobs.ok()) return cli::Fail(kProgram, jobs.status().message(), cli::kExitFailed);
    if (args.watch && tty) std::printf("\033[H\033[2J");
    if (args.json) {
      std::cout << cli::DumpJson(ToJson(*jobs, Clock::Real().WallNanos()), 2) << "\n";
    } else {
      PrintTable(*jobs, Clock::Real().WallNanos());
    }
    std::fflush(stdout);
    if (!args.watch) return cli::kExitOk;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (!tty) std::printf("\n");
  }
}

int CmdCancel(Context& ctx, const std::vector<int64_t>& ids) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  int rc = cli::kExitOk;
  for (int64_t id : ids) {
    auto cancelled = ctx.service->jobs().Cancel(id);
    if (!cancelled.ok()) {
      rc = cli::Fail(kProgram, cancelled.status().message(), cli::kExitFailed);
    } else if (!*cancelled) {
      rc = cli::Fail(kProgram, "job " + std::to_string(id) + " is not queued or running",
                     cli::kExitFailed);
    } else {
      std::cout << "cancelled job " << id << "\n";
    }
  }
  return rc;
}

int CmdRetry(Context& ctx, const std::vector<int64_t>& ids, bool failed) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  if (ids.empty() && !failed) {
    return cli::Fail(kProgram, "retry: give job IDs or --failed", cli::kExitUsage);
  }
  std::vector<int64_t> todo = ids;
  if (failed) {
    auto failed_ids = ctx.service->jobs().Failed();
    if (!failed_ids.ok()) {
      return cli::Fail(kProgram, failed_ids.status().message(), cli::kExitFailed);
    }
    todo.insert(todo.end(), failed_ids->begin(), failed_ids->end());
  }
  int rc = cli::kExitOk;
  int retried = 0;
  for (int64_t id : todo) {
    auto again = ctx.service->jobs().Retry(id);
    if (!again.ok()) {
      rc = cli::Fail(kProgram, again.status().message(), cli::kExitFailed);
    } else if (!*again) {
      if (!failed) {
        rc = cli::Fail(kProgram,
                       "job " + std::to_string(id) +
                           " is not failed or cancelled (or another job for its file is active)",
                       cli::kExitFailed);
      }
    } else {
      ++retried;
    }
  }
  std::cout << "queued " << retried << " job(s) again\n";
  if (retried && ctx.service->jobs().Runner().empty()) {
    std::cerr << kProgram << ": no hsmfs engine runs for this catalog: the jobs start when one "
              << "does\n";
  }
  return rc;
}

}  // namespace hsmfs::hsmctl
