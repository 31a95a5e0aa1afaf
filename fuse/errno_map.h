#pragma once

// The one place where a Status becomes an errno for the kernel.

#include "common/status.h"

namespace hsmfs::fs {

// Returns the positive errno for a failed `status` (0 for OK).
int ToErrno(const Status& status);

}  // namespace hsmfs::fs
