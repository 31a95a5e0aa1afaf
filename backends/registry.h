#pragma once

// Creates the Backend a [[backend]] config table describes, by its `type`.

#include <memory>

#include "backends/backend.h"
#include "common/config.h"

namespace hsmfs::backends {

// kInvalidArgument for a type this build does not provide.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock);

}  // namespace hsmfs::backends
