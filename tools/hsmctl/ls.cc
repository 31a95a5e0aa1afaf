// hsmctl ls and sync: listing the archive from the catalog.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/names.h"
#include "cli/paths.h"
#include "cli/progress.h"
#include "common/units.h"
#include "tools/hsmctl/hsmctl.h"
#include "tools/hsmctl/stall_guard.h"

namespace hsmfs::hsmctl {
namespace {

using catalog::Entry;

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
                          {"type", e.is_dir() ? "dir" : (e.is_symlink() ? "symlink" : "file")},
                          {"mtime", FormatMtime(e.mtime_ns, true)},
                          {"mtime_ns", e.mtime_ns}};
      if (!e.is_dir()) {
        j["state"] = catalog::StateName(e.state);
        j["dmf"] = catalog::DmfCode(e);
        j["size"] = e.size;
        if (!e.checksum.empty()) j["checksum"] = e.checksum;
        if (!e.location.empty()) j["location"] = e.location;
        if (!e.error.empty()) j["error"] = e.error;
        if (e.is_symlink()) j["target"] = e.link_target;
      }
      std::cout << (first_ ? "[\n" : ",\n") << "  " << cli::DumpJson(j);
      first_ = false;
      return;
    }
    if (first_) {
      std::cout << "DMF              SIZE  MTIME             PATH\n";
      first_ = false;
    }
    const std::string size =
        e.is_dir() ? "-" : (human_ ? FormatSizeHuman(e.size) : std::to_string(e.size));
    char line[96];
    std::snprintf(line, sizeof line, "%-5s %14s  %-16s  ",
                  e.is_dir() ? "DIR" : std::string(catalog::DmfCode(e)).c_str(), size.c_str(),
                  FormatMtime(e.mtime_ns, false).c_str());
    std::cout << line << cli::EscapeName(path) << (e.is_dir() ? "/" : "")
              << (e.is_symlink() ? " -> " + cli::EscapeName(e.link_target) : "") << "\n";
  }

 private:
  const bool json_;
  const bool human_;
  bool first_ = true;
};

// Lists the children of `dir` (and, with `recursive`, everything below).
Status PrintTree(fs::Namespace& names, const Entry& dir, bool recursive, EntryPrinter& out) {
  std::vector<Entry> stack{dir};
  Status first_error;
  while (!stack.empty()) {
    Entry current = std::move(stack.back());
    stack.pop_back();
    auto listed = names.List(current, CancelToken::None());
    if (!listed.ok()) {
      // The first listing failed (the backend's error), or the catalog did.
      std::cerr << kProgram << ": " << listed.status().message() << "\n";
      if (first_error.ok()) first_error = listed.status();
      continue;
    }
    std::vector<Entry> children = std::move(listed).value();
    std::sort(children.begin(), children.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    std::vector<Entry> subdirs;
    for (Entry& c : children) {
      if (!catalog::ValidEntryName(c.name)) {
        std::cerr << kProgram << ": " << cli::EscapeName(current.display())
                  << ": skipped catalog entry " << c.id << " with the name \""
                  << cli::EscapeName(c.name) << "\" (hsmctl fsck --repair renames it)\n";
        continue;
      }
      out.Print(c);
      if (recursive && c.is_dir()) subdirs.push_back(std::move(c));
    }
    // Depth first, in name order.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return first_error;
}

}  // namespace

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
    auto entry = ctx.service->names().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      rc = cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    if (!entry->is_dir()) {
      out.Print(*entry);
      continue;
    }
    if (Status s = PrintTree(ctx.service->names(), *entry, recursive, out); !s.ok())
      rc = cli::kExitFailed;
  }
  return rc;
}

int CmdSync(Context& ctx, const std::vector<std::string>& targets, bool force) {
  // Before the engine: opening a backend may already touch a hung one.
  StallGuard guard("sync", ctx.timeout);
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  std::vector<std::string> todo = targets;
  if (todo.empty()) {
    for (const BackendConfig& b : ctx.config.backends) todo.push_back(b.name);
  }
  int rc = cli::kExitOk;
  for (const std::string& arg : todo) {
    guard.SetWhat("sync " + arg);
    auto cpath = cli::ToCatalogPath(arg);
    if (!cpath.ok()) {
      rc = cli::Fail(kProgram, cpath.status().message(), cli::kExitUsage);
      continue;
    }
    if (cpath->empty()) {
      rc = cli::Fail(kProgram, "give a backend name or a path below one", cli::kExitUsage);
      continue;
    }
    auto entry = ctx.service->names().Resolve(*cpath, CancelToken::None());
    if (!entry.ok()) {
      rc = cli::Fail(kProgram, entry.status().message(), cli::kExitFailed);
      continue;
    }
    if (!entry->is_dir()) {
      rc = cli::Fail(kProgram, *cpath + ": not a directory", cli::kExitUsage);
      continue;
    }
    cli::Progress progress("sync " + *cpath, "entries");
    Status s = ctx.service->names().Sync(
        *entry, CancelToken::None(),
        [&](const fs::SyncProgress& p) {
          guard.Touch();
          progress.Update(p.entries, 0, 0, 0, cli::Thousands(p.dirs) + " dirs");
        },
        force);
    progress.Finish();
    if (!s.ok()) rc = cli::Fail(kProgram, s.message(), cli::kExitFailed);
  }
  return rc;
}

}  // namespace hsmfs::hsmctl
