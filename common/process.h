#pragma once

// Facts about other processes, for requests arriving through the mount.

#include <sys/types.h>

#include <string>

namespace hsmfs {

// The command name of `pid` as the kernel keeps it (/proc/PID/comm, at most 15
// characters), or "" if the process is gone.
std::string ProcessName(pid_t pid);

}  // namespace hsmfs
