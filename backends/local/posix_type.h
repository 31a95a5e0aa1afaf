#pragma once

// The posix backend type's row of backends/registry.cc: a local directory
// (`root`) as the archive tier, with an optional simulated recall latency
// (`stage_delay`). docs/DEVELOPMENT.md uses it as the worked example.

#include "backends/backend_type.h"

namespace hsmfs::backends {

extern const BackendType kPosixType;

}  // namespace hsmfs::backends
