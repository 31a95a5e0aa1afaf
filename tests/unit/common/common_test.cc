#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/logging.h"
#include "common/result.h"
#include "common/status.h"
#include "common/timer_queue.h"
#include "common/units.h"

namespace hsmfs {
namespace {

using namespace std::chrono_literals;

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFoundError("vault/a: gone");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "vault/a: gone");
  EXPECT_EQ(s.ToString(), "NotFound: vault/a: gone");
}

TEST(StatusTest, AnnotateKeepsCodeAndCause) {
  Status s = UnavailableError("timeout").WithCause(InternalError("socket"));
  Status a = s.Annotate("listing vault/");
  EXPECT_EQ(a.code(), Code::kUnavailable);
  EXPECT_EQ(a.message(), "listing vault/: timeout");
  ASSERT_NE(a.cause(), nullptr);
  EXPECT_EQ(a.cause()->code(), Code::kInternal);
}

TEST(StatusTest, ErrnoMapping) {
  EXPECT_EQ(ErrnoToStatus(ENOENT, "x").code(), Code::kNotFound);
  EXPECT_EQ(ErrnoToStatus(ENOTEMPTY, "x").code(), Code::kNotEmpty);
  EXPECT_EQ(ErrnoToStatus(ENOSPC, "x").code(), Code::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatus(ECONNREFUSED, "x").code(), Code::kUnavailable);
  EXPECT_EQ(ErrnoToStatus(ENOENT, "open a").message(), "open a: No such file or directory");
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  HSMFS_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, ValueAndPropagation) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.value_or(-1), -1);
}

TEST(UnitsTest, ParsesSizes) {
  EXPECT_EQ(*ParseSize("50GiB"), uint64_t{50} << 30);
  EXPECT_EQ(*ParseSize("50G"), uint64_t{50} << 30);
  EXPECT_EQ(*ParseSize("1.5 KiB"), 1536u);
  EXPECT_EQ(*ParseSize("2MB"), 2'000'000u);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("1tib"), uint64_t{1} << 40);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("GiB").ok());
  EXPECT_FALSE(ParseSize("12 parsecs").ok());
  EXPECT_FALSE(ParseSize("-5G").ok());
}

TEST(UnitsTest, SizeRoundTrip) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{1023}, uint64_t{1024}, uint64_t{50} << 30,
                     (uint64_t{3} << 40) + 1}) {
    EXPECT_EQ(*ParseSize(FormatSizeExact(v)), v) << FormatSizeExact(v);
  }
  EXPECT_EQ(FormatSizeExact(uint64_t{50} << 30), "50GiB");
  EXPECT_EQ(FormatSizeHuman(1536), "1.5 KiB");
  EXPECT_EQ(FormatSizeHuman(512), "512 B");
}

TEST(UnitsTest, ParsesDurations) {
  EXPECT_EQ(*ParseDuration("1h"), Duration(1h));
  EXPECT_EQ(*ParseDuration("200ms"), Duration(200ms));
  EXPECT_EQ(*ParseDuration("1h30m"), Duration(90min));
  EXPECT_EQ(*ParseDuration("0s"), Duration(0));
  EXPECT_EQ(*ParseDuration("10"), Duration(10s));
  EXPECT_EQ(*ParseDuration("1.5s"), Duration(1500ms));
  EXPECT_EQ(*ParseDuration("2d"), Duration(48h));
  EXPECT_FALSE(ParseDuration("soon").ok());
  EXPECT_FALSE(ParseDuration("5 fortnights").ok());
  EXPECT_FALSE(ParseDuration("").ok());
}

TEST(UnitsTest, DurationRoundTrip) {
  for (Duration d : {Duration(0), Duration(200ms), Duration(5s), Duration(90min), Duration(26h),
                     Duration(48h), Duration(3723s)}) {
    EXPECT_EQ(*ParseDuration(FormatDurationExact(d)), d) << FormatDurationExact(d);
  }
  EXPECT_EQ(FormatDurationExact(90min), "1h30m");
}

