#pragma once

// FakeBackend: an in-memory Backend for tests. Objects live in a map from path
// to data; tests seed it with AddFile/AddDir, may set scheduling hints and
// residency, and read per-operation call counts. Thread-safe.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/testing/op.h"

namespace hsmfs::backends {

class FakeBackend final : public Backend {
 public:
  FakeBackend() = default;
  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;

  // Adds (or replaces) a file; missing parent directories are created.
  void AddFile(const ObjectPath& path, std::string data,
               int64_t mtime_ns = 1'700'000'000'000'000'000);
  void AddDir(const ObjectPath& path);
  // Sets the scheduler hints and location a later Stat/List reports.
  void SetPlacement(const ObjectPath& path, std::string volume, int64_t position,
                    Residency residency = Residency::kTape);
  // Sets the HSM state code (ObjectInfo::hsm_state) a later Stat/List reports.
  void SetHsmState(const ObjectPath& path, std::string code);
  // Sets the owner (ObjectInfo::uid/gid) a later Stat/List reports, as a
  // posix backend reports its files'.
  void SetOwner(const ObjectPath& path, int64_t uid, int64_t gid);
  // The path lists StageMany was called with, in call order.
  std::vector<std::vector<ObjectPath>> stage_batches() const;
  // The stored data of a file, or "" if absent.
  std::string Data(const ObjectPath& path) const;
  bool Exists(const ObjectPath& path) const;
  int calls(Op op) const { return calls_[static_cast<int>(op)].load(); }
  // Paths passed to Read, in call order.
  std::vector<ObjectPath> reads() const;

  Result<ObjectInfo> Stat(const ObjectPath& path) override;
  Status List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) override;
  Status Stage(const ObjectPath& path, Deadline deadline) override;
  Status StageMany(const std::vector<ObjectPath>& paths, Deadline deadline) override;
  Status Read(const ObjectPath& path, const std::filesystem::path& dest,
              const ReadOptions& options) override;
  Result<ObjectInfo> Put(const std::filesystem::path& src, const ObjectPath& path,
                         const PutOptions& options) override;
  Status Remove(const ObjectPath& path) override;
  Status Rename(const ObjectPath& from, const ObjectPath& to) override;
  Status MakeDir(const ObjectPath& path, uint32_t mode) override;
  Status SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) override;

 private:
  struct Node {
    ObjectInfo info;
    std::string data;
  };
  void Count(Op op) { calls_[static_cast<int>(op)].fetch_add(1); }
  void AddParentsLocked(const ObjectPath& path);
  Result<ObjectInfo> PutSymlink(const ObjectPath& path, const PutOptions& options);
  Result<ObjectInfo> StatLocked(const ObjectPath& path) const;

  mutable std::mutex mu_;
  std::map<ObjectPath, Node> nodes_;                    // GUARDED_BY(mu_); "" is the root
  std::vector<ObjectPath> reads_;                       // GUARDED_BY(mu_)
  std::vector<std::vector<ObjectPath>> stage_batches_;  // GUARDED_BY(mu_)
  std::atomic<int> calls_[kOpCount] = {};
};

}  // namespace hsmfs::backends
