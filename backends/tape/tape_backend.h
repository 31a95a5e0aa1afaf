#pragma once

// TapeBackend: the units archived by `hsmtape` (and recorded in the tape
// tables, tape_store.h, which the engine keeps) seen as a read-only tree.
//
//   SRC/rel_path              every archived or confirmed unit's files under
//                             the unit's source path, minus `strip_prefix`
//                             (/mnt/act6/season4/x with strip_prefix "/mnt"
//                             is act6/season4/x)
//   .by-tape/TAPE/fileN/rel   the same files by tape and tape file number
//
// Directories are made from path components. Files are kTape-resident, with
// volume = tape name and position = the member's first logical block, so the
// recall scheduler groups them by tape and reads each tape forwards. Read
// locates the member and reads only its own records (tape_format ReadMember,
// md5 checked).
//
// Drives: a virtual library (vtl:DIR; a tape not in a drive is loaded by the
// library's robot) or Linux st drives (the tape must already be in one of them;
// st drives have no robot). Open drive handles are kept in a pool, one per
// tape, at most one per drive, so consecutive recalls from one tape neither
// reload nor reopen it; a handle idle for `idle_close` is closed so that
// `hsmtape` can use the drive.
//
// The tree is rebuilt from the catalog at most every `refresh`, so units
// archived while the mount runs appear within that time.
//
// Writes (docs/TAPE.md, "Writes through the mount"): Put joins the open batch
// and blocks until its unit is written to the active tape, recorded (a target
// of kind `batch`) and verified by reading it back. A unit is closed at
// `unit_size` bytes or once no Put joined it for `unit_quiet` (on `clock`);
// one writer thread writes units in turn. No active tape (or a full one and no
// other open tape) is kUnavailable, so the engine retries with back-off. A
// full tape mid-unit discards the partial unit and the unit moves to the next
// open tape, which becomes active. Rename, Remove and MakeDir change only the
// catalog (tape data is never rewritten): a member's tree path, a hidden
// member, a recorded directory. .by-tape is read-only. Thread-safe.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/tape/device_spec.h"
#include "backends/tape/tape_store.h"
#include "backends/tape/virtual_library.h"

namespace hsmfs::tape {

struct TapeBackendOptions {
  // One kVirtualLibrary spec, or one or more kStDevice specs.
  std::vector<DeviceSpec> devices;
  // The tape tables (the engine's: BackendContext::tape_store).
  std::shared_ptr<TapeStore> store;
  std::string strip_prefix = "/";
  // Writes: a unit is closed at this size, or when no file joined it for
  // `unit_quiet` (BackendConfig unit_size/unit_quiet).
  uint64_t unit_size = uint64_t{8} << 30;
  Duration unit_quiet = std::chrono::seconds(30);
  Duration idle_close = std::chrono::seconds(2);
  Duration refresh = std::chrono::seconds(1);
  // For the virtual library: cost model and simulated latency.
  VirtualLibrary::Options library_options;
};

class TapeBackend final : public backends::Backend {
 public:
  // Opens the library (not the tape tables: the store is opened on first
  // use, so the mount may create its own catalog file after the backend).
  static Result<std::unique_ptr<TapeBackend>> Create(TapeBackendOptions options, Clock& clock);
  ~TapeBackend() override;
  TapeBackend(const TapeBackend&) = delete;
  TapeBackend& operator=(const TapeBackend&) = delete;

  Result<backends::ObjectInfo> Stat(const backends::ObjectPath& path) override;
  Status List(const backends::ObjectPath& dir, const backends::ListSink& sink,
              const CancelToken& cancel) override;
  Status Stage(const backends::ObjectPath& path, Deadline deadline) override;
  Status Read(const backends::ObjectPath& path, const std::filesystem::path& dest,
              const backends::ReadOptions& options) override;
  Result<backends::ObjectInfo> Put(const std::filesystem::path& src,
                                   const backends::ObjectPath& path,
                                   const backends::PutOptions& options) override;
  Status Remove(const backends::ObjectPath& path) override;
  Status Rename(const backends::ObjectPath& from, const backends::ObjectPath& to) override;
  Status MakeDir(const backends::ObjectPath& path, uint32_t mode) override;

  // The virtual library (nullptr for st drives), for its counters.
  VirtualLibrary* library() const;

  struct Impl;

 private:
  explicit TapeBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsmfs::tape
