#pragma once

// StDrive: a TapeDrive on the Linux SCSI tape driver (st), through a
// non-rewinding node (/dev/nstN; the rewinding /dev/stN would rewind on every
// close and lose the position between processes).
//
// Each operation is one st ioctl (mt(1) names in brackets):
//   WriteRecord       write(2); on ENOSPC, one retry (see below)
//   ReadRecord        read(2); a 0-byte read or EIO is told apart (file mark
//                     vs. EOD vs. media error) by MTIOCGET
//   WriteFileMarks    MTIOCTOP MTWEOF [weof]
//   Space             MTIOCTOP MTFSF/MTBSF/MTFSR/MTBSR/MTEOM [fsf bsf fsr bsr eod]
//   Locate            MTIOCTOP MTSEEK [seek]
//   Tell              MTIOCGET (file, block in file) then MTIOCPOS (logical block)
//   Rewind            MTIOCTOP MTREW [rewind]
//   GetStatus         MTIOCGET then MTIOCPOS
// Open sets the block size with MTIOCTOP MTSETBLK (0 = variable) [setblk].
//
// Early warning: when a write reaches the early-warning mark, st completes it;
// the next write fails with ENOSPC, the one after that may succeed again, and
// so on alternately until the physical end. StDrive retries a write once after
// ENOSPC: if the retry succeeds the drive is in the early-warning zone
// (GetStatus().early_warning, also from GMT_EOT); if it fails too, the tape is
// at its end and WriteRecord returns kResourceExhausted. Callers stop starting
// new units once early_warning is set and keep the zone for finishing one.
//
// Position caveat: after MTSEEK the st driver no longer knows the file
// number; Tell() then reports file_number = block_number = -1 until a rewind
// or a file-mark space. Use logical blocks to address data.
//
// st allows one open at a time: a second open is kBusy. Not thread-safe.

#include <memory>
#include <string>

#include "backends/tape/st_device.h"
#include "backends/tape/tape_drive.h"

namespace hsmfs::tape {

class StDrive final : public TapeDrive {
 public:
  struct Options {
    uint32_t block_size = 0;  // 0 = variable block mode
  };

  // Opens `path` read-write (read-only if the tape is write-protected) and
  // sets the block size. `device` is the system-call seam; tests pass a fake.
  static Result<std::unique_ptr<StDrive>> Open(
      const std::string& path, const Options& options,
      std::unique_ptr<StDevice> device = StDevice::Posix());

  StDrive(const StDrive&) = delete;
  StDrive& operator=(const StDrive&) = delete;

  Status WriteRecord(std::span<const std::byte> data) override;
  Result<size_t> ReadRecord(std::span<std::byte> buf) override;
  Status WriteFileMarks(int count) override;
  Status Space(SpaceOp op, int count) override;
  Status Locate(int64_t block) override;
  Result<TapePosition> Tell() override;
  Status Rewind() override;
  Result<DriveStatus> GetStatus() override;

 private:
  StDrive(std::string path, std::unique_ptr<StDevice> device, uint32_t block_size, bool read_only);

  // One MTIOCTOP; `what` names it in errors.
  Status Op(short op, int count, const char* what);
  // MTIOCGET: the raw status word and positions.
  Status GetRaw(long* gstat, long* dsreg, long* fileno, long* blkno);
  // An error while moving: kNotFound if the drive says it is at EOD or BOT.
  Status MovementError(int err, const char* what);

  const std::string path_;
  std::unique_ptr<StDevice> dev_;
  const uint32_t block_size_;
  const bool read_only_;
  bool early_warning_ = false;  // sticky until the head moves back (rewind, locate, space)
};

}  // namespace hsmfs::tape
