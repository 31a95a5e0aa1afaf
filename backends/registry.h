#pragma once

// The backend types this build provides (one row each, backends/registry.cc)
// and the Backend a [[backend]] config table describes, made by its type.

#include <memory>
#include <span>
#include <string_view>

#include "backends/backend.h"
#include "backends/backend_type.h"
#include "common/config.h"

namespace hsmfs::backends {

// Every row, in the order messages list them.
std::span<const BackendType* const> BackendTypes();
// The row of `type`, or null.
const BackendType* FindBackendType(std::string_view type);

// kInvalidArgument for a type this build does not provide; the type's own
// errors annotated with the backend's name.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config,
                                               BackendContext& context);
// As above, with a context holding only `clock`.
Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock);

// Whether a backend of this type can store a symbolic link (Backend's
// contract): posix (a real symlink), tape (a tar symlink member), hpss
// (hsi ln -s). iRODS has no symlinks, so the mount refuses symlink() there
// with EPERM at once instead of failing the archive job later.
bool StoresSymlinks(const BackendConfig& config);

}  // namespace hsmfs::backends