TEST(UnitsTest, HugeNumbersAreErrorsNotAborts) {
  // std::stod used to throw out_of_range here, and the programs died of SIGABRT.
  const std::string digits400(400, '9');
  for (const std::string& text : std::vector<std::string>{
           digits400, digits400 + "GiB", "1" + std::string(399, '0'), digits400 + "." + digits400,
           "18446744073709551616", "9223372036854775807", "1025PiB", "1152921504606846977"}) {
    auto size = ParseSize(text);
    ASSERT_FALSE(size.ok()) << text;
    EXPECT_NE(size.status().message().find("is too large (at most 1024PiB)"), std::string::npos)
        << size.status().message();
    EXPECT_LT(size.status().message().size(), 120u) << size.status().message();
  }
  for (const std::string& text :
       std::vector<std::string>{digits400, digits400 + "ms", "10000000000", "9223372036854775807",
                                "3650d1ns", "3651d", "1d" + digits400 + "s", "87601h"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_NE(d.status().message().find("is too long (at most 3650d)"), std::string::npos)
        << d.status().message();
  }
  // Many leading zeros or fraction digits are still a small number.
  EXPECT_EQ(*ParseSize(std::string(400, '0') + "1KiB"), 1024u);
  EXPECT_EQ(*ParseSize("0." + digits400), 1u);  // rounds to the nearest byte
  EXPECT_EQ(*ParseDuration("0." + std::string(30, '0') + "1s"), Duration(0));
}

TEST(UnitsTest, LimitsAreExactAndInclusive) {
  EXPECT_EQ(*ParseSize("1024PiB"), kMaxSize);
  EXPECT_EQ(*ParseSize("1152921504606846976"), kMaxSize);
  EXPECT_EQ(*ParseSize("1048576TiB"), kMaxSize);
  EXPECT_EQ(*ParseDuration("3650d"), kMaxDuration);
  EXPECT_EQ(*ParseDuration("87600h"), kMaxDuration);
  EXPECT_EQ(*ParseDuration("315360000"), kMaxDuration);
  // Fractions are exact, not rounded through a double.
  EXPECT_EQ(*ParseSize("1.1PiB"), 1238489897526886u);
  EXPECT_EQ(*ParseSize("0.5B"), 1u);
  EXPECT_EQ(*ParseDuration("0.1s"), Duration(100ms));
  EXPECT_EQ(*ParseDuration("1.000000001s"), Duration(1'000'000'001));
  EXPECT_EQ(*ParseDuration("1ns"), Duration(1));
}

TEST(UnitsTest, EveryDurationHasASpelling) {
  // 9223372036854775807 s had wrapped to a negative duration that printed as "".
  EXPECT_EQ(FormatDurationExact(Duration(-5s)), "-5s");
  EXPECT_EQ(FormatDurationExact(Duration::min()), "-9223372036854775808ns");
  EXPECT_EQ(FormatDurationExact(Duration::max()), "9223372036854775807ns");
  EXPECT_EQ(FormatDurationExact(Duration(1500)), "1500ns");
  for (Duration d : {Duration(1), Duration(1500), Duration(1us), kMaxDuration}) {
    EXPECT_EQ(*ParseDuration(FormatDurationExact(d)), d) << FormatDurationExact(d);
  }
}

std::string HashOf(ChecksumAlgo algo, std::string_view data) {
  auto h = Hasher::Create(algo);
  h->Update(data.data(), data.size());
  return h->Finish();
}

TEST(ChecksumTest, KnownVectors) {
  EXPECT_EQ(HashOf(ChecksumAlgo::kMd5, ""), "md5:d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(HashOf(ChecksumAlgo::kMd5, "abc"), "md5:900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(HashOf(ChecksumAlgo::kSha256, "abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashOf(ChecksumAlgo::kXxh3, ""), "xxh3:2d06800538d394c2");
}

TEST(ChecksumTest, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7);
  for (ChecksumAlgo algo : {ChecksumAlgo::kMd5, ChecksumAlgo::kSha256, ChecksumAlgo::kXxh3}) {
    auto h = Hasher::Create(algo);
    for (size_t i = 0; i < data.size(); i += 999)
      h->Update(data.data() + i, std::min<size_t>(999, data.size() - i));
    EXPECT_EQ(h->Finish(), HashOf(algo, data));
  }
}

TEST(ChecksumTest, FileAndAlgoNames) {
  const auto path = std::filesystem::temp_directory_path() / "hsmfs_checksum_test.txt";
  std::ofstream(path) << "abc";
  EXPECT_EQ(*ChecksumFile(path, ChecksumAlgo::kMd5), "md5:900150983cd24fb0d6963f7d28e17f72");
  std::filesystem::remove(path);
  EXPECT_EQ(ChecksumFile(path, ChecksumAlgo::kMd5).status().code(), Code::kNotFound);
  EXPECT_EQ(*AlgoOfChecksum("sha256:00"), ChecksumAlgo::kSha256);
  EXPECT_FALSE(AlgoOfChecksum("crc32:00").ok());
  EXPECT_FALSE(ParseChecksumAlgo("sha1").ok());
}

TEST(FakeClockTest, SleepReturnsOnlyAfterAdvance) {
  FakeClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(10s);
    woke = true;
  });
  while (clock.sleepers() == 0) std::this_thread::yield();
  clock.Advance(5s);
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(woke);
  clock.Advance(5s);
  sleeper.join();
  EXPECT_TRUE(woke);
}

TEST(TimerQueueTest, FiresInDeadlineOrderAndCancels) {
  FakeClock clock;
  TimerQueue timers(clock);
  std::mutex mu;
  std::vector<int> fired;
  const auto record = [&](int v) {
    return [&, v] {
      std::lock_guard<std::mutex> l(mu);
      fired.push_back(v);
    };
  };
  timers.Schedule(clock.Now() + 3s, record(3));
  timers.Schedule(clock.Now() + 1s, record(1));
  auto id = timers.Schedule(clock.Now() + 2s, record(2));
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_FALSE(timers.Cancel(id));
  clock.Advance(10s);
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (fired.size() == 2) break;
    }
    std::this_thread::sleep_for(2ms);
  }
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

TEST(TimerQueueTest, DoesNotFireEarly) {
  FakeClock clock;
  TimerQueue timers(clock);
  std::atomic<bool> fired{false};
  timers.Schedule(clock.Now() + 1s, [&] { fired = true; });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(fired);
}

TEST(ExecutorTest, RunsEverythingBeforeShutdown) {
  std::atomic<int> ran{0};
  {
    Executor pool("test", 3);
    for (int i = 0; i < 100; ++i) pool.Submit([&] { ++ran; });
  }
  EXPECT_EQ(ran, 100);
  Executor pool("test", 1);
  pool.Shutdown();
  EXPECT_FALSE(pool.Submit([] {}));
}

}  // namespace
TEST(LoggingTest, ReopenLogFileStartsANewFileAfterARename) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hsmfs_log_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  LogOptions options;
  options.file = dir / "hsmfs.log";
  ASSERT_TRUE(InitLogging(options).ok());
  spdlog::info("before the rotation");
  spdlog::default_logger()->flush();
  std::filesystem::rename(dir / "hsmfs.log", dir / "hsmfs.log.1");  // logrotate
  spdlog::info("still into the old file");
  ASSERT_TRUE(ReopenLogFile().ok());
  spdlog::info("after the rotation");
  spdlog::default_logger()->flush();
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string old_log = read(dir / "hsmfs.log.1");
  const std::string new_log = read(dir / "hsmfs.log");
  EXPECT_NE(old_log.find("before the rotation"), std::string::npos);
  EXPECT_NE(old_log.find("still into the old file"), std::string::npos);
  EXPECT_EQ(new_log.find("before the rotation"), std::string::npos);
  EXPECT_NE(new_log.find("after the rotation"), std::string::npos) << new_log;
  ASSERT_TRUE(InitLogging(LogOptions{"info", {}, "test"}).ok());  // back to stderr
  EXPECT_TRUE(ReopenLogFile().ok());                              // nothing to reopen
  std::filesystem::remove_all(dir);
}

}  // namespace hsmfs
