#pragma once

// TapeStore: where the tape backend keeps its tables (tape_types.h). The
// engine gives a tape backend its store (BackendContext::tape_store); the
// backend never opens a database itself. The one implementation today keeps
// the tables in an hsmfs catalog file (catalog/tape_catalog.h
// OpenTapeStore), so that hsmtape and the mount share them.
//
// TapeTables is one session on the store, used by one thread at a time; its
// calls are those of catalog::TapeCatalog (see there for each one's meaning)
// and run in the session's transaction while one is open. A transaction not
// committed when it is destroyed is rolled back. Errors: kUnavailable while
// the store cannot be reached (the tables' file does not exist yet), else as
// TapeCatalog returns them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/tape/tape_types.h"
#include "common/result.h"

namespace hsmfs::tape {

class TapeTransaction {
 public:
  virtual ~TapeTransaction() = default;
  virtual Status Commit() = 0;
};

// What the tape tree is built from.
class TapeReads {
 public:
  virtual ~TapeReads() = default;
  virtual Result<std::vector<Tape>> Tapes() = 0;
  virtual Result<Tape> GetTape(std::string_view name) = 0;
  virtual Result<std::optional<Tape>> ActiveTape() = 0;
  virtual Result<std::vector<Target>> Targets(std::string_view tape,
                                              std::optional<TargetState> state) = 0;
  virtual Result<std::vector<TargetFile>> Files(int64_t target_id) = 0;
  virtual Result<std::vector<TapeDir>> Dirs() = 0;
};

// Writes through the mount: batches written as units.
class TapeBatchWrites {
 public:
  virtual ~TapeBatchWrites() = default;
  virtual Status ActivateTape(std::string_view name, int64_t now_ns) = 0;
  virtual Result<int64_t> BeginBatch(const Target& target, const std::vector<TargetFile>& files,
                                     int64_t now_ns) = 0;
  virtual Status DropBatch(int64_t id) = 0;
  virtual Result<int> DropUnfinishedBatches(std::string_view tape) = 0;
  virtual Status MarkFull(std::string_view tape) = 0;
  virtual Status FinishWrite(int64_t id, const std::vector<int64_t>& offsets, uint64_t tar_bytes,
                             int64_t next_file, int64_t next_block, int64_t now_ns,
                             const std::vector<std::string>& md5) = 0;
  virtual Status RecordConfirm(int64_t id, const std::vector<std::string>& bad, int64_t now_ns) = 0;
};

// The mount's changes to the tree (tape data is never rewritten).
class TapeTreeEdits {
 public:
  virtual ~TapeTreeEdits() = default;
  virtual Status SetTreePath(int64_t file_id, std::string_view tree_path) = 0;
  virtual Status HideFile(int64_t file_id, int64_t now_ns) = 0;
  virtual Status AddDir(const TapeDir& dir) = 0;
  virtual Status RemoveDir(std::string_view path) = 0;
  virtual Status RenameDirs(std::string_view from, std::string_view to) = 0;
};

// One session: the three facets, in one transaction between Begin and Commit.
class TapeTables : public TapeReads, public TapeBatchWrites, public TapeTreeEdits {
 public:
  virtual Result<std::unique_ptr<TapeTransaction>> Begin() = 0;
};

// Thread-safe.
class TapeStore {
 public:
  virtual ~TapeStore() = default;
  virtual Result<std::unique_ptr<TapeTables>> Open() = 0;
};

}  // namespace hsmfs::tape
