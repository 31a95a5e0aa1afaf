#include "backends/registry.h"

#include "backends/hpss/hpss_backend.h"
#include "backends/local/posix_backend.h"

namespace hsmfs::backends {

Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock) {
  if (config.type == "posix") {
    return std::unique_ptr<Backend>(
        std::make_unique<PosixBackend>(config.root, config.stage_delay, clock));
  }
  if (config.type == "hpss") {
    hpss::HpssOptions o;
    o.root = config.root.string();
    o.hsi = config.hsi;
    o.htar = config.htar;
    o.hsi_args = config.hsi_args;
    o.command_timeout = config.command_timeout;
    o.session_idle = config.session_idle;
    o.checksum = config.checksum;
    return std::unique_ptr<Backend>(std::make_unique<hpss::HpssBackend>(std::move(o), clock));
  }
  return InvalidArgumentError("backend \"" + config.name + "\": type \"" + config.type +
                              "\" is not available in this build");
}

}  // namespace hsmfs::backends
