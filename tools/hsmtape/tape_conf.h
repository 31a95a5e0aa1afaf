#pragma once

// tape.conf, as tapeop reads it: an ini file with keys under [default]:
//
//   [default]
//   database_file = run1.sqlite        # the catalog (may be the mount's catalog)
//   tape_device   = /dev/nst0          # or vtl:DIR for a virtual library
//   ssh_command   = ssh user@host -i /home/user/.ssh/key [-p PORT]
//
// hsmtape adds: ssh_host/ssh_user/ssh_key/ssh_port/known_hosts/
// accept_unknown_host (instead of ssh_command), block_size (bytes per tape
// record, default 256 KiB) and capacity (of tapes opened in a virtual library,
// e.g. "1.5TiB"). Relative paths are relative to the file's directory. Unknown
// keys and sections are errors, reported as "FILE:LINE: ...".

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "backends/tape/device_spec.h"
#include "common/result.h"
#include "sources/ssh_command.h"

namespace hsmfs::hsmtape {

struct TapeConf {
  std::filesystem::path file;  // where it was read from
  std::filesystem::path database_file;
  tape::DeviceSpec device;
  std::optional<SshTarget> ssh;  // set when targets are read over ssh
  uint32_t block_size = 256 * 1024;
  uint64_t capacity = 0;  // 0: the library's default
};

// kInvalidArgument naming the file, line and key for anything wrong.
// A file named *.toml is read as an hsmfs config instead: its tape backend
// (the one named `backend`, or the only one) gives the catalog (tape_catalog)
// and the device (library, or the first of drives); such targets are local.
Result<TapeConf> LoadTapeConf(const std::filesystem::path& path, const std::string& backend = "");

}  // namespace hsmfs::hsmtape
