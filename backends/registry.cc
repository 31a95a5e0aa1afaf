#include "backends/registry.h"

#include "backends/hpss/hpss_type.h"
#include "backends/irods/irods_type.h"
#include "backends/local/posix_type.h"
#include "backends/tape/tape_type.h"

namespace hsmfs {
namespace backends {
namespace {

// The one table of backend types: adding a type adds its folder and one line
// here (docs/DEVELOPMENT.md "Adding a backend type"). Pointers, so that the
// rows, defined in their own files, need no initialisation order.
const BackendType* const kTypes[] = {
    &kPosixType,
    &tape::kTapeType,
    &hpss::kHpssType,
    &irods::kIrodsType,
};

}  // namespace

std::span<const BackendType* const> BackendTypes() { return kTypes; }

const BackendType* FindBackendType(std::string_view type) {
  for (const BackendType* t : kTypes) {
    if (t->config.name == type) return t;
  }
  return nullptr;
}

bool StoresSymlinks(const BackendConfig& config) {
  const BackendType* type = FindBackendType(config.type);
  return type && type->stores_symlinks;
}

Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config,
                                               BackendContext& context) {
  const BackendType* type = FindBackendType(config.type);
  if (!type || !type->create) {
    return InvalidArgumentError("backend \"" + config.name + "\": type \"" + config.type +
                                "\" is not available in this build");
  }
  auto made = type->create(config, context);
  if (!made.ok()) return made.status().Annotate("backend \"" + config.name + "\"");
  return made;
}

Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock) {
  BackendContext context{clock};
  return CreateBackend(config, context);
}

}  // namespace backends

// common/config's side of the table (common/config.h).
const BackendConfigType* FindBackendConfigType(std::string_view type) {
  const backends::BackendType* t = backends::FindBackendType(type);
  return t ? &t->config : nullptr;
}

std::string BackendConfigTypeList() {
  std::string list;
  const auto types = backends::BackendTypes();
  for (size_t i = 0; i < types.size(); ++i) {
    if (i > 0) list += i + 1 == types.size() ? " or " : ", ";
    list += types[i]->config.name;
  }
  return list;
}

}  // namespace hsmfs
