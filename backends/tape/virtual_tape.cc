#include "backends/tape/virtual_tape.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "backends/tape/crc32c.h"

namespace hsmfs::tape {
namespace {

constexpr std::array<unsigned char, 8> kMagic = {'H', 'S', 'M', 'V', 'T', 'A', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kLabelOffset = 32;
constexpr size_t kLabelBytes = 24;  // NUL-padded; at most 23 characters
constexpr size_t kFrameBytes = 24;
constexpr uint32_t kRecordMagic = 0x43525456;    // "VTRC"
constexpr uint32_t kFileMarkMagic = 0x4d465456;  // "VTFM"

void Put32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void Put64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t Get32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t Get64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Frame header: magic u32 | length u32 | block u64 | payload crc u32 | header crc u32.
void EncodeFrame(unsigned char* f, bool file_mark, uint32_t len, uint64_t block, uint32_t crc) {
  Put32(f, file_mark ? kFileMarkMagic : kRecordMagic);
  Put32(f + 4, len);
  Put64(f + 8, block);
  Put32(f + 16, crc);
  Put32(f + 20, Crc32c(0, f, 20));
}

Status PreadFull(int fd, void* buf, size_t len, uint64_t offset, const std::string& what) {
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, what);
    if (n == 0) return DataLossError(what + ": unexpected end of image");
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status VirtualTape::Create(const std::filesystem::path& path, const std::string& label,
                           uint64_t capacity, uint64_t early_warning) {
  if (label.empty() || label.size() >= kLabelBytes || label.find('\0') != std::string::npos) {
    return InvalidArgumentError("tape label '" + label + "' must be 1 to 23 bytes");
  }
  if (early_warning > capacity) {
    return InvalidArgumentError("early-warning zone larger than the capacity");
  }
  std::array<unsigned char, kHeaderBytes> h{};
  std::copy(kMagic.begin(), kMagic.end(), h.begin());
  Put32(&h[8], kVersion);
  Put64(&h[16], capacity);
  Put64(&h[24], early_warning);
  std::copy(label.begin(), label.end(), h.begin() + kLabelOffset);  // NUL-padded by h{}
  Put32(&h[60], Crc32c(0, h.data(), 60));
  // Written under a temporary name and renamed, so that an image either
  // exists complete or not at all.
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "creating tape image " + tmp.string());
  bool ok = ::write(fd, h.data(), h.size()) == static_cast<ssize_t>(h.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return ErrnoToStatus(err, "writing tape image " + tmp.string());
  }
  // link() instead of rename(): fails if the image already exists.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) return AlreadyExistsError("tape image " + path.string() + " exists");
    return ErrnoToStatus(err, "creating tape image " + path.string());
  }
  ::unlink(tmp.c_str());
  return Status::Ok();
}

Result<std::unique_ptr<VirtualTape>> VirtualTape::Open(const std::filesystem::path& path,
                                                       const Options& options) {
  int fd = ::open(path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening tape image " + path.string());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status(Code::kBusy, "tape image " + path.string() + " is in use (loaded elsewhere)");
    }
    return ErrnoToStatus(err, "locking tape image " + path.string());
  }
  std::unique_ptr<VirtualTape> tape(new VirtualTape(path, fd, options));
  HSMFS_RETURN_IF_ERROR(tape->Load(!options.read_only));
  tape->pos_ =
      std::clamp<int64_t>(options.initial_block, 0, static_cast<int64_t>(tape->blocks_.size()));
  return tape;
}

VirtualTape::VirtualTape(std::filesystem::path path, int fd, const Options& options)
    : path_(std::move(path)), fd_(fd), options_(options), meter_(options.meter) {
  if (!meter_) meter_ = std::make_shared<CostMeter>();
}

VirtualTape::~VirtualTape() {
  // A failure here has nobody to tell; callers that care call Close() first.
  Close().IgnoreError();
  ::close(fd_);  // releases the flock
}

