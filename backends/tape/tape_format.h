#pragma once

// The on-tape format, written and read through any TapeDrive:
//
//   file 0        one label record ("HSMFS-TAPE 1", name, serial, block size) FM
//   file N        a unit: one tar stream (pax, libarchive) in records of
//                 `block_size` bytes, the last one shorter               FM
//   file N + 1    the unit's manifest: JSON (unit, then every member with
//                 size, mtime, mode, md5 and its data offset in the tar)  FM
//   ...
//
// Every record of a unit but the last is exactly block_size bytes, so a member
// whose data starts at byte D of the stream is in logical block
// start_block + D / block_size: a single file is recalled by locating there and
// reading its own records, never the whole tar. The manifests let the catalog
// be rebuilt from the tapes alone (hsmtape rebuild_catalog).

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "backends/tape/tape_drive.h"
#include "backends/tape/tape_types.h"
#include "common/cancel.h"
#include "common/result.h"

namespace hsmfs::tape {

inline constexpr uint32_t kDefaultBlockSize = 256 * 1024;

struct TapeLabel {
  std::string name;
  std::string serial;
  uint32_t block_size = kDefaultBlockSize;
};

// Rewinds and writes the label as file 0 (erasing the tape's contents).
Status WriteLabel(TapeDrive& drive, const TapeLabel& label);
// Rewinds and reads file 0; kFailedPrecondition if it is not an hsmfs label.
Result<TapeLabel> ReadLabel(TapeDrive& drive);

// Reads up to buf.size() bytes of a member's data; 0 = end of the file.
using ChunkReader = std::function<Result<size_t>(std::span<std::byte> buf)>;
// Called with bytes written so far, for progress bars.
using ByteProgress = std::function<void(uint64_t bytes)>;

// What writing a unit produced, for TapeCatalog::FinishWrite.
struct WrittenUnit {
  std::vector<int64_t> offsets;  // data offset of each member in the tar stream
  std::vector<std::string> md5;  // md5 (hex) of what was written, per member
  uint64_t tar_bytes = 0;
  int64_t next_file = 0;   // the tape file after the manifest
  int64_t next_block = 0;  // its first logical block
};

// Writes `target` (whose files are `files`, opened in order by `open`) at the
// drive's current position, which must be the start of tape file
// `target.file_number` at logical block `target.start_block`. A member whose
// data is not the size the catalog says, or whose md5 differs from the
// catalog's (changed since import), fails the unit with kDataLoss. At end of
// tape: kResourceExhausted, and nothing of the unit counts (the catalog keeps
// the tape's old end, so the next write starts there again).
Result<WrittenUnit> WriteUnit(TapeDrive& drive, const Target& target,
                              const std::vector<TargetFile>& files,
                              const std::function<Result<ChunkReader>(size_t index)>& open,
                              const CancelToken& cancel, const ByteProgress& progress);

// Reads one member: locates its first record and passes exactly its bytes to
// `sink`, checking its md5 (kDataLoss when it differs).
Status ReadMember(TapeDrive& drive, const Target& target, const TargetFile& file,
                  const std::function<Status(std::span<const std::byte>)>& sink,
                  const CancelToken& cancel);

// Reads a whole unit back in one pass and returns the rel_paths of the members
// whose data is damaged (md5 differs or their records cannot be read).
Result<std::vector<std::string>> ConfirmUnit(TapeDrive& drive, const Target& target,
                                             const std::vector<TargetFile>& files,
                                             const CancelToken& cancel,
                                             const ByteProgress& progress);

// A unit as its manifest describes it (target fields plus files with offsets).
struct Manifest {
  Target target;
  std::vector<TargetFile> files;
};

// Reads every manifest on the tape, from file 1 to the end of data.
Result<std::vector<Manifest>> ReadManifests(TapeDrive& drive);

}  // namespace hsmfs::tape
