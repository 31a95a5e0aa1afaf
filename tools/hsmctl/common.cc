#include <ctime>
#include <iostream>

#include "cli/cli.h"
#include "cli/paths.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {

Status OpenEngine(Context& ctx) {
  if (ctx.config_path.empty()) ctx.config_path = cli::DefaultConfigPath();
  HSMFS_ASSIGN_OR_RETURN(ctx.config, LoadConfig(ctx.config_path));
  fs::EngineOptions options;
  options.program = "hsmctl";
  HSMFS_ASSIGN_OR_RETURN(ctx.service,
                         fs::Service::Open(ctx.config, Clock::Real(), std::move(options)));
  return Status::Ok();
}

Status OpenJobRunner(Context& ctx, const std::string& description) {
  ctx.service.reset();  // one engine per process: its catalog handles go first
  fs::EngineOptions options;
  options.program = "hsmctl";
  options.run_jobs = true;
  options.description = description;
  HSMFS_ASSIGN_OR_RETURN(ctx.service,
                         fs::Service::Open(ctx.config, Clock::Real(), std::move(options)));
  return Status::Ok();
}

std::string CatalogPathOf(const catalog::Entry& e) {
  if (e.backend.empty()) return "";
  return e.backend_path.empty() ? e.backend : e.backend + "/" + e.backend_path;
}

std::string FormatMtime(int64_t ns, bool utc_iso) {
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm;
  char buf[32];
  if (utc_iso) {
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  } else {
    localtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  }
  return buf;
}

std::vector<std::string> ExpandStdin(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "-") return args;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<catalog::Entry> CollectFiles(Context& ctx, const std::vector<std::string>& args,
                                         bool* ok) {
  std::vector<catalog::Entry> files;
  for (const std::string& arg : args) {
    auto cpath = cli::ToCatalogPath(arg);
    if (!cpath.ok()) {
      *ok = false;
      cli::Fail(kProgram, cpath.status().message(), cli::kExitUsage);
      continue;
    }
    auto entry = ctx.service->names().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      *ok = false;
      cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    ctx.service->names().FilesBelow(*entry, &files, [&](const Status& s) {
      *ok = false;
      cli::Fail(kProgram, s.message(), cli::kExitFailed);
    });
  }
  return files;
}

}  // namespace hsmfs::hsmctl