Status VirtualTape::Close() {
  if (!wrote_since_file_mark_) return Status::Ok();
  return WriteFileMarks(1);
}

Status VirtualTape::Load(bool writable) {
  const std::string name = path_.string();
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoToStatus(errno, "stat of tape image " + name);
  const auto size = static_cast<uint64_t>(st.st_size);
  std::array<unsigned char, kHeaderBytes> h{};
  if (size < kHeaderBytes) return DataLossError(name + ": not a tape image (too short)");
  HSMFS_RETURN_IF_ERROR(PreadFull(fd_, h.data(), h.size(), 0, "reading " + name));
  if (!std::equal(kMagic.begin(), kMagic.end(), h.begin())) {
    return InvalidArgumentError(name + ": not a tape image (bad magic)");
  }
  if (Get32(&h[60]) != Crc32c(0, h.data(), 60))
    return DataLossError(name + ": tape image header damaged");
  if (Get32(&h[8]) != kVersion) {
    return FailedPreconditionError(name + ": tape image version " + std::to_string(Get32(&h[8])) +
                                   " not supported");
  }
  info_.capacity = Get64(&h[16]);
  info_.early_warning = Get64(&h[24]);
  {
    auto begin = h.begin() + kLabelOffset;
    info_.label.assign(begin, std::find(begin, begin + kLabelBytes, '\0'));
  }

  uint64_t off = kHeaderBytes;
  uint64_t tape_pos = 0;
  bool cut = false;
  while (off < size) {
    std::array<unsigned char, kFrameBytes> f{};
    bool header_ok = size - off >= kFrameBytes;
    if (header_ok) {
      HSMFS_RETURN_IF_ERROR(PreadFull(fd_, f.data(), f.size(), off, "reading " + name));
      uint32_t magic = Get32(f.data());
      header_ok = (magic == kRecordMagic || magic == kFileMarkMagic) &&
                  Get32(&f[20]) == Crc32c(0, f.data(), 20) &&
                  Get64(&f[8]) == static_cast<uint64_t>(blocks_.size()) &&
                  Get32(&f[4]) <= kMaxRecordBytes && (magic == kRecordMagic || Get32(&f[4]) == 0);
    }
    if (!header_ok) {
      // Garbage shorter than a frame header at the end is a torn write;
      // anything longer after it is damage to keep for inspection.
      cut = size - off <= kFrameBytes;
      info_.damaged = !cut;
      break;
    }
    const uint32_t len = Get32(&f[4]);
    const uint64_t end = off + kFrameBytes + len;
    if (end > size) {
      cut = true;
      break;
    }
    if (end == size && len > 0) {
      // The last frame may be torn inside its payload: check it fully.
      std::vector<unsigned char> payload(len);
      HSMFS_RETURN_IF_ERROR(
          PreadFull(fd_, payload.data(), len, off + kFrameBytes, "reading " + name));
      if (Crc32c(0, payload.data(), len) != Get32(&f[16])) {
        cut = true;
        break;
      }
    }
    const bool fm = Get32(f.data()) == kFileMarkMagic;
    if (fm) file_marks_.push_back(static_cast<int64_t>(blocks_.size()));
    blocks_.push_back(Block{off, tape_pos, len, Get32(&f[16]), fm});
    tape_pos += len;
    off = end;
  }
  if (cut) {
    // A torn write may have persisted its length but not all of its payload,
    // also for the frames just before the cut: drop trailing records that
    // fail their CRC.
    std::vector<unsigned char> payload;
    while (!blocks_.empty() && !blocks_.back().file_mark) {
      const Block& b = blocks_.back();
      payload.resize(b.len);
      HSMFS_RETURN_IF_ERROR(
          PreadFull(fd_, payload.data(), b.len, b.offset + kFrameBytes, "reading " + name));
      if (Crc32c(0, payload.data(), b.len) == b.crc) break;
      off = b.offset;
      tape_pos = b.tape_pos;
      blocks_.pop_back();
    }
  }
  end_offset_ = off;
  info_.used_bytes = tape_pos;
  if (cut && writable) {
    if (::ftruncate(fd_, static_cast<off_t>(off)) != 0 || ::fdatasync(fd_) != 0) {
      return ErrnoToStatus(errno, "cutting the torn tail of " + name);
    }
    info_.torn_bytes_cut = size - off;
  }
  return Status::Ok();
}

