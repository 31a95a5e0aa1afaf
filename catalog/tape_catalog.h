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
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/tape/tape_store.h"
#include "backends/tape/tape_types.h"
#include "catalog/catalog.h"

namespace hsmfs::catalog {

// The records are the tape backend's (backends/tape/tape_types.h); the
// names stay here too for the catalog's users.
using tape::FileLocation;
using tape::Tape;
using tape::TapeDir;
using tape::Target;
using tape::TargetFile;
using tape::TargetState;

std::string_view TargetStateName(TargetState state);

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
  // `imported` (returns how many); batches left `writing` on it are dropped.
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
  // Assigns every `imported` unit (not batches) to `tape`; returns how many.
  static Result<int> Assign(Session& s, std::string_view tape);

  // Writing a unit: Begin records where it starts (and marks it `writing`);
  // Finish records every member's offset and moves the tape on; Abandon puts it
  // back to `assigned` (with the tape marked full when `tape_full`).
  static Status BeginWrite(Session& s, int64_t id, int64_t file_number, int64_t start_block,
                           uint32_t block_size);
  // `md5` (when not empty) replaces the members' md5 with what was written.
  static Status FinishWrite(Session& s, int64_t id, const std::vector<int64_t>& offsets,
                            uint64_t tar_bytes, int64_t next_file, int64_t next_block,
                            int64_t now_ns, const std::vector<std::string>& md5 = {});
  static Status AbandonWrite(Session& s, int64_t id, bool tape_full, std::string_view error);
  // Records a confirm: `bad` lists the damaged files' rel_paths (empty = good,
  // the unit becomes `confirmed`).
  static Status RecordConfirm(Session& s, int64_t id, const std::vector<std::string>& bad,
                              int64_t now_ns);

  // Batches (files written through the mount, TapeBackend). BeginBatch records
  // `target` (kind batch, its tape, file number, start block and block size set)
  // and its files, `writing`; it then ends with FinishWrite, or DropBatch when
  // the write failed (nothing of it counts: the tape's end did not move).
  static Result<int64_t> BeginBatch(Session& s, const Target& target,
                                    const std::vector<TargetFile>& files, int64_t now_ns);
  static Status DropBatch(Session& s, int64_t id);
  // Drops the batches left `writing` on `tape` by a crash; call it only while
  // holding the tape's drive (so no one is writing them). Returns how many.
  static Result<int> DropUnfinishedBatches(Session& s, std::string_view tape);
  static Status MarkFull(Session& s, std::string_view tape);

  // The mount's changes to the tree (schema 6), by TargetFile::id.
  static Status SetTreePath(Session& s, int64_t file_id, std::string_view tree_path);
  static Status HideFile(Session& s, int64_t file_id, int64_t now_ns);
  static Result<std::vector<TapeDir>> Dirs(Session& s);
  // kAlreadyExists if `path` is recorded already.
  static Status AddDir(Session& s, const TapeDir& dir);
  // Removes `path` (kNotFound if it is not recorded).
  static Status RemoveDir(Session& s, std::string_view path);
  // Moves `from` and every recorded directory below it under `to`.
  static Status RenameDirs(Session& s, std::string_view from, std::string_view to);

  // Records a unit read from a tape's manifest (hsmtape rebuild_catalog): it is
  // `archived` on `target.tape` with every member's offset, and the tape's end
  // moves to (next_file, next_block) if that is further.
  static Result<int64_t> RestoreUnit(Session& s, const Target& target,
                                     const std::vector<TargetFile>& files, int64_t next_file,
                                     int64_t next_block, int64_t now_ns);

  // Files whose path (source path + "/" + rel_path) contains `needle`.
  static Result<std::vector<FileLocation>> WhereIs(Session& s, std::string_view needle, int limit);
};

// The tape tables in the catalog file `file`, as a tape backend's store
// (backends/tape/tape_store.h): the engine gives one to each tape backend.
// The file is opened on first use (kUnavailable until it exists).
std::shared_ptr<tape::TapeStore> OpenTapeStore(const std::filesystem::path& file);

}  // namespace hsmfs::catalog
