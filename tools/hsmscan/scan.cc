#include "tools/hsmscan/scan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include "backends/hpss/hpss_backend.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "common/config.h"
#include "common/subprocess.h"
#include "tools/hsmscan/csv.h"
#include "tools/hsmscan/disk_walker.h"
#include "tools/hsmscan/hpss_lister.h"
#include "tools/hsmscan/log.h"
#include "tools/hsmscan/missing.h"
#include "tools/hsmscan/plan.h"
#include "tools/hsmscan/process.h"
#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {
namespace {

constexpr const char* kProgram = "hsmscan";

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Progress of the disk pass: a bar on a terminal, HPSSPy's INFO line otherwise.
class ScanProgress {
 public:
  ScanProgress(const Log& log, int every) : log_(log), every_(every) {
    if (::isatty(2) != 0) bar_ = std::make_unique<cli::Progress>("scanning", "files");
  }
  void Tick(int64_t files) {
    if (files % every_ != 0) return;
    if (bar_) {
      bar_->Update(files, 0, 0, 0);
    } else {
      char line[64];
      std::snprintf(line, sizeof line, "%9lld files scanned.", static_cast<long long>(files));
      log_.Info(line);
    }
  }
  void Finish(int64_t files) {
    if (bar_) {
      bar_->Update(files, 0, 0, 0);
      bar_->Finish();
    }
  }

 private:
  const Log& log_;
  const int every_;
  std::unique_ptr<cli::Progress> bar_;
};

// The HPSS backend rooted at the section's HPSS directory, with the site's
// clients: $HPSS_DIR/bin/{hsi,htar} or PATH (as the hsmfs backend finds them).
std::unique_ptr<backends::hpss::HpssBackend> MakeBackend(const ScanOptions& opt,
                                                         const std::string& hpss_release_root) {
  backends::hpss::HpssOptions o;
  o.root = hpss_release_root;
  o.hsi = opt.hsi.empty() ? DefaultHpssTool("hsi") : std::filesystem::path(opt.hsi);
  o.htar = opt.htar.empty() ? DefaultHpssTool("htar") : std::filesystem::path(opt.htar);
  return std::make_unique<backends::hpss::HpssBackend>(std::move(o), Clock::Real());
}

Status ReadHpss(const ScanOptions& opt, const std::string& hpss_release_root, const Log& log,
                backends::hpss::HpssBackend& hpss, HpssIndex& index) {
  const std::string cache = opt.cache_dir + "/hpss_files_" + opt.section + ".csv";
  auto add = [&](const std::string& name, int64_t size, int64_t mtime) {
    index[name] = HpssEntry{size, mtime};
  };
  if (Exists(cache) && !opt.overwrite_hpss) {
    log.Info("Found cache file " + cache + ".");
    CsvHpssLister lister(cache);
    return lister.List(hpss_release_root, add);
  }
  log.Info("No HPSS cache file, starting scan at " + hpss_release_root + ".");
  HSMFS_ASSIGN_OR_RETURN(auto writer, CsvWriter::Create(cache + ".tmp"));
  HsiHpssLister lister(hpss);
  Status s =
      lister.List(hpss_release_root, [&](const std::string& name, int64_t size, int64_t mtime) {
        add(name, size, mtime);
        writer->Write(name, size, mtime);
      });
  Status c = writer->Close();
  if (s.ok()) s = c;
  if (s.ok() && std::rename((cache + ".tmp").c_str(), cache.c_str()) != 0) {
    s = ErrnoToStatus(errno, "renaming " + cache + ".tmp");
  }
  if (!s.ok()) std::remove((cache + ".tmp").c_str());
  return s;
}

// The hsmfs backend that shows HPSS to the mount (--hsmfs-config/--backend).
Result<BackendConfig> MountBackend(const ScanOptions& opt) {
  HSMFS_ASSIGN_OR_RETURN(Config config, LoadConfig(opt.hsmfs_config));
  const BackendConfig* found = nullptr;
  for (const auto& b : config.backends) {
    if (b.type != "hpss" || (!opt.hsmfs_backend.empty() && b.name != opt.hsmfs_backend)) continue;
    if (found) {
      return InvalidArgumentError(opt.hsmfs_config +
                                  ": several hpss backends; name one with --backend");
    }
    found = &b;
  }
  if (!found) {
    return InvalidArgumentError(opt.hsmfs_config + ": no hpss backend" +
                                (opt.hsmfs_backend.empty() ? "" : " named " + opt.hsmfs_backend));
  }
  return *found;
}

// Refreshes the mount's catalog for the HPSS directories that got archives,
// with `hsmctl sync` (the same code path as a user's sync).
void SyncMount(const ScanOptions& opt, const BackendConfig& b, const std::set<std::string>& dirs,
               const Log& log) {
  const std::string root = b.root.string();
  for (const std::string& dir : dirs) {
    std::string rel;
    if (dir == root) {
      rel = "";
    } else if (dir.rfind(root == "/" ? root : root + "/", 0) == 0) {
      rel = dir.substr(root == "/" ? 1 : root.size() + 1);
    } else {
      log.Warning(dir + " is not below backend " + b.name + "'s root " + root + "; not synced");
      continue;
    }
    SubprocessOptions so;
    so.argv = {cli::SiblingProgram("hsmctl"), "-c", opt.hsmfs_config, "sync",
               rel.empty() ? b.name : b.name + "/" + rel};
    so.merge_stderr = true;
    auto r = RunSubprocess(so, std::chrono::minutes(10));
    if (!r.ok() || r->exit_code != 0) {
      log.Warning("hsmctl sync " + so.argv.back() +
                  " failed: " + (r.ok() ? r->out : r.status().message()));
    } else {
      log.Info("catalog of " + b.name + " refreshed for " + dir);
    }
  }
}

}  // namespace

