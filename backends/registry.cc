#include "backends/registry.h"

#include "backends/local/posix_backend.h"

namespace hsmfs::backends {

Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock) {
  if (config.type == "posix") {
    return std::unique_ptr<Backend>(
        std::make_unique<PosixBackend>(config.root, config.stage_delay, clock));
  }
  return InvalidArgumentError("backend \"" + config.name + "\": type \"" + config.type +
                              "\" is not available in this build");
}

}  // namespace hsmfs::backends
