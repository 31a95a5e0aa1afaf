#include "backends/tape/st_drive.h"

#include <fcntl.h>
#include <sys/mtio.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hsmfs::tape {
namespace {

// EIO from the st driver is a medium or hardware error unless the status
// says otherwise (EOD, BOT), which the callers check first.
Status StError(int err, const std::string& what) {
  switch (err) {
    case ENOSPC:
      return ResourceExhaustedError(what + ": end of tape");
    case EROFS:
    case EACCES:
      return ReadOnlyError(what + ": tape is write-protected");
    case EBUSY:
      return {Code::kBusy, what + ": device in use"};
    case ENOMEDIUM:
      return UnavailableError(what + ": no tape loaded");
    case ENOMEM:
      return InvalidArgumentError(what + ": record longer than the buffer");
    case EIO:
      return DataLossError(what + ": input/output error on the tape");
    default:
      return ErrnoToStatus(err, what);
  }
}

}  // namespace

Result<std::unique_ptr<StDrive>> StDrive::Open(const std::string& path, const Options& options,
                                               std::unique_ptr<StDevice> device) {
  bool read_only = false;
  int r = device->Open(path, O_RDWR);
  if (r == -EROFS || r == -EACCES) {
    // st refuses O_RDWR on a write-protected cartridge; reading still works.
    read_only = true;
    r = device->Open(path, O_RDONLY);
  }
  if (r < 0) return StError(-r, "opening tape device " + path);
  std::unique_ptr<StDrive> drive(
      new StDrive(path, std::move(device), options.block_size, read_only));
  HSMFS_RETURN_IF_ERROR(
      drive->Op(MTSETBLK, static_cast<int>(options.block_size), "setting the block size"));
  return drive;
}

StDrive::StDrive(std::string path, std::unique_ptr<StDevice> device, uint32_t block_size,
                 bool read_only)
    : path_(std::move(path)),
      dev_(std::move(device)),
      block_size_(block_size),
      read_only_(read_only) {}

Status StDrive::Op(short op, int count, const char* what) {
  struct mtop mt = {};
  mt.mt_op = op;
  mt.mt_count = count;
  int r = dev_->Ioctl(MTIOCTOP, &mt);
  if (r < 0) return StError(-r, path_ + ": " + what);
  return Status::Ok();
}

Status StDrive::GetRaw(long* gstat, long* dsreg, long* fileno, long* blkno) {
  struct mtget mg = {};
  int r = dev_->Ioctl(MTIOCGET, &mg);
  if (r < 0) return StError(-r, path_ + ": reading drive status");
  *gstat = mg.mt_gstat;
  *dsreg = mg.mt_dsreg;
  *fileno = mg.mt_fileno;
  *blkno = mg.mt_blkno;
  return Status::Ok();
}

Status StDrive::MovementError(int err, const char* what) {
  if (err == EIO) {
    long gstat = 0, dsreg = 0, fileno = 0, blkno = 0;
    if (GetRaw(&gstat, &dsreg, &fileno, &blkno).ok()) {
      if (GMT_EOD(gstat)) return NotFoundError(path_ + ": " + what + ": end of data");
      if (GMT_BOT(gstat)) return NotFoundError(path_ + ": " + what + ": beginning of tape");
      if (GMT_EOF(gstat)) return NotFoundError(path_ + ": " + what + ": file mark");
    }
  }
  return StError(err, path_ + ": " + what);
}

Status StDrive::WriteRecord(std::span<const std::byte> data) {
  if (read_only_) return ReadOnlyError(path_ + ": tape is write-protected");
  if (data.empty()) return InvalidArgumentError(path_ + ": empty record");
  if (block_size_ != 0 && data.size() != block_size_) {
    return InvalidArgumentError(path_ + ": record of " + std::to_string(data.size()) +
                                " bytes in fixed block mode of " + std::to_string(block_size_));
  }
  ssize_t n = dev_->Write(data.data(), data.size());
  if (n == -ENOSPC) {
    // st's early-warning protocol: the write after the warning fails once,
    // the next is allowed; a second ENOSPC in a row is the physical end.
    early_warning_ = true;
    n = dev_->Write(data.data(), data.size());
  }
  if (n < 0) return StError(static_cast<int>(-n), path_ + ": writing a record");
  if (static_cast<size_t>(n) != data.size()) {
    return InternalError(path_ + ": short write of " + std::to_string(n) + " of " +
                         std::to_string(data.size()) + " bytes");
  }
  return Status::Ok();
}

