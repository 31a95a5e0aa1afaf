// The write path and the archiver through FsCore, without a mount: a
// FakeBackend behind a FaultInjectingBackend, a FakeClock, a real catalog and
// cache in a temporary directory.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "backends/testing/fake_backend.h"
#include "backends/testing/fault_injecting_backend.h"
#include "catalog/job_queue.h"
#include "catalog/sqlite/raw_access.h"
#include "common/checksum.h"
#include "common/logging.h"
#include "engine/fsck.h"
#include "fuse/errno_map.h"
#include "fuse/fs_core.h"

namespace hsmfs::fs {
namespace {

using namespace std::chrono_literals;
using backends::FakeBackend;
using backends::FaultInjectingBackend;
using backends::Op;
using catalog::JobState;
namespace stdfs = std::filesystem;

const catalog::Requester kMe{1000, 42, "cp"};

std::string Md5(const std::string& data) {
  auto h = Hasher::Create(ChecksumAlgo::kMd5);
  h->Update(data.data(), data.size());
  return h->Finish();
}

// Passes everything through, except that an armed List reads the backend,
// then waits for Release() before it hands the (by then stale) entries on:
// a listing that overlaps a change made through the mount.
class StaleListBackend final : public backends::Backend {
 public:
  explicit StaleListBackend(std::unique_ptr<Backend> base) : base_(std::move(base)) {}
  void Arm() {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = true;
    read_ = released_ = false;
  }
  void WaitUntilRead() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return read_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

  Status List(const backends::ObjectPath& dir, const backends::ListSink& sink,
              const CancelToken& cancel) override {
    std::vector<backends::ObjectInfo> seen;
    HSMFS_RETURN_IF_ERROR(base_->List(
        dir,
        [&](std::vector<backends::ObjectInfo>&& batch) {
          for (auto& o : batch) seen.push_back(std::move(o));
          return Status::Ok();
        },
        cancel));
    {
      std::unique_lock<std::mutex> l(mu_);
      if (armed_) {
        armed_ = false;
        read_ = true;
        cv_.notify_all();
        cv_.wait(l, [&] { return released_; });
      }
    }
    return sink(std::move(seen));
  }
  Result<backends::ObjectInfo> Stat(const backends::ObjectPath& p) override {
    return base_->Stat(p);
  }
  Status Stage(const backends::ObjectPath& p, Deadline d) override { return base_->Stage(p, d); }
  Status Read(const backends::ObjectPath& p, const stdfs::path& dest,
              const backends::ReadOptions& o) override {
    return base_->Read(p, dest, o);
  }
  Result<backends::ObjectInfo> Put(const stdfs::path& src, const backends::ObjectPath& p,
                                   const backends::PutOptions& o) override {
    return base_->Put(src, p, o);
  }
  Status Remove(const backends::ObjectPath& p) override { return base_->Remove(p); }
  Status Rename(const backends::ObjectPath& a, const backends::ObjectPath& b) override {
    return base_->Rename(a, b);
  }
  Status MakeDir(const backends::ObjectPath& p, uint32_t mode) override {
    return base_->MakeDir(p, mode);
  }
  Status SetDirAttrs(const backends::ObjectPath& p, const backends::DirAttrs& a) override {
    return base_->SetDirAttrs(p, a);
  }

 private:
  std::unique_ptr<Backend> base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, read_ = false, released_ = false;
};

class FsCoreWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_write_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    config_.catalog.path = dir_ / "catalog.db";
    config_.cache.dir = dir_ / "cache";
    config_.cache.write_wait = 2s;
    config_.archive.settle = 5s;
    config_.archive.max_attempts = 3;
    config_.archive.retry_delay = 1s;
    // max_attempts alone, unless a test of outages sets a horizon.
    config_.archive.retry_horizon = 0s;
    BackendConfig vault;
    vault.name = "vault";
    vault.type = "posix";
    vault.root = "/nonexistent";
    vault.writable = {"incoming"};
    config_.backends.push_back(vault);
  }
  void TearDown() override {
    core_.reset();
    engine_.reset();
    stdfs::remove_all(dir_);
  }

  // Starts (or restarts) the engine; the fake backend's contents survive.
  void Start() {
    core_.reset();
    engine_.reset();
    auto fake = std::make_unique<FakeBackend>();
    fake_ = fake.get();
    for (const auto& [path, data] : backend_files_) fake_->AddFile(path, data);
    fake_->AddDir("incoming");
    fake_->AddFile("archived.dat", "old archive data");
    auto faulty = std::make_unique<FaultInjectingBackend>(std::move(fake), clock_);
    faulty_ = faulty.get();
    auto stale = std::make_unique<StaleListBackend>(std::move(faulty));
    stale_ = stale.get();
    EngineOptions options;
    options.run_jobs = true;
    options.backends["vault"] = std::move(stale);
    auto engine = Engine::Open(config_, clock_, std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    core_ = std::make_unique<FsCore>(*engine_, core_options_);
    vault_ = Lookup(catalog::kRootId, "vault")->ino;
    incoming_ = Lookup(vault_, "incoming")->ino;
  }

  Result<Attr> Lookup(uint64_t parent, const std::string& name) {
    std::promise<Result<Attr>> p;
    core_->Lookup(parent, name, [&](Result<Attr> r) { p.set_value(r); });
    return p.get_future().get();
  }
  template <typename Pred>
  bool Drive(Pred pred, Duration step = 100ms) {
    for (int i = 0; i < 3000; ++i) {
      if (pred()) return true;
      clock_.Advance(step);
      std::this_thread::sleep_for(1ms);
    }
    return pred();
  }
  std::string State(uint64_t ino) {
    auto v = core_->GetXattr(ino, "user.hsm.state");
    return v.ok() && *v ? **v : "?";
  }
  // Creates `name` in `dir` holding `data` and closes it.
  uint64_t WriteFile(uint64_t dir, const std::string& name, const std::string& data) {
    auto created = core_->Create(dir, name, 0644, O_WRONLY | O_CREAT, kMe);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return 0;
    EXPECT_TRUE(
        core_->Write(created->first.ino, created->second, data.data(), data.size(), 0).ok());
    core_->Release(created->first.ino, created->second);
    return created->first.ino;
  }
  Result<OpenFile> Open(uint64_t ino, int flags) {
    std::promise<Result<OpenFile>> p;
    core_->Open(ino, flags, kMe, [&](Result<OpenFile> r) { p.set_value(r); });
    auto f = p.get_future();
    if (!Drive([&] { return f.wait_for(0ms) == std::future_status::ready; })) {
      return InternalError("open never answered");
    }
    return f.get();
  }
  std::vector<catalog::Job> Jobs() {
    auto s = engine_->catalog().Acquire();
    return *catalog::JobQueue::List(*s, catalog::JobFilter());
  }
  static std::string ReadFd(int fd) {
    std::string out(1 << 16, '\0');
    const ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  stdfs::path dir_;
  FakeClock clock_;
  Config config_;
  std::map<std::string, std::string> backend_files_;
  FakeBackend* fake_ = nullptr;
  FaultInjectingBackend* faulty_ = nullptr;
  StaleListBackend* stale_ = nullptr;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FsCore> core_;
  FsCore::Options core_options_{0, 0};
  uint64_t vault_ = 0, incoming_ = 0;
};

TEST_F(FsCoreWriteTest, AListingOverlappingARenameOrUnlinkDoesNotUndoIt) {
  config_.backends[0].allow_delete = true;
  backend_files_["incoming/c.dat"] = "c data";
  backend_files_["incoming/gone.dat"] = "to be removed";
  Start();
  ASSERT_TRUE(Lookup(incoming_, "c.dat").ok());
  catalog::Entry dir;
  {
    auto s = engine_->catalog().Acquire();
    dir = *s->Get(static_cast<catalog::EntryId>(incoming_));
  }
  for (int round = 0; round < 2; ++round) {
    // The listing reads the backend before the change and records after it.
    stale_->Arm();
    auto listing = std::async(std::launch::async,
                              [&] { return engine_->sync().ListNow(dir, CancelToken::None()); });
    stale_->WaitUntilRead();
    if (round == 0) {
      ASSERT_TRUE(core_->Rename(incoming_, "c.dat", incoming_, "c2.dat", 0).ok());
    } else {
      ASSERT_TRUE(core_->Unlink(incoming_, "gone.dat").ok());
    }
    stale_->Release();
    ASSERT_TRUE(listing.get().ok());
    // The stale view neither brought the old name back nor dropped the new one.
    EXPECT_EQ(Lookup(incoming_, "c.dat").status().code(), Code::kNotFound) << round;
    EXPECT_TRUE(Lookup(incoming_, "c2.dat").ok()) << round;
    EXPECT_EQ(Lookup(incoming_, "gone.dat").status().code(),
              round == 0 ? Code::kOk : Code::kNotFound);
  }
  // A later listing sees the backend as it is.
  ASSERT_TRUE(engine_->sync().ListNow(dir, CancelToken::None()).ok());
  EXPECT_TRUE(Lookup(incoming_, "c2.dat").ok());
  EXPECT_EQ(Lookup(incoming_, "c.dat").status().code(), Code::kNotFound);
  EXPECT_EQ(fake_->Data("incoming/c2.dat"), "c data");
}

TEST_F(FsCoreWriteTest, AClosedFileIsArchivedAfterSettlingAndVerified) {
  Start();
  const std::string data = "results of run 42\n";
  const uint64_t ino = WriteFile(incoming_, "results.txt", data);
  EXPECT_EQ(State(ino), "online");
  EXPECT_EQ(core_->GetAttr(ino)->size, data.size());
  clock_.Advance(4s);
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(faulty_->calls(Op::kPut), 0);  // still settling
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/results.txt"), data);
  EXPECT_EQ(**core_->GetXattr(ino, "user.hsm.checksum"), Md5(data));
  EXPECT_EQ(faulty_->calls(Op::kRead), 1);  // read back to verify
  // Still readable from the cache without a recall.
  auto f = Open(ino, O_RDONLY);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ReadFd(f->fd), data);
  core_->Release(ino, *f);
}

TEST_F(FsCoreWriteTest, AFileIsReadableWhileItIsWritten) {
  Start();
  auto created = core_->Create(incoming_, "growing.log", 0644, O_WRONLY, kMe);
  ASSERT_TRUE(created.ok());
  const uint64_t ino = created->first.ino;
  ASSERT_TRUE(core_->Write(ino, created->second, "abc", 3, 0).ok());
  auto reader = Open(ino, O_RDONLY);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadFd(reader->fd), "abc");
  EXPECT_EQ(core_->GetAttr(ino)->size, 3u);
  ASSERT_TRUE(core_->Write(ino, created->second, "def", 3, 3).ok());
  EXPECT_EQ(ReadFd(reader->fd), "abcdef");
  EXPECT_EQ(**core_->GetXattr(ino, "user.hsm.state"), "online");
  core_->Release(ino, *reader);
  core_->Release(ino, created->second);
}

