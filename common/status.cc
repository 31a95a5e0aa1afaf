#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace hsmfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kNotPermitted:
      return "NotPermitted";
    case Code::kReadOnly:
      return "ReadOnly";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotResident:
      return "NotResident";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Code::kResourceExhausted:
      return "ResourceExhausted";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kAborted:
      return "Aborted";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kDataLoss:
      return "DataLoss";
    case Code::kUnimplemented:
      return "Unimplemented";
    case Code::kInternal:
      return "Internal";
    case Code::kNotEmpty:
      return "NotEmpty";
    case Code::kIsDirectory:
      return "IsDirectory";
    case Code::kNotDirectory:
      return "NotDirectory";
    case Code::kBusy:
      return "Busy";
    case Code::kCrossDevice:
      return "CrossDevice";
    case Code::kNameTooLong:
      return "NameTooLong";
    case Code::kFileTooLarge:
      return "FileTooLarge";
  }
  return "Unknown";
}

Status::Status(Code code, std::string message) {
  if (code != Code::kOk) {
    rep_ = std::make_shared<Rep>(Rep{code, std::move(message), nullptr});
  }
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  Status s;
  s.rep_ = std::make_shared<Rep>(
      Rep{rep_->code, std::string(context) + ": " + rep_->message, rep_->cause});
  return s;
}

Status Status::WithCause(Status cause) const {
  if (ok()) return *this;
  Status s;
  s.rep_ = std::make_shared<Rep>(
      Rep{rep_->code, rep_->message, std::make_shared<const Status>(std::move(cause))});
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code()));
  out += ": ";
  out += message();
  if (const Status* c = cause()) {
    out += " (caused by ";
    out += c->ToString();
    out += ")";
  }
  return out;
}

Status NotFoundError(std::string m) { return Status(Code::kNotFound, std::move(m)); }
Status AlreadyExistsError(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
Status PermissionDeniedError(std::string m) {
  return Status(Code::kPermissionDenied, std::move(m));
}
Status NotPermittedError(std::string m) { return Status(Code::kNotPermitted, std::move(m)); }
Status ReadOnlyError(std::string m) { return Status(Code::kReadOnly, std::move(m)); }
Status InvalidArgumentError(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
Status NotResidentError(std::string m) { return Status(Code::kNotResident, std::move(m)); }
Status UnavailableError(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
Status DeadlineExceededError(std::string m) {
  return Status(Code::kDeadlineExceeded, std::move(m));
}
Status ResourceExhaustedError(std::string m) {
  return Status(Code::kResourceExhausted, std::move(m));
}
Status FailedPreconditionError(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
Status AbortedError(std::string m) { return Status(Code::kAborted, std::move(m)); }
Status CancelledError(std::string m) { return Status(Code::kCancelled, std::move(m)); }
Status DataLossError(std::string m) { return Status(Code::kDataLoss, std::move(m)); }
Status UnimplementedError(std::string m) { return Status(Code::kUnimplemented, std::move(m)); }
Status InternalError(std::string m) { return Status(Code::kInternal, std::move(m)); }

Status ErrnoToStatus(int err, std::string_view what) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  switch (err) {
    case 0:
      return Status::Ok();
    case ENOENT:
      return NotFoundError(std::move(msg));
    case EEXIST:
      return AlreadyExistsError(std::move(msg));
    case EACCES:
      return PermissionDeniedError(std::move(msg));
    case EPERM:
      return NotPermittedError(std::move(msg));
    case EROFS:
      return ReadOnlyError(std::move(msg));
    case ENOTEMPTY:
      return Status(Code::kNotEmpty, std::move(msg));
    case EISDIR:
      return Status(Code::kIsDirectory, std::move(msg));
    case ENOTDIR:
      return Status(Code::kNotDirectory, std::move(msg));
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return ResourceExhaustedError(std::move(msg));
    case EINTR:
      return CancelledError(std::move(msg));
    case ETIMEDOUT:
      return DeadlineExceededError(std::move(msg));
    case EINVAL:
    case ENAMETOOLONG:
      return InvalidArgumentError(std::move(msg));
    case EAGAIN:
    case EBUSY:
    case ENOTCONN:
    case ESTALE:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case ECONNRESET:
    case ENETDOWN:
    case ENETUNREACH:
      return UnavailableError(std::move(msg));
    case EIO:  // media or transport errors are worth a bounded retry
      return UnavailableError(std::move(msg));
    default:
      return InternalError(std::move(msg));
  }
}

}  // namespace hsmfs
