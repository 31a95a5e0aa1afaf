#pragma once

// The hpss backend type's row of backends/registry.cc: an HPSS directory
// (`root`) through the hsi and htar clients, with writes optionally bundled
// into htar archives by HPSSPy rules (docs/HPSS.md).

#include "backends/backend_type.h"

namespace hsmfs::backends::hpss {

extern const BackendType kHpssType;

}  // namespace hsmfs::backends::hpss
