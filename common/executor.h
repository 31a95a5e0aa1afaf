#pragma once

// Executor: a fixed pool of worker threads running submitted tasks in FIFO
// order. Thread-safe. The destructor (or Shutdown) stops accepting tasks, runs
// what is queued and joins the threads. Tasks must not throw.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hsmfs {

class Executor {
 public:
  Executor(std::string name, int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Returns false (and drops the task) after Shutdown.
  bool Submit(std::function<void()> task);
  void Shutdown();
  // Tasks queued and not yet started.
  size_t pending() const;
  // For tests (LevelDB's TEST_ hooks): no task is queued or running.
  bool TEST_IsIdle() const;

 private:
  void Run();

  const std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  int running_ = 0;                          // GUARDED_BY(mu_): tasks started, not finished
  std::vector<std::thread> threads_;
};

}  // namespace hsmfs
