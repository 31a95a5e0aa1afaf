#include "engine/root_guard.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <random>

#include "catalog/backend_ids.h"
#include "common/logging.h"
#include "engine/bookkeeping.h"

namespace hsmfs::fs {
namespace {

std::string NewRootId() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 32; ++i) id += kHex[rd() & 0xf];
  return id;
}

}  // namespace

RootGuard::RootGuard(catalog::Catalog& catalog, const BackendMap& backends, Clock& clock,
                     std::set<std::string, std::less<>> read_only)
    : catalog_(catalog), backends_(backends), clock_(clock), read_only_(std::move(read_only)) {}

Result<bool> RootGuard::RootIsEmpty(backends::Backend& backend) {
  bool empty = true;
  HSMFS_RETURN_IF_ERROR(backend.List(
      "",
      [&](std::vector<backends::ObjectInfo>&& batch) -> Status {
        if (!batch.empty()) empty = false;
        return Status::Ok();
      },
      CancelToken::None()));
  return empty;
}

Status RootGuard::Check(std::string_view name) {
  auto it = backends_.find(name);
  if (it == backends_.end()) return Status::Ok();
  backends::LocalRoot* root = it->second->local_root();
  if (!root) return Status::Ok();
  // The marker is read after the catalog's record, always: a first use
  // writes the marker before it records the id, so a checker that sees the
  // record also sees the marker (read first, a concurrent first use on
  // another thread looked like a root without its marker).
  const auto read_marker = [&]() -> Result<std::string> {
    auto got = root->ReadRootId();
    if (!got.ok()) {
      return UnavailableError("E-ROOT-02: backend " + std::string(name) + ": " +
                              got.status().message() +
                              "; its files are shown as last listed, nothing is archived there");
    }
    return *got;
  };
  const auto compare = [&](const std::string& recorded, const std::string& found) -> Status {
    {
      // A recorded id never changes (init-root keeps it), so later checks
      // need no catalog access: one marker read per listing or archive job.
      std::lock_guard<std::mutex> l(mu_);
      recorded_.try_emplace(std::string(name), recorded);
    }
    root->ExpectRootId(recorded);
    if (found == recorded) return Status::Ok();
    return UnavailableError(
        "E-ROOT-01: backend " + std::string(name) + ": its root " +
        (found.empty() ? "has no .hsmfs-root" : "carries id " + found) +
        " but the catalog's id is " + recorded +
        " (a file system not mounted yet, or the wrong directory?); nothing is listed or "
        "archived there until the right root is back, or `hsmctl init-root " +
        std::string(name) + "` adopts this directory");
  };
  Status s = [&]() -> Status {
    std::optional<std::string> known;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (auto id = recorded_.find(name); id != recorded_.end()) known = id->second;
    }
    if (known) {
      HSMFS_ASSIGN_OR_RETURN(std::string found, read_marker());
      return compare(*known, found);
    }
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto recorded, catalog::GetBackendRootId(session, name));
    HSMFS_ASSIGN_OR_RETURN(std::string found, read_marker());
    if (!recorded && found.empty()) {
      // A read-only root already found unwritable: no marker write (and no
      // listing of the root) on every check.
      std::lock_guard<std::mutex> l(mu_);
      if (unguarded_.contains(name)) return Status::Ok();
    }
    if (!recorded) {
      // First use (or a catalog from before root ids): one process decides,
      // inside a write transaction, so two cannot record different ids.
      HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
      HSMFS_ASSIGN_OR_RETURN(recorded, catalog::GetBackendRootId(session, name));
      HSMFS_ASSIGN_OR_RETURN(found, read_marker());  // another first use may have won
      if (!recorded) {
        std::string id = found;
        if (id.empty()) {
          HSMFS_ASSIGN_OR_RETURN(bool used, catalog::BackendUsed(session, name));
          if (used) {
            HSMFS_ASSIGN_OR_RETURN(bool empty, RootIsEmpty(*it->second));
            if (empty) {
              return UnavailableError(
                  "E-ROOT-01: backend " + std::string(name) +
                  ": its root is an empty directory without .hsmfs-root, but the catalog "
                  "holds files from it (a file system not mounted yet?); nothing is listed or "
                  "archived there until it is back, or until `hsmctl init-root " +
                  std::string(name) + "` adopts this directory");
            }
          }
          id = NewRootId();
          Status wrote = root->WriteRootId(id);
          const Code code = wrote.code();
          if (!wrote.ok() && read_only_.contains(name) &&
              (code == Code::kReadOnly || code == Code::kPermissionDenied ||
               code == Code::kNotPermitted)) {
            // A read-only archive (an export mounted ro, a root we may not
            // write): browsing and recalls work without an identity, the
            // suspect-listing rule still guards the catalog, and the next
            // start tries again. Nothing is recorded, so nothing is refused.
            std::lock_guard<std::mutex> l(mu_);
            if (unguarded_.insert(std::string(name)).second) {
              spdlog::warn(
                  "backend {}: cannot write .hsmfs-root into its read-only root ({}); "
                  "it is used without a root identity",
                  name, wrote.message());
            }
            return Status::Ok();
          }
          if (!wrote.ok()) {
            return UnavailableError("E-ROOT-02: backend " + std::string(name) +
                                    ": cannot write .hsmfs-root into its root (" + wrote.message() +
                                    "); nothing is archived there");
          }
          spdlog::info("backend {}: root initialised with id {} (.hsmfs-root)", name, id);
        } else {
          spdlog::info("backend {}: adopted the root with id {}", name, id);
        }
        HSMFS_RETURN_IF_ERROR(catalog::SetBackendRootId(session, name, id, clock_.WallNanos()));
        HSMFS_RETURN_IF_ERROR(tx.Commit());
        recorded = id;
        found = id;
      }
    }
    return compare(*recorded, found);
  }();
  Report(name, s);
  return s;
}

