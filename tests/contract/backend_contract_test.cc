// The Backend contract (backends/backend.h), run over every implementation
// that keeps a writable tree: posix, the fakes, and HPSS over its hsi/htar
// EMULATOR (tests/emulators/hpss). Tape (append-only units, tested in
// tape_backend_test) and iRODS (a server emulator, irods_backend_test) have
// suites of their own. A factory's kMtimeNs is the mtime resolution its
// backend keeps (HPSS listings show whole seconds).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "backends/hpss/hpss_backend.h"
#include "backends/local/posix_backend.h"
#include "backends/testing/fake_backend.h"
#include "backends/testing/fault_injecting_backend.h"
#include "common/checksum.h"

namespace hsmfs::backends {
namespace {

namespace stdfs = std::filesystem;

stdfs::path TempDir(const std::string& tag) {
  static int counter = 0;
  const stdfs::path p =
      stdfs::temp_directory_path() / ("hsmfs_contract_" + std::to_string(::getpid()) + "_" + tag +
                                      "_" + std::to_string(counter++));
  stdfs::remove_all(p);
  stdfs::create_directories(p);
  return p;
}

struct PosixFactory {
  static constexpr int64_t kMtimeNs = 1;
  stdfs::path root = TempDir("root");
  std::unique_ptr<Backend> Make(Clock& clock) {
    return std::make_unique<PosixBackend>(root, Duration(0), clock);
  }
  ~PosixFactory() { stdfs::remove_all(root); }
};

struct FakeFactory {
  static constexpr int64_t kMtimeNs = 1;
  std::unique_ptr<Backend> Make(Clock&) { return std::make_unique<FakeBackend>(); }
};

struct FaultInjectingFakeFactory {
  static constexpr int64_t kMtimeNs = 1;
  std::unique_ptr<Backend> Make(Clock& clock) {
    return std::make_unique<FaultInjectingBackend>(std::make_unique<FakeBackend>(), clock);
  }
};

struct HpssEmulatorFactory {
  static constexpr int64_t kMtimeNs = 1'000'000'000;
  stdfs::path dir = TempDir("hpss");
  std::unique_ptr<Backend> Make(Clock& clock) {
    stdfs::create_directories(dir / "hpss/home/elvis");
    ::setenv("HPSS_EMU_ROOT", (dir / "hpss").c_str(), 1);
    ::setenv("HPSS_EMU_STATE", (dir / "state").c_str(), 1);
    ::unsetenv("HPSS_EMU_FAULTS");
    ::unsetenv("HPSS_EMU_RECALL_DELAY");
    const stdfs::path emulator = stdfs::path(HSMFS_SOURCE_DIR) / "tests/emulators/hpss";
    hpss::HpssOptions o;
    o.root = "/home/elvis";
    o.hsi = emulator / "hsi";
    o.htar = emulator / "htar";
    return std::make_unique<hpss::HpssBackend>(o, clock);
  }
  ~HpssEmulatorFactory() { stdfs::remove_all(dir); }
};

template <typename Factory>
class BackendContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = factory_.Make(clock_);
    scratch_ = TempDir("scratch");
  }
  void TearDown() override { stdfs::remove_all(scratch_); }

