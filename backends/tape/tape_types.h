#pragma once

// The tape backend's own records: tapes, the units archived on them
// ("targets", as tapeop calls the imported source directories) and the files
// of each unit. They belong to the tape backend and hsmtape; the engine keeps
// them for it (catalog/tape_catalog.h stores them in the hsmfs catalog, so
// that hsmtape and the mount share one database). Plain data.
//
// A unit moves imported -> assigned -> writing -> archived -> confirmed.

#include <cstdint>
#include <string>

namespace hsmfs::tape {

enum class TargetState { kImported, kAssigned, kWriting, kArchived, kConfirmed };
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
  int64_t id = 0;        // row id (set when read from the catalog)
  std::string rel_path;  // relative to the target's path
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  std::string md5;           // hex
  int64_t data_offset = -1;  // in the unit's tar stream; -1 until written
  bool bad = false;          // the last confirm found it damaged
  // Changed through the mount (schema 6; tape data stays as written):
  std::string tree_path;  // renamed: its path in the backend's tree ("" = not renamed)
  bool removed = false;   // removed: hidden from the tree, still on tape
  // Not empty: a symlink member (schema 10), a tar symlink entry with no data
  // (size 0, md5 of nothing); shown in the tree as a symlink to this target.
  std::string link_target;
};

// A directory made through the mount (path in the backend's tree).
struct TapeDir {
  std::string path;
  uint32_t mode = 0755;
  int64_t mtime_ns = 0;
};

struct Target {
  int64_t id = 0;
  std::string kind = "import";  // import | batch
  // '' = local, else the ssh target. A batch (files written through the
  // mount) has "batch:TAPE:FILE" here: it is never read from a source, and
  // this keeps (host, path) unique while its path names the files' common dir.
  std::string host;
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

}  // namespace hsmfs::tape
