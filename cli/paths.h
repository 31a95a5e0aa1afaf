#pragma once

// Turns the paths users type into catalog paths ("vault/act6/tod_001.dat").
// A path that exists locally (absolute, or relative to the current directory)
// must lie inside an hsmfs mount; its part below the mountpoint is used. Any
// other path is taken as already backend-relative ("vault/act6"). Either is
// normalised: repeated and trailing slashes and "." components go, ".." takes
// back one component (kInvalidArgument above the top).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace hsmfs::cli {

Result<std::string> ToCatalogPath(std::string_view arg);

// The mount points of hsmfs file systems, from /proc/self/mountinfo.
std::vector<std::string> HsmfsMounts();

}  // namespace hsmfs::cli
