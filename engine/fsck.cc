#include "engine/fsck.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>

#include "catalog/job_queue.h"
#include "common/checksum.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::FileState;
namespace stdfs = std::filesystem;

std::string PathOf(const Entry& e) {
  return e.backend_path.empty() ? e.backend : e.backend + "/" + e.backend_path;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : std::string(dir) + "/" + std::string(name);
}

// Renames an entry whose name is invalid to "unnamed-<id>" and queues what
// below it holds data for archiving again under the new name; drops it when
// nothing below it holds unarchived data. Returns what was done.
Result<std::string> RepairBadName(Engine& engine, const Entry& bad) {
  const int64_t now = engine.clock().WallNanos();
  std::vector<Entry> below;
  std::string done;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_RETURN_IF_ERROR(s.Subtree(bad.id, &below));
    const bool holds_data = std::any_of(below.begin(), below.end(), [](const Entry& e) {
      return !e.is_dir() && e.cached && e.holds_unarchived_data();
    });
    if (!holds_data) {
      HSMFS_RETURN_IF_ERROR(s.Remove(bad.id));  // cascades to what is below and its jobs
      HSMFS_RETURN_IF_ERROR(tx.Commit());
      for (const Entry& e : below) {
        if (e.cached) engine.cache().RemoveCopyOf(e.id);
      }
      return std::string("repaired: dropped from the catalog (no unarchived data below it)");
    }
    HSMFS_ASSIGN_OR_RETURN(Entry parent, s.Get(bad.parent));
    std::string name = "unnamed-" + std::to_string(bad.id);
    for (int i = 2; s.Lookup(parent.id, name).ok(); ++i) {
      name = "unnamed-" + std::to_string(bad.id) + "-" + std::to_string(i);
    }
    HSMFS_RETURN_IF_ERROR(s.Move(bad.id, parent.id, name, JoinPath(parent.backend_path, name)));
    // Nothing below was archived where its new path points: everything with
    // data (and every directory) goes through the archiver again.
    below.clear();
    HSMFS_RETURN_IF_ERROR(s.Subtree(bad.id, &below));
    int queued = 0;
    for (Entry& e : below) {
      if (!e.is_dir() && !e.cached) continue;  // only on the backend: nothing to send
      HSMFS_RETURN_IF_ERROR(catalog::JobQueue::Supersede(s, e.id, now).status());
      HSMFS_RETURN_IF_ERROR(s.ResetForArchive(e.id));
      HSMFS_ASSIGN_OR_RETURN(Entry fresh, s.Get(e.id));
      HSMFS_ASSIGN_OR_RETURN(auto job, catalog::JobQueue::EnqueueArchive(s, fresh, now));
      queued += job.has_value();
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
    done = "repaired: renamed " + name + ", " + std::to_string(queued) + " archive job(s) queued";
  }
  if (Archiver* archiver = engine.archiver()) archiver->Kick();
  return done;
}

}  // namespace

bool IncompletePutAbandoned(const Entry& e) {
  if (e.state != FileState::kFailed) return false;
  const auto pid = catalog::IncompletePutPid(e.error);
  if (!pid) return false;
  return ::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH;
}