  stdfs::path Local(const std::string& data) {
    const stdfs::path p = scratch_ / ("src" + std::to_string(n_++));
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  static std::string Slurp(const stdfs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  Result<ObjectInfo> Put(const ObjectPath& path, const std::string& data, int64_t mtime = 0) {
    PutOptions o;
    o.mtime_ns = mtime;
    return backend_->Put(Local(data), path, o);
  }
  std::vector<ObjectInfo> ListAll(const ObjectPath& dir, Status* status = nullptr) {
    std::vector<ObjectInfo> all;
    Status s = backend_->List(
        dir,
        [&](std::vector<ObjectInfo>&& batch) {
          for (auto& o : batch) all.push_back(std::move(o));
          return Status::Ok();
        },
        CancelToken::None());
    if (status) *status = s;
    std::sort(all.begin(), all.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return all;
  }
  Result<std::string> ReadAll(const ObjectPath& path, const ReadOptions& options = {}) {
    const stdfs::path dest = scratch_ / ("dest" + std::to_string(n_++));
    HSMFS_RETURN_IF_ERROR(backend_->Read(path, dest, options));
    return Slurp(dest);
  }

  FakeClock clock_;
  Factory factory_;
  std::unique_ptr<Backend> backend_;
  stdfs::path scratch_;
  std::atomic<int> n_{0};  // Local() is called from several threads
};

using Implementations =
    ::testing::Types<PosixFactory, FakeFactory, FaultInjectingFakeFactory, HpssEmulatorFactory>;
TYPED_TEST_SUITE(BackendContractTest, Implementations);

TYPED_TEST(BackendContractTest, PutThenStatAndReadBack) {
  std::string data(300'000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  auto put = this->Put("file.bin", data, 1'600'000'000'123'000'000);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, data.size());
  EXPECT_EQ(put->type, ObjectType::kFile);
  auto st = this->backend_->Stat("file.bin");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->name, "file.bin");
  EXPECT_EQ(st->size, data.size());
  constexpr int64_t kRes = TypeParam::kMtimeNs;
  EXPECT_EQ(st->mtime_ns, 1'600'000'000'123'000'000 / kRes * kRes);
  EXPECT_EQ(*this->ReadAll("file.bin"), data);
}

TYPED_TEST(BackendContractTest, EmptyFile) {
  ASSERT_TRUE(this->Put("empty", "").ok());
  EXPECT_EQ(this->backend_->Stat("empty")->size, 0u);
  EXPECT_EQ(*this->ReadAll("empty"), "");
}

TYPED_TEST(BackendContractTest, PutCreatesParentsAndListShowsChildren) {
  ASSERT_TRUE(this->Put("a/b/c.txt", "ccc").ok());
  ASSERT_TRUE(this->Put("a/d.txt", "dd").ok());
  auto top = this->ListAll("");
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].name, "a");
  EXPECT_EQ(top[0].type, ObjectType::kDir);
  auto a = this->ListAll("a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].name, "b");
  EXPECT_EQ(a[0].type, ObjectType::kDir);
  EXPECT_EQ(a[1].name, "d.txt");
  EXPECT_EQ(a[1].type, ObjectType::kFile);
  EXPECT_EQ(a[1].size, 2u);
}

TYPED_TEST(BackendContractTest, ListingManyEntriesArrivesWhole) {
  for (int i = 0; i < 1500; ++i) {
    ASSERT_TRUE(this->backend_->MakeDir("d" + std::to_string(i), 0755).ok());
  }
  EXPECT_EQ(this->ListAll("").size(), 1500u);
}

TYPED_TEST(BackendContractTest, MissingObjects) {
  EXPECT_EQ(this->backend_->Stat("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(this->ReadAll("nope").status().code(), Code::kNotFound);
  Status s;
  this->ListAll("nope", &s);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(this->backend_->Remove("nope").code(), Code::kNotFound);
  EXPECT_EQ(this->backend_->Rename("nope", "other").code(), Code::kNotFound);
  EXPECT_EQ(this->backend_->Stage("nope", Deadline::Never()).code(), Code::kNotFound);
}

TYPED_TEST(BackendContractTest, ListOfAFileIsNotADirectory) {
  ASSERT_TRUE(this->Put("f", "x").ok());
  Status s;
  this->ListAll("f", &s);
  EXPECT_EQ(s.code(), Code::kNotDirectory);
}

TYPED_TEST(BackendContractTest, ReadVerifiesExpectedChecksum) {
  ASSERT_TRUE(this->Put("f", "abc").ok());
  ReadOptions good;
  good.expect_checksum = "md5:900150983cd24fb0d6963f7d28e17f72";
  EXPECT_EQ(*this->ReadAll("f", good), "abc");
  ReadOptions bad;
  bad.expect_checksum = "md5:00000000000000000000000000000000";
  EXPECT_EQ(this->ReadAll("f", bad).status().code(), Code::kDataLoss);
}

TYPED_TEST(BackendContractTest, ReadHonoursCancellation) {
  ASSERT_TRUE(this->Put("f", std::string(100000, 'z')).ok());
  CancelToken cancel;
  cancel.Cancel();
  ReadOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(this->ReadAll("f", o).status().code(), Code::kCancelled);
}

TYPED_TEST(BackendContractTest, PutReplacesContent) {
  ASSERT_TRUE(this->Put("f", "first version").ok());
  ASSERT_TRUE(this->Put("f", "v2").ok());
  EXPECT_EQ(*this->ReadAll("f"), "v2");
  EXPECT_EQ(this->backend_->Stat("f")->size, 2u);
  EXPECT_EQ(this->ListAll("").size(), 1u);  // no temporary files left behind
}

TYPED_TEST(BackendContractTest, RemoveFilesAndEmptyDirectories) {
  ASSERT_TRUE(this->Put("d/f", "x").ok());
  EXPECT_EQ(this->backend_->Remove("d").code(), Code::kNotEmpty);
  EXPECT_TRUE(this->backend_->Remove("d/f").ok());
  EXPECT_TRUE(this->backend_->Remove("d").ok());
  EXPECT_EQ(this->backend_->Stat("d").status().code(), Code::kNotFound);
}

TYPED_TEST(BackendContractTest, RenameMovesFilesAndTrees) {
  ASSERT_TRUE(this->Put("d/f", "payload").ok());
  ASSERT_TRUE(this->backend_->Rename("d/f", "d/g").ok());
  EXPECT_EQ(*this->ReadAll("d/g"), "payload");
  EXPECT_EQ(this->backend_->Stat("d/f").status().code(), Code::kNotFound);
  ASSERT_TRUE(this->backend_->Rename("d", "e").ok());
  EXPECT_EQ(*this->ReadAll("e/g"), "payload");
  EXPECT_EQ(this->backend_->Stat("d").status().code(), Code::kNotFound);
}

TYPED_TEST(BackendContractTest, MakeDir) {
  ASSERT_TRUE(this->backend_->MakeDir("new", 0750).ok());
  EXPECT_EQ(this->backend_->Stat("new")->type, ObjectType::kDir);
  EXPECT_EQ(this->backend_->Stat("new")->mode, 0750u);
  EXPECT_EQ(this->backend_->MakeDir("new", 0750).code(), Code::kAlreadyExists);
  EXPECT_EQ(this->backend_->MakeDir("missing/child", 0755).code(), Code::kNotFound);
}

TYPED_TEST(BackendContractTest, StageOfAnExistingObjectSucceeds) {
  ASSERT_TRUE(this->Put("f", "x").ok());
  EXPECT_TRUE(this->backend_->Stage("f", Deadline::Never()).ok());
}

TYPED_TEST(BackendContractTest, MalformedPathsAreRejected) {
  for (const char* bad : {"../etc/passwd", "/abs", "a//b", "a/./b", "trailing/"}) {
    EXPECT_EQ(this->backend_->Stat(bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(this->Put(bad, "x").status().code(), Code::kInvalidArgument) << bad;
  }
}

TYPED_TEST(BackendContractTest, ConcurrentPutsAndReads) {
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string path = "t" + std::to_string(t) + "/f" + std::to_string(i);
        const std::string data(static_cast<size_t>(i * 100 + t), static_cast<char>('a' + t));
        PutOptions o;
        if (!this->backend_->Put(this->Local(data), path, o).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(this->ListAll("t3").size(), 20u);
  EXPECT_EQ(*this->ReadAll("t2/f7"), std::string(702, 'c'));
}

// Posix-only behaviour.

TYPED_TEST(BackendContractTest, SymlinksAreStoredAndListedAsTheirTarget) {
  ASSERT_TRUE(this->Put("d/f", "payload").ok());
  PutOptions o;
  o.symlink_target = "../d/f";
  auto made = this->backend_->Put({}, "d/rel", o);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->type, ObjectType::kSymlink);
  EXPECT_EQ(made->link_target, "../d/f");
  o.symlink_target = "no/such/target";
  ASSERT_TRUE(this->backend_->Put({}, "e/dangling", o).ok());  // makes the parent
  auto dangling = this->backend_->Stat("e/dangling");
  ASSERT_TRUE(dangling.ok()) << dangling.status().ToString();
  EXPECT_EQ(dangling->type, ObjectType::kSymlink);
  EXPECT_EQ(dangling->link_target, "no/such/target");
  EXPECT_EQ(dangling->size, 14u);
  const auto listed = this->ListAll("d");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].name, "rel");
  EXPECT_EQ(listed[1].type, ObjectType::kSymlink);
  EXPECT_EQ(listed[1].link_target, "../d/f");
  ASSERT_TRUE(this->backend_->Rename("d/rel", "d/moved").ok());
  EXPECT_EQ(this->backend_->Stat("d/moved")->link_target, "../d/f");
  ASSERT_TRUE(this->backend_->Remove("d/moved").ok());
  EXPECT_EQ(this->backend_->Stat("d/moved").status().code(), Code::kNotFound);
  EXPECT_EQ(*this->ReadAll("d/f"), "payload");  // the target was never touched
}

class PosixBackendTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = TempDir("posix"); }
  void TearDown() override { stdfs::remove_all(root_); }
  FakeClock clock_;
  stdfs::path root_;
};

TEST_F(PosixBackendTest, UnreachableRootIsUnavailableNotNotFound) {
  PosixBackend b(root_ / "gone", Duration(0), clock_);
  EXPECT_EQ(b.Stat("x").status().code(), Code::kUnavailable);
  Status s = b.List(
      "", [](std::vector<ObjectInfo>&&) { return Status::Ok(); }, CancelToken::None());
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("not reachable"), std::string::npos);
}

TEST_F(PosixBackendTest, SymlinksAreListedNeverFollowedAndSpecialFilesAreNotObjects) {
  std::ofstream(root_ / "real") << "x";
  stdfs::create_symlink(root_ / "real", root_ / "link");
  stdfs::create_symlink("/etc", root_ / "outside");  // out of the root: never entered
  ::mkfifo((root_ / "fifo").c_str(), 0600);
  PosixBackend b(root_, Duration(0), clock_);
  std::map<std::string, ObjectInfo> listed;
  ASSERT_TRUE(b.List(
                   "",
                   [&](std::vector<ObjectInfo>&& batch) {
                     for (auto& o : batch) listed[o.name] = o;
                     return Status::Ok();
                   },
                   CancelToken::None())
                  .ok());
  ASSERT_EQ(listed.size(), 3u);  // not the fifo
  EXPECT_EQ(listed.at("real").type, ObjectType::kFile);
  EXPECT_EQ(listed.at("link").type, ObjectType::kSymlink);
  EXPECT_EQ(listed.at("link").link_target, (root_ / "real").string());
  EXPECT_EQ(listed.at("outside").type, ObjectType::kSymlink);
  EXPECT_EQ(listed.at("outside").link_target, "/etc");
  EXPECT_EQ(listed.at("outside").size, 4u);
  EXPECT_EQ(b.Stat("outside")->type, ObjectType::kSymlink);
  EXPECT_EQ(b.Stat("fifo").status().code(), Code::kNotFound);
  // Reading through one is refused: the data would come from elsewhere.
  EXPECT_FALSE(b.Read("link", root_ / "out", ReadOptions()).ok());
  EXPECT_FALSE(
      b.List(
           "outside", [](std::vector<ObjectInfo>&&) { return Status::Ok(); }, CancelToken::None())
          .ok());
}

TEST_F(PosixBackendTest, LocationIsThePathOnDisk) {
  std::ofstream(root_ / "f") << "x";
  PosixBackend b(root_, Duration(0), clock_);
  EXPECT_EQ(b.Stat("f")->location, (root_ / "f").string());
}

TEST_F(PosixBackendTest, StageDelaySimulatesRecallLatencyOnTheClock) {
  std::ofstream(root_ / "f") << "data";
  PosixBackend b(root_, std::chrono::seconds(30), clock_);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    EXPECT_TRUE(b.Read("f", root_ / "out", ReadOptions()).ok());
    done = true;
  });
  while (clock_.sleepers() == 0) std::this_thread::yield();
  clock_.Advance(std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(done);
  clock_.Advance(std::chrono::seconds(21));
  reader.join();
  EXPECT_TRUE(done);
}

TEST_F(PosixBackendTest, CancelInterruptsTheStageDelay) {
  std::ofstream(root_ / "f") << "data";
  PosixBackend b(root_, std::chrono::hours(1), clock_);
  CancelToken cancel;
  ReadOptions o;
  o.cancel = &cancel;
  Status result;
  std::thread reader([&] { result = b.Read("f", root_ / "out", o); });
  while (clock_.sleepers() == 0) std::this_thread::yield();
  cancel.Cancel();
  // Each slice of the delay is at most 50ms of clock time.
  for (int i = 0; i < 10 && clock_.sleepers() > 0; ++i)
    clock_.Advance(std::chrono::milliseconds(50));
  reader.join();
  EXPECT_EQ(result.code(), Code::kCancelled);
}

}  // namespace
}  // namespace hsmfs::backends
