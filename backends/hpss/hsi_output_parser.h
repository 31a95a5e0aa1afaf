#pragma once

// Pure parsers of what the HPSS clients print (hsi 6.x-8.x, htar), so that
// every format is tested on golden files of real output (tests/testdata/hpss)
// without running anything. No I/O, no global state except the local time
// zone: hsi and htar print times in the client's local time, as do we.
//
// Formats (HSI Reference Manual; HPSSPy parses the same `ls -D` form):
//   ls -D  "-rw-r--r--    1 user  group   9331200 Fri Sep 24 14:24:15 2010 name",
//          directory headers "/abs/dir:", blank lines between directories (-R).
//   ls -P  tab separated "FILE path size tapebytes SECTION+OFFSET VOLUME cos ..."
//          and "DIRECTORY path".
//   errors lines starting with "***", e.g.
//          "*** hpss_Lstat: No such file or directory [-2: HPSS_ENOENT]".
//   htar   "HTAR: -rw-r--r--  user/group    9331200 2010-09-24 14:24  name",
//          "HTAR: x name, 9331200 bytes, 18226 media blocks", "HTAR: HTAR SUCCESSFUL".

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "common/result.h"

namespace hsmfs::backends::hpss {

// One entry of `hsi ls -D`.
struct LsEntry {
  std::string dir;   // the directory header it followed ("" before any header)
  std::string name;  // as printed: a bare name under a header, else the path given to ls
  ObjectType type = ObjectType::kFile;
  bool is_link = false;
  std::string link_target;  // is_link: what follows " -> " (a name holding " -> " is ambiguous)
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// Parses `hsi ls -D` output (optionally -R). Lines that are neither entries,
// headers nor blank (a stray message) are an error naming the line.
Result<std::vector<LsEntry>> ParseLsD(std::string_view text);

// One line of `hsi ls -P`.
struct TapeEntry {
  std::string path;  // absolute HPSS path
  ObjectType type = ObjectType::kFile;
  uint64_t size = 0;
  std::string volume;   // "" when the file has no tape copy yet
  int64_t section = 0;  // position on the volume
  int64_t offset = 0;   // within the section
};

Result<std::vector<TapeEntry>> ParseLsP(std::string_view text);

// The Status of one hsi command from its output lines: OK without a "***"
// line; otherwise the code its HPSS error names (HPSS_ENOENT -> kNotFound,
// HPSS_EACCES -> kPermissionDenied, ...; connection, I/O and unknown errors ->
// kUnavailable so that the engine retries), the message being the error line
// and the path line under it.
Status HsiCommandStatus(const std::vector<std::string>& lines, std::string_view what);

// True if the lines report that the session itself is unusable (sign-in or
// connection lost), so the caller starts a new one.
bool HsiSessionBroken(const std::vector<std::string>& lines);

struct HtarMember {
  std::string name;  // without a trailing '/'
  ObjectType type = ObjectType::kFile;
  std::string link_target;  // a symlink member: what follows " -> " (type stays kFile)
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// Parses `htar -t` output. htar's consistency file (an absolute /tmp/HTAR_CF_CHK_*
// member) is left out. kUnavailable unless "HTAR SUCCESSFUL" is present.
Result<std::vector<HtarMember>> ParseHtarList(std::string_view text);

struct HtarExtracted {
  std::string name;
  uint64_t size = 0;
};

// Parses `htar -xv` output: the members it says it extracted. kUnavailable
// unless "HTAR SUCCESSFUL" is present (kNotFound for "No such file" errors).
Result<std::vector<HtarExtracted>> ParseHtarExtract(std::string_view text);

}  // namespace hsmfs::backends::hpss
