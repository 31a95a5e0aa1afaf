#pragma once

// TapeCatalog: tapes, the units archived on them ("targets", as tapeop calls
// the imported source directories) and the files of each unit, kept in the
// hsmfs catalog so that `hsmtape` and the mount share one database.
//
// Like JobQueue, all functions work inside the caller's Session (and
// transaction, if any) and are stateless. A unit moves
//   imported -> assigned -> writing -> archived -> confirmed
// and a tape's next file number and block move only when a unit's write
// completes, so a unit interrupted by a crash is rewritten from the same
// start position and the catalog never records a member that is not on tape.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"

namespace hsmfs::catalog {

enum class TargetState { kImported, kAssigned, kWriting, kArchived, kConfirmed };
std::string_view TargetStateName(TargetState state);

struct Tape {
  std::string name;
  std::string serial;
  bool closed = false;
  bool active = false;
  bool full = false;
  uint64_t capacity = 0;  // bytes; 0 = unknown
  uint64_t bytes_used = 0;
  int64_t next_file = 1;  // tape file 0 holds the label
  int64_t next_block = 0;
  int64_t created_ns = 0;
};

struct TargetFile {
  std::string rel_path;  // relative to the target's path
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  std::string md5;           // hex
  int64_t data_offset = -1;  // in the unit's tar stream; -1 until written
  bool bad = false;          // the last confirm found it damaged
};

struct Target {
  int64_t id = 0;
  std::string kind = "import";  // import | batch
  std::string host;             // '' = local
  std::string path;
  TargetState state = TargetState::kImported;
  std::string tape;
  int64_t file_number = -1;
  int64_t start_block = -1;
  uint32_t block_size = 0;
  int64_t files = 0;
  uint64_t bytes = 0;
  uint64_t tar_bytes = 0;
  int64_t imported_ns = 0;
  int64_t archived_ns = 0;
  int64_t confirmed_ns = 0;
  std::string error;
};

// Where a file is: for where_is and for recalls.
struct FileLocation {
  Target target;
  TargetFile file;
};

class TapeCatalog {
 public:
  // Tapes.
  // `first_block`: where the first unit starts (after the label).
  static Status OpenTape(Session& s, std::string_view name, std::string_view serial,
                         uint64_t capacity, int64_t first_block, int64_t now_ns);
  static Result<Tape> GetTape(Session& s, std::string_view name);
  static Result<std::vector<Tape>> Tapes(Session& s);
  static Result<std::optional<Tape>> ActiveTape(Session& s);
  // Makes `name` the active tape (the previous one stops being active).
  static Status ActivateTape(Session& s, std::string_view name, int64_t now_ns);
  // Closes a tape: not active, and its assigned-but-unwritten units go back to
  // `imported` (returns how many).
  static Result<int> CloseTape(Session& s, std::string_view name, int64_t now_ns);
  static Status SetSerial(Session& s, std::string_view name, std::string_view serial);

  // Units. Import fails with kAlreadyExists for a path imported before.
  static Result<int64_t> Import(Session& s, const Target& target,
                                const std::vector<TargetFile>& files, int64_t now_ns);
  static Result<Target> GetTarget(Session& s, int64_t id);
  // Units of `tape` (all tapes if empty), optionally only in `state`, by id.
  static Result<std::vector<Target>> Targets(Session& s, std::string_view tape,
                                             std::optional<TargetState> state);
  static Result<std::vector<TargetFile>> Files(Session& s, int64_t target_id);
  // Assigns every `imported` unit to `tape`; returns how many.
  static Result<int> Assign(Session& s, std::string_view tape);

  // Writing a unit: Begin records where it starts (and marks it `writing`);
  // Finish records every member's offset and moves the tape on; Abandon puts it
  // back to `assigned` (with the tape marked full when `tape_full`).
  static Status BeginWrite(Session& s, int64_t id, int64_t file_number, int64_t start_block,
                           uint32_t block_size);
  static Status FinishWrite(Session& s, int64_t id, const std::vector<int64_t>& offsets,
                            uint64_t tar_bytes, int64_t next_file, int64_t next_block,
                            int64_t now_ns);
  static Status AbandonWrite(Session& s, int64_t id, bool tape_full, std::string_view error);
  // Records a confirm: `bad` lists the damaged files' rel_paths (empty = good,
  // the unit becomes `confirmed`).
  static Status RecordConfirm(Session& s, int64_t id, const std::vector<std::string>& bad,
                              int64_t now_ns);

  // Records a unit read from a tape's manifest (hsmtape rebuild_catalog): it is
  // `archived` on `target.tape` with every member's offset, and the tape's end
  // moves to (next_file, next_block) if that is further.
  static Result<int64_t> RestoreUnit(Session& s, const Target& target,
                                     const std::vector<TargetFile>& files, int64_t next_file,
                                     int64_t next_block, int64_t now_ns);

  // Files whose path (source path + "/" + rel_path) contains `needle`.
  static Result<std::vector<FileLocation>> WhereIs(Session& s, std::string_view needle, int limit);
};

}  // namespace hsmfs::catalog
