#pragma once

// CancelToken: a one-way flag that asks a long operation (a recall, an archive,
// a listing) to stop early. Thread-safe; shared by the requester and the worker.
// Backends poll cancelled() between chunks and return kCancelled when set.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace hsmfs {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void Cancel() {
    {
      std::lock_guard<std::mutex> l(mu_);
      cancelled_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Blocks until cancelled or `timeout` of real time passed; returns cancelled().
  bool WaitFor(std::chrono::nanoseconds timeout) const {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, timeout, [&] { return cancelled(); });
    return cancelled();
  }

  // A token that is never cancelled, for callers that cannot cancel.
  static const CancelToken& None() {
    static const CancelToken* token = new CancelToken();
    return *token;
  }

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace hsmfs