TEST_F(FsCoreWriteTest, RewritingBeforeTheJobRunsSupersedesIt) {
  Start();
  faulty_->Hang(Op::kPut);
  const uint64_t ino = WriteFile(incoming_, "data.bin", "version 1");
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  EXPECT_EQ(State(ino), "archiving");
  auto f = Open(ino, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(State(ino), "online");
  ASSERT_TRUE(core_->Write(ino, *f, "version 2", 9, 0).ok());
  core_->Release(ino, *f);
  faulty_->Unhang(Op::kPut);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/data.bin"), "version 2");
  EXPECT_EQ(**core_->GetXattr(ino, "user.hsm.checksum"), Md5("version 2"));
  int superseded = 0, done = 0;
  for (const auto& j : Jobs()) {
    if (j.state == JobState::kCancelled) ++superseded;
    if (j.state == JobState::kDone) ++done;
  }
  EXPECT_EQ(superseded, 1);
  EXPECT_EQ(done, 1);
}

TEST_F(FsCoreWriteTest, AnUnlinkedOpenFileStaysWritable) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "scratch", "abc");
  auto f = Open(ino, O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(core_->Unlink(incoming_, "scratch").ok());
  auto written = core_->Write(ino, *f, "def", 3, 3);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(ReadFd(f->fd), "abcdef");
  core_->Release(ino, *f);
  EXPECT_EQ(Lookup(incoming_, "scratch").status().code(), Code::kNotFound);
  ASSERT_TRUE(Drive([&] { return Jobs().empty() || Jobs()[0].state != JobState::kQueued; }));
  EXPECT_FALSE(fake_->Exists("incoming/scratch"));
}

TEST_F(FsCoreWriteTest, OpeningForWriteWithoutWritingChangesNothing) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  auto f = Open(ino, O_RDWR);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ReadFd(f->fd), "data");
  core_->Release(ino, *f);
  EXPECT_EQ(State(ino), "dual");
  EXPECT_EQ(faulty_->calls(Op::kPut), 1);
}

TEST_F(FsCoreWriteTest, RewritingAnArchivedFileArchivesANewVersion) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "first");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  auto f = Open(ino, O_WRONLY | O_APPEND);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(core_->Write(ino, *f, "+more", 5, 5).ok());
  EXPECT_EQ(State(ino), "online");
  core_->Release(ino, *f);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/f"), "first+more");
}

TEST_F(FsCoreWriteTest, OutsideWritableDirectoriesEverythingIsReadOnly) {
  Start();
  EXPECT_EQ(ToErrno(core_->Create(vault_, "x", 0644, O_WRONLY, kMe).status()), EROFS);
  EXPECT_EQ(ToErrno(core_->MakeDir(vault_, "d", 0755, kMe).status()), EROFS);
  const uint64_t archived = Lookup(vault_, "archived.dat")->ino;
  EXPECT_EQ(ToErrno(Open(archived, O_WRONLY).status()), EROFS);
  EXPECT_EQ(ToErrno(core_->Unlink(vault_, "archived.dat")), EROFS);
  EXPECT_EQ(ToErrno(core_->Rename(vault_, "archived.dat", incoming_, "a", 0)), EROFS);
  std::promise<Result<Attr>> p;
  AttrChange chmod;
  chmod.mode = 0600;
  core_->SetAttr(archived, nullptr, chmod, kMe, [&](Result<Attr> r) { p.set_value(r); });
  EXPECT_EQ(ToErrno(p.get_future().get().status()), EROFS);
  const uint64_t f = WriteFile(incoming_, "f", "x");
  EXPECT_EQ(ToErrno(core_->Rename(incoming_, "f", vault_, "f", 0)), EROFS);
  EXPECT_NE(f, 0u);
}