uint64_t VirtualTape::TapePosOf(int64_t block) const {
  if (block >= static_cast<int64_t>(blocks_.size())) return info_.used_bytes;
  return blocks_[static_cast<size_t>(block)].tape_pos;
}

int64_t VirtualTape::FileMarksBefore(int64_t block) const {
  return std::lower_bound(file_marks_.begin(), file_marks_.end(), block) - file_marks_.begin();
}

void VirtualTape::MoveTo(int64_t block) {
  const uint64_t from = TapePosOf(pos_);
  const uint64_t to = TapePosOf(block);
  meter_->Charge(CostMeter::Op::kLocate, from > to ? from - to : to - from);
  pos_ = block;
}

Status VirtualTape::TruncateAtHead() {
  if (pos_ >= static_cast<int64_t>(blocks_.size())) return Status::Ok();
  const Block& b = blocks_[static_cast<size_t>(pos_)];
  const uint64_t offset = b.offset;
  const uint64_t tape_pos = b.tape_pos;
  if (::ftruncate(fd_, static_cast<off_t>(offset)) != 0) {
    return ErrnoToStatus(errno, "truncating tape image " + path_.string());
  }
  blocks_.resize(static_cast<size_t>(pos_));
  file_marks_.resize(static_cast<size_t>(FileMarksBefore(pos_)));
  end_offset_ = offset;
  info_.used_bytes = tape_pos;
  return Status::Ok();
}

