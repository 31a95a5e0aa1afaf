#pragma once

// BundleStore: where the HPSS backend keeps its bundle index (bundle_index.h):
// which file was written into which htar bundle. The engine gives the backend
// its store (BackendContext::bundle_store); the backend never opens a
// database itself. The one implementation today is the hsmfs catalog's
// hpss_bundled table (catalog/bundle_store.h). Thread-safe.
//
// Errors: kUnavailable while the store cannot be reached (its file does not
// exist yet); otherwise the store's own, and nothing of a failed Apply counts.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

// Rows keyed by absolute HPSS path.
using BundledRows = std::vector<std::pair<std::string, BundledFile>>;

class BundleStore {
 public:
  virtual ~BundleStore() = default;
  // Every row.
  virtual Result<BundledRows> Load() = 0;
  // In one transaction: removes the rows of `erase`, then writes `put`
  // (replacing a row of the same path).
  virtual Status Apply(const std::vector<std::string>& erase, const BundledRows& put) = 0;
};

}  // namespace hsmfs::backends::hpss
