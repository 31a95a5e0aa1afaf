#pragma once

// The tape backend type's row of backends/registry.cc: a virtual library
// (`library = "vtl:DIR"`) or st drives (`drives = [...]`), with the tape tables
// in `tape_catalog` and writes grouped into units (docs/TAPE.md).

#include "backends/backend_type.h"

namespace hsmfs::tape {

extern const backends::BackendType kTapeType;

}  // namespace hsmfs::tape
