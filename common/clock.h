#pragma once

// Clock: the source of time for everything that waits, retries, expires or
// measures (stager, leases, list TTLs, backoff, simulated recall latency).
// Injected so that tests drive time with FakeClock::Advance() instead of sleeping.
//
// Thread-safe. Now() is monotonic; WallNanos() is the real-time clock used for
// timestamps that are stored or shown (catalog rows, mtimes).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace hsmfs {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Nanoseconds since the Unix epoch.
  virtual int64_t WallNanos() const = 0;
  virtual void SleepFor(Duration d) = 0;
  // Waits on `cv` (whose mutex `lock` holds) until notified or `deadline` on
  // this clock has passed. May return early; callers loop on their predicate.
  // Returns true when the deadline has passed.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         TimePoint deadline) = 0;

  // The process-wide real clock.
  static Clock& Real();
};

// A clock that moves only when told to. SleepFor and WaitUntil return once
// Advance() has moved time past their deadline.
class FakeClock final : public Clock {
 public:
  // Starts at an arbitrary fixed instant so that tests are repeatable.
  FakeClock();
  FakeClock(const FakeClock&) = delete;
  FakeClock& operator=(const FakeClock&) = delete;

  TimePoint Now() const override;
  int64_t WallNanos() const override;
  void SleepFor(Duration d) override;
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) override;

  void Advance(Duration d);
  // Number of threads currently inside SleepFor (lets tests wait for a sleeper).
  int sleepers() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable advanced_;
  TimePoint now_;
  int64_t wall_offset_ns_;
  int sleepers_ = 0;
};

// A point in time on some Clock after which an operation should give up.
struct Deadline {
  TimePoint at = TimePoint::max();

  static Deadline Never() { return Deadline{}; }
  static Deadline After(const Clock& clock, Duration d) {
    if (d >= std::chrono::hours(24 * 365 * 100)) return Never();
    return Deadline{clock.Now() + d};
  }
  bool Expired(const Clock& clock) const { return at != TimePoint::max() && clock.Now() >= at; }
  bool never() const { return at == TimePoint::max(); }
};

// Renders a duration for humans: "250ms", "12s", "3m05s", "2h10m".
std::string FormatDuration(Duration d);

}  // namespace hsmfs
