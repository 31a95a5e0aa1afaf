#pragma once

// FaultInjectingBackend: wraps any Backend (like LevelDB's EnvWrapper) and makes
// chosen operations fail, slow down or hang, for retry, timeout and interrupt
// tests. Rules apply per operation:
//   FailNth(op, n, s)    the n-th call of `op` from now (1-based) fails with s
//   FailFirst(op, n, s)  the next n calls of `op` fail with s
//   FailAlways(op, s)    every call fails with s until Clear(op)
//   Delay(op, d)         every call first sleeps d on the injected Clock
//   Hang(op)             calls block until Unhang(op) or, for Read/Put/List,
//                        until their CancelToken fires (then kCancelled)
// Thread-safe. Failures happen before the wrapped call, so a failed call has no
// effect on the wrapped backend.

#include <condition_variable>
#include <memory>
#include <mutex>

#include "backends/backend.h"
#include "backends/testing/op.h"

namespace hsmfs::backends {

class FaultInjectingBackend final : public Backend {
 public:
  FaultInjectingBackend(std::unique_ptr<Backend> base, Clock& clock);
  FaultInjectingBackend(const FaultInjectingBackend&) = delete;
  FaultInjectingBackend& operator=(const FaultInjectingBackend&) = delete;
  ~FaultInjectingBackend() override;

  void FailNth(Op op, int n, Status status);
  void FailFirst(Op op, int n, Status status);
  void FailAlways(Op op, Status status);
  void Delay(Op op, Duration d);
  void Hang(Op op);
  void Unhang(Op op);
  void Clear(Op op);
  // Calls of `op` seen so far (including failed ones).
  int calls(Op op) const;
  // Calls currently blocked in Hang.
  int hanging() const;
  Backend& base() { return *base_; }
  // The wrapped backend's, without faults: the engine's root checks see the real root.
  LocalRoot* local_root() override { return base_->local_root(); }

  Result<ObjectInfo> Stat(const ObjectPath& path) override;
  Status List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) override;
  Status Stage(const ObjectPath& path, Deadline deadline) override;
  // Passed through, without faults: the engine treats it as a hint.
  Status StageMany(const std::vector<ObjectPath>& paths, Deadline deadline) override;
  Status Read(const ObjectPath& path, const std::filesystem::path& dest,
              const ReadOptions& options) override;
  Result<ObjectInfo> Put(const std::filesystem::path& src, const ObjectPath& path,
                         const PutOptions& options) override;
  Status Remove(const ObjectPath& path) override;
  Status Rename(const ObjectPath& from, const ObjectPath& to) override;
  Status MakeDir(const ObjectPath& path, uint32_t mode) override;
  Status SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) override {
    return base_->SetDirAttrs(path, attrs);
  }

 private:
  struct Rule {
    int calls = 0;
    int fail_nth = 0;  // absolute call number that fails; 0 = none
    Status nth_status;
    int fail_first = 0;  // remaining calls that fail
    Status first_status;
    bool fail_always = false;
    Status always_status;
    Duration delay{0};
    bool hang = false;
  };
  // Applies the rules for one call of `op`; returns the injected failure, if any.
  Status Before(Op op, const CancelToken& cancel);

  std::unique_ptr<Backend> base_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Rule rules_[kOpCount];  // GUARDED_BY(mu_)
  int hanging_ = 0;       // GUARDED_BY(mu_)
  bool closing_ = false;  // GUARDED_BY(mu_)
};

}  // namespace hsmfs::backends
