#include "fuse/errno_map.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>

#include "common/logging.h"

namespace hsmfs::fs {

// Built with -Werror=switch and no default: a new Code does not compile until
// it is given an errno here.
int ToErrno(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
      return ENOENT;
    case Code::kAlreadyExists:
      return EEXIST;
    case Code::kPermissionDenied:
      return EACCES;
    case Code::kNotPermitted:
      return EPERM;
    case Code::kReadOnly:
      return EROFS;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kNotResident:
      // Only produced for O_NONBLOCK opens of offline files: "try again later"
      // is exactly what the caller asked to be told instead of waiting.
      return EAGAIN;
    case Code::kUnavailable:
      // The backend or catalog is down after our retries; applications treat
      // EIO as "this read failed", which is what happened.
      return EIO;
    case Code::kDeadlineExceeded:
      return ETIMEDOUT;
    case Code::kResourceExhausted:
      return ENOSPC;
    case Code::kFailedPrecondition:
      return EIO;
    case Code::kAborted:
      return EIO;
    case Code::kCancelled:
      return EINTR;
    case Code::kDataLoss:
      return EIO;
    case Code::kUnimplemented:
      // ENOTSUP rather than ENOSYS: ENOSYS from a FUSE op makes the kernel stop
      // calling that op for the rest of the mount.
      return ENOTSUP;
    case Code::kInternal:
      return EIO;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kIsDirectory:
      return EISDIR;
    case Code::kNotDirectory:
      return ENOTDIR;
    case Code::kBusy:
      return EBUSY;
    case Code::kCrossDevice:
      // mv falls back to copy and delete on EXDEV, which is what moving
      // between backends means.
      return EXDEV;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kFileTooLarge:
      // Growing past what the cache can ever hold: no wait would help, and
      // ENOSPC would suggest that freeing space might.
      return EFBIG;
  }
  return EIO;
}

int ErrnoForCaughtException(std::string_view op, uint64_t ino) noexcept {
  try {
    std::string what = "unknown exception";
    // Rethrown to learn its type; checked first, as `throw;` with nothing
    // being handled would terminate.
    if (std::exception_ptr caught = std::current_exception()) {
      try {
        std::rethrow_exception(caught);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
    }
    CountErrorSite("E-FUSE-01");
    spdlog::error("E-FUSE-01: {} (inode {}): unexpected exception: {} -> {}", op, ino, what,
                  std::strerror(EIO));
  } catch (...) {
    // Out of memory while logging: the reply matters more than the line.
  }
  return EIO;
}

}  // namespace hsmfs::fs
