#pragma once

// RootGuard: makes sure each backend's root is the directory the catalog
// knows before anything is listed from it or archived into it
// (docs/SEMANTICS.md, "Backend root identity").
//
// A backend with a root of its own (backends::LocalRoot: posix) carries an id
// in its root marker, recorded in the catalog (table backend_ids). Check():
//  - marker == recorded id: OK;
//  - no id recorded yet: a root with a marker is adopted; an unmarked root
//    is initialised (new id written and recorded) if the catalog holds nothing
//    from this backend yet, or if it does (a catalog from before root ids)
//    and the root is not empty; an unmarked EMPTY root of a used backend is
//    exactly an export that is not mounted, and is refused;
//  - otherwise (no marker, another id): refused.
// A refused or unreachable root gives kUnavailable, one error line in the log
// (once per change) and user.hsm.error on the backend's top directory, which
// is cleared when the root is right again. Backends without a LocalRoot are
// always OK. Thread-safe.

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "engine/namespace_sync.h"

namespace hsmfs::fs {

class RootGuard {
 public:
  // `read_only`: the backends with no writable directory. Such a root that
  // refuses the marker (a read-only export) is used unguarded: nothing is
  // ever archived into it, so a wrong root there cannot cost data.
  RootGuard(catalog::Catalog& catalog, const BackendMap& backends, Clock& clock,
            std::set<std::string, std::less<>> read_only = {});
  RootGuard(const RootGuard&) = delete;
  RootGuard& operator=(const RootGuard&) = delete;

  // OK if `backend` may be listed and written now (see the class comment).
  Status Check(std::string_view backend);
  // Tells every backend the id the catalog recorded for it, so that each of
  // its calls refuses another root (hsmctl fsck, ls) even before a Check.
  Status LoadRecordedIds();
  // At mount time: checks every backend and warns about each one that is
  // unreachable or refused; never fails (the other backends mount).
  void CheckAll();
  // hsmctl init-root: makes the root of `backend` carry the catalog's id (a
  // new one, recorded, if the catalog has none). A root carrying another id is
  // replaced only with `force`. Returns the id.
  Result<std::string> InitRoot(std::string_view backend, bool force);

 private:
  // Sets or clears (ok) the backend's error: log line and user.hsm.error.
  void Report(std::string_view backend, const Status& s);
  Result<bool> RootIsEmpty(backends::Backend& backend);

  catalog::Catalog& catalog_;
  const BackendMap& backends_;
  Clock& clock_;
  const std::set<std::string, std::less<>> read_only_;
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> reported_;  // GUARDED_BY(mu_)
  std::map<std::string, std::string, std::less<>> recorded_;  // GUARDED_BY(mu_): ids seen
  std::set<std::string, std::less<>> unguarded_;              // GUARDED_BY(mu_): warned once
};

}  // namespace hsmfs::fs
