// Bookkeeping writes: retried while transient, then logged under their site
// and counted, never dropped.

#include "engine/bookkeeping.h"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "common/logging.h"
#include "tests/unit/log_capture.h"

namespace hsmfs::fs {
namespace {

using namespace std::chrono_literals;

// A FakeClock whose SleepFor returns at once, moving time on: records the
// back-off without a second thread to advance it.
class RecordingClock final : public Clock {
 public:
  TimePoint Now() const override { return fake_.Now(); }
  int64_t WallNanos() const override { return fake_.WallNanos(); }
  void SleepFor(Duration d) override {
    sleeps.push_back(d);
    fake_.Advance(d);
  }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) override {
    return fake_.WaitUntil(cv, lock, deadline);
  }
  std::vector<Duration> sleeps;

 private:
  FakeClock fake_;
};

uint64_t SiteCount(const std::string& id) {
  const auto counts = ErrorSiteCounts();
  auto it = counts.find(id);
  return it == counts.end() ? 0 : it->second;
}

TEST(BookkeepingTest, ABusyCatalogIsRetriedWithBackOffUntilTheWriteIsRecorded) {
  LogCapture log;
  RecordingClock clock;
  const uint64_t before = SiteCount("E-BOOK-99");
  int calls = 0;
  const bool recorded = RecordBookkeeping("E-BOOK-99", "the test write", "nothing", clock, [&] {
    return ++calls < 3 ? UnavailableError("catalog: database is locked") : Status::Ok();
  });
  EXPECT_TRUE(recorded);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.sleeps, (std::vector<Duration>{100ms, 200ms}));
  EXPECT_EQ(SiteCount("E-BOOK-99"), before);  // recorded in the end: no error site
  EXPECT_NE(log.text().find("W E-BOOK-99: cannot record the test write (attempt 1 of 3): "
                            "catalog: database is locked; retrying in 100ms"),
            std::string::npos)
      << log.text();
  EXPECT_EQ(log.text().find("E E-BOOK-99"), std::string::npos) << log.text();
}

TEST(BookkeepingTest, AWriteThatStillFailsIsLoggedUnderItsSiteAndCounted) {
  LogCapture log;
  RecordingClock clock;
  const uint64_t before = SiteCount("E-BOOK-98");
  int calls = 0;
  const bool recorded =
      RecordBookkeeping("E-BOOK-98", "the test write", "it is left as it was", clock, [&] {
        ++calls;
        return UnavailableError("catalog: database is locked");
      });
  EXPECT_FALSE(recorded);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.sleeps.size(), 2u);
  EXPECT_EQ(SiteCount("E-BOOK-98"), before + 1);
  EXPECT_NE(log.text().find("E E-BOOK-98: cannot record the test write after 3 attempt(s): "
                            "catalog: database is locked; it is left as it was"),
            std::string::npos)
      << log.text();
}

TEST(BookkeepingTest, AFailureThatWouldRepeatIsNotRetried) {
  LogCapture log;
  RecordingClock clock;
  const uint64_t before = SiteCount("E-BOOK-97");
  int calls = 0;
  EXPECT_FALSE(RecordBookkeeping("E-BOOK-97", "the test write", "nothing", clock, [&] {
    ++calls;
    return ResourceExhaustedError("catalog: database or disk is full");
  }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(clock.sleeps.empty());
  EXPECT_EQ(SiteCount("E-BOOK-97"), before + 1);
  EXPECT_NE(log.text().find("E-BOOK-97: cannot record the test write after 1 attempt(s)"),
            std::string::npos)
      << log.text();
}

TEST(BookkeepingTest, AWriteThatSucceedsAtOnceLogsNothing) {
  LogCapture log;
  RecordingClock clock;
  EXPECT_TRUE(RecordBookkeeping("E-BOOK-96", "the test write", "nothing", clock,
                                [] { return Status::Ok(); }));
  EXPECT_TRUE(clock.sleeps.empty());
  EXPECT_EQ(log.text(), "");
  EXPECT_EQ(SiteCount("E-BOOK-96"), 0u);
}

}  // namespace
}  // namespace hsmfs::fs
