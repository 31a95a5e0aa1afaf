#pragma once

// TimerQueue: runs callbacks at deadlines on the injected Clock, on one
// background thread. Used for bounded waits that must not hold the thread that
// asked (e.g. a FUSE request waiting for a first listing or a recall). Callbacks
// run on the timer thread and must be short. Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "common/clock.h"

namespace hsmfs {

class TimerQueue {
 public:
  using TimerId = uint64_t;

  explicit TimerQueue(Clock& clock);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `fn` once `at` has passed. Returns an id for Cancel.
  TimerId Schedule(TimePoint at, std::function<void()> fn);
  // Returns true if the timer was removed before it ran.
  bool Cancel(TimerId id);
  // Stops the thread; timers not yet run never run. Idempotent.
  void Shutdown();
  // For tests (LevelDB's TEST_ hooks): no callback is running and none is due
  // (every timer left is set after the clock's now).
  bool TEST_IsIdle();

 private:
  void Run();

  Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Ordered by (deadline, id) so that equal deadlines fire in schedule order.
  std::map<std::pair<TimePoint, TimerId>, std::function<void()>> timers_;  // GUARDED_BY(mu_)
  std::map<TimerId, TimePoint> deadline_of_;                               // GUARDED_BY(mu_)
  TimerId next_id_ = 1;                                                    // GUARDED_BY(mu_)
  bool stopping_ = false;                                                  // GUARDED_BY(mu_)
  bool running_ = false;  // GUARDED_BY(mu_): a callback is running
  std::thread thread_;
};

}  // namespace hsmfs
