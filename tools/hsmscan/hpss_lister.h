#pragma once

// HpssLister: every file below an HPSS directory, with size and mtime, as
// HPSSPy's scan_hpss collects it (directories and htar `.idx` files left out,
// names relative to the directory).
//
// Two implementations: CsvHpssLister reads an existing hpss_files_<SECTION>.csv
// cache; HsiHpssLister asks HPSS through the HPSS backend (backends/hpss): one
// `hsi ls -R -D DIR` in one hsi session, parsed by the backend's ParseLsD.
// Errors: kFailedPrecondition when hsi cannot run, kUnavailable when it fails.
// A directory that does not exist on HPSS yet lists as empty.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hpss/hsi_output_parser.h"
#include "common/status.h"

namespace hsmfs::backends::hpss {
class HpssBackend;
}

namespace hsmfs::hsmscan {

using HpssSink = std::function<void(const std::string& name, int64_t size, int64_t mtime)>;

class HpssLister {
 public:
  virtual ~HpssLister() = default;
  // Calls `sink` for every file below `hpss_dir`.
  virtual Status List(const std::string& hpss_dir, const HpssSink& sink) = 0;
};

class CsvHpssLister final : public HpssLister {
 public:
  explicit CsvHpssLister(std::string csv_path) : csv_path_(std::move(csv_path)) {}
  Status List(const std::string& hpss_dir, const HpssSink& sink) override;

 private:
  std::string csv_path_;
};

class HsiHpssLister final : public HpssLister {
 public:
  // `hpss`: a backend whose root is the `hpss_dir` that List is given.
  explicit HsiHpssLister(backends::hpss::HpssBackend& hpss) : hpss_(hpss) {}
  Status List(const std::string& hpss_dir, const HpssSink& sink) override;

 private:
  backends::hpss::HpssBackend& hpss_;
};

// One `hsi ls -R -D` entry as HPSSPy's scan_hpss records it: false for
// directories and `.idx` files; else `name` relative to `hpss_dir`.
bool HpssCacheEntry(const backends::hpss::LsEntry& e, const std::string& hpss_dir,
                    std::string& name);

}  // namespace hsmfs::hsmscan
