// hsmctl: the user's tool for the archive (dm_ilist / dm_iget / dm_iput style).
//
//   hsmctl [-c CONF] ls [-R] [--json] [-H] PATH...
//   hsmctl [-c CONF] sync [BACKEND[/PATH]]...

#include <spdlog/spdlog.h>

#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "common/units.h"
#include "fs/engine.h"
#include "tools/cli/cli.h"
#include "tools/cli/paths.h"
#include "tools/cli/progress.h"

namespace hsmfs {
namespace {

constexpr char kProgram[] = "hsmctl";

using catalog::Entry;

std::string CatalogPathOf(const Entry& e) {
  if (e.backend.empty()) return "";
  return e.backend_path.empty() ? e.backend : e.backend + "/" + e.backend_path;
}

std::string FormatMtime(int64_t mtime_ns, bool utc_iso) {
  const std::time_t t = static_cast<std::time_t>(mtime_ns / 1'000'000'000);
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

// Prints entries as a dm_ilist-style table or as a JSON array, streaming.
class EntryPrinter {
 public:
  EntryPrinter(bool json, bool human) : json_(json), human_(human) {}
  ~EntryPrinter() {
    if (json_) std::cout << (first_ ? "[" : "\n") << "]\n";
  }
  EntryPrinter(const EntryPrinter&) = delete;
  EntryPrinter& operator=(const EntryPrinter&) = delete;

  void Print(const Entry& e) {
    const std::string path = CatalogPathOf(e);
    if (json_) {
      nlohmann::json j = {{"path", path},
                          {"type", e.is_dir() ? "dir" : "file"},
                          {"mtime", FormatMtime(e.mtime_ns, true)},
                          {"mtime_ns", e.mtime_ns}};
      if (!e.is_dir()) {
        j["state"] = catalog::StateName(e.state);
        j["dmf"] = catalog::DmfCode(e.state);
        j["size"] = e.size;
        if (!e.checksum.empty()) j["checksum"] = e.checksum;
        if (!e.location.empty()) j["location"] = e.location;
        if (!e.error.empty()) j["error"] = e.error;
      }
      std::cout << (first_ ? "[\n" : ",\n") << "  " << j.dump();
      first_ = false;
      return;
    }
    if (first_) {
      std::cout << "STATE            SIZE  MTIME             PATH\n";
      first_ = false;
    }
    const std::string size =
        e.is_dir() ? "-" : (human_ ? FormatSizeHuman(e.size) : std::to_string(e.size));
    char line[96];
    std::snprintf(line, sizeof line, "%-5s %14s  %-16s  ",
                  e.is_dir() ? "DIR" : std::string(catalog::DmfCode(e.state)).c_str(), size.c_str(),
                  FormatMtime(e.mtime_ns, false).c_str());
    std::cout << line << path << (e.is_dir() ? "/" : "") << "\n";
  }

 private:
  const bool json_;
  const bool human_;
  bool first_ = true;
};

struct Context {
  std::string config_path;
  Config config;
  std::unique_ptr<fs::Engine> engine;
};

Status OpenEngine(Context& ctx) {
  if (ctx.config_path.empty()) ctx.config_path = cli::DefaultConfigPath();
  HSMFS_ASSIGN_OR_RETURN(ctx.config, LoadConfig(ctx.config_path));
  fs::EngineOptions options;
  options.program = "hsmctl";
  HSMFS_ASSIGN_OR_RETURN(ctx.engine,
                         fs::Engine::Open(ctx.config, Clock::Real(), std::move(options)));
  return Status::Ok();
}

// Lists the children of `dir` (and, with `recursive`, everything below).
Status PrintTree(fs::Engine& engine, const Entry& dir, bool recursive, EntryPrinter& out) {
  std::vector<Entry> stack{dir};
  Status first_error;
  while (!stack.empty()) {
    Entry current = std::move(stack.back());
    stack.pop_back();
    if (Status s = engine.sync().EnsureListedNow(current, CancelToken::None()); !s.ok()) {
      std::cerr << kProgram << ": " << s.message() << "\n";
      if (first_error.ok()) first_error = s;
      continue;
    }
    std::vector<Entry> children;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine.catalog().Acquire());
      catalog::EntryId after = 0;
      for (;;) {
        const size_t before = children.size();
        HSMFS_RETURN_IF_ERROR(session.Children(current.id, after, 4096, &children));
        if (children.size() == before) break;
        after = children.back().id;
      }
    }
    std::sort(children.begin(), children.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    std::vector<Entry> subdirs;
    for (Entry& c : children) {
      if (current.id == catalog::kRootId && !engine.backend(c.name)) continue;
      out.Print(c);
      if (recursive && c.is_dir()) subdirs.push_back(std::move(c));
    }
    // Depth first, in name order.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return first_error;
}

int CmdLs(Context& ctx, const std::vector<std::string>& paths, bool recursive, bool json,
          bool human) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  EntryPrinter out(json, human);
  int rc = cli::kExitOk;
  for (const std::string& arg : paths.empty() ? std::vector<std::string>{""} : paths) {
    auto cpath = cli::ToCatalogPath(arg);
    if (!cpath.ok()) {
      rc = cli::Fail(kProgram, cpath.status().message(), cli::kExitUsage);
      continue;
    }
    auto entry = ctx.engine->sync().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      rc = cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    if (!entry->is_dir()) {
      out.Print(*entry);
      continue;
    }
    if (Status s = PrintTree(*ctx.engine, *entry, recursive, out); !s.ok()) rc = cli::kExitFailed;
  }
  return rc;
}

int CmdSync(Context& ctx, const std::vector<std::string>& targets) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  std::vector<std::string> todo = targets;
  if (todo.empty()) {
    for (const BackendConfig& b : ctx.config.backends) todo.push_back(b.name);
  }
  int rc = cli::kExitOk;
  for (const std::string& arg : todo) {
    auto cpath = cli::ToCatalogPath(arg);
    if (!cpath.ok()) {
      rc = cli::Fail(kProgram, cpath.status().message(), cli::kExitUsage);
      continue;
    }
    if (cpath->empty()) {
      rc = cli::Fail(kProgram, "give a backend name or a path below one", cli::kExitUsage);
      continue;
    }
    auto entry = ctx.engine->sync().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      rc = cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    if (!entry->is_dir()) {
      rc = cli::Fail(kProgram, *cpath + ": not a directory", cli::kExitUsage);
      continue;
    }
    cli::Progress progress("sync " + *cpath, "entries");
    Status s =
        ctx.engine->sync().SyncTree(*entry, CancelToken::None(), [&](const fs::SyncProgress& p) {
          progress.Update(p.entries, 0, 0, 0, cli::Thousands(p.dirs) + " dirs");
        });
    progress.Finish();
    if (!s.ok()) rc = cli::Fail(kProgram, s.message(), cli::kExitFailed);
  }
  return rc;
}

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

  if (auto code = cli::Parse(app, argc, argv)) return *code;
  LogOptions log;
  log.level = log_level;
  log.name = kProgram;
  if (Status s = InitLogging(log); !s.ok())
    return cli::Fail(kProgram, s.message(), cli::kExitUsage);

  if (*ls) return CmdLs(ctx, ls_paths, ls_recursive, ls_json, ls_human);
  if (*sync) return CmdSync(ctx, sync_targets);
  return cli::kExitUsage;
}

}  // namespace
}  // namespace hsmfs

int main(int argc, char** argv) { return hsmfs::Main(argc, argv); }
