#pragma once

// BundleIndex: the files an HPSS backend wrote into htar bundles (catalog
// schema 7, table hpss_bundled), so that each stays at the path it was
// written to although HPSS holds it only as an archive member. Keys are
// absolute HPSS paths. The table is read once, on first use, and then kept in
// memory; every change is written to the catalog first.
//
// Without a catalog path the index is always empty (hsmscan's backend).
// Thread-safe.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "common/result.h"

namespace hsmfs::backends::hpss {

struct BundledFile {
  std::string archive;  // absolute HPSS path of X.tar
  std::string member;   // name inside the archive
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  std::string checksum;  // "algo:hex" as verified after writing; "" if none
  int64_t written_ns = 0;
  std::string link_target;  // a symlink member (schema 10): its target; "" for files
};

class BundleIndex final {
 public:
  explicit BundleIndex(std::filesystem::path catalog) : catalog_path_(std::move(catalog)) {}
  BundleIndex(const BundleIndex&) = delete;
  BundleIndex& operator=(const BundleIndex&) = delete;

  bool enabled() const { return !catalog_path_.empty(); }

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
  Result<catalog::Session> SessionLocked();

  const std::filesystem::path catalog_path_;
  std::mutex mu_;
  std::unique_ptr<catalog::Catalog> catalog_;  // GUARDED_BY(mu_)
  bool loaded_ = false;                        // GUARDED_BY(mu_)
  std::map<std::string, BundledFile> files_;   // GUARDED_BY(mu_)
};

}  // namespace hsmfs::backends::hpss
