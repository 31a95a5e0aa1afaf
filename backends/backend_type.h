#pragma once

// BackendType: one row of the table in backends/registry.cc. A backend type
// (posix, tape, hpss, irods) is its folder under backends/ plus this row: how
// its [[backend]] keys are read, checked and rendered (the BackendConfigType
// part, which common/config calls while loading a config) and how a backend of
// the type is made. docs/DEVELOPMENT.md "Adding a backend type" walks through
// the posix row. Rows are constant data; thread-safe to read.

#include <filesystem>
#include <functional>
#include <memory>

#include "backends/backend.h"
#include "common/clock.h"
#include "common/config.h"

namespace hsmfs::tape {
class TapeStore;  // backends/tape/tape_store.h
}  // namespace hsmfs::tape
namespace hsmfs::backends::hpss {
class BundleStore;  // backends/hpss/bundle_store.h
}  // namespace hsmfs::backends::hpss

namespace hsmfs::backends {

// What a backend gets from the engine that makes it, instead of finding it
// on its own (it never opens the catalog). `clock` outlives the backend.
struct BackendContext {
  explicit BackendContext(Clock& c) : clock(c) {}

  Clock& clock;
  // The store of a tape backend's tables, kept in the file its config names
  // (tape_catalog); unset where no engine makes tape backends.
  std::function<std::shared_ptr<tape::TapeStore>(const std::filesystem::path& file)> tape_store;
  // The store of an HPSS backend's bundle index, in the hsmfs catalog
  // (bundle_catalog); unset: the index is empty and bundled writes fail.
  std::function<std::shared_ptr<hpss::BundleStore>(const std::filesystem::path& file)> bundle_store;
};

struct BackendType {
  BackendConfigType config;
  // Makes a backend from its (loaded, checked) config. Errors name what is
  // wrong; CreateBackend adds the backend's name.
  Result<std::unique_ptr<Backend>> (*create)(const BackendConfig& config,
                                             BackendContext& context) = nullptr;
  // Whether the type can store a symbolic link (Backend's contract); the
  // mount refuses symlink() at once on one that cannot.
  bool stores_symlinks = true;
};

}  // namespace hsmfs::backends
