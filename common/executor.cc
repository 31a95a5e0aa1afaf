#include "common/executor.h"

#include "common/thread.h"

namespace hsmfs {

Executor::Executor(std::string name, int threads) : name_(std::move(name)) {
  for (int i = 0; i < threads; ++i) threads_.push_back(StartThread(name_, [this] { Run(); }));
}

Executor::~Executor() { Shutdown(); }

bool Executor::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void Executor::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

size_t Executor::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size();
}

bool Executor::TEST_IsIdle() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.empty() && running_ == 0;
}

void Executor::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    std::lock_guard<std::mutex> l(mu_);
    --running_;
  }
}

}  // namespace hsmfs