Result<size_t> StDrive::ReadRecord(std::span<std::byte> buf) {
  size_t want = buf.size();
  if (block_size_ != 0) {
    if (buf.size() < block_size_) {
      return InvalidArgumentError(path_ + ": buffer smaller than the block size");
    }
    want = block_size_;
  }
  ssize_t n = dev_->Read(buf.data(), want);
  if (n > 0) return static_cast<size_t>(n);
  if (n == 0) {
    // A 0-byte read is a file mark, or (the first read at) end of data.
    long gstat = 0, dsreg = 0, fileno = 0, blkno = 0;
    HSMFS_RETURN_IF_ERROR(GetRaw(&gstat, &dsreg, &fileno, &blkno));
    if (GMT_EOD(gstat)) return NotFoundError(path_ + ": reading a record: end of data");
    return size_t{0};
  }
  return MovementError(static_cast<int>(-n), "reading a record");
}

Status StDrive::WriteFileMarks(int count) {
  if (count < 0) return InvalidArgumentError(path_ + ": negative file mark count");
  if (read_only_) return ReadOnlyError(path_ + ": tape is write-protected");
  return Op(MTWEOF, count, "writing file marks");
}

Status StDrive::Space(SpaceOp op, int count) {
  if (op != SpaceOp::kEndOfData && count < 1) {
    return InvalidArgumentError(path_ + ": space count must be >= 1");
  }
  short mt_op = MTEOM;
  const char* what = "spacing to end of data";
  switch (op) {
    case SpaceOp::kFileMarksForward:
      mt_op = MTFSF;
      what = "spacing forward over file marks";
      break;
    case SpaceOp::kFileMarksBackward:
      mt_op = MTBSF;
      what = "spacing backward over file marks";
      break;
    case SpaceOp::kRecordsForward:
      mt_op = MTFSR;
      what = "spacing forward over records";
      break;
    case SpaceOp::kRecordsBackward:
      mt_op = MTBSR;
      what = "spacing backward over records";
      break;
    case SpaceOp::kEndOfData:
      count = 1;
      break;
  }
  early_warning_ = false;
  struct mtop mt = {};
  mt.mt_op = mt_op;
  mt.mt_count = count;
  int r = dev_->Ioctl(MTIOCTOP, &mt);
  if (r < 0) return MovementError(-r, what);
  return Status::Ok();
}

Status StDrive::Locate(int64_t block) {
  if (block < 0 || block > INT32_MAX) {
    return InvalidArgumentError(path_ + ": block " + std::to_string(block) + " out of range");
  }
  early_warning_ = false;
  struct mtop mt = {};
  mt.mt_op = MTSEEK;
  mt.mt_count = static_cast<int>(block);
  int r = dev_->Ioctl(MTIOCTOP, &mt);
  if (r < 0) return MovementError(-r, "locating");
  return Status::Ok();
}

Result<TapePosition> StDrive::Tell() {
  long gstat = 0, dsreg = 0, fileno = 0, blkno = 0;
  HSMFS_RETURN_IF_ERROR(GetRaw(&gstat, &dsreg, &fileno, &blkno));
  TapePosition pos;
  pos.file_number = fileno;
  pos.block_number = blkno;
  struct mtpos mp = {};
  int r = dev_->Ioctl(MTIOCPOS, &mp);
  if (r < 0) return StError(-r, path_ + ": reading the logical block position");
  pos.logical_block = mp.mt_blkno;
  return pos;
}

Status StDrive::Rewind() {
  early_warning_ = false;
  return Op(MTREW, 1, "rewinding");
}

Result<DriveStatus> StDrive::GetStatus() {
  long gstat = 0, dsreg = 0, fileno = 0, blkno = 0;
  HSMFS_RETURN_IF_ERROR(GetRaw(&gstat, &dsreg, &fileno, &blkno));
  DriveStatus s;
  s.online = GMT_ONLINE(gstat) != 0;
  s.bot = GMT_BOT(gstat) != 0;
  s.eof = GMT_EOF(gstat) != 0;
  s.eod = GMT_EOD(gstat) != 0;
  s.early_warning = GMT_EOT(gstat) != 0 || early_warning_;
  s.write_protected = GMT_WR_PROT(gstat) != 0 || read_only_;
  s.block_size = static_cast<uint32_t>((dsreg & MT_ST_BLKSIZE_MASK) >> MT_ST_BLKSIZE_SHIFT);
  s.position.file_number = fileno;
  s.position.block_number = blkno;
  if (!s.online) {
    s.position.logical_block = -1;
    return s;
  }
  struct mtpos mp = {};
  int r = dev_->Ioctl(MTIOCPOS, &mp);
  // Some drives cannot report a logical position; status is still useful.
  s.position.logical_block = r < 0 ? -1 : mp.mt_blkno;
  return s;
}

}  // namespace hsmfs::tape