TEST_F(FsCoreWriteTest, DeletingArchivedDataNeedsAllowDelete) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "keep.dat", "precious");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  const Status s = core_->Unlink(incoming_, "keep.dat");
  EXPECT_EQ(ToErrno(s), EPERM);
  EXPECT_NE(s.message().find("allow_delete"), std::string::npos);
  EXPECT_TRUE(fake_->Exists("incoming/keep.dat"));
  // A file never archived is deleted without asking the backend.
  WriteFile(incoming_, "scratch", "tmp");
  EXPECT_TRUE(core_->Unlink(incoming_, "scratch").ok());
  EXPECT_EQ(faulty_->calls(Op::kRemove), 0);

  config_.backends[0].allow_delete = true;
  Start();
  EXPECT_TRUE(core_->Unlink(incoming_, "keep.dat").ok());
  EXPECT_FALSE(fake_->Exists("incoming/keep.dat"));
  EXPECT_EQ(Lookup(incoming_, "keep.dat").status().code(), Code::kNotFound);
}

TEST_F(FsCoreWriteTest, TransientPutFailuresAreRetried) {
  Start();
  faulty_->FailFirst(Op::kPut, 2, UnavailableError("hsi: connection reset"));
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(faulty_->calls(Op::kPut), 3);
  EXPECT_EQ(fake_->Data("incoming/f"), "data");
}

TEST_F(FsCoreWriteTest, APutThatAlwaysFailsEndsFailedAndKeepsTheData) {
  Start();
  faulty_->FailAlways(Op::kPut, UnavailableError("tape library offline"));
  const uint64_t ino = WriteFile(incoming_, "f", "only copy");
  ASSERT_TRUE(Drive([&] { return State(ino) == "failed"; }));
  EXPECT_EQ(faulty_->calls(Op::kPut), 3);
  EXPECT_EQ(**core_->GetXattr(ino, "user.hsm.error"), "tape library offline");
  auto f = Open(ino, O_RDONLY);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ReadFd(f->fd), "only copy");
  core_->Release(ino, *f);
  // Never evicted, never released.
  EXPECT_EQ(ToErrno(core_->SetXattr(ino, "user.hsm.release", kMe)), EPERM);
  // A retry after the backend is back succeeds.
  faulty_->Clear(Op::kPut);
  {
    auto s = engine_->catalog().Acquire();
    const auto jobs = *catalog::JobQueue::List(*s, catalog::JobFilter());
    for (const auto& j : jobs) {
      if (j.state == JobState::kFailed) {
        ASSERT_TRUE(*catalog::JobQueue::Retry(*s, j.id, 1));
      }
    }
  }
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
}

TEST_F(FsCoreWriteTest, ABadReadBackIsRetried) {
  Start();
  faulty_->FailFirst(Op::kRead, 1, DataLossError("checksum mismatch on read back"));
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(faulty_->calls(Op::kPut), 2);
}

TEST_F(FsCoreWriteTest, AnOutageShorterThanTheRetryHorizonEndsDualWithoutARetry) {
  config_.archive.retry_horizon = 1h;
  Start();
  faulty_->FailAlways(Op::kPut, UnavailableError("hsi: connection refused"));
  const uint64_t ino = WriteFile(incoming_, "f", "written during the outage");
  // Twice max_attempts, and the file is still waiting, not failed.
  ASSERT_TRUE(Drive([&] { return faulty_->calls(Op::kPut) >= 6; }, 1s)) << State(ino);
  EXPECT_NE(State(ino), "failed");
  faulty_->Clear(Op::kPut);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }, 1s)) << State(ino);
  EXPECT_EQ(fake_->Data("incoming/f"), "written during the outage");
  for (const auto& j : Jobs()) EXPECT_NE(j.state, JobState::kFailed);
}

TEST_F(FsCoreWriteTest, AnOutageLongerThanTheHorizonFailsThenRetriesWhenTheBackendAnswers) {
  // Back-off 1, 2, 4, 8, 16 s: the sixth failure has waited 31 s > 20 s.
  config_.archive.retry_horizon = 20s;
  Start();
  faulty_->FailAlways(Op::kPut, UnavailableError("tape library offline"));
  const uint64_t small = WriteFile(incoming_, "small", "s");
  const uint64_t big = WriteFile(incoming_, "big", std::string(4096, 'b'));
  ASSERT_TRUE(Drive([&] { return State(small) == "failed" && State(big) == "failed"; }, 1s));
  EXPECT_EQ(faulty_->calls(Op::kPut), 12);
  EXPECT_EQ(**core_->GetXattr(small, "user.hsm.error"), "tape library offline");
  // The data stays in the cache.
  auto f = Open(big, O_RDONLY);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ReadFd(f->fd), std::string(4096, 'b'));
  core_->Release(big, *f);
  // While the backend is still down, one probe (the smallest file) fails
  // again at once, without a new round of back-off.
  ASSERT_TRUE(Drive([&] { return faulty_->calls(Op::kPut) == 13; }, 1s));
  ASSERT_TRUE(Drive([&] { return State(small) == "failed"; }, 1s));
  clock_.Advance(1min);
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(faulty_->calls(Op::kPut), 13);
  EXPECT_EQ(State(big), "failed");
  // The backend answers again: both are archived without a manual retry.
  faulty_->Clear(Op::kPut);
  ASSERT_TRUE(Drive([&] { return State(small) == "dual" && State(big) == "dual"; }, 1s))
      << State(small) << " " << State(big);
  EXPECT_EQ(fake_->Data("incoming/big"), std::string(4096, 'b'));
  EXPECT_EQ(fake_->Data("incoming/small"), "s");
}

TEST_F(FsCoreWriteTest, APermanentArchiveErrorFailsAtOnceAndIsNotRetriedByItself) {
  config_.archive.retry_horizon = 1h;
  Start();
  faulty_->FailAlways(Op::kPut, PermissionDeniedError("incoming/f: Permission denied"));
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "failed"; }));
  EXPECT_EQ(faulty_->calls(Op::kPut), 1);
  faulty_->Clear(Op::kPut);
  // Another archive to the same backend succeeds: the permanent failure
  // stays failed (it needs hsmctl retry once the cause is fixed).
  const uint64_t other = WriteFile(incoming_, "g", "other");
  ASSERT_TRUE(Drive([&] { return State(other) == "dual"; }));
  clock_.Advance(10min);
  ASSERT_FALSE(Drive([&] { return State(ino) != "failed"; }, 1s));
  EXPECT_EQ(faulty_->calls(Op::kPut), 2);
}

TEST_F(FsCoreWriteTest, RenameMovesOnTheBackendAndKeepsState) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "a.dat", "payload");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  ASSERT_TRUE(core_->MakeDir(incoming_, "sub", 0755, kMe).ok());
  const uint64_t sub = Lookup(incoming_, "sub")->ino;
  ASSERT_TRUE(core_->Rename(incoming_, "a.dat", sub, "b.dat", 0).ok());
  EXPECT_EQ(fake_->Data("incoming/sub/b.dat"), "payload");
  EXPECT_FALSE(fake_->Exists("incoming/a.dat"));
  EXPECT_EQ(State(ino), "dual");
  EXPECT_EQ(Lookup(sub, "b.dat")->ino, ino);
  EXPECT_EQ(ToErrno(core_->Rename(sub, "b.dat", incoming_, "x", RENAME_EXCHANGE)), EINVAL);
}

TEST_F(FsCoreWriteTest, RenameWhileArchivingArchivesUnderTheNewName) {
  Start();
  faulty_->Hang(Op::kPut);
  const uint64_t ino = WriteFile(incoming_, "old.dat", "moving target");
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  ASSERT_TRUE(core_->Rename(incoming_, "old.dat", incoming_, "new.dat", 0).ok());
  faulty_->Unhang(Op::kPut);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual" && !fake_->Exists("incoming/old.dat"); }));
  EXPECT_EQ(fake_->Data("incoming/new.dat"), "moving target");
}

