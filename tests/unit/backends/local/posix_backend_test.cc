#include "backends/local/posix_backend.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace hsmfs::backends {
namespace {

namespace stdfs = std::filesystem;

std::string Slurp(const stdfs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PosixBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_posix_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    root_ = dir_ / "root";
    stdfs::create_directories(root_ / "in");
    stdfs::create_directories(dir_ / "elsewhere");
    std::ofstream(dir_ / "secret") << "secret data";
    std::ofstream(dir_ / "src") << "payload";
    backend_ = std::make_unique<PosixBackend>(root_, Duration(0), clock_);
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  std::vector<std::string> Names(const ObjectPath& dir) {
    std::vector<std::string> names;
    Status s = backend_->List(
        dir,
        [&](std::vector<ObjectInfo>&& batch) {
          for (auto& o : batch) names.push_back(o.name);
          return Status::Ok();
        },
        CancelToken::None());
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::sort(names.begin(), names.end());
    return names;
  }

  FakeClock clock_;
  stdfs::path dir_, root_;
  std::unique_ptr<PosixBackend> backend_;
};

// Issue 15 item 2: a file swapped for a symlink after it was listed must not
// serve what the link points to.
TEST_F(PosixBackendTest, ReadRefusesASymlinkedFile) {
  stdfs::create_symlink(dir_ / "secret", root_ / "in" / "f");
  Status s = backend_->Read("in/f", dir_ / "got", ReadOptions());
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_NE(Slurp(dir_ / "got"), "secret data");
  auto st = backend_->Stat("in/f");  // a symlink is data: shown as one, never followed
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->type, ObjectType::kSymlink);
}

TEST_F(PosixBackendTest, ReadRefusesASymlinkedDirectoryOnTheWay) {
  std::ofstream(dir_ / "elsewhere" / "f") << "outside";
  stdfs::create_symlink(dir_ / "elsewhere", root_ / "link");
  EXPECT_EQ(backend_->Read("link/f", dir_ / "got", ReadOptions()).code(), Code::kPermissionDenied);
  EXPECT_FALSE(backend_->Stat("link/f").ok());
}

// Issue 15 item 2: a symlinked directory must not send an archived file elsewhere.
TEST_F(PosixBackendTest, PutRefusesASymlinkedDirectory) {
  stdfs::create_symlink(dir_ / "elsewhere", root_ / "in" / "sub");
  auto put = backend_->Put(dir_ / "src", "in/sub/y", PutOptions());
  EXPECT_EQ(put.status().code(), Code::kPermissionDenied) << put.status().ToString();
  EXPECT_TRUE(stdfs::is_empty(dir_ / "elsewhere"));
  EXPECT_EQ(backend_->MakeDir("in/sub/d", 0755).code(), Code::kPermissionDenied);
  EXPECT_EQ(backend_->Rename("in/sub", "in/other").code(), Code::kOk);  // the link itself moves
  EXPECT_TRUE(stdfs::is_symlink(root_ / "in" / "other"));
  EXPECT_EQ(backend_->Remove("in/other/x").code(), Code::kPermissionDenied);
}

// The same confinement where the kernel has no openat2.
TEST_F(PosixBackendTest, WalkWithoutOpenat2RefusesSymlinksToo) {
  UseOpenat2FallbackForTesting(true);
  stdfs::create_symlink(dir_ / "secret", root_ / "in" / "f");
  stdfs::create_symlink(dir_ / "elsewhere", root_ / "in" / "sub");
  EXPECT_EQ(backend_->Read("in/f", dir_ / "got", ReadOptions()).code(), Code::kPermissionDenied);
  EXPECT_EQ(backend_->Put(dir_ / "src", "in/sub/y", PutOptions()).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(backend_->Read("in/sub/y", dir_ / "got", ReadOptions()).code(),
            Code::kPermissionDenied);
  EXPECT_TRUE(stdfs::is_empty(dir_ / "elsewhere"));
  ASSERT_TRUE(backend_->Put(dir_ / "src", "in/deep/er/z", PutOptions()).ok());
  EXPECT_EQ(Slurp(root_ / "in" / "deep" / "er" / "z"), "payload");
  UseOpenat2FallbackForTesting(false);
}

// Symlinks are data (listed as such, with their target), never files.
TEST_F(PosixBackendTest, SymlinksAreListedAsSymlinksNotFiles) {
  stdfs::create_symlink(dir_ / "secret", root_ / "in" / "l");
  std::ofstream(root_ / "in" / "real") << "x";
  EXPECT_EQ(Names("in"), (std::vector<std::string>{"l", "real"}));
  auto l = backend_->Stat("in/l");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->type, ObjectType::kSymlink);
  EXPECT_EQ(l->link_target, (dir_ / "secret").string());
  PutOptions po;
  po.symlink_target = "../elsewhere/x";
  auto put = backend_->Put("", "in/made", po);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->type, ObjectType::kSymlink);
  EXPECT_EQ(stdfs::read_symlink(root_ / "in" / "made"), "../elsewhere/x");
  EXPECT_TRUE(stdfs::is_empty(root_ / ".hsmfs-tmp"));
}

