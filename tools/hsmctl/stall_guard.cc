#include "tools/hsmctl/stall_guard.h"

#include <unistd.h>

#include <iostream>

#include "cli/cli.h"
#include "common/thread.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {

StallGuard::StallGuard(std::string what, Duration limit)
    : limit_(limit), what_(std::move(what)), last_(std::chrono::steady_clock::now()) {
  if (limit_ > Duration::zero()) thread_ = StartThread("hsmctl-timeout", [this] { Watch(); });
}

StallGuard::~StallGuard() {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StallGuard::Touch() {
  std::lock_guard<std::mutex> l(mu_);
  last_ = std::chrono::steady_clock::now();
}

void StallGuard::SetWhat(std::string what) {
  std::lock_guard<std::mutex> l(mu_);
  what_ = std::move(what);
  last_ = std::chrono::steady_clock::now();
}

void StallGuard::Watch() {
  std::unique_lock<std::mutex> l(mu_);
  const auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit_);
  while (!done_) {
    const auto deadline = last_ + limit;
    if (std::chrono::steady_clock::now() >= deadline) break;
    cv_.wait_until(l, deadline);
  }
  if (done_) return;
  // The stuck call cannot be cancelled and would block an orderly exit:
  // leave at once. Catalog writes are transactions, so nothing half-done stays.
  if (::isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
  std::cerr << kProgram << ": " << what_ << ": no answer from the backend for "
            << FormatDuration(limit_) << " (--timeout); giving up" << std::endl;
  ::_exit(cli::kExitFailed);
}

}  // namespace hsmfs::hsmctl