TEST_F(FsCoreWriteTest, DirectoriesAreMadeAndRemovedOnTheBackend) {
  Start();
  auto d = core_->MakeDir(incoming_, "run1", 0755, kMe);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(ToErrno(core_->MakeDir(incoming_, "run1", 0755, kMe).status()), EEXIST);
  ASSERT_TRUE(Drive([&] { return fake_->Exists("incoming/run1"); }));
  WriteFile(d->ino, "f", "x");
  EXPECT_EQ(ToErrno(core_->RemoveDir(incoming_, "run1")), ENOTEMPTY);
  ASSERT_TRUE(core_->Unlink(d->ino, "f").ok());  // not archived yet: no allow_delete needed
  ASSERT_TRUE(core_->RemoveDir(incoming_, "run1").ok());
  // Gone from the backend too: at once if the directory's archive job had
  // finished, else when that job ends and finds the entry deleted.
  EXPECT_TRUE(Drive([&] { return !fake_->Exists("incoming/run1"); }));
}

TEST_F(FsCoreWriteTest, ASymlinkIsArchivedAndReadlinkAnswersFromTheCatalog) {
  Start();
  auto made = core_->Symlink(incoming_, "latest", "../runs/run42/out.dat", kMe);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->mode, static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(made->size, std::string("../runs/run42/out.dat").size());
  EXPECT_EQ(made->blocks, 0u);
  const uint64_t ino = made->ino;
  EXPECT_EQ(*core_->ReadLink(ino), "../runs/run42/out.dat");
  EXPECT_EQ(State(ino), "online");
  EXPECT_EQ(ToErrno(core_->Symlink(incoming_, "latest", "elsewhere", kMe).status()), EEXIST);
  // Archived like a file (after settling), as a symlink on the backend.
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  auto stored = fake_->Stat("incoming/latest");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->type, backends::ObjectType::kSymlink);
  EXPECT_EQ(stored->link_target, "../runs/run42/out.dat");
  // Lookup and readdir show a symlink; readlink never reads the backend.
  EXPECT_EQ(Lookup(incoming_, "latest")->mode, static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(*core_->ReadLink(ino), "../runs/run42/out.dat");
  EXPECT_EQ(ToErrno(Open(ino, O_RDONLY).status()), EINVAL);
  const uint64_t file = WriteFile(incoming_, "plain", "x");
  EXPECT_EQ(ToErrno(core_->ReadLink(file).status()), EINVAL);
  // Nothing to recall: a stage request queues nothing.
  EXPECT_EQ(ToErrno(core_->SetXattr(ino, kXattrStage, kMe)), EPERM);
  EXPECT_TRUE(engine_->cache().Release(static_cast<catalog::EntryId>(ino)).ok());

  // A new engine on the same catalog with an empty cache still has it.
  stdfs::remove_all(config_.cache.dir);
  Start();
  const auto again = Lookup(incoming_, "latest");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ino, ino);
  EXPECT_EQ(*core_->ReadLink(ino), "../runs/run42/out.dat");
  EXPECT_EQ(faulty_->calls(Op::kRead), 0);
  EXPECT_EQ(faulty_->calls(Op::kStage), 0);
  const auto jobs = Jobs();  // one vector: begin() and end() of two copies overflow
  EXPECT_TRUE(std::none_of(jobs.begin(), jobs.end(),
                           [](const auto& j) { return j.kind == catalog::JobKind::kStage; }));
}

TEST_F(FsCoreWriteTest, SymlinksListedFromTheBackendShowTheirTarget) {
  Start();
  backends::PutOptions po;
  po.symlink_target = "/absolute/elsewhere";
  po.mtime_ns = 1'500'000'000'000'000'000;
  ASSERT_TRUE(fake_->Put({}, "incoming/abs", po).ok());
  catalog::Entry dir;
  {
    auto s = engine_->catalog().Acquire();
    dir = *s->Get(static_cast<catalog::EntryId>(incoming_));
  }
  ASSERT_TRUE(engine_->sync().ListNow(dir, CancelToken::None()).ok());
  auto attr = Lookup(incoming_, "abs");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->mode, static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(attr->size, std::string("/absolute/elsewhere").size());
  EXPECT_EQ(attr->mtime_ns, 1'500'000'000'000'000'000);
  EXPECT_EQ(*core_->ReadLink(attr->ino), "/absolute/elsewhere");
  EXPECT_EQ(State(attr->ino), "dual");
  // Replaced on the backend: the next listing shows the new target.
  po.symlink_target = "other";
  ASSERT_TRUE(fake_->Put({}, "incoming/abs", po).ok());
  ASSERT_TRUE(engine_->sync().ListNow(dir, CancelToken::None()).ok());
  EXPECT_EQ(*core_->ReadLink(attr->ino), "other");
  EXPECT_EQ(faulty_->calls(Op::kRead), 0);
}

TEST_F(FsCoreWriteTest, LutimesOfASymlinkIsArchivedWithIt) {
  Start();
  auto made = core_->Symlink(incoming_, "l", "target", kMe);
  ASSERT_TRUE(made.ok());
  AttrChange change;
  change.mtime_ns = 1'400'000'000'000'000'007;
  std::promise<Result<Attr>> p;
  core_->SetAttr(made->ino, nullptr, change, kMe, [&](Result<Attr> r) { p.set_value(r); });
  auto attr = p.get_future().get();
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();
  EXPECT_EQ(attr->mtime_ns, 1'400'000'000'000'000'007);
  ASSERT_TRUE(Drive([&] { return State(made->ino) == "dual"; }));
  EXPECT_EQ(fake_->Stat("incoming/l")->mtime_ns, 1'400'000'000'000'000'007);
  AttrChange truncate;
  truncate.size = 0;
  std::promise<Result<Attr>> q;
  core_->SetAttr(made->ino, nullptr, truncate, kMe, [&](Result<Attr> r) { q.set_value(r); });
  EXPECT_EQ(ToErrno(q.get_future().get().status()), EINVAL);
}

TEST_F(FsCoreWriteTest, SymlinksAreEpermWhereTheBackendCannotStoreThemAndHardLinksEverywhere) {
  config_.backends[0].type = "irods";
  Start();
  const Status s = core_->Symlink(incoming_, "l", "target", kMe).status();
  EXPECT_EQ(ToErrno(s), EPERM);
  EXPECT_NE(s.message().find("cannot store symbolic links"), std::string::npos) << s.message();
  EXPECT_EQ(Lookup(incoming_, "l").status().code(), Code::kNotFound);
  // Outside a writable directory it is read-only first, as every change.
  EXPECT_EQ(ToErrno(core_->Symlink(vault_, "l", "target", kMe).status()), EROFS);
  const uint64_t f = WriteFile(incoming_, "f", "x");
  EXPECT_EQ(ToErrno(core_->Link(f, incoming_, "hard")), EPERM);
  EXPECT_EQ(Lookup(incoming_, "hard").status().code(), Code::kNotFound);
}

TEST_F(FsCoreWriteTest, TheIdleHookWaitsForWorkThatIsDue) {
  // What the tests above lean on: TEST_WaitIdle does not pass while a job is
  // due, so "idle, and no Put" means no Put was ever coming.
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  clock_.Advance(10s);  // settled: the tick queues its archive job
  ASSERT_TRUE(Drive([&] { return State(ino) != "online"; }, 0s));
  EXPECT_FALSE(engine_->TEST_WaitIdle(300ms));  // the job is due; its window waits for the clock
  EXPECT_EQ(faulty_->calls(Op::kPut), 0);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(faulty_->calls(Op::kPut), 1);
}

