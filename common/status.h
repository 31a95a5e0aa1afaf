#pragma once

// Status: the outcome of a fallible operation, in the manner of absl::Status.
//
// A Status is a Code plus a human message and an optional cause (the lower-level
// Status that led to this one). Statuses are cheap to copy when OK and are
// immutable values: share them freely across threads.
//
// Retry meanings (followed by the stager, the archiver and the tools):
//   kUnavailable        transient; retry the same call with backoff.
//   kAborted            the job lost a race or was interrupted; retry the whole job.
//   kFailedPrecondition the world is not in the needed state; do not retry.
// The only place a Code becomes an errno is fs/errno_map.cc.

#include <memory>
#include <string>
#include <string_view>

namespace hsmfs {

enum class Code {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,  // the requester may not do this (EACCES)
  kNotPermitted,      // policy forbids it for everyone, e.g. allow_delete = false (EPERM)
  kReadOnly,          // not a writable location (EROFS)
  kInvalidArgument,
  kNotResident,  // data is not in the cache and the caller will not wait
  kUnavailable,
  kDeadlineExceeded,
  kResourceExhausted,
  kFailedPrecondition,
  kAborted,
  kCancelled,  // the caller gave up (a signal, an interrupted request)
  kDataLoss,
  kUnimplemented,
  kInternal,
  kNotEmpty,  // directory not empty (ENOTEMPTY)
  kIsDirectory,
  kNotDirectory,
  kBusy,          // in use, e.g. releasing an open file (EBUSY)
  kCrossDevice,   // a rename between backends (EXDEV)
  kNameTooLong,   // a name longer than NAME_MAX (ENAMETOOLONG)
  kFileTooLarge,  // a size that can never fit, e.g. past the cache (EFBIG)
};

// Returns the stable spelling of `code`, e.g. "NotFound".
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const;
  // The status that caused this one, or nullptr.
  const Status* cause() const { return rep_ ? rep_->cause.get() : nullptr; }

  // Returns a Status with the same code whose message is "`context`: <message>".
  Status Annotate(std::string_view context) const;
  // Returns a copy of this status whose cause is `cause`.
  Status WithCause(Status cause) const;

  // "NotFound: listing vault/a: No such file or directory (caused by ...)".
  std::string ToString() const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  struct Rep {
    Code code;
    std::string message;
    std::shared_ptr<const Status> cause;
  };
  std::shared_ptr<const Rep> rep_;
};

inline bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status NotPermittedError(std::string message);
Status ReadOnlyError(std::string message);
Status InvalidArgumentError(std::string message);
Status NotResidentError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status CancelledError(std::string message);
Status DataLossError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);

// Maps an errno value from a system call on local files to a Status whose
// message is "`what`: strerror(err)".
Status ErrnoToStatus(int err, std::string_view what);

}  // namespace hsmfs

#define HSMFS_CONCAT_INNER_(a, b) a##b
#define HSMFS_CONCAT_(a, b) HSMFS_CONCAT_INNER_(a, b)

#define HSMFS_RETURN_IF_ERROR(expr) \
  HSMFS_RETURN_IF_ERROR_IMPL_(HSMFS_CONCAT_(hsmfs_status_, __LINE__), expr)
#define HSMFS_RETURN_IF_ERROR_IMPL_(tmp, expr) \
  do {                                         \
    ::hsmfs::Status tmp = (expr);              \
    if (!tmp.ok()) return tmp;                 \
  } while (false)
