#pragma once

// TapeDrive: one tape drive with a tape loaded, seen as a sequence of
// "logical blocks": each record and each file mark occupies one logical block,
// numbered from 0 at the beginning of tape (BOT), exactly as SCSI READ
// POSITION / Linux MTIOCPOS counts them. End of data (EOD) is the position
// just after the last block written.
//
//   BOT | rec rec rec FM | rec rec FM | rec ... | EOD
//   lb:   0   1   2   3    4   5   6    7
//   file:  0 . . . . . .   1 . . . .    2
//
// The on-tape format (label, tar units between file marks, manifests) and the
// tape backend are built on this interface; implementations are StDrive (the
// Linux st driver, /dev/nstN) and VirtualTape (an image file).
//
// Block size: variable by default (each record is as long as the buffer
// given to WriteRecord, up to the drive's limit). In fixed mode
// (block_size > 0 when the drive is opened) every record is exactly
// block_size bytes and other lengths are kInvalidArgument.
//
// Error meanings, common to all implementations:
//   kResourceExhausted  end of tape: nothing of the failed write is on tape
//                       (the physical end, past the early-warning zone;
//                       writes inside the early-warning zone succeed and set
//                       DriveStatus::early_warning).
//   kNotFound           end of data reached while reading, spacing or locating
//                       (the drive is left at EOD), BOT reached spacing back,
//                       or a file mark met while spacing over records (the
//                       head stops on the far side of it, as SCSI SPACE does).
//   kReadOnly           the tape is write-protected.
//   kInvalidArgument    a bad length, count or block size.
//   kDataLoss           a record could not be read back intact.
//   kBusy               the drive or tape is in use by another handle/process.
//   kUnavailable        no tape loaded / drive offline (retry after a load).
//   kInternal           the device misbehaved (e.g. a short write).
//
// Thread-safety: a TapeDrive is NOT thread-safe (a tape has one head); use one
// per thread, or serialise calls. Position is part of the drive's state.

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/status.h"

namespace hsmfs::tape {

// Where the head is. file_number counts file marks passed since BOT;
// block_number counts records since the last file mark (or BOT);
// logical_block counts records and file marks since BOT. A field the drive
// does not know is -1 (st forgets the file number after a Locate).
struct TapePosition {
  int64_t file_number = 0;
  int64_t block_number = 0;
  int64_t logical_block = 0;

  friend bool operator==(const TapePosition&, const TapePosition&) = default;
};

struct DriveStatus {
  bool online = false;         // a tape is loaded and ready
  bool bot = false;            // at beginning of tape
  bool eof = false;            // just past a file mark
  bool eod = false;            // at end of data
  bool early_warning = false;  // in the early-warning zone near end of tape
  bool write_protected = false;
  uint32_t block_size = 0;  // 0 = variable block mode
  TapePosition position;
};

enum class SpaceOp {
  kFileMarksForward,   // past the next `count` file marks (MTFSF): at the start of a file
  kFileMarksBackward,  // back over `count` file marks, stopping on their BOT side (MTBSF)
  kRecordsForward,     // over `count` records; stops past a file mark it meets (MTFSR)
  kRecordsBackward,    // back over `count` records; stops on the BOT side of a file mark (MTBSR)
  kEndOfData,          // to EOD, ready to append (MTEOM); `count` is ignored
};

class TapeDrive {
 public:
  virtual ~TapeDrive() = default;

  // Appends one record at the current position. Everything after the
  // position becomes unreadable (tape never overwrites in place).
  virtual Status WriteRecord(std::span<const std::byte> data) = 0;
  // Reads the next record into `buf` and returns its length; 0 means a file
  // mark was read (the position is then just past it). A record longer than
  // `buf` is kInvalidArgument and is skipped, as the st driver does.
  // At EOD: kNotFound.
  virtual Result<size_t> ReadRecord(std::span<std::byte> buf) = 0;
  // Writes `count` (>= 0) file marks; also flushes buffered records, so what
  // precedes a file mark is durable when this returns.
  virtual Status WriteFileMarks(int count) = 0;
  // Moves the head; see SpaceOp. count >= 1 except for kEndOfData.
  virtual Status Space(SpaceOp op, int count) = 0;
  // Moves to logical block `block` (0 = BOT, the block count = EOD).
  virtual Status Locate(int64_t block) = 0;
  virtual Result<TapePosition> Tell() = 0;
  virtual Status Rewind() = 0;
  virtual Result<DriveStatus> GetStatus() = 0;
};

}  // namespace hsmfs::tape
