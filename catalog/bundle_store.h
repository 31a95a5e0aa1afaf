#pragma once

// The HPSS bundle index in an hsmfs catalog file (schema 7, table
// hpss_bundled), as an HPSS backend's store (backends/hpss/bundle_store.h):
// the engine gives one to each HPSS backend. The file is opened on first use
// (kUnavailable until it exists). Thread-safe.

#include <filesystem>
#include <memory>

#include "backends/hpss/bundle_store.h"

namespace hsmfs::catalog {

std::shared_ptr<backends::hpss::BundleStore> OpenBundleStore(const std::filesystem::path& file);

}  // namespace hsmfs::catalog