void RootGuard::Report(std::string_view backend, const Status& s) {
  const std::string message = s.ok() ? "" : s.message();
  {
    std::lock_guard<std::mutex> l(mu_);
    auto [it, fresh] = reported_.try_emplace(std::string(backend));
    if (!fresh && it->second == message) return;
    if (fresh && message.empty()) return;
    it->second = message;
  }
  if (s.ok()) {
    spdlog::info("backend {}: its root is back and carries the catalog's id", backend);
  } else {
    CountErrorSite(message.substr(0, 9));
    spdlog::error("{}", message);
  }
  RecordBookkeeping("E-BOOK-08", "user.hsm.error of backend " + std::string(backend),
                    "its directory's user.hsm.error is stale until the root's state changes again",
                    clock_, [&]() -> Status {
                      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
                      auto top = session.Lookup(catalog::kRootId, backend);
                      if (!top.ok()) {
                        // No directory (yet) to carry it.
                        return top.status().code() == Code::kNotFound ? Status::Ok() : top.status();
                      }
                      return catalog::SetEntryError(session, top->id, message);
                    });
}

Status RootGuard::LoadRecordedIds() {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
  for (const auto& [name, backend] : backends_) {
    backends::LocalRoot* root = backend->local_root();
    if (!root) continue;
    HSMFS_ASSIGN_OR_RETURN(auto recorded, catalog::GetBackendRootId(session, name));
    if (recorded) root->ExpectRootId(*recorded);
  }
  return Status::Ok();
}

void RootGuard::CheckAll() {
  for (const auto& [name, backend] : backends_) {
    if (Status s = Check(name); !s.ok()) {
      spdlog::warn("backend {} is not usable now (see above); mounting the others", name);
    }
  }
}

Result<std::string> RootGuard::InitRoot(std::string_view name, bool force) {
  auto it = backends_.find(name);
  if (it == backends_.end()) {
    return NotFoundError("no backend named \"" + std::string(name) + "\" is configured");
  }
  backends::LocalRoot* root = it->second->local_root();
  if (!root) {
    return FailedPreconditionError("backend " + std::string(name) +
                                   " has no root directory of its own to initialise");
  }
  HSMFS_ASSIGN_OR_RETURN(std::string got, root->ReadRootId());
  std::string id;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session session, catalog_.Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, session.Begin());
    HSMFS_ASSIGN_OR_RETURN(auto recorded, catalog::GetBackendRootId(session, name));
    id = recorded.value_or(got.empty() ? NewRootId() : got);
    if (!got.empty() && got != id && !force) {
      return FailedPreconditionError("backend " + std::string(name) + ": the root carries id " +
                                     got +
                                     ", another catalog's or an older one (this catalog's is " +
                                     id + "); give --force to make it this catalog's root");
    }
    if (got != id) HSMFS_RETURN_IF_ERROR(root->WriteRootId(id));
    HSMFS_RETURN_IF_ERROR(catalog::SetBackendRootId(session, name, id, clock_.WallNanos()));
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  root->ExpectRootId(id);
  {
    std::lock_guard<std::mutex> l(mu_);
    recorded_[std::string(name)] = id;
  }
  Report(name, Status::Ok());
  return id;
}

}  // namespace hsmfs::fs