TEST_F(FsCoreWriteTest, AFileReopenedForWritingBeforeItSettlesIsNotQueuedUnderItsWriter) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "first");
  auto f = Open(ino, O_WRONLY);  // reopened before its settle time ends
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  clock_.Advance(10s);  // past the settle time: the settle tick runs
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  for (const auto& j : Jobs()) {
    EXPECT_NE(j.kind, catalog::JobKind::kArchive) << "an archive job was queued under a writer";
  }
  ASSERT_TRUE(core_->Write(ino, *f, "second", 6, 0).ok());
  core_->Release(ino, *f);  // the last close settles it
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/f"), "second");
}

TEST_F(FsCoreWriteTest, FilesClosedBeforeARestartAreArchivedAfterIt) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "survives");
  core_.reset();  // hsmfs stops before the settle time (as after kill -9)
  engine_.reset();
  Start();
  const uint64_t again = Lookup(incoming_, "f")->ino;
  EXPECT_EQ(again, ino);
  ASSERT_TRUE(Drive([&] { return State(again) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/f"), "survives");
}

TEST_F(FsCoreWriteTest, AFullCacheOfUnarchivedDataGivesEnospcAfterWaiting) {
  config_.cache.size = 1000;
  Start();
  faulty_->Hang(Op::kPut);
  auto a = core_->Create(incoming_, "a", 0644, O_WRONLY, kMe);
  const std::string big(800, 'a');
  ASSERT_TRUE(core_->Write(a->first.ino, a->second, big.data(), big.size(), 0).ok());
  // A second file that would fit in an empty cache (a larger one is EFBIG at once).
  auto b = core_->Create(incoming_, "b", 0644, O_WRONLY, kMe);
  std::promise<Status> second;
  std::thread writer([&] {
    second.set_value(core_->Write(b->first.ino, b->second, big.data(), big.size(), 0).status());
  });
  auto result = second.get_future();
  EXPECT_EQ(result.wait_for(100ms), std::future_status::timeout);  // waits for room
  ASSERT_TRUE(Drive([&] { return result.wait_for(0ms) == std::future_status::ready; }));
  writer.join();
  EXPECT_EQ(ToErrno(result.get()), ENOSPC);
  core_->Release(a->first.ino, a->second);
  core_->Release(b->first.ino, b->second);
  faulty_->Unhang(Op::kPut);
}

TEST_F(FsCoreWriteTest, TruncateAndTimesMakeANewVersion) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "0123456789");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  AttrChange change;
  change.size = 4;
  change.mtime_ns = 1'600'000'000'123'456'789;
  std::promise<Result<Attr>> p;
  core_->SetAttr(ino, nullptr, change, kMe, [&](Result<Attr> r) { p.set_value(r); });
  auto attr = p.get_future().get();
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();
  EXPECT_EQ(attr->size, 4u);
  EXPECT_EQ(attr->mtime_ns, 1'600'000'000'123'456'789);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual" && fake_->Data("incoming/f") == "0123"; }));
  EXPECT_EQ(fake_->Stat("incoming/f")->mtime_ns, 1'600'000'000'123'456'789);
}

TEST_F(FsCoreWriteTest, FsckFindsNothingWrongAfterArchivingAndNoticesDamage) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  FsckOptions options;
  options.checksums = true;
  auto clean = Fsck(*engine_, options);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->problems.empty())
      << clean->problems[0].path << ": " << clean->problems[0].what;
  EXPECT_EQ(clean->on_backend, 2);  // f and archived.dat (listed)
  // Same sizes, different bytes: only checksums can tell.
  std::ofstream(engine_->cache().PathOf(static_cast<catalog::EntryId>(ino))) << "dXta";
  fake_->AddFile("incoming/f", "dat4");
  auto damaged = Fsck(*engine_, options);
  ASSERT_TRUE(damaged.ok());
  ASSERT_EQ(damaged->problems.size(), 2u);
  EXPECT_NE(damaged->problems[0].what.find("reading back"), std::string::npos);
  EXPECT_NE(damaged->problems[1].what.find("cached copy has checksum"), std::string::npos);
}

Result<Attr> SetAttrNow(FsCore& core, uint64_t ino, const OpenFile* file,
                        const AttrChange& change) {
  std::promise<Result<Attr>> p;
  core.SetAttr(ino, file, change, kMe, [&](Result<Attr> r) { p.set_value(r); });
  auto f = p.get_future();
  // Synchronous for cached files: a wait (for room, for a recall) would hang here.
  if (f.wait_for(5s) != std::future_status::ready) return InternalError("setattr waited");
  return f.get();
}

TEST_F(FsCoreWriteTest, AFileCreatedReadOnlyIsArchivedAfterItsClose) {
  Start();
  // open(O_CREAT | O_RDONLY): pjdfstest's create, flock(1)'s lock files. The
  // FUSE layer reports such a handle as not writable.
  auto created = core_->Create(incoming_, "lock", 0644, O_CREAT | O_RDONLY, kMe);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const uint64_t ino = created->first.ino;
  OpenFile as_released = created->second;
  as_released.writable = false;
  core_->Release(ino, as_released);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; })) << State(ino);
  EXPECT_TRUE(fake_->Exists("incoming/lock"));
}

TEST_F(FsCoreWriteTest, AnUnlinkedOpenFileWorksUntilItsLastCloseAndIsNeverArchived) {
  Start();
  auto created = core_->Create(incoming_, "tmp", 0600, O_CREAT | O_RDWR, kMe);
  ASSERT_TRUE(created.ok());
  const uint64_t ino = created->first.ino;
  const OpenFile f = created->second;
  ASSERT_TRUE(core_->Write(ino, f, "hello world", 11, 0).ok());
  auto reader = Open(ino, O_RDONLY);
  ASSERT_TRUE(reader.ok());
  const stdfs::path copy = engine_->cache().PathOf(static_cast<catalog::EntryId>(ino));
  ASSERT_TRUE(core_->Unlink(incoming_, "tmp").ok());

  // The name is gone at once; the file is not.
  EXPECT_EQ(Lookup(incoming_, "tmp").status().code(), Code::kNotFound);
  auto attr = core_->GetAttr(ino);
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();  // fstat
  EXPECT_EQ(attr->size, 11u);
  EXPECT_EQ(attr->nlink, 0u);
  EXPECT_EQ(attr->mode & 07777, 0600u);
  ASSERT_TRUE(core_->Write(ino, f, "WORLD", 5, 6).ok());  // pwrite
  EXPECT_EQ(ReadFd(reader->fd), "hello WORLD");           // pread
  AttrChange grow;
  grow.size = 20;
  auto grown = SetAttrNow(*core_, ino, &f, grow);  // ftruncate
  ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  EXPECT_EQ(grown->size, 20u);
  EXPECT_EQ(core_->GetAttr(ino)->size, 20u);

  core_->Release(ino, f);  // the writer closes; a reader still holds it
  EXPECT_TRUE(core_->GetAttr(ino).ok());
  EXPECT_TRUE(stdfs::exists(copy));
  core_->Release(ino, *reader);  // the last close drops the copy
  EXPECT_EQ(core_->GetAttr(ino).status().code(), Code::kNotFound);
  EXPECT_FALSE(stdfs::exists(copy));
  // Nothing is archived for it, however long we wait.
  clock_.Advance(60s);
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(faulty_->calls(Op::kPut), 0);
  EXPECT_FALSE(fake_->Exists("incoming/tmp"));
  for (const auto& j : Jobs()) ADD_FAILURE() << "job " << j.id << " for an unlinked file";
}

