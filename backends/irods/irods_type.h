#pragma once

// The irods backend type's row of backends/registry.cc: a collection of an
// iRODS zone over the native protocol, with DMF tape states (docs/IRODS.md).

#include "backends/backend_type.h"

namespace hsmfs::irods {

extern const backends::BackendType kIrodsType;

}  // namespace hsmfs::irods
