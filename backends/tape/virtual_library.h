#pragma once

// VirtualLibrary: a tape library kept in a directory DIR (`vtl:DIR`): N slots
// holding virtual tapes named by their label (barcode), M drives, and a robot
// that loads and unloads them at the cost model's prices.
//
// DIR layout:
//   library.json     the state: slots, drives (which tape is in which),
//                    tape capacity, persisted counters. Replaced atomically
//                    (write temp + fsync + rename), so a crash leaves the old
//                    or the new state, never a torn one.
//   library.lock     flock'ed around every read-modify-write of the state.
//   drive-N.lock     flock'ed while drive N is open or being (un)loaded.
//   tapes/LABEL.vtape  the tape images (VirtualTape format).
//
// A tape keeps its home slot while it is in a drive (slots are never given
// away), as in most real libraries. Loading puts a tape into an empty drive;
// the tape stays there (across processes) until unloaded. OpenDrive gives a
// handle on the tape in a drive; while a handle is open, the drive is busy for
// everybody else (kBusy), as /dev/nstN allows one open at a time.
//
// Counters: the costs of this process's operations go to one CostMeter
// (counters()); they are also added to the totals in library.json when a
// drive handle closes and at each load/unload, so tests and benchmarks in
// other processes can read what the mount did (PersistedCounters()).
//
// Errors: kNotFound (no such tape or library), kAlreadyExists (label taken,
// library exists), kResourceExhausted (no free slot), kFailedPrecondition
// (drive full or empty, tape in another drive), kBusy (drive in use),
// kInvalidArgument (bad label or index).
//
// Thread-safe, and safe across processes. REQUIRES: the VirtualLibrary
// outlives the drive handles it returns.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/tape/cost_model.h"
#include "backends/tape/virtual_tape.h"

namespace hsmfs::tape {

class VirtualLibrary;

// A drive of the library with its tape, open for I/O. Holds the drive lock.
class LibraryDrive final : public TapeDrive {
 public:
  ~LibraryDrive() override;
  LibraryDrive(const LibraryDrive&) = delete;
  LibraryDrive& operator=(const LibraryDrive&) = delete;

  Status WriteRecord(std::span<const std::byte> data) override { return tape_->WriteRecord(data); }
  Result<size_t> ReadRecord(std::span<std::byte> buf) override { return tape_->ReadRecord(buf); }
  Status WriteFileMarks(int count) override { return tape_->WriteFileMarks(count); }
  Status Space(SpaceOp op, int count) override { return tape_->Space(op, count); }
  Status Locate(int64_t block) override { return tape_->Locate(block); }
  Result<TapePosition> Tell() override { return tape_->Tell(); }
  Status Rewind() override { return tape_->Rewind(); }
  Result<DriveStatus> GetStatus() override { return tape_->GetStatus(); }

  int drive_index() const { return drive_; }
  const std::string& label() const { return label_; }
  VirtualTape& tape() { return *tape_; }

 private:
  friend class VirtualLibrary;
  LibraryDrive(VirtualLibrary* library, int drive, std::string label, int lock_fd,
               std::unique_ptr<VirtualTape> tape);

  VirtualLibrary* const library_;
  const int drive_;
  const std::string label_;
  const int lock_fd_;
  std::unique_ptr<VirtualTape> tape_;
};

class VirtualLibrary {
 public:
  struct Options {
    CostModel cost;
    bool verify_crc = true;        // passed to every VirtualTape
    Clock* sleep_clock = nullptr;  // see CostMeter
    double time_scale = 0;
  };

  struct Inventory {
    uint64_t capacity = 0;  // of each new tape
    uint64_t early_warning = 0;
    std::vector<std::string> slots;   // label, "" for an empty slot
    std::vector<std::string> drives;  // label of the loaded tape, "" when empty
  };

  // Creates a library in `dir` (created if missing; kAlreadyExists if it
  // already holds one). `early_warning` 0 means 1% of capacity.
  static Status Create(const std::filesystem::path& dir, int slots, int drives, uint64_t capacity,
                       uint64_t early_warning = 0);
  static Result<std::unique_ptr<VirtualLibrary>> Open(const std::filesystem::path& dir,
                                                      const Options& options);
  // Open() with default options.
  static Result<std::unique_ptr<VirtualLibrary>> Open(const std::filesystem::path& dir);
  // The number of drives of the library in `dir`, 0 when it cannot be read
  // (a config may name a library created later). Never blocks on a FIFO.
  static int DriveCount(const std::filesystem::path& dir);

  VirtualLibrary(const VirtualLibrary&) = delete;
  VirtualLibrary& operator=(const VirtualLibrary&) = delete;

  // Puts a blank tape labelled `label` ([A-Za-z0-9_-], 1..23 characters) in
  // the first free slot.
  Status AddTape(const std::string& label);
  Result<Inventory> GetInventory() const;
  // Moves tape `label` from its slot into empty drive `drive` (a load's cost).
  // Loading a tape into the drive that already holds it does nothing.
  Status Load(const std::string& label, int drive);
  // Returns the tape in `drive` to its slot (a rewind's and an unload's cost).
  Status Unload(int drive);
  // A handle on the tape loaded in `drive`; the head is at BOT.
  Result<std::unique_ptr<LibraryDrive>> OpenDrive(int drive);
  // A handle on tape `label`: opens the drive holding it, or loads it into an
  // empty drive, or else unloads an idle drive first.
  Result<std::unique_ptr<LibraryDrive>> MountTape(const std::string& label);
  // This process's counters and simulated time.
  TapeCounters counters() const { return meter_->Snapshot(); }
  // Totals of every process, as persisted in library.json, plus this
  // process's not yet persisted part.
  Result<TapeCounters> PersistedCounters() const;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path ImagePath(const std::string& label) const;

 private:
  friend class LibraryDrive;
  struct State;

  VirtualLibrary(std::filesystem::path dir, const Options& options);
  // Adds this process's new counters to `state` (caller holds the state lock).
  void FoldCounters(State& state) const;
  static Result<State> ReadState(const std::filesystem::path& dir);
  static Status WriteState(const std::filesystem::path& dir, const State& state);
  Status LoadLocked(State& state, const std::string& label, int drive);
  Status UnloadLocked(State& state, int drive);
  // OpenDrive with the library lock held by the caller.
  Result<std::unique_ptr<LibraryDrive>> OpenDriveLocked(const State& state, int drive);

  const std::filesystem::path dir_;
  const Options options_;
  std::shared_ptr<CostMeter> meter_;
  mutable std::mutex mu_;
  mutable TapeCounters persisted_;  // GUARDED_BY(mu_): the part of meter_ already in library.json
};

}  // namespace hsmfs::tape