TEST_F(FsCoreWriteTest, NamesLongerThanNameMaxAreRefused) {
  Start();
  const std::string max(255, 'n');
  const std::string over = max + "x";
  EXPECT_EQ(ToErrno(core_->Create(incoming_, over, 0644, O_WRONLY, kMe).status()), ENAMETOOLONG);
  EXPECT_EQ(ToErrno(core_->MakeDir(incoming_, over, 0755, kMe).status()), ENAMETOOLONG);
  EXPECT_EQ(ToErrno(Lookup(incoming_, over).status()), ENAMETOOLONG);
  const uint64_t ino = WriteFile(incoming_, max, "fits");
  ASSERT_NE(ino, 0u);
  EXPECT_EQ(ToErrno(core_->Rename(incoming_, max, incoming_, over, 0)), ENAMETOOLONG);
  EXPECT_TRUE(Lookup(incoming_, max).ok());
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/" + max), "fits");
  EXPECT_EQ(core_->StatFs()->name_max, 255u);
}

TEST_F(FsCoreWriteTest, NamesAnHpssBackendCannotStoreAreRefusedWhenCreated) {
  config_.backends[0].type = "hpss";
  Start();
  for (const std::string bad : {"two\nlines", "semi;colon", "quote\"d"}) {
    EXPECT_EQ(ToErrno(core_->Create(incoming_, bad, 0644, O_WRONLY, kMe).status()), EINVAL) << bad;
    EXPECT_EQ(ToErrno(core_->MakeDir(incoming_, bad, 0755, kMe).status()), EINVAL) << bad;
  }
  const uint64_t ino = WriteFile(incoming_, "with space", "x");
  ASSERT_NE(ino, 0u);
  EXPECT_EQ(ToErrno(core_->Rename(incoming_, "with space", incoming_, "a\nb", 0)), EINVAL);
  // Nothing reached the catalog to fail later.
  for (const auto& j : Jobs()) EXPECT_EQ(j.entry_id, static_cast<catalog::EntryId>(ino));
}

TEST_F(FsCoreWriteTest, ADirectoryKeepsItsModeOnTheBackendWhateverMadeItThere) {
  Start();
  // The directory's own job is held up, so the job of a file inside it makes
  // it first (as a missing parent, 0755): tar -x of a 0700 directory.
  faulty_->Hang(Op::kMakeDir);
  auto d = core_->MakeDir(incoming_, "private", 0700, kMe);
  ASSERT_TRUE(d.ok());
  const uint64_t f = WriteFile(d->ino, "f", "x");
  ASSERT_TRUE(Drive([&] { return State(f) == "dual"; }));
  ASSERT_EQ(fake_->Stat("incoming/private")->mode, 0755u);
  faulty_->Unhang(Op::kMakeDir);
  EXPECT_TRUE(Drive([&] { return fake_->Stat("incoming/private")->mode == 0700u; }));
  // A chmod of the archived directory reaches the backend too.
  AttrChange chmod;
  chmod.mode = 0750;
  ASSERT_TRUE(SetAttrNow(*core_, d->ino, nullptr, chmod).ok());
  EXPECT_TRUE(Drive([&] { return fake_->Stat("incoming/private")->mode == 0750u; }));
}

TEST_F(FsCoreWriteTest, DirectoryTimesFollowChangesInsideAndSurviveListings) {
  Start();
  auto d = core_->MakeDir(incoming_, "d", 0755, kMe);
  ASSERT_TRUE(d.ok());
  const int64_t old = 1'000'000'000'000'000'000;  // 2001
  AttrChange set_old;
  set_old.mtime_ns = old;
  for (const std::string op : {"create", "unlink", "mkdir", "rename", "rename out"}) {
    ASSERT_TRUE(SetAttrNow(*core_, d->ino, nullptr, set_old).ok());
    ASSERT_EQ(core_->GetAttr(d->ino)->mtime_ns, old);
    clock_.Advance(1s);
    const int64_t now = clock_.WallNanos();
    if (op == "create") {
      WriteFile(d->ino, "f", "x");
    } else if (op == "unlink") {
      ASSERT_TRUE(core_->Unlink(d->ino, "f").ok());
    } else if (op == "mkdir") {
      ASSERT_TRUE(core_->MakeDir(d->ino, "sub", 0755, kMe).ok());
    } else if (op == "rename") {
      ASSERT_TRUE(core_->Rename(d->ino, "sub", d->ino, "sub2", 0).ok());
    } else {
      ASSERT_TRUE(core_->Rename(d->ino, "sub2", incoming_, "moved", 0).ok());
    }
    auto attr = core_->GetAttr(d->ino);
    EXPECT_GE(attr->mtime_ns, now) << op;
    EXPECT_GE(attr->ctime_ns, attr->mtime_ns) << op;
  }
  // A time set through the mount (cp -a, tar -x, rsync -a) outlives the
  // backend's, which the archiver changes with every file it puts there.
  ASSERT_TRUE(SetAttrNow(*core_, d->ino, nullptr, set_old).ok());
  const uint64_t g = WriteFile(d->ino, "g", "y");
  ASSERT_TRUE(SetAttrNow(*core_, d->ino, nullptr, set_old).ok());
  ASSERT_TRUE(Drive([&] { return State(g) == "dual"; }));
  catalog::Entry incoming, dir;
  {
    auto s = engine_->catalog().Acquire();
    incoming = *s->Get(static_cast<catalog::EntryId>(incoming_));
    dir = *s->Get(static_cast<catalog::EntryId>(d->ino));
  }
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  ASSERT_TRUE(engine_->sync().ListNow(dir, CancelToken::None()).ok());
  EXPECT_EQ(core_->GetAttr(d->ino)->mtime_ns, old);
  // And the backend keeps it too, after the files put into the directory.
  EXPECT_TRUE(Drive([&] { return fake_->Stat("incoming/d")->mtime_ns == old; }));
}

TEST_F(FsCoreWriteTest, AFileCtimeFollowsMetadataChanges) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  AttrChange change;
  change.mtime_ns = 1'000'000'000'000'000'000;
  auto attr = SetAttrNow(*core_, ino, nullptr, change);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->mtime_ns, change.mtime_ns);
  EXPECT_GT(attr->ctime_ns, attr->mtime_ns);  // the change happened now, not in 2001
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_GT(core_->GetAttr(ino)->ctime_ns, change.mtime_ns.value());
}

TEST_F(FsCoreWriteTest, TruncatePastTheCacheFailsAtOnceAndTheFileStillArchives) {
  config_.cache.size = 1 << 20;
  Start();
  const uint64_t settled = WriteFile(incoming_, "settled", "0123456789");
  ASSERT_TRUE(Drive([&] { return State(settled) == "dual"; }));
  const uint64_t fresh = WriteFile(incoming_, "fresh", "abc");  // still settling
  AttrChange huge;
  huge.size = uint64_t{1} << 40;
  for (uint64_t ino : {settled, fresh}) {
    auto r = SetAttrNow(*core_, ino, nullptr, huge);  // returns without waiting
    EXPECT_EQ(ToErrno(r.status()), EFBIG) << r.status().ToString();
  }
  // Through an open descriptor too (ftruncate).
  auto f = Open(fresh, O_RDWR);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ToErrno(SetAttrNow(*core_, fresh, &*f, huge).status()), EFBIG);
  core_->Release(fresh, *f);
  // Nothing changed, and nothing is stranded: both end dual with their data.
  EXPECT_EQ(State(settled), "dual");
  ASSERT_TRUE(Drive([&] { return State(fresh) == "dual"; })) << State(fresh);
  EXPECT_EQ(fake_->Data("incoming/fresh"), "abc");
  EXPECT_EQ(core_->GetAttr(settled)->size, 10u);
}

