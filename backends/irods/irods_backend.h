#pragma once

// IrodsBackend: an iRODS zone (one root collection) behind the mount, over our
// own native-protocol client (connection.h) with a pool of connections.
// DMF tape states come from an AVU or a rule (BackendConfig dmf_lookup) and
// are reported as ObjectInfo::hsm_state and residency. docs/IRODS.md.
//
// Thread-safe.

#include <memory>

#include "backends/backend.h"
#include "common/config.h"

namespace hsmfs::irods {

class IrodsBackend final : public backends::Backend {
 public:
  // Reads the password (file), connects and authenticates once, so that a
  // wrong password or an unreachable server is reported at mount time:
  // kPermissionDenied for authentication, kInvalidArgument for an unreadable
  // password file, kUnavailable / kDeadlineExceeded for the network.
  static Result<std::unique_ptr<IrodsBackend>> Create(const BackendConfig& config, Clock& clock);
  ~IrodsBackend() override;
  IrodsBackend(const IrodsBackend&) = delete;
  IrodsBackend& operator=(const IrodsBackend&) = delete;

  Result<backends::ObjectInfo> Stat(const backends::ObjectPath& path) override;
  Status List(const backends::ObjectPath& dir, const backends::ListSink& sink,
              const CancelToken& cancel) override;
  Status Stage(const backends::ObjectPath& path, Deadline deadline) override;
  Status StageMany(const std::vector<backends::ObjectPath>& paths, Deadline deadline) override;
  Status Read(const backends::ObjectPath& path, const std::filesystem::path& dest,
              const backends::ReadOptions& options) override;
  Result<backends::ObjectInfo> Put(const std::filesystem::path& src,
                                   const backends::ObjectPath& path,
                                   const backends::PutOptions& options) override;
  Status Remove(const backends::ObjectPath& path) override;
  Status Rename(const backends::ObjectPath& from, const backends::ObjectPath& to) override;
  Status MakeDir(const backends::ObjectPath& path, uint32_t mode) override;

  // Test hooks. How long Read waits for a recall to bring an object to disk
  // before it gives up with kUnavailable (default 6h; the engine retries).
  void set_stage_wait_limit(Duration limit);
  // Connections opened since Create (including the first one).
  int connections_opened() const;

  struct Impl;

 private:
  explicit IrodsBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hsmfs::irods
