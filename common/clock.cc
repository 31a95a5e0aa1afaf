#include "common/clock.h"

#include <cstdio>
#include <thread>

namespace hsmfs {
namespace {

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  int64_t WallNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepFor(Duration d) override { std::this_thread::sleep_for(d); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) override {
    return cv.wait_until(lock, deadline) == std::cv_status::timeout;
  }
};

}  // namespace

Clock& Clock::Real() {
  static RealClock* clock = new RealClock();  // never destroyed: used by detached threads
  return *clock;
}

FakeClock::FakeClock()
    : now_(TimePoint() + std::chrono::hours(1000)),
      wall_offset_ns_(int64_t{1'700'000'000} * 1'000'000'000) {}

TimePoint FakeClock::Now() const {
  std::lock_guard<std::mutex> l(mu_);
  return now_;
}

int64_t FakeClock::WallNanos() const {
  std::lock_guard<std::mutex> l(mu_);
  return wall_offset_ns_ + (now_ - (TimePoint() + std::chrono::hours(1000))).count();
}

void FakeClock::SleepFor(Duration d) {
  std::unique_lock<std::mutex> l(mu_);
  const TimePoint until = now_ + d;
  ++sleepers_;
  advanced_.wait(l, [&] { return now_ >= until; });
  --sleepers_;
}

bool FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          TimePoint deadline) {
  if (Now() >= deadline) return true;
  // The fake clock cannot notify a condition variable it does not know the
  // mutex of without a lost-wakeup race, so waiters poll in short real steps.
  cv.wait_for(lock, std::chrono::milliseconds(1));
  return Now() >= deadline;
}

void FakeClock::Advance(Duration d) {
  {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
  }
  advanced_.notify_all();
}

int FakeClock::sleepers() const {
  std::lock_guard<std::mutex> l(mu_);
  return sleepers_;
}

std::string FormatDuration(Duration d) {
  using std::chrono::duration_cast;
  const int64_t ms = duration_cast<std::chrono::milliseconds>(d).count();
  char buf[64];
  if (ms < 0) return "-" + FormatDuration(-d);
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    const long long s = ms / 1000;
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    const long long m = ms / 60'000;
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", m / 60, m % 60);
  }
  return buf;
}

}  // namespace hsmfs