int RunScan(const ScanOptions& opt) {
  const Log log(opt.verbose ? Level::kDebug : opt.test ? Level::kInfo : Level::kWarning);
  std::optional<BackendConfig> mount_backend;
  if (!opt.hsmfs_config.empty()) {
    auto b = MountBackend(opt);
    if (!b.ok()) return cli::Fail(kProgram, b.status().message(), cli::kExitUsage);
    mount_backend = *b;
  } else if (!opt.hsmfs_backend.empty()) {
    return cli::Fail(kProgram, "--backend needs --hsmfs-config", cli::kExitUsage);
  }
  auto cfg = LoadScanConfig(opt.config, opt.section);
  if (!cfg.ok()) return cli::Fail(kProgram, cfg.status().message(), cli::kExitUsage);
  for (const std::string& w : cfg->warnings) log.Warning(w);
  const std::string release_root = PathJoin(cfg->root, opt.section);
  const std::string hpss_release_root = PathJoin(cfg->hpss_root, opt.section);
  std::error_code ec;
  std::filesystem::create_directories(opt.cache_dir, ec);
  if (ec) {
    return cli::Fail(kProgram,
                     "cannot create cache directory " + opt.cache_dir + ": " + ec.message(),
                     cli::kExitFailed);
  }
  int64_t problems = 0;

  HpssIndex hpss;
  std::unique_ptr<backends::hpss::HpssBackend> backend;
  if (opt.test) {
    log.Info("Test mode. Pretending no files exist on HPSS.");
  } else {
    backend = MakeBackend(opt, hpss_release_root);
    if (Status s = ReadHpss(opt, hpss_release_root, log, *backend, hpss); !s.ok()) {
      return cli::Fail(kProgram, s.message(), cli::ExitCodeFor(s));
    }
  }

  MissingFinder finder(cfg->rules, hpss, log);
  ScanProgress progress(log, opt.report);
  const std::string disk_cache = opt.cache_dir + "/disk_files_" + opt.section + ".csv";
  if (Exists(disk_cache) && !opt.overwrite_disk) {
    log.Debug("Using existing file cache: " + disk_cache);
    auto reader = CsvReader::Open(disk_cache);
    if (!reader.ok()) return cli::Fail(kProgram, reader.status().message(), cli::kExitFailed);
    CsvReader::Row row;
    while (true) {
      auto more = (*reader)->Next(row);
      if (!more.ok()) return cli::Fail(kProgram, more.status().message(), cli::kExitFailed);
      if (!*more) break;
      finder.Add(row.name, row.size, row.mtime, row.offset);
      progress.Tick(finder.files());
    }
  } else {
    log.Info("No disk cache file, starting scan.");
    const std::string tmp = disk_cache + ".tmp";
    auto writer = CsvWriter::Create(tmp);
    if (!writer.ok()) return cli::Fail(kProgram, writer.status().message(), cli::kExitFailed);
    std::string name;
    for (const std::string& disk_root : PhysicalDisks(release_root, *cfg)) {
      log.Debug("Starting walk at " + disk_root + ".");
      Status s = WalkTree(
          disk_root, WalkOptions{},
          [&](std::string_view rel, int64_t size, int64_t mtime) {
            const uint64_t row = (*writer)->Write(rel, size, mtime);
            name.assign(rel);
            finder.Add(name, size, mtime, row);
            progress.Tick(finder.files());
          },
          [&](const std::string& what) {
            ++problems;
            log.Error(what);
          });
      if (!s.ok()) {
        // os.walk yields nothing for a missing root; say so.
        ++problems;
        log.Error("cannot scan " + disk_root + ": " + s.message());
      }
    }
    Status c = (*writer)->Close();
    if (c.ok() && std::rename(tmp.c_str(), disk_cache.c_str()) != 0) {
      c = ErrnoToStatus(errno, "renaming " + tmp);
    }
    if (!c.ok()) {
      std::remove(tmp.c_str());
      return cli::Fail(kProgram, c.message(), cli::kExitFailed);
    }
  }
  progress.Finish(finder.files());

  const FindSummary summary = finder.Finish(opt.limit_gb);
  problems += summary.unmapped + summary.multiple + summary.unused_rules + summary.too_large +
              summary.undescribed;
  auto names = CsvNameReader::Open(disk_cache);
  if (!names.ok()) return cli::Fail(kProgram, names.status().message(), cli::kExitFailed);
  auto name_at = [&](uint64_t row) { return (*names)->NameAt(row); };
  const std::string missing_path = opt.cache_dir + "/missing_files_" + opt.section + ".json";
  if (Status s = WriteMissingJson(missing_path, summary.missing, name_at); !s.ok()) {
    return cli::Fail(kProgram, s.message(), cli::kExitFailed);
  }
  if (summary.unmapped > 0) {
    log.Critical("Not all files would be backed up with this configuration!");
    return cli::kExitFailed;
  }
  if (summary.multiple > 0) {
    log.Critical("Some files would be backed up more than once with this configuration!");
    return cli::kExitFailed;
  }
  std::vector<std::string> failures;
  std::set<std::string> created_dirs;
  if (opt.test || opt.process) {
    Planner planner(release_root, hpss_release_root);
    std::unique_ptr<ArchiveMaker> maker;
    if (!opt.test) {
      const char* tmp = std::getenv("TMPDIR");
      maker = std::make_unique<ArchiveMaker>(*backend, tmp && *tmp ? tmp : "/tmp", log);
    }
    std::vector<std::string> members;
    for (const Archive* a : summary.missing) {
      members.clear();
      // A plan of directories needs no member names (only -p checks them):
      // reading them back would be a second pass over most of the disk CSV.
      const bool need_names =
          maker != nullptr || a->name.size() < 4 ||
          a->name.compare(a->name.size() - 4, 4, ".tar") != 0 ||
          (a->name.size() >= 10 && a->name.compare(a->name.size() - 10, 10, "_files.tar") == 0);
      for (size_t i = 0; need_names && i < a->rows.size(); ++i) {
        const uint64_t row = a->rows[i];
        auto n = name_at(row);
        if (!n.ok()) return cli::Fail(kProgram, n.status().message(), cli::kExitFailed);
        members.push_back(std::move(*n));
      }
      const ArchivePlan plan = planner.Plan(a->name, members);
      if (!plan.error.empty()) {
        ++problems;
        log.Error(plan.error);
        if (maker) failures.push_back(a->name + ": " + plan.error);
        continue;
      }
      if (!maker) {
        for (const std::string& c : plan.Commands()) log.Info("Test mode: " + c);
        continue;
      }
      if (Status s = maker->Make(plan, members); !s.ok()) {
        log.Error("creating " + plan.hpss_path + " failed: " + s.message());
        failures.push_back(a->name + ": " + s.message());
      } else {
        log.Info("created " + plan.hpss_path);
        created_dirs.insert(std::filesystem::path(plan.hpss_path).parent_path().string());
      }
    }
  }
  if (opt.process && !opt.test && summary.missing.size() > failures.size()) {
    // The HPSS cache no longer describes HPSS: the next run lists it again
    // (HPSSPy keeps the stale cache, so its next run redoes everything unless -H).
    std::remove((opt.cache_dir + "/hpss_files_" + opt.section + ".csv").c_str());
  }
  if (mount_backend && !created_dirs.empty()) SyncMount(opt, *mount_backend, created_dirs, log);
  if (!failures.empty()) {
    std::cerr << kProgram << ": " << failures.size() << " of " << summary.missing.size()
              << " archive(s) failed:\n";
    for (const std::string& f : failures) std::cerr << "  " << f << "\n";
    return cli::kExitFailed;
  }
  if (opt.strict && problems > 0) {
    std::cerr << kProgram << ": " << problems << " problem(s) found (see above)\n";
    return cli::kExitFailed;
  }
  return cli::kExitOk;
}

}  // namespace hsmfs::hsmscan
