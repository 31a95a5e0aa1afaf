// The cost model's arithmetic, the meter's counters and its optional sleep on
// an injected clock, and the device spec parser.

#include "backends/tape/cost_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "backends/tape/device_spec.h"

namespace hsmfs::tape {
namespace {

double Secs(Duration d) { return std::chrono::duration<double>(d).count(); }

TEST(CostModelTest, DefaultsAreLtoLike) {
  CostModel m;
  // A full 12 TB write at the default rate takes about 11 hours.
  EXPECT_NEAR(Secs(m.Write(12'000'000'000'000ULL)) / 3600, 11.1, 0.1);
  // A full-length locate costs about 100 s; a load about 20 s.
  EXPECT_NEAR(Secs(m.Locate(12'000'000'000'000ULL)), 98, 1);
  EXPECT_EQ(Secs(m.Load()), 20);
  EXPECT_EQ(Secs(m.Unload()), 20);
}

TEST(CostModelTest, Arithmetic) {
  CostModel m;
  m.locate_base_seconds = 3;
  m.locate_seconds_per_gb = 0.5;
  m.rewind_base_seconds = 1;
  m.rewind_seconds_per_gb = 0.25;
  m.read_mb_per_s = 250;
  m.write_mb_per_s = 125;
  m.filemark_seconds = 2;
  EXPECT_EQ(Secs(m.Locate(0)), 0);  // already there
  EXPECT_DOUBLE_EQ(Secs(m.Locate(4'000'000'000)), 3 + 2);
  EXPECT_EQ(Secs(m.Rewind(0)), 0);
  EXPECT_DOUBLE_EQ(Secs(m.Rewind(8'000'000'000)), 1 + 2);
  EXPECT_DOUBLE_EQ(Secs(m.Read(500'000'000)), 2);
  EXPECT_DOUBLE_EQ(Secs(m.Write(500'000'000)), 4);
  EXPECT_DOUBLE_EQ(Secs(m.FileMarks(3)), 6);
}

TEST(CostMeterTest, CountsAndSumsEveryCharge) {
  CostModel m;
  m.load_seconds = 10;
  m.unload_seconds = 5;
  m.locate_base_seconds = 1;
  m.locate_seconds_per_gb = 1;
  m.read_mb_per_s = 100;
  CostMeter meter(m);
  meter.Charge(CostMeter::Op::kLoad, 0);
  meter.Charge(CostMeter::Op::kLocate, 2'000'000'000);
  meter.Charge(CostMeter::Op::kRead, 100'000'000);
  meter.Charge(CostMeter::Op::kRead, 100'000'000);
  meter.Charge(CostMeter::Op::kUnload, 0);
  TapeCounters c = meter.Snapshot();
  EXPECT_EQ(c.loads, 1u);
  EXPECT_EQ(c.unloads, 1u);
  EXPECT_EQ(c.locates, 1u);
  EXPECT_EQ(c.locate_distance_bytes, 2'000'000'000u);
  EXPECT_EQ(c.bytes_read, 200'000'000u);
  EXPECT_EQ(c.records_read, 2u);
  EXPECT_DOUBLE_EQ(c.simulated_seconds(), 10 + 3 + 1 + 1 + 5);
  TapeCounters sum = c;
  sum += c;
  EXPECT_EQ(sum.bytes_read, 400'000'000u);
  EXPECT_DOUBLE_EQ(sum.simulated_seconds(), 40);
}

TEST(CostMeterTest, SleepsScaledCostOnTheInjectedClock) {
  FakeClock clock;
  CostModel m;
  m.load_seconds = 20;
  CostMeter meter(m, &clock, /*time_scale=*/0.5);
  std::thread loader([&] { meter.Charge(CostMeter::Op::kLoad, 0); });
  while (clock.sleepers() == 0) std::this_thread::yield();
  const TimePoint start = clock.Now();
  clock.Advance(std::chrono::seconds(10));  // 20 s * 0.5
  loader.join();
  EXPECT_EQ(clock.Now() - start, std::chrono::seconds(10));
  EXPECT_EQ(meter.Snapshot().loads, 1u);
}

TEST(DeviceSpecTest, VirtualLibrary) {
  auto s = ParseDeviceSpec("vtl:/srv/vtl");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, DeviceSpec::Kind::kVirtualLibrary);
  EXPECT_EQ(s->path, "/srv/vtl");
  EXPECT_EQ(s->drive, 0);
  EXPECT_EQ(s->ToString(), "vtl:/srv/vtl");

  s = ParseDeviceSpec("vtl:lib#2", "/etc/hsmfs");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->path, "/etc/hsmfs/lib");
  EXPECT_EQ(s->drive, 2);
  EXPECT_EQ(s->ToString(), "vtl:/etc/hsmfs/lib#2");
  EXPECT_EQ(ParseDeviceSpec(s->ToString())->path, s->path);

  s = ParseDeviceSpec("vtl:lib");  // no base: left relative
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->path, "lib");
}

TEST(DeviceSpecTest, StDevice) {
  auto s = ParseDeviceSpec("/dev/nst0");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, DeviceSpec::Kind::kStDevice);
  EXPECT_EQ(s->path, "/dev/nst0");
  EXPECT_EQ(s->ToString(), "/dev/nst0");
  EXPECT_TRUE(ParseDeviceSpec("/dev/tape/by-id/scsi-35000-nst").ok());
  EXPECT_TRUE(ParseDeviceSpec("/dev/nst1l").ok());
}

TEST(DeviceSpecTest, ErrorsNameTheSpec) {
  auto s = ParseDeviceSpec("/dev/st0");
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("use /dev/nst0"), std::string::npos) << s.status().message();
  EXPECT_EQ(ParseDeviceSpec("/dev/st1m").status().code(), Code::kInvalidArgument);
  for (const char* bad :
       {"", "vtl:", "vtl:#1", "vtl:dir#", "vtl:dir#x", "vtl:dir#-1", "nst0", "tape0"}) {
    auto r = ParseDeviceSpec(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace hsmfs::tape