catalog::Entry EntryOf(Engine& engine, uint64_t ino) {
  auto s = engine.catalog().Acquire();
  return *s->Get(static_cast<catalog::EntryId>(ino));
}

Result<Attr> SetAttrNow(FsCore& core, uint64_t ino, const AttrChange& change,
                        const catalog::Requester& who) {
  std::promise<Result<Attr>> p;
  core.SetAttr(ino, nullptr, change, who, [&](Result<Attr> r) { p.set_value(r); });
  return p.get_future().get();
}

TEST_F(FsCoreWriteTest, WhatAProcessCreatesIsItsOwnAcrossArchivingAndRestarts) {
  Start();
  const catalog::Requester alice{1000, 42, "cp", 100};
  const catalog::Requester bob{1001, 43, "mkdir", 101};
  auto created = core_->Create(incoming_, "a.txt", 0640, O_WRONLY, alice);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->first.uid, 1000u);
  EXPECT_EQ(created->first.gid, 100u);
  EXPECT_EQ(created->first.mode & 07777, 0640u);
  const uint64_t ino = created->first.ino;
  ASSERT_TRUE(core_->Write(ino, created->second, "abc", 3, 0).ok());
  core_->Release(ino, created->second);
  auto dir = core_->MakeDir(incoming_, "bobs", 0700, bob);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->uid, 1001u);
  EXPECT_EQ(dir->gid, 101u);
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  // The backend (like HPSS or tape) keeps no owner: a listing changes nothing.
  const catalog::Entry incoming = EntryOf(*engine_, incoming_);
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  Start();  // a remount
  EXPECT_EQ(Lookup(incoming_, "a.txt")->uid, 1000u);
  EXPECT_EQ(Lookup(incoming_, "a.txt")->gid, 100u);
  EXPECT_EQ(Lookup(incoming_, "bobs")->uid, 1001u);
  EXPECT_EQ(Lookup(incoming_, "bobs")->gid, 101u);
}

TEST_F(FsCoreWriteTest, ASetgidDirectoryGivesItsGroupAndItsSetgidBit) {
  Start();
  auto shared =
      core_->MakeDir(incoming_, "shared", 02775, catalog::Requester{1000, 1, "mkdir", 100});
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared->mode & 07777, 02775u);
  const catalog::Requester other{1001, 2, "cp", 200};
  auto file = core_->Create(shared->ino, "f", 0644, O_WRONLY, other);
  ASSERT_TRUE(file.ok());
  core_->Release(file->first.ino, file->second);
  EXPECT_EQ(file->first.uid, 1001u);
  EXPECT_EQ(file->first.gid, 100u);  // the directory's group, not the creator's
  auto sub = core_->MakeDir(shared->ino, "sub", 0755, other);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->gid, 100u);
  EXPECT_EQ(sub->mode & 07777, 02755u);
  // Without setgid, the creator's group.
  auto plain = core_->Create(incoming_, "g", 0644, O_WRONLY, other);
  ASSERT_TRUE(plain.ok());
  core_->Release(plain->first.ino, plain->second);
  EXPECT_EQ(plain->first.gid, 200u);
}

TEST_F(FsCoreWriteTest, ChownAndChmodAreKeptAcrossListingsAndRestarts) {
  Start();
  const uint64_t ino = WriteFile(incoming_, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  const int puts = faulty_->calls(Op::kPut);
  AttrChange chown;
  chown.uid = 2000;
  chown.gid = 3000;
  auto owned = SetAttrNow(*core_, ino, chown, kMe);
  ASSERT_TRUE(owned.ok()) << owned.status().ToString();
  EXPECT_EQ(owned->uid, 2000u);
  EXPECT_EQ(owned->gid, 3000u);
  // Owners live in the catalog: no recall, no new version to archive.
  EXPECT_EQ(State(ino), "dual");
  AttrChange chgrp;
  chgrp.gid = 3001;
  EXPECT_EQ(SetAttrNow(*core_, ino, chgrp, kMe)->uid, 2000u);
  AttrChange chmod;
  chmod.mode = 0604;
  ASSERT_TRUE(SetAttrNow(*core_, ino, chmod, kMe).ok());
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  EXPECT_EQ(faulty_->calls(Op::kPut), puts + 1);
  EXPECT_EQ(fake_->Stat("incoming/f")->mode, 0604u);  // the mode goes to the backend
  // A listing keeps them; so does a restart (right after it: the new fake
  // backend would not hold f for a later one).
  ASSERT_TRUE(engine_->sync().ListNow(EntryOf(*engine_, incoming_), CancelToken::None()).ok());
  EXPECT_EQ(core_->GetAttr(ino)->uid, 2000u);
  Start();
  const auto after = Lookup(incoming_, "f");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->uid, 2000u);
  EXPECT_EQ(after->gid, 3001u);
  EXPECT_EQ(after->mode & 07777, 0604u);
  // Outside writable directories, chown is EROFS like every other change.
  EXPECT_EQ(ToErrno(SetAttrNow(*core_, Lookup(vault_, "archived.dat")->ino, chown, kMe).status()),
            EROFS);
}

TEST_F(FsCoreWriteTest, ChownClearsSetuidAndSetgidOfFiles) {
  Start();
  auto created = core_->Create(incoming_, "tool", 06755, O_WRONLY, kMe);
  ASSERT_TRUE(created.ok());
  core_->Release(created->first.ino, created->second);
  AttrChange chown;
  chown.uid = 0;
  auto r = SetAttrNow(*core_, created->first.ino, chown, kMe);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mode & 07777, 0755u);
  // Setgid without group execute is not set-group-ID: it stays (as on Linux).
  auto locked = core_->Create(incoming_, "locked", 02644, O_WRONLY, kMe);
  ASSERT_TRUE(locked.ok());
  core_->Release(locked->first.ino, locked->second);
  EXPECT_EQ(SetAttrNow(*core_, locked->first.ino, chown, kMe)->mode & 07777, 02644u);
  // Directories keep theirs.
  auto dir = core_->MakeDir(incoming_, "d", 02775, kMe);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(SetAttrNow(*core_, dir->ino, chown, kMe)->mode & 07777, 02775u);
}

TEST_F(FsCoreWriteTest, ListedEntriesShowTheBackendsOwnerElseTheConfiguredOne) {
  config_.backends[0].uid = 7;
  config_.backends[0].gid = 8;
  backend_files_["incoming/posixish.dat"] = "x";
  Start();
  // The root is the mount's; what the backend keeps no owner for, the config's.
  EXPECT_EQ(core_->GetAttr(catalog::kRootId)->uid, 0u);
  EXPECT_EQ(core_->GetAttr(vault_)->uid, 7u);
  EXPECT_EQ(core_->GetAttr(vault_)->gid, 8u);
  EXPECT_EQ(Lookup(vault_, "archived.dat")->uid, 7u);
  // A backend that keeps owners (posix) shows them.
  fake_->SetOwner("incoming/posixish.dat", 500, 600);
  const catalog::Entry incoming = EntryOf(*engine_, incoming_);
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  const uint64_t ino = Lookup(incoming_, "posixish.dat")->ino;
  EXPECT_EQ(core_->GetAttr(ino)->uid, 500u);
  EXPECT_EQ(core_->GetAttr(ino)->gid, 600u);
  // A chown through the mount stays while the backend's file is unchanged...
  AttrChange chown;
  chown.uid = 501;
  ASSERT_TRUE(SetAttrNow(*core_, ino, chown, kMe).ok());
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  EXPECT_EQ(core_->GetAttr(ino)->uid, 501u);
  // ... and a file replaced on the backend shows its new owner.
  fake_->AddFile("incoming/posixish.dat", "replaced", 1'800'000'000'000'000'000);
  fake_->SetOwner("incoming/posixish.dat", 502, 602);
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  EXPECT_EQ(core_->GetAttr(ino)->uid, 502u);
  EXPECT_EQ(core_->GetAttr(ino)->gid, 602u);
}

