#pragma once

// Tape device specs, as written in the hsmfs config (`library = "vtl:DIR"`,
// `drives = ["/dev/nst0"]`) and in tape.conf (`tape_device`):
//
//   vtl:DIR      a virtual library kept in directory DIR (drive 0)
//   vtl:DIR#N    drive N of that library
//   /dev/nstN    a Linux st drive, non-rewinding node (any absolute path is
//                taken as an st node, e.g. /dev/tape/by-id/...-nst)
//
// The rewinding nodes /dev/stN[lma] are refused: they rewind on every close,
// so a second process would write over the first one's data.

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace hsmfs::tape {

struct DeviceSpec {
  enum class Kind { kStDevice, kVirtualLibrary };
  Kind kind = Kind::kStDevice;
  std::filesystem::path path;  // the device node, or the library directory
  int drive = 0;               // kVirtualLibrary: the drive index

  // The canonical spelling, which ParseDeviceSpec reads back.
  std::string ToString() const;
};

// Parses `text`. A relative library DIR is taken relative to `base_dir` (the
// directory of the config file naming it) when that is not empty.
// Errors: kInvalidArgument with one line naming the spec and what is wrong.
Result<DeviceSpec> ParseDeviceSpec(std::string_view text,
                                   const std::filesystem::path& base_dir = {});

}  // namespace hsmfs::tape
