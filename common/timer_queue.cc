#include "common/timer_queue.h"

#include "common/thread.h"

namespace hsmfs {

TimerQueue::TimerQueue(Clock& clock)
    : clock_(clock), thread_(StartThread("hsmfs-timers", [this] { Run(); })) {}

TimerQueue::~TimerQueue() { Shutdown(); }

void TimerQueue::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    timers_.clear();
    deadline_of_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

TimerQueue::TimerId TimerQueue::Schedule(TimePoint at, std::function<void()> fn) {
  TimerId id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = next_id_++;
    timers_.emplace(std::make_pair(at, id), std::move(fn));
    deadline_of_.emplace(id, at);
  }
  cv_.notify_all();
  return id;
}

bool TimerQueue::Cancel(TimerId id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  deadline_of_.erase(it);
  return true;
}

void TimerQueue::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(l);
      continue;
    }
    auto first = timers_.begin();
    if (clock_.Now() < first->first.first) {
      clock_.WaitUntil(cv_, l, first->first.first);
      continue;
    }
    std::function<void()> fn = std::move(first->second);
    deadline_of_.erase(first->first.second);
    timers_.erase(first);
    running_ = true;
    l.unlock();
    fn();
    l.lock();
    running_ = false;
  }
}

bool TimerQueue::TEST_IsIdle() {
  std::lock_guard<std::mutex> l(mu_);
  return !running_ && (timers_.empty() || timers_.begin()->first.first > clock_.Now());
}

}  // namespace hsmfs
