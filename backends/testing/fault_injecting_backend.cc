#include "backends/testing/fault_injecting_backend.h"

namespace hsmfs::backends {

FaultInjectingBackend::FaultInjectingBackend(std::unique_ptr<Backend> base, Clock& clock)
    : base_(std::move(base)), clock_(clock) {}

FaultInjectingBackend::~FaultInjectingBackend() {
  std::unique_lock<std::mutex> l(mu_);
  closing_ = true;
  cv_.notify_all();
  cv_.wait(l, [&] { return hanging_ == 0; });
}

void FaultInjectingBackend::FailNth(Op op, int n, Status status) {
  std::lock_guard<std::mutex> l(mu_);
  Rule& r = rules_[static_cast<int>(op)];
  r.fail_nth = r.calls + n;
  r.nth_status = std::move(status);
}

void FaultInjectingBackend::FailFirst(Op op, int n, Status status) {
  std::lock_guard<std::mutex> l(mu_);
  Rule& r = rules_[static_cast<int>(op)];
  r.fail_first = n;
  r.first_status = std::move(status);
}

void FaultInjectingBackend::FailAlways(Op op, Status status) {
  std::lock_guard<std::mutex> l(mu_);
  Rule& r = rules_[static_cast<int>(op)];
  r.fail_always = true;
  r.always_status = std::move(status);
}

void FaultInjectingBackend::Delay(Op op, Duration d) {
  std::lock_guard<std::mutex> l(mu_);
  rules_[static_cast<int>(op)].delay = d;
}

void FaultInjectingBackend::Hang(Op op) {
  std::lock_guard<std::mutex> l(mu_);
  rules_[static_cast<int>(op)].hang = true;
}

void FaultInjectingBackend::Unhang(Op op) {
  {
    std::lock_guard<std::mutex> l(mu_);
    rules_[static_cast<int>(op)].hang = false;
  }
  cv_.notify_all();
}

void FaultInjectingBackend::Clear(Op op) {
  {
    std::lock_guard<std::mutex> l(mu_);
    const int calls = rules_[static_cast<int>(op)].calls;
    rules_[static_cast<int>(op)] = Rule();
    rules_[static_cast<int>(op)].calls = calls;
  }
  cv_.notify_all();
}

int FaultInjectingBackend::calls(Op op) const {
  std::lock_guard<std::mutex> l(mu_);
  return rules_[static_cast<int>(op)].calls;
}

int FaultInjectingBackend::hanging() const {
  std::lock_guard<std::mutex> l(mu_);
  return hanging_;
}

Status FaultInjectingBackend::Before(Op op, const CancelToken& cancel) {
  Duration delay{0};
  {
    std::unique_lock<std::mutex> l(mu_);
    Rule& r = rules_[static_cast<int>(op)];
    const int call = ++r.calls;
    if (r.hang) {
      ++hanging_;
      // Polls the token in short real-time steps: CancelToken has its own cv.
      while (r.hang && !closing_ && !cancel.cancelled()) {
        cv_.wait_for(l, std::chrono::milliseconds(5));
      }
      --hanging_;
      cv_.notify_all();
      if (cancel.cancelled()) {
        return CancelledError(std::string(OpName(op)) + " cancelled while hung");
      }
      if (closing_) return UnavailableError("backend closing");
    }
    if (r.fail_nth == call) return r.nth_status;
    if (r.fail_first > 0) {
      --r.fail_first;
      return r.first_status;
    }
    if (r.fail_always) return r.always_status;
    delay = r.delay;
  }
  if (delay.count() > 0) clock_.SleepFor(delay);
  return Status::Ok();
}

Result<ObjectInfo> FaultInjectingBackend::Stat(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kStat, CancelToken::None()));
  return base_->Stat(path);
}

Status FaultInjectingBackend::List(const ObjectPath& dir, const ListSink& sink,
                                   const CancelToken& cancel) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kList, cancel));
  return base_->List(dir, sink, cancel);
}

Status FaultInjectingBackend::Stage(const ObjectPath& path, Deadline deadline) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kStage, CancelToken::None()));
  return base_->Stage(path, deadline);
}

Status FaultInjectingBackend::StageMany(const std::vector<ObjectPath>& paths, Deadline deadline) {
  return base_->StageMany(paths, deadline);
}

Status FaultInjectingBackend::Read(const ObjectPath& path, const std::filesystem::path& dest,
                                   const ReadOptions& options) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kRead, *options.cancel));
  return base_->Read(path, dest, options);
}

Result<ObjectInfo> FaultInjectingBackend::Put(const std::filesystem::path& src,
                                              const ObjectPath& path, const PutOptions& options) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kPut, *options.cancel));
  return base_->Put(src, path, options);
}

Status FaultInjectingBackend::Remove(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kRemove, CancelToken::None()));
  return base_->Remove(path);
}

Status FaultInjectingBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kRename, CancelToken::None()));
  return base_->Rename(from, to);
}

Status FaultInjectingBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  HSMFS_RETURN_IF_ERROR(Before(Op::kMakeDir, CancelToken::None()));
  return base_->MakeDir(path, mode);
}

}  // namespace hsmfs::backends
