#pragma once

// VirtualTape: a TapeDrive whose tape is an image file. It behaves like a
// drive with that tape loaded: records and file marks in sequence, logical
// block addressing, a capacity with an early-warning zone, writes that
// truncate everything after the head, and a cost model that charges what a
// real drive would take (see cost_model.h). This is the emulator the tests,
// benchmarks and the `vtl:DIR` virtual library use; it is not a mock: the
// same image survives processes and crashes.
//
// Image format (little-endian; details in docs/TAPE.md):
//   header  64 bytes: "HSMVTAP1", version, capacity, early-warning size,
//           label (barcode), CRC-32C of the header
//   frames  one per logical block, appended in order:
//           magic ("VTRC" record | "VTFM" file mark), payload length,
//           logical block number, CRC-32C of the payload, CRC-32C of the
//           frame header; then the payload
// The image is self-describing: the block -> offset index is rebuilt on Open
// by walking the frame headers (not the payloads), so a locate followed by a
// read touches only the blocks read.
//
// Capacity counts payload bytes; file marks are free. A write that would end
// past `capacity` fails with kResourceExhausted and writes nothing (the
// physical end of tape). Writes that start in the last `early_warning` bytes
// succeed and set DriveStatus::early_warning.
//
// Crash consistency: a record is written with one pwritev at the end of the
// image. Writing a file mark fdatasyncs the image (a file mark flushes the
// drive buffer), so everything before a file mark survives a power loss;
// after a process crash everything written survives. On Open, a torn tail (a
// last frame that is incomplete or fails its CRC) is cut off. A frame that
// fails its checks with more data after it is damage, not a tail: end of data
// is placed there but the bytes are kept until a write truncates them.
// Reading a record whose payload fails its CRC is kDataLoss (an unrecoverable
// read error on a real drive) unless Options::verify_crc is false, which
// returns the stored bytes so that an end-to-end checksum (confirm's md5)
// must catch the damage.
//
// Like the st driver, closing the handle after a record write (with no file
// mark since) writes one file mark.
//
// Concurrency: an open VirtualTape holds an exclusive flock on its image (a
// cartridge is in one drive at a time); a second Open, from this or another
// process, fails with kBusy. A VirtualTape is not thread-safe.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backends/tape/cost_model.h"
#include "backends/tape/tape_drive.h"

namespace hsmfs::tape {

class VirtualTape final : public TapeDrive {
 public:
  // The largest record accepted (the st driver's usual limit is lower).
  static constexpr uint32_t kMaxRecordBytes = 16u << 20;

  struct Options {
    uint32_t block_size = 0;  // 0 = variable block mode
    bool read_only = false;   // as a write-protected cartridge: writes are kReadOnly
    bool verify_crc = true;   // see the header comment
    // Where costs and counters go; shared by a library's tapes. If null, the
    // tape keeps its own with the default cost model.
    std::shared_ptr<CostMeter> meter;
    // Where the head starts: a library drive keeps its position between
    // handles, as /dev/nstN does between opens. Past EOD means EOD.
    int64_t initial_block = 0;
  };

  // Facts about the image, for tools and the library.
  struct Info {
    std::string label;
    uint64_t capacity = 0;
    uint64_t early_warning = 0;
    int64_t blocks = 0;  // logical blocks (records + file marks) up to EOD
    int64_t file_marks = 0;
    uint64_t used_bytes = 0;      // payload bytes up to EOD
    int64_t head_block = 0;       // the head's logical block
    uint64_t head_bytes = 0;      // payload bytes before the head
    uint64_t torn_bytes_cut = 0;  // cut off by this Open
    bool damaged = false;         // a bad frame with data after it was found
  };

  // Creates a blank image (kAlreadyExists if `path` exists). `label` is the
  // barcode, at most 23 bytes. REQUIRES: early_warning <= capacity.
  static Status Create(const std::filesystem::path& path, const std::string& label,
                       uint64_t capacity, uint64_t early_warning);
  // Opens (loads) an image; the head is at Options::initial_block (BOT).
  static Result<std::unique_ptr<VirtualTape>> Open(const std::filesystem::path& path,
                                                   const Options& options);

  ~VirtualTape() override;
  VirtualTape(const VirtualTape&) = delete;
  VirtualTape& operator=(const VirtualTape&) = delete;

  Status WriteRecord(std::span<const std::byte> data) override;
  Result<size_t> ReadRecord(std::span<std::byte> buf) override;
  Status WriteFileMarks(int count) override;
  Status Space(SpaceOp op, int count) override;
  Status Locate(int64_t block) override;
  Result<TapePosition> Tell() override;
  Status Rewind() override;
  Result<DriveStatus> GetStatus() override;

  // Writes the trailing file mark st writes on close after a record write
  // (once; the destructor calls it too). The handle stays usable.
  Status Close();
  Info info() const;
  // Counters of the meter this tape charges (shared with its library, if any).
  TapeCounters counters() const { return meter_->Snapshot(); }

 private:
  struct Block {
    uint64_t offset;    // of the frame in the image
    uint64_t tape_pos;  // payload bytes before this block: the head's place on tape
    uint32_t len;
    uint32_t crc;
    bool file_mark;
  };

  VirtualTape(std::filesystem::path path, int fd, const Options& options);
  Status Load(bool writable);
  Status AppendFrame(bool file_mark, std::span<const std::byte> data);
  // Drops blocks from `pos_` on, in the index and the image.
  Status TruncateAtHead();
  uint64_t TapePosOf(int64_t block) const;
  // Moves the head to `block`, charging a locate for the distance.
  void MoveTo(int64_t block);
  int64_t FileMarksBefore(int64_t block) const;

  const std::filesystem::path path_;
  const int fd_;
  const Options options_;
  std::shared_ptr<CostMeter> meter_;
  Info info_;
  std::vector<Block> blocks_;
  std::vector<int64_t> file_marks_;  // logical block numbers of the file marks, ascending
  uint64_t end_offset_ = 0;          // image offset of EOD
  int64_t pos_ = 0;                  // the head: the next block to read or write
  bool wrote_since_file_mark_ = false;
};

}  // namespace hsmfs::tape
