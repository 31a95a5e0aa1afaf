#pragma once

// BundleIndex: the files an HPSS backend wrote into htar bundles, so that
// each stays at the path it was written to although HPSS holds it only as an
// archive member. Keys are absolute HPSS paths. The store (bundle_store.h,
// given by the engine) is read once, on first use, and then kept in memory;
// every change is written to the store first.
//
// Without a store the index is always empty (hsmscan's backend). Thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/hpss/bundle_store.h"
#include "common/result.h"

namespace hsmfs::backends::hpss {

class BundleIndex final {
 public:
  explicit BundleIndex(std::shared_ptr<BundleStore> store) : store_(std::move(store)) {}
  BundleIndex(const BundleIndex&) = delete;
  BundleIndex& operator=(const BundleIndex&) = delete;

  bool enabled() const { return store_ != nullptr; }

  Result<std::optional<BundledFile>> Find(const std::string& path);
  // The bundled files directly in `dir`, by name.
  Result<std::vector<std::pair<std::string, BundledFile>>> Children(const std::string& dir);
  // Whether any file is recorded in `archive`, or anything below `dir`.
  Result<bool> ArchiveUsed(const std::string& archive);
  Result<bool> AnyBelow(const std::string& dir);
  // Records `files` (path -> file) in one transaction, replacing earlier rows.
  Status Record(const std::vector<std::pair<std::string, BundledFile>>& files);
  // Forgets `path` (no error if it is not recorded).
  Status Erase(const std::string& path);
  // Renames the file `from`, or everything below the directory `from` (the
  // paths of files and of the archives that lie there), to `to`.
  Status Move(const std::string& from, const std::string& to);

 private:
  Status LoadLocked();

  const std::shared_ptr<BundleStore> store_;
  std::mutex mu_;
  bool loaded_ = false;                       // GUARDED_BY(mu_)
  std::map<std::string, BundledFile> files_;  // GUARDED_BY(mu_)
};

}  // namespace hsmfs::backends::hpss
