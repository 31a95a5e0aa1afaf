#include "backends/testing/fault_injecting_backend.h"

#include <gtest/gtest.h>

#include <thread>

#include "backends/testing/fake_backend.h"

namespace hsmfs::backends {
namespace {

using namespace std::chrono_literals;

class FaultInjectingBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<FakeBackend>();
    fake_ = fake.get();
    fake_->AddFile("f", "data");
    backend_ = std::make_unique<FaultInjectingBackend>(std::move(fake), clock_);
  }
  FakeClock clock_;
  FakeBackend* fake_;
  std::unique_ptr<FaultInjectingBackend> backend_;
};

TEST_F(FaultInjectingBackendTest, FailNthFailsExactlyThatCall) {
  backend_->FailNth(Op::kStat, 2, UnavailableError("injected"));
  EXPECT_TRUE(backend_->Stat("f").ok());
  EXPECT_EQ(backend_->Stat("f").status().code(), Code::kUnavailable);
  EXPECT_TRUE(backend_->Stat("f").ok());
  EXPECT_EQ(backend_->calls(Op::kStat), 3);
  // Injected failures never reach the wrapped backend.
  EXPECT_EQ(fake_->calls(Op::kStat), 2);
}

TEST_F(FaultInjectingBackendTest, FailFirstThenSucceed) {
  backend_->FailFirst(Op::kStage, 2, UnavailableError("busy"));
  EXPECT_FALSE(backend_->Stage("f", Deadline::Never()).ok());
  EXPECT_FALSE(backend_->Stage("f", Deadline::Never()).ok());
  EXPECT_TRUE(backend_->Stage("f", Deadline::Never()).ok());
}

TEST_F(FaultInjectingBackendTest, FailAlwaysUntilCleared) {
  backend_->FailAlways(Op::kRemove, FailedPreconditionError("read-only"));
  EXPECT_EQ(backend_->Remove("f").code(), Code::kFailedPrecondition);
  EXPECT_EQ(backend_->Remove("f").code(), Code::kFailedPrecondition);
  backend_->Clear(Op::kRemove);
  EXPECT_TRUE(backend_->Remove("f").ok());
  EXPECT_EQ(backend_->calls(Op::kRemove), 3);
}

TEST_F(FaultInjectingBackendTest, DelaySleepsOnTheInjectedClock) {
  backend_->Delay(Op::kStat, 5s);
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_TRUE(backend_->Stat("f").ok());
    done = true;
  });
  while (clock_.sleepers() == 0) std::this_thread::yield();
  EXPECT_FALSE(done);
  clock_.Advance(5s);
  t.join();
  EXPECT_TRUE(done);
}

TEST_F(FaultInjectingBackendTest, HangUntilUnhang) {
  backend_->Hang(Op::kStat);
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_TRUE(backend_->Stat("f").ok());
    done = true;
  });
  while (backend_->hanging() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(done);
  backend_->Unhang(Op::kStat);
  t.join();
  EXPECT_TRUE(done);
}

TEST_F(FaultInjectingBackendTest, HungReadEndsWhenCancelled) {
  backend_->Hang(Op::kRead);
  CancelToken cancel;
  ReadOptions o;
  o.cancel = &cancel;
  Status result;
  std::thread t([&] { result = backend_->Read("f", "/tmp/hsmfs_fault_test_out", o); });
  while (backend_->hanging() == 0) std::this_thread::yield();
  cancel.Cancel();
  t.join();
  EXPECT_EQ(result.code(), Code::kCancelled);
  EXPECT_EQ(fake_->calls(Op::kRead), 0);
}

}  // namespace
}  // namespace hsmfs::backends