Status DiscardIncompletePut(Engine& engine, const Entry& e) {
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    if (e.on_backend) {
      // The backend still holds the version the put was replacing: go back
      // to it; listing the directory again brings back its size and mtime.
      HSMFS_RETURN_IF_ERROR(s.RevertToBackendVersion(e.id));
      HSMFS_RETURN_IF_ERROR(s.ForgetListing(e.parent));
    } else {
      HSMFS_RETURN_IF_ERROR(s.Remove(e.id));
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  engine.cache().RemoveCopyOf(e.id);
  return Status::Ok();
}

Result<FsckReport> Fsck(Engine& engine, const FsckOptions& options) {
  FsckReport report;
  std::set<catalog::EntryId> cached_ids;
  const auto problem = [&](const std::string& path, std::string what) {
    report.problems.push_back(FsckProblem{path, std::move(what)});
  };

  // Names that can never be shown or archived.
  {
    std::vector<Entry> bad;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine.catalog().Acquire());
      HSMFS_RETURN_IF_ERROR(s.BadlyNamed(&bad));
    }
    for (const Entry& e : bad) {
      std::string what = std::string(e.is_dir() ? "directory" : "file") + " with the name \"" +
                         e.name + "\" (entry " + std::to_string(e.id) +
                         "), which cannot be listed or archived";
      if (options.repair) {
        auto repaired = RepairBadName(engine, e);
        what +=
            repaired.ok() ? "; " + *repaired : "; repair failed: " + repaired.status().message();
      } else {
        what += " (hsmctl fsck --repair renames it)";
      }
      problem(PathOf(e), what);
    }
  }

  // Active jobs by entry and kind.
  std::set<std::pair<catalog::EntryId, catalog::JobKind>> active;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine.catalog().Acquire());
    catalog::JobFilter filter;
    filter.states = {catalog::JobState::kQueued, catalog::JobState::kRunning};
    HSMFS_ASSIGN_OR_RETURN(auto jobs, catalog::JobQueue::List(s, filter));
    for (const auto& j : jobs) active.emplace(j.entry_id, j.kind);
  }

  // Entries in id order, a page at a time.
  catalog::EntryId after = 0;
  for (;;) {
    std::vector<Entry> page;
    {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine.catalog().Acquire());
      HSMFS_RETURN_IF_ERROR(s.Files(after, 1000, &page));
    }
    if (page.empty()) break;
    after = page.back().id;
    for (const Entry& e : page) {
      ++report.entries;
      const std::string path = PathOf(e);
      // Online files may be being written, and so may a put's incomplete copy.
      const bool closed =
          e.state != FileState::kOnline && !catalog::IncompletePutPid(e.error).has_value();
      if (e.cached) {
        ++report.cached;
        cached_ids.insert(e.id);
        struct stat st;
        const auto copy = engine.cache().PathOf(e.id);
        if (::stat(copy.c_str(), &st) != 0) {
          problem(path, "the catalog says it is cached but " + copy.string() + " is missing");
        } else if (closed && static_cast<uint64_t>(st.st_size) != e.size) {
          problem(path, "cached copy has " + std::to_string(st.st_size) +
                            " bytes, the catalog says " + std::to_string(e.size));
        }
      }
      switch (e.state) {
        case FileState::kStaging:
          if (!active.count({e.id, catalog::JobKind::kStage})) {
            problem(path, "staging without an active recall job");
          }
          break;
        case FileState::kQueued:
        case FileState::kArchiving:
          if (!active.count({e.id, catalog::JobKind::kArchive})) {
            problem(path,
                    std::string(catalog::StateName(e.state)) + " without an active archive job");
          }
          if (!e.cached) problem(path, "waiting to be archived but has no cached copy");
          break;
        case FileState::kOnline:
          if (!e.cached) problem(path, "online but has no cached copy");
          break;
        case FileState::kFailed:
          if (e.error.empty()) problem(path, "failed without a reason");
          if (IncompletePutAbandoned(e)) {
            std::string what = "half copied in by an hsmctl put that did not finish";
            if (options.repair) {
              Status s = DiscardIncompletePut(engine, e);
              what += s.ok() ? (e.on_backend ? "; repaired: back to the archived version"
                                             : "; repaired: removed")
                             : "; repair failed: " + s.message();
              if (s.ok()) cached_ids.erase(e.id);
            } else {
              what += " (hsmctl fsck --repair removes it)";
            }
            problem(path, what);
          }
          break;
        case FileState::kOffline:
        case FileState::kDual:
          break;
      }
      // The backend holds the archived version of dual and offline files.
      if (e.on_backend && (e.state == FileState::kDual || e.state == FileState::kOffline)) {
        ++report.on_backend;
        backends::Backend* backend = engine.backend(e.backend);
        if (!backend) {
          problem(path, "backend " + e.backend + " is not configured");
        } else if (auto info = backend->Stat(e.backend_path); !info.ok()) {
          problem(path, "on the backend: " + info.status().message());
        } else if (info->size != e.size) {
          problem(path, "the backend copy has " + std::to_string(info->size) +
                            " bytes, the catalog says " + std::to_string(e.size));
        } else if (options.checksums && AlgoOfChecksum(e.checksum).ok()) {
          backends::ReadOptions ro;
          ro.expect_checksum = e.checksum;
          if (Status s =
                  backends::ReadBack(*backend, e.backend_path, engine.cache().scratch_dir(), ro);
              !s.ok()) {
            problem(path, "reading back: " + s.message());
          }
        }
        if (options.checksums && e.cached && e.state == FileState::kDual &&
            AlgoOfChecksum(e.checksum).ok()) {
          auto sum = ChecksumFile(engine.cache().PathOf(e.id), *AlgoOfChecksum(e.checksum));
          if (sum.ok() && *sum != e.checksum) {
            problem(path, "cached copy has checksum " + *sum + ", the catalog says " + e.checksum);
          }
        }
      }
    }
    if (options.progress) options.progress(report.entries);
  }

  // Cache files that belong to nothing.
  std::error_code ec;
  const stdfs::path data = engine.cache().dir() / "data";
  for (auto it = stdfs::recursive_directory_iterator(data, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string name = it->path().filename().string();
    char* end = nullptr;
    const catalog::EntryId id = std::strtoll(name.c_str(), &end, 10);
    if (!end || *end != '\0' || !cached_ids.count(id)) {
      problem(it->path().string(), "cache file that no cached entry owns");
    }
  }
  // Files Recover could not prove superseded: kept for the admin.
  const stdfs::path lost = engine.cache().lost_found_dir();
  for (auto it = stdfs::directory_iterator(lost, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    problem(it->path().string(),
            "in the cache's lost+found: no catalog entry owned it at start-up (perhaps the "
            "last copy of something); inspect it, then copy it into the archive or remove it");
  }
  // Temporaries of archive copies killed mid-way: removed once proven
  // abandoned (ours, writer gone); others may be copies in progress.
  for (const auto& [name, backend] : engine.backends()) {
    backends::LocalRoot* root = backend->local_root();
    if (!root) continue;
    auto leftovers = root->Leftovers();
    if (!leftovers.ok()) continue;  // an unreachable root is reported by the checks above
    for (const backends::Leftover& left : *leftovers) {
      if (!left.stale) continue;
      Status s = root->RemoveLeftover(left.name);
      const std::string what =
          "temporary file of a killed archive copy (" + std::to_string(left.size) + " bytes): ";
      if (s.ok()) {
        report.repaired.push_back(FsckProblem{name + "/" + left.name, what + "removed"});
      } else {
        problem(name + "/" + left.name, what + "could not remove: " + s.message());
      }
    }
  }
  return report;
}

}  // namespace hsmfs::fs
