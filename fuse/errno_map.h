#pragma once

// The one place where a Status becomes an errno for the kernel.

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace hsmfs::fs {

// Returns the positive errno for a failed `status` (0 for OK).
int ToErrno(const Status& status);

// For the catch blocks of the FUSE boundary, so that no exception reaches
// libfuse's C caller: call inside a catch. Logs what was caught (its what(),
// or "unknown exception") under site E-FUSE-01, counts the site, and returns
// the errno to reply (EIO). Never throws.
int ErrnoForCaughtException(std::string_view op, uint64_t ino) noexcept;

}  // namespace hsmfs::fs
