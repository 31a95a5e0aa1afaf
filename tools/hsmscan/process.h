#pragma once

// ArchiveMaker: HPSSPy's process_missing for one ArchivePlan, through the HPSS
// backend (backends/hpss), plus the check HPSSPy lacks: after an htar run the
// archive is listed (`htar -t`) and must hold exactly the planned members.
//
//   kHtarDirectories  hsi mkdir -p -m 2770 DIR; cd DISK_DIR &&
//                     htar -cvf ARCHIVE -H crc:verify=all DIRS...
//                     members expected: every non-directory below DIRS on disk
//                     (which includes the archive's files from the plan)
//   kHtarFileList     the same with -L LISTFILE of the member basenames;
//                     members expected: exactly those basenames
//   kPut              hsi mkdir -p -m 2770 DIR; hsi put FILE : ARCHIVE;
//                     the HPSS copy must have the local file's size
//
// Thread-compatible (one thread drives it; the backend is thread-safe).

#include <string>
#include <vector>

#include "common/status.h"
#include "tools/hsmscan/plan.h"

namespace hsmfs::backends::hpss {
class HpssBackend;
}

namespace hsmfs::hsmscan {

class Log;

class ArchiveMaker final {
 public:
  // `hpss`: a backend whose root is the section's HPSS directory (the plans'
  // archive names are relative to it). `tmpdir` holds -L list files.
  ArchiveMaker(backends::hpss::HpssBackend& hpss, std::string tmpdir, const Log& log)
      : hpss_(hpss), tmpdir_(std::move(tmpdir)), log_(log) {}

  // Creates the archive of `plan`; `files` are its members from the missing
  // list, relative to the section. kDataLoss when HPSS holds other members
  // than planned, kUnavailable/... when a command failed.
  Status Make(const ArchivePlan& plan, const std::vector<std::string>& files);

 private:
  Status MakeHtar(const ArchivePlan& plan, const std::vector<std::string>& files);

  backends::hpss::HpssBackend& hpss_;
  const std::string tmpdir_;
  const Log& log_;
};

// The mode HPSSPy gives the directories it creates (dirmode='2770').
inline constexpr uint32_t kHpssDirMode = 02770;

}  // namespace hsmfs::hsmscan
