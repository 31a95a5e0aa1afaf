#include "engine/root_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "backends/local/posix_backend.h"
#include "catalog/backend_ids.h"
#include "catalog/sqlite/raw_access.h"

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;

class RootGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_guard_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    root_ = dir_ / "root";
    stdfs::create_directories(root_ / "in");
    catalog_ = std::move(catalog::Catalog::Open(dir_ / "catalog.db")).value();
    {
      auto s = catalog_->Acquire();
      vault_ = *s->EnsureBackendRoot("vault", 1);
    }
    backend_ = std::make_unique<backends::PosixBackend>(root_, Duration(0), clock_);
    backends_["vault"] = backend_.get();
    guard_ = std::make_unique<RootGuard>(*catalog_, backends_, clock_);
  }
  void TearDown() override {
    guard_.reset();
    catalog_.reset();
    stdfs::remove_all(dir_);
  }
  std::string TopError() {
    auto s = catalog_->Acquire();
    return s->Get(vault_.id)->error;
  }
  std::string Recorded() {
    auto s = catalog_->Acquire();
    return catalog::GetBackendRootId(*s, "vault")->value_or("");
  }
  void SwapInEmptyRoot() {
    stdfs::rename(root_, dir_ / "real");
    stdfs::create_directories(root_);
  }
  void SwapBack() {
    stdfs::remove_all(root_);
    stdfs::rename(dir_ / "real", root_);
  }
  // Makes the catalog say files came from the backend (a listing found some).
  void MarkUsed() {
    auto s = catalog_->Acquire();
    catalog::Entry f;
    f.name = "f";
    ASSERT_TRUE(s->UpsertListed(vault_, f, 5, nullptr).ok());
  }

  FakeClock clock_;
  stdfs::path dir_, root_;
  std::unique_ptr<catalog::Catalog> catalog_;
  catalog::Entry vault_;
  std::unique_ptr<backends::PosixBackend> backend_;
  BackendMap backends_;
  std::unique_ptr<RootGuard> guard_;
};

TEST_F(RootGuardTest, FirstUseInitialisesTheRoot) {
  ASSERT_TRUE(guard_->Check("vault").ok());
  const std::string id = Recorded();
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(*backend_->ReadRootId(), id);
  EXPECT_TRUE(guard_->Check("vault").ok());
  EXPECT_EQ(Recorded(), id);
}

// Issue 15 item 1: the root briefly an empty directory is refused, with the
// error on the backend's directory, and accepted again when it is back.
TEST_F(RootGuardTest, RefusesAnEmptyDirectoryInPlaceOfTheRoot) {
  ASSERT_TRUE(guard_->Check("vault").ok());
  SwapInEmptyRoot();
  Status s = guard_->Check("vault");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("E-ROOT-01"), std::string::npos) << s.message();
  EXPECT_NE(TopError().find("E-ROOT-01"), std::string::npos) << TopError();
  EXPECT_TRUE(stdfs::is_empty(root_));  // never marked as the root
  // Another catalog's root is refused just the same.
  std::ofstream(root_ / ".hsmfs-root") << "someone-else\n";
  EXPECT_EQ(guard_->Check("vault").code(), Code::kUnavailable);
  SwapBack();
  EXPECT_TRUE(guard_->Check("vault").ok());
  EXPECT_EQ(TopError(), "");
}

TEST_F(RootGuardTest, UsedBackendWithEmptyUnmarkedRootIsRefused) {
  MarkUsed();                         // a catalog from before root ids
  Status s = guard_->Check("vault");  // not empty: adopted
  EXPECT_TRUE(s.ok()) << s.ToString();
  stdfs::remove(root_ / ".hsmfs-root");
  {
    auto session = catalog_->Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*session).Exec("DELETE FROM backend_ids").ok());
  }
  stdfs::remove_all(root_ / "in");
  s = guard_->Check("vault");
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_FALSE(stdfs::exists(root_ / ".hsmfs-root"));
  // The admin adopts it.
  auto id = guard_->InitRoot("vault", false);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*backend_->ReadRootId(), *id);
  EXPECT_TRUE(guard_->Check("vault").ok());
}

TEST_F(RootGuardTest, InitRootWritesTheCatalogsIdIntoANewRoot) {
  ASSERT_TRUE(guard_->Check("vault").ok());
  const std::string id = Recorded();
  SwapInEmptyRoot();
  EXPECT_FALSE(guard_->Check("vault").ok());
  auto got = guard_->InitRoot("vault", false);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, id);
  EXPECT_TRUE(guard_->Check("vault").ok());
  // A root carrying another id is replaced only with force.
  backend_->WriteRootId("other").IgnoreError();
  EXPECT_EQ(guard_->InitRoot("vault", false).status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(guard_->InitRoot("vault", true).ok());
  EXPECT_EQ(*backend_->ReadRootId(), id);
}

TEST_F(RootGuardTest, MissingRootIsUnavailableWithAnError) {
  stdfs::remove_all(root_);
  Status s = guard_->Check("vault");
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(TopError().find("E-ROOT-02"), std::string::npos) << TopError();
  EXPECT_NE(TopError().find("not reachable"), std::string::npos) << TopError();
  stdfs::create_directories(root_);
  EXPECT_TRUE(guard_->Check("vault").ok());  // unused: first use initialises
  EXPECT_EQ(TopError(), "");
}

// Sets or clears the immutable flag of `dir` (even root cannot create files in
// an immutable directory: the stand-in for a read-only export). False when the
// file system or the caller cannot.
bool SetImmutable(const stdfs::path& dir, bool on) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  ::close(fd);
  return ok;
}

TEST_F(RootGuardTest, AReadOnlyRootOfABackendWithoutWritableDirectoriesIsUsedUnguarded) {
  if (!SetImmutable(root_, true)) GTEST_SKIP() << "cannot make a directory immutable here";
  std::ofstream(dir_ / "probe").put('x');
  const bool blocked = !std::ofstream(root_ / "probe");
  RootGuard read_only_guard(*catalog_, backends_, clock_, {"vault"});
  const Status ro = read_only_guard.Check("vault");
  const Status again = read_only_guard.Check("vault");
  const std::string error_after_ro = TopError();
  const Status writable = guard_->Check("vault");  // the same root, writable dirs configured
  SetImmutable(root_, false);
  ASSERT_TRUE(blocked) << "the immutable root still took a file";
  EXPECT_TRUE(ro.ok()) << ro.ToString();
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(Recorded(), "");  // nothing recorded: it is never refused for a missing marker
  EXPECT_EQ(error_after_ro, "");
  // A backend that archives there needs its marker: refused, with the reason.
  EXPECT_EQ(writable.code(), Code::kUnavailable);
  EXPECT_NE(TopError().find("E-ROOT-02"), std::string::npos) << TopError();
  EXPECT_FALSE(stdfs::exists(root_ / ".hsmfs-root"));
}

TEST_F(RootGuardTest, ConcurrentFirstChecksAllSeeTheNewRoot) {
  // The mount's first listings and archive jobs check at once: none of them
  // may take the marker being written for a root without one.
  std::vector<Status> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = guard_->Check("vault"); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(*backend_->ReadRootId(), Recorded());
  EXPECT_EQ(TopError(), "");
}

}  // namespace
}  // namespace hsmfs::fs