Status VirtualTape::AppendFrame(bool file_mark, std::span<const std::byte> data) {
  HSMFS_RETURN_IF_ERROR(TruncateAtHead());
  const auto len = static_cast<uint32_t>(data.size());
  const uint32_t crc = Crc32c(0, data.data(), data.size());
  std::array<unsigned char, kFrameBytes> f{};
  EncodeFrame(f.data(), file_mark, len, static_cast<uint64_t>(blocks_.size()), crc);
  std::array<struct iovec, 2> iov{};
  iov[0].iov_base = f.data();
  iov[0].iov_len = f.size();
  iov[1].iov_base = const_cast<std::byte*>(data.data());
  iov[1].iov_len = data.size();
  size_t total = f.size() + data.size();
  size_t done = 0;
  int iovcnt = data.empty() ? 1 : 2;
  while (done < total) {
    ssize_t n = ::pwritev(fd_, iov.data(), iovcnt, static_cast<off_t>(end_offset_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      // Leave no partial frame behind: EOD stays where it was.
      if (::ftruncate(fd_, static_cast<off_t>(end_offset_)) != 0) {
        return ErrnoToStatus(errno, "undoing a failed write to " + path_.string());
      }
      return ErrnoToStatus(err, "writing tape image " + path_.string());
    }
    done += static_cast<size_t>(n);
    // Rare short write: advance the iovecs past what is written.
    auto skip = static_cast<size_t>(n);
    int first = 0;
    while (skip > 0 && first < iovcnt) {
      size_t take = std::min(skip, iov[static_cast<size_t>(first)].iov_len);
      iov[static_cast<size_t>(first)].iov_base =
          static_cast<char*>(iov[static_cast<size_t>(first)].iov_base) + take;
      iov[static_cast<size_t>(first)].iov_len -= take;
      skip -= take;
      if (iov[static_cast<size_t>(first)].iov_len == 0) ++first;
    }
    if (first > 0 && first < iovcnt) {
      iov[0] = iov[static_cast<size_t>(first)];
      iovcnt -= first;
    }
  }
  if (file_mark) file_marks_.push_back(static_cast<int64_t>(blocks_.size()));
  blocks_.push_back(Block{end_offset_, info_.used_bytes, len, crc, file_mark});
  end_offset_ += total;
  info_.used_bytes += len;
  pos_ = static_cast<int64_t>(blocks_.size());
  return Status::Ok();
}

Status VirtualTape::WriteRecord(std::span<const std::byte> data) {
  const std::string name = path_.string();
  if (options_.read_only) return ReadOnlyError(name + ": tape is write-protected");
  if (data.empty()) return InvalidArgumentError(name + ": empty record");
  if (data.size() > kMaxRecordBytes) {
    return InvalidArgumentError(name + ": record of " + std::to_string(data.size()) +
                                " bytes exceeds the maximum of " + std::to_string(kMaxRecordBytes));
  }
  if (options_.block_size != 0 && data.size() != options_.block_size) {
    return InvalidArgumentError(name + ": record of " + std::to_string(data.size()) +
                                " bytes in fixed block mode of " +
                                std::to_string(options_.block_size));
  }
  if (TapePosOf(pos_) + data.size() > info_.capacity) {
    return ResourceExhaustedError(name + ": end of tape (capacity " +
                                  std::to_string(info_.capacity) + " bytes)");
  }
  HSMFS_RETURN_IF_ERROR(AppendFrame(false, data));
  meter_->Charge(CostMeter::Op::kWrite, data.size());
  wrote_since_file_mark_ = true;
  return Status::Ok();
}

Result<size_t> VirtualTape::ReadRecord(std::span<std::byte> buf) {
  const std::string name = path_.string();
  if (pos_ >= static_cast<int64_t>(blocks_.size())) {
    return NotFoundError(name + ": reading a record: end of data");
  }
  const Block b = blocks_[static_cast<size_t>(pos_)];
  ++pos_;
  if (b.file_mark) return size_t{0};
  if (b.len > buf.size()) {
    return InvalidArgumentError(name + ": record of " + std::to_string(b.len) +
                                " bytes longer than the buffer of " + std::to_string(buf.size()));
  }
  if (options_.block_size != 0 && b.len != options_.block_size) {
    return InvalidArgumentError(name + ": record of " + std::to_string(b.len) +
                                " bytes in fixed block mode of " +
                                std::to_string(options_.block_size));
  }
  HSMFS_RETURN_IF_ERROR(
      PreadFull(fd_, buf.data(), b.len, b.offset + kFrameBytes, "reading " + name));
  meter_->Charge(CostMeter::Op::kRead, b.len);
  if (options_.verify_crc && Crc32c(0, buf.data(), b.len) != b.crc) {
    return DataLossError(name + ": record at logical block " + std::to_string(pos_ - 1) +
                         " fails its CRC");
  }
  return size_t{b.len};
}

Status VirtualTape::WriteFileMarks(int count) {
  const std::string name = path_.string();
  if (count < 0) return InvalidArgumentError(name + ": negative file mark count");
  if (options_.read_only) return ReadOnlyError(name + ": tape is write-protected");
  for (int i = 0; i < count; ++i) HSMFS_RETURN_IF_ERROR(AppendFrame(true, {}));
  if (::fdatasync(fd_) != 0) return ErrnoToStatus(errno, "syncing tape image " + name);
  meter_->Charge(CostMeter::Op::kFileMarks, static_cast<uint64_t>(count));
  wrote_since_file_mark_ = false;
  return Status::Ok();
}

Status VirtualTape::Space(SpaceOp op, int count) {
  const std::string name = path_.string();
  if (op != SpaceOp::kEndOfData && count < 1) {
    return InvalidArgumentError(name + ": space count must be >= 1");
  }
  const auto size = static_cast<int64_t>(blocks_.size());
  switch (op) {
    case SpaceOp::kEndOfData:
      MoveTo(size);
      return Status::Ok();
    case SpaceOp::kFileMarksForward: {
      auto k = FileMarksBefore(pos_) + count - 1;
      if (k >= static_cast<int64_t>(file_marks_.size())) {
        MoveTo(size);
        return NotFoundError(name + ": spacing forward over file marks: end of data");
      }
      MoveTo(file_marks_[static_cast<size_t>(k)] + 1);
      return Status::Ok();
    }
    case SpaceOp::kFileMarksBackward: {
      auto k = FileMarksBefore(pos_) - count;
      if (k < 0) {
        MoveTo(0);
        return NotFoundError(name + ": spacing backward over file marks: beginning of tape");
      }
      MoveTo(file_marks_[static_cast<size_t>(k)]);
      return Status::Ok();
    }
    case SpaceOp::kRecordsForward: {
      int64_t p = pos_;
      for (int i = 0; i < count; ++i) {
        if (p >= size) {
          MoveTo(p);
          return NotFoundError(name + ": spacing forward over records: end of data");
        }
        if (blocks_[static_cast<size_t>(p++)].file_mark) {
          MoveTo(p);
          return NotFoundError(name + ": spacing forward over records: file mark");
        }
      }
      MoveTo(p);
      return Status::Ok();
    }
    case SpaceOp::kRecordsBackward: {
      int64_t p = pos_;
      for (int i = 0; i < count; ++i) {
        if (p == 0) {
          MoveTo(p);
          return NotFoundError(name + ": spacing backward over records: beginning of tape");
        }
        if (blocks_[static_cast<size_t>(--p)].file_mark) {
          MoveTo(p);
          return NotFoundError(name + ": spacing backward over records: file mark");
        }
      }
      MoveTo(p);
      return Status::Ok();
    }
  }
  return InvalidArgumentError(name + ": unknown space operation");
}

Status VirtualTape::Locate(int64_t block) {
  const std::string name = path_.string();
  if (block < 0) return InvalidArgumentError(name + ": negative logical block");
  const auto size = static_cast<int64_t>(blocks_.size());
  if (block > size) {
    MoveTo(size);
    return NotFoundError(name + ": locating block " + std::to_string(block) +
                         ": end of data at block " + std::to_string(size));
  }
  MoveTo(block);
  return Status::Ok();
}

Result<TapePosition> VirtualTape::Tell() {
  TapePosition p;
  p.logical_block = pos_;
  p.file_number = FileMarksBefore(pos_);
  p.block_number =
      p.file_number == 0 ? pos_ : pos_ - file_marks_[static_cast<size_t>(p.file_number - 1)] - 1;
  return p;
}

Status VirtualTape::Rewind() {
  meter_->Charge(CostMeter::Op::kRewind, TapePosOf(pos_));
  pos_ = 0;
  return Status::Ok();
}

Result<DriveStatus> VirtualTape::GetStatus() {
  DriveStatus s;
  s.online = true;
  s.bot = pos_ == 0;
  s.eof = pos_ > 0 && blocks_[static_cast<size_t>(pos_ - 1)].file_mark;
  s.eod = pos_ == static_cast<int64_t>(blocks_.size());
  s.early_warning = TapePosOf(pos_) >= info_.capacity - info_.early_warning;
  s.write_protected = options_.read_only;
  s.block_size = options_.block_size;
  HSMFS_ASSIGN_OR_RETURN(s.position, Tell());
  return s;
}

VirtualTape::Info VirtualTape::info() const {
  Info i = info_;
  i.blocks = static_cast<int64_t>(blocks_.size());
  i.file_marks = static_cast<int64_t>(file_marks_.size());
  i.head_block = pos_;
  i.head_bytes = TapePosOf(pos_);
  return i;
}

}  // namespace hsmfs::tape
