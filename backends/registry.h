#pragma once

// Creates the Backend a [[backend]] config table describes, by its `type`.

#include <memory>

#include "backends/backend.h"
#include "common/config.h"

namespace hsmfs::backends {

// kInvalidArgument for a type this build does not provide.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock);

// Whether a backend of this type can store a symbolic link (Backend's
// contract): posix (a real symlink), tape (a tar symlink member), hpss
// (hsi ln -s). iRODS has no symlinks, so the mount refuses symlink() there
// with EPERM at once instead of failing the archive job later.
bool StoresSymlinks(const BackendConfig& config);

}  // namespace hsmfs::backends
