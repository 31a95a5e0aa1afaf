#pragma once

// StallGuard: bounds how long an hsmctl command waits for a backend that has
// stopped answering. A backend call stuck in the kernel (a hung NFS export or
// FUSE file system) cannot be cancelled, so when nothing has moved for
// `limit` the guard prints one line and ends the process (exit 1). What was
// done until then (catalog commits) stays done.
//
// Thread-safe.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"

namespace hsmfs::hsmctl {

class StallGuard {
 public:
  // `what` names the command in the message ("sync vault"). A zero `limit`
  // waits forever.
  StallGuard(std::string what, Duration limit);
  ~StallGuard();
  StallGuard(const StallGuard&) = delete;
  StallGuard& operator=(const StallGuard&) = delete;

  // Something moved: the limit counts from now.
  void Touch();
  void SetWhat(std::string what);

 private:
  void Watch();

  const Duration limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string what_;                            // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_;  // GUARDED_BY(mu_)
  bool done_ = false;                           // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hsmfs::hsmctl