TEST_F(FsCoreWriteTest, ConfiguredModesApplyToListedEntriesAndChmodStays) {
  config_.backends[0].file_mode = 0640;
  config_.backends[0].dir_mode = 0750;
  backend_files_["incoming/old.dat"] = "x";
  Start();
  EXPECT_EQ(core_->GetAttr(vault_)->mode & 07777, 0750u);
  EXPECT_EQ(core_->GetAttr(incoming_)->mode & 07777, 0750u);
  const uint64_t ino = Lookup(incoming_, "old.dat")->ino;
  EXPECT_EQ(core_->GetAttr(ino)->mode & 07777, 0640u);
  AttrChange chmod;
  chmod.mode = 0600;
  std::promise<Result<Attr>> p;
  core_->SetAttr(ino, nullptr, chmod, kMe, [&](Result<Attr> r) { p.set_value(r); });
  auto changed = p.get_future();  // after a recall, which runs on the fake clock
  ASSERT_TRUE(Drive([&] { return changed.wait_for(0ms) == std::future_status::ready; }));
  ASSERT_TRUE(changed.get().ok());
  ASSERT_TRUE(Drive([&] { return State(ino) == "dual"; }));
  const catalog::Entry incoming = EntryOf(*engine_, incoming_);
  ASSERT_TRUE(engine_->sync().ListNow(incoming, CancelToken::None()).ok());
  EXPECT_EQ(core_->GetAttr(ino)->mode & 07777, 0600u);
}

class NameSink final : public DirSink {
 public:
  bool Add(std::string_view name, const Attr&, uint64_t) override {
    names.emplace_back(name);
    return true;
  }
  void Finish(Status s) override { done.set_value(std::move(s)); }
  std::vector<std::string> names;
  std::promise<Status> done;
};

TEST_F(FsCoreWriteTest, NoEmptyOrDotNameIsCreated) {
  Start();
  for (const char* name : {"", ".", ".."}) {
    auto created = core_->Create(incoming_, name, 0644, O_WRONLY | O_CREAT, kMe);
    ASSERT_FALSE(created.ok()) << "\"" << name << "\"";
    EXPECT_EQ(ToErrno(created.status()), EINVAL);
    EXPECT_EQ(ToErrno(core_->MakeDir(incoming_, name, 0755, kMe).status()), EINVAL);
  }
}

TEST_F(FsCoreWriteTest, ADirectoryWithOneBadRowStillListsTheOthers) {
  Start();
  WriteFile(incoming_, "a", "1");
  const uint64_t b = WriteFile(incoming_, "b", "2");
  WriteFile(incoming_, "c", "3");
  {
    // As a catalog written before names were checked holds it.
    auto s = engine_->catalog().Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET name = '' WHERE id = " + std::to_string(b))
                    .ok());
  }
  auto sink = std::make_shared<NameSink>();
  core_->ReadDir(incoming_, 0, sink);
  auto done = sink->done.get_future();
  ASSERT_TRUE(Drive([&] { return done.wait_for(0ms) == std::future_status::ready; }));
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(sink->names, (std::vector<std::string>{".", "..", "a", "c"}));
  EXPECT_GE(ErrorSiteCounts()["E-NAME-01"], 1u);
}

TEST_F(FsCoreWriteTest, FsckRepairsAnEmptyNamedDirectoryAndArchivesWhatIsBelow) {
  // What `hsmctl put run42/ vault/incoming` made before names were checked.
  Start();
  const uint64_t run = core_->MakeDir(incoming_, "run42", 0755, kMe)->ino;
  const uint64_t f = WriteFile(run, "f", "data");
  ASSERT_TRUE(Drive([&] { return State(f) == "dual"; }));
  {
    auto s = engine_->catalog().Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET name = '', backend_path = 'incoming/' WHERE id = " +
                          std::to_string(run) +
                          "; UPDATE entries SET backend_path = 'incoming//f', state = 'failed', "
                          "error = 'x', on_backend = 0 WHERE id = " +
                          std::to_string(f))
                    .ok());
  }
  auto found = Fsck(*engine_, FsckOptions());
  ASSERT_TRUE(found.ok());
  ASSERT_FALSE(found->problems.empty());
  EXPECT_NE(found->problems[0].what.find("with the name \"\""), std::string::npos)
      << found->problems[0].what;
  FsckOptions repair;
  repair.repair = true;
  auto repaired = Fsck(*engine_, repair);
  ASSERT_TRUE(repaired.ok());
  ASSERT_FALSE(repaired->problems.empty());
  EXPECT_NE(repaired->problems[0].what.find("repaired: renamed unnamed-"), std::string::npos)
      << repaired->problems[0].what;
  const std::string name = "unnamed-" + std::to_string(run);
  auto dir = Lookup(incoming_, name);
  ASSERT_TRUE(dir.ok());
  auto file = Lookup(dir->ino, "f");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(Drive([&] { return State(file->ino) == "dual"; }));
  EXPECT_EQ(fake_->Data("incoming/" + name + "/f"), "data");
  auto again = Fsck(*engine_, FsckOptions());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->problems.empty())
      << again->problems[0].path << ": " << again->problems[0].what;
}

TEST_F(FsCoreWriteTest, AnIncompleteCopyIsNeverArchivedAndFsckDropsItOnceItsWriterDied) {
  // A pid that is surely not running: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  int status = 0;
  ::waitpid(dead, &status, 0);
  core_options_.incomplete_error = catalog::IncompletePutError(dead);
  Start();
  auto created = core_->Create(incoming_, "half", 0644, O_WRONLY | O_CREAT, kMe);
  ASSERT_TRUE(created.ok());
  const uint64_t ino = created->first.ino;
  EXPECT_EQ(State(ino), "failed");
  ASSERT_TRUE(core_->Write(ino, created->second, "part", 4, 0).ok());
  core_->Release(ino, created->second);  // the put dies here, before it cleared the mark
  clock_.Advance(1min);
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(State(ino), "failed");
  EXPECT_FALSE(fake_->Stat("incoming/half").ok());
  core_options_ = FsCore::Options{0, 0};
  Start();  // a new engine archives what was left online, but not this
  clock_.Advance(1min);
  ASSERT_TRUE(engine_->TEST_WaitIdle());
  EXPECT_EQ(State(ino), "failed");
  for (const catalog::Job& j : Jobs()) EXPECT_NE(j.entry_id, static_cast<catalog::EntryId>(ino));
  FsckOptions repair;
  repair.repair = true;
  auto report = Fsck(*engine_, repair);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_NE(report->problems[0].what.find("repaired: removed"), std::string::npos)
      << report->problems[0].what;
  EXPECT_EQ(Lookup(incoming_, "half").status().code(), Code::kNotFound);
  EXPECT_FALSE(stdfs::exists(engine_->cache().PathOf(static_cast<catalog::EntryId>(ino))));
}

}  // namespace
}  // namespace hsmfs::fs
