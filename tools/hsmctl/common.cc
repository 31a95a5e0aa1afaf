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
  HSMFS_ASSIGN_OR_RETURN(ctx.engine,
                         fs::Engine::Open(ctx.config, Clock::Real(), std::move(options)));
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
    auto entry = ctx.engine->sync().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      *ok = false;
      cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    if (!entry->is_dir()) {
      files.push_back(std::move(entry).value());
      continue;
    }
    std::vector<catalog::Entry> dirs{std::move(entry).value()};
    while (!dirs.empty()) {
      catalog::Entry dir = std::move(dirs.back());
      dirs.pop_back();
      if (Status s = ctx.engine->sync().EnsureListedNow(dir, CancelToken::None()); !s.ok()) {
        *ok = false;
        cli::Fail(kProgram, s.message(), cli::kExitFailed);
        continue;
      }
      auto session = ctx.engine->catalog().Acquire();
      if (!session.ok()) {
        *ok = false;
        cli::Fail(kProgram, session.status().message(), cli::kExitFailed);
        continue;
      }
      catalog::EntryId after = 0;
      for (;;) {
        std::vector<catalog::Entry> children;
        if (Status s = session->Children(dir.id, after, 4096, &children); !s.ok()) {
          *ok = false;
          cli::Fail(kProgram, s.message(), cli::kExitFailed);
          break;
        }
        if (children.empty()) break;
        after = children.back().id;
        for (catalog::Entry& c : children) {
          if (dir.id == catalog::kRootId && !ctx.engine->backend(c.name)) continue;
          if (!catalog::ValidEntryName(c.name)) continue;  // hsmctl ls names it
          (c.is_dir() ? dirs : files).push_back(std::move(c));
        }
      }
    }
  }
  return files;
}

}  // namespace hsmfs::hsmctl