// Issue 15 item 5: the temporary name no longer grows with the target's.
TEST_F(PosixBackendTest, PutsA255ByteName) {
  const std::string name(255, 'n');
  auto put = backend_->Put(dir_ / "src", "in/" + name, PutOptions());
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(Slurp(root_ / "in" / name), "payload");
  EXPECT_EQ(Names("in"), std::vector<std::string>{name});
}

// Issue 15 item 5: only hsmfs's own temporaries are hidden.
TEST_F(PosixBackendTest, ListsNamesThatLookLikeOldTemporaries) {
  ASSERT_TRUE(backend_->Put(dir_ / "src", "in/.x.hsmfs-put-abc", PutOptions()).ok());
  std::ofstream(root_ / "in" / ".y.hsmfs-put-ABC123") << "z";
  EXPECT_EQ(Names("in"), (std::vector<std::string>{".x.hsmfs-put-abc", ".y.hsmfs-put-ABC123"}));
}

TEST_F(PosixBackendTest, ReservedNamesAreHiddenAndRefused) {
  ASSERT_TRUE(backend_->WriteRootId("abc").ok());
  ASSERT_TRUE(backend_->Put(dir_ / "src", "in/f", PutOptions()).ok());  // makes .hsmfs-tmp
  EXPECT_TRUE(stdfs::exists(root_ / ".hsmfs-root"));
  EXPECT_TRUE(stdfs::is_directory(root_ / ".hsmfs-tmp"));
  EXPECT_EQ(Names(""), std::vector<std::string>{"in"});
  EXPECT_EQ(backend_->Put(dir_ / "src", ".hsmfs-root", PutOptions()).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(backend_->Remove(".hsmfs-tmp").code(), Code::kPermissionDenied);
  EXPECT_TRUE(stdfs::is_empty(root_ / ".hsmfs-tmp"));  // the Put renamed its temporary away
}

// Issue 15 item 1: once the root's id is expected, an empty directory in its
// place (an export not mounted) is refused, not listed as empty or written to.
TEST_F(PosixBackendTest, RefusesARootWithoutTheExpectedId) {
  std::ofstream(root_ / "in" / "f") << "x";
  ASSERT_EQ(*backend_->ReadRootId(), "");
  ASSERT_TRUE(backend_->WriteRootId("id-1").ok());
  EXPECT_EQ(*backend_->ReadRootId(), "id-1");
  backend_->ExpectRootId("id-1");
  EXPECT_EQ(Names("in"), std::vector<std::string>{"f"});
  stdfs::rename(root_, dir_ / "real");
  stdfs::create_directories(root_);
  Status s = backend_->List(
      "", [](std::vector<ObjectInfo>&&) { return Status::Ok(); }, CancelToken::None());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(".hsmfs-root is missing"), std::string::npos) << s.message();
  EXPECT_EQ(backend_->Put(dir_ / "src", "in/g", PutOptions()).status().code(), Code::kUnavailable);
  EXPECT_EQ(backend_->Stat("in/f").status().code(), Code::kUnavailable);
  EXPECT_TRUE(stdfs::is_empty(root_));
  std::ofstream(root_ / ".hsmfs-root") << "id-2\n";
  EXPECT_EQ(backend_->Stat("").status().code(), Code::kUnavailable);
  stdfs::remove_all(root_);
  stdfs::rename(dir_ / "real", root_);
  EXPECT_TRUE(backend_->Stat("in/f").ok());
}

// Issue 15 item 6: a Put killed mid-copy leaves its temporary in .hsmfs-tmp,
// which only the writer's death makes removable.
TEST_F(PosixBackendTest, LeftoversOfDeadWritersAreStale) {
  ASSERT_TRUE(backend_->Put(dir_ / "src", "in/f", PutOptions()).ok());
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = "0123456789abcdef." + std::to_string(child) + "." + host;
  const std::string alive = "fedcba9876543210." + std::to_string(::getpid()) + "." + host;
  std::ofstream(root_ / ".hsmfs-tmp" / dead) << "partial";
  std::ofstream(root_ / ".hsmfs-tmp" / alive) << "in progress";
  std::ofstream(root_ / ".hsmfs-tmp" / "notours") << "?";
  auto left = backend_->Leftovers();
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  ASSERT_EQ(left->size(), 3u);
  int stale = 0;
  for (const Leftover& l : *left) {
    stale += l.stale;
    EXPECT_EQ(l.stale, l.name == ".hsmfs-tmp/" + dead) << l.name;
  }
  EXPECT_EQ(stale, 1);
  EXPECT_EQ(backend_->RemoveLeftover(".hsmfs-tmp/" + alive).code(), Code::kFailedPrecondition);
  EXPECT_EQ(backend_->RemoveLeftover(".hsmfs-tmp/notours").code(), Code::kFailedPrecondition);
  EXPECT_TRUE(backend_->RemoveLeftover(".hsmfs-tmp/" + dead).ok());
  EXPECT_FALSE(stdfs::exists(root_ / ".hsmfs-tmp" / dead));
  EXPECT_TRUE(stdfs::exists(root_ / ".hsmfs-tmp" / alive));
}

}  // namespace
}  // namespace hsmfs::backends
