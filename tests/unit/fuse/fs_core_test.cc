// FsCore without a mount: a FakeBackend behind a FaultInjectingBackend, a
// FakeClock, and a real SQLite catalog in a temporary directory.

#include "fuse/fs_core.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <set>
#include <stdexcept>

#include "backends/testing/fake_backend.h"
#include "backends/testing/fault_injecting_backend.h"
#include "catalog/job_queue.h"
#include "common/logging.h"
#include "fuse/errno_map.h"
#include "tests/unit/log_capture.h"

namespace hsmfs::fs {
namespace {

using namespace std::chrono_literals;
using backends::FakeBackend;
using backends::FaultInjectingBackend;
using backends::Op;
namespace stdfs = std::filesystem;

struct Listed {
  std::string name;
  Attr attr;
  uint64_t next;
};

// Collects entries; accepts at most `room` per reply to exercise offsets.
class CollectingSink final : public DirSink {
 public:
  explicit CollectingSink(size_t room = 1'000'000) : room_(room) {}
  bool Add(std::string_view name, const Attr& attr, uint64_t next) override {
    if (entries.size() >= room_) return false;
    entries.push_back(Listed{std::string(name), attr, next});
    return true;
  }
  void Finish(Status s) override { done.set_value(std::move(s)); }
  std::vector<Listed> entries;
  std::promise<Status> done;

 private:
  size_t room_;
};

class RecordingNotifier final : public KernelNotifier {
 public:
  void InvalidateInode(uint64_t ino) override {
    std::lock_guard<std::mutex> l(mu);
    inodes.push_back(ino);
  }
  void InvalidateEntry(uint64_t parent, std::string name) override {
    std::lock_guard<std::mutex> l(mu);
    entries.emplace_back(parent, std::move(name));
  }
  std::mutex mu;
  std::vector<uint64_t> inodes;
  std::vector<std::pair<uint64_t, std::string>> entries;
};

class FsCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_fscore_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    auto fake = std::make_unique<FakeBackend>();
    fake_ = fake.get();
    fake_->AddFile("act6/season4/tod_001.dat", std::string(5000, 'a'), 1'650'000'000'000'000'000);
    fake_->AddFile("act6/season4/tod_002.dat", std::string(7000, 'b'));
    fake_->AddFile("README", "hello");
    auto faulty = std::make_unique<FaultInjectingBackend>(std::move(fake), clock_);
    faulty_ = faulty.get();

    config_.catalog.path = dir_ / "catalog.db";
    config_.cache.dir = dir_ / "cache";
    config_.mount.list_timeout = 10s;
    config_.mount.list_ttl = 10min;
    config_.cache.stage_timeout = 1h;
    config_.stage.workers = 2;
    BackendConfig vault;
    vault.name = "vault";
    vault.type = "posix";
    vault.root = "/nonexistent";  // unused: the fake is injected
    config_.backends.push_back(vault);

    EngineOptions options;
    options.notifier = &notifier_;
    options.run_jobs = true;
    options.backends["vault"] = std::move(faulty);
    auto engine = Engine::Open(config_, clock_, std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    core_ = std::make_unique<FsCore>(*engine_, FsCore::Options{1000, 1000});
  }

  void TearDown() override {
    core_.reset();
    engine_.reset();
    stdfs::remove_all(dir_);
  }

  Result<Attr> Lookup(uint64_t parent, const std::string& name) {
    std::promise<Result<Attr>> p;
    auto f = p.get_future();
    core_->Lookup(parent, name, [&p](Result<Attr> r) { p.set_value(std::move(r)); });
    if (f.wait_for(5s) != std::future_status::ready) return InternalError("lookup never answered");
    return f.get();
  }

  // Walks "a/b/c" from the root.
  Result<Attr> Path(const std::string& path) {
    uint64_t ino = catalog::kRootId;
    Result<Attr> a = core_->GetAttr(ino);
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      if (slash == std::string::npos) slash = path.size();
      a = Lookup(ino, path.substr(pos, slash - pos));
      if (!a.ok()) return a;
      ino = a->ino;
      pos = slash + 1;
    }
    return a;
  }

  // Reads a whole directory, `room` entries per reply, following offsets.
  Result<std::vector<Listed>> ReadDirAll(uint64_t ino, size_t room = 1'000'000) {
    std::vector<Listed> all;
    uint64_t offset = 0;
    for (;;) {
      auto sink = std::make_shared<CollectingSink>(room);
      auto f = sink->done.get_future();
      core_->ReadDir(ino, offset, sink);
      if (f.wait_for(5s) != std::future_status::ready) return InternalError("readdir hung");
      Status s = f.get();
      if (!s.ok()) return s;
      if (sink->entries.empty()) return all;
      offset = sink->entries.back().next;
      for (auto& e : sink->entries) all.push_back(std::move(e));
    }
  }

  static std::set<std::string> Names(const std::vector<Listed>& entries) {
    std::set<std::string> names;
    for (const auto& e : entries) names.insert(e.name);
    return names;
  }

  // Moves the fake clock in small steps until `pred` holds.
  template <typename Pred>
  bool Drive(Pred pred) {
    for (int i = 0; i < 2000; ++i) {
      if (pred()) return true;
      clock_.Advance(50ms);
      std::this_thread::sleep_for(1ms);
    }
    return pred();
  }

  struct PendingOpen {
    uint64_t wait_id = 0;
    std::shared_ptr<std::promise<Result<OpenFile>>> promise =
        std::make_shared<std::promise<Result<OpenFile>>>();
    std::future<Result<OpenFile>> future = promise->get_future();
    bool ready() { return future.wait_for(0ms) == std::future_status::ready; }
  };
  PendingOpen Open(uint64_t ino, int flags = O_RDONLY, std::string command = "cat") {
    PendingOpen p;
    auto promise = p.promise;
    p.wait_id = core_->Open(ino, flags, catalog::Requester{1000, 4242, std::move(command)},
                            [promise](Result<OpenFile> r) { promise->set_value(std::move(r)); });
    return p;
  }
  static std::string ReadAll(const OpenFile& f) {
    std::string data(1 << 20, '\0');
    const ssize_t n = ::pread(f.fd, data.data(), data.size(), 0);
    data.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return data;
  }
  std::string StateOf(uint64_t ino) { return **core_->GetXattr(ino, "user.hsm.state"); }

  // Waits (in real time) until `pred` holds.
  template <typename Pred>
  static bool Eventually(Pred pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  stdfs::path dir_;
  FakeClock clock_;
  Config config_;
  FakeBackend* fake_;
  FaultInjectingBackend* faulty_;
  RecordingNotifier notifier_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FsCore> core_;
};

TEST_F(FsCoreTest, RootShowsOneDirectoryPerConfiguredBackend) {
  {
    // A backend that was configured once and is no more stays hidden.
    auto s = engine_->catalog().Acquire();
    ASSERT_TRUE(s->EnsureBackendRoot("retired", 0).ok());
  }
  auto entries = ReadDirAll(catalog::kRootId);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  EXPECT_EQ(Names(*entries), (std::set<std::string>{".", "..", "vault"}));
  EXPECT_EQ(Lookup(catalog::kRootId, "retired").status().code(), Code::kNotFound);
  auto vault = Lookup(catalog::kRootId, "vault");
  ASSERT_TRUE(vault.ok());
  EXPECT_TRUE(S_ISDIR(vault->mode));
  EXPECT_EQ(faulty_->calls(Op::kList), 0);  // the root never asks a backend
}

TEST_F(FsCoreTest, FirstLookupListsTheDirectoryAndAttributesMatchTheBackend) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  ASSERT_TRUE(tod.ok()) << tod.status().ToString();
  EXPECT_TRUE(S_ISREG(tod->mode));
  EXPECT_EQ(tod->mode & 0777, 0644u);
  EXPECT_EQ(tod->size, 5000u);
  EXPECT_EQ(tod->mtime_ns, 1'650'000'000'000'000'000);
  EXPECT_EQ(tod->blocks, 0u);  // offline: nothing on local disk
  EXPECT_EQ(tod->uid, 1000u);
  EXPECT_EQ(faulty_->calls(Op::kList), 3);  // vault, act6, season4
  EXPECT_EQ(Lookup(Path("vault")->ino, "absent").status().code(), Code::kNotFound);
}

TEST_F(FsCoreTest, ListedDirectoriesAreAnsweredWithoutTheBackend) {
  ASSERT_TRUE(Path("vault/act6/season4/tod_002.dat").ok());
  const int lists = faulty_->calls(Op::kList);
  faulty_->FailAlways(Op::kList, UnavailableError("backend down"));
  faulty_->FailAlways(Op::kStat, UnavailableError("backend down"));
  auto season = Path("vault/act6/season4");
  ASSERT_TRUE(season.ok());
  auto entries = ReadDirAll(season->ino);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(Names(*entries), (std::set<std::string>{".", "..", "tod_001.dat", "tod_002.dat"}));
  EXPECT_TRUE(core_->GetAttr(season->ino).ok());
  EXPECT_EQ(faulty_->calls(Op::kList), lists);
  EXPECT_EQ(faulty_->calls(Op::kStat), 0);
}

TEST_F(FsCoreTest, SlowFirstListingIsIncompleteAfterListTimeoutNotEmpty) {
  auto vault = Path("vault");
  ASSERT_TRUE(vault.ok());
  faulty_->Hang(Op::kList);
  auto sink = std::make_shared<CollectingSink>();
  auto done = sink->done.get_future();
  core_->ReadDir(vault->ino, 0, sink);
  ASSERT_TRUE(Eventually([&] { return faulty_->hanging() == 1; }));
  EXPECT_EQ(done.wait_for(50ms), std::future_status::timeout);  // still waiting
  clock_.Advance(11s);                                          // past list_timeout
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  // Not an empty directory: EIO, and the directory says why.
  const Status first = done.get();
  EXPECT_EQ(ToErrno(first), EIO) << first.ToString();
  EXPECT_EQ(first.message().rfind("E-LIST-02: ", 0), 0u) << first.message();
  EXPECT_NE(first.message().find("incomplete"), std::string::npos) << first.message();
  auto why = core_->GetXattr(vault->ino, "user.hsm.error");
  ASSERT_TRUE(why.ok() && *why);
  EXPECT_NE((*why)->find("incomplete"), std::string::npos) << **why;
  // A name not seen yet is not ENOENT either.
  EXPECT_EQ(ToErrno(Lookup(vault->ino, "README").status()), EIO);
  // Later requests do not wait again while the listing is still running.
  EXPECT_EQ(ToErrno(ReadDirAll(vault->ino).status()), EIO);
  faulty_->Unhang(Op::kList);
  ASSERT_TRUE(Eventually([&] {
    auto now = ReadDirAll(vault->ino);
    return now.ok() && Names(*now).count("act6") && Names(*now).count("README");
  }));
  EXPECT_FALSE(*core_->GetXattr(vault->ino, "user.hsm.error"));
}

TEST_F(FsCoreTest, FirstListingsOnAHungBackendAreIncompleteAtOnce) {
  for (const char* d : {"d1", "d2", "d3"}) fake_->AddFile(std::string("batch/") + d + "/f", "x");
  auto batch = Path("vault/batch");
  ASSERT_TRUE(batch.ok());
  std::vector<uint64_t> dirs;
  for (const char* d : {"d1", "d2", "d3"}) dirs.push_back(Lookup(batch->ino, d)->ino);
  const int lists = faulty_->calls(Op::kList);
  faulty_->Hang(Op::kList);
  auto sink = std::make_shared<CollectingSink>();
  auto done = sink->done.get_future();
  core_->ReadDir(dirs[0], 0, sink);
  ASSERT_TRUE(Eventually([&] { return faulty_->hanging() == 1; }));
  clock_.Advance(11s);  // one list_timeout
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(ToErrno(done.get()), EIO);
  // The backend is taken for hung: the next directories are answered at once
  // (no fake time passes), incomplete, and no listing is started for them.
  for (size_t i = 1; i < dirs.size(); ++i) {
    auto r = ReadDirAll(dirs[i]);
    EXPECT_EQ(ToErrno(r.status()), EIO);
    EXPECT_EQ(r.status().message().rfind("E-LIST-02: ", 0), 0u) << r.status().message();
    EXPECT_EQ(ToErrno(Lookup(dirs[i], "f").status()), EIO);
    auto why = core_->GetXattr(dirs[i], "user.hsm.error");
    ASSERT_TRUE(why.ok() && *why);
    EXPECT_NE((*why)->find("incomplete"), std::string::npos) << **why;
  }
  EXPECT_EQ(faulty_->calls(Op::kList), lists + 1);
  EXPECT_EQ(faulty_->hanging(), 1);
  // Once the hung listing returns, first listings run (and wait) again.
  faulty_->Unhang(Op::kList);
  ASSERT_TRUE(Eventually([&] {
    auto now = ReadDirAll(dirs[0]);
    return now.ok() && Names(*now).count("f");
  }));
  auto second = ReadDirAll(dirs[1]);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(Names(*second).count("f"));
  EXPECT_FALSE(*core_->GetXattr(dirs[1], "user.hsm.error"));
}

TEST_F(FsCoreTest, FailedFirstListingIsAnErrorAndIsRetriedLater) {
  auto vault = Path("vault");
  faulty_->FailFirst(Op::kList, 1, UnavailableError("hsi: connection refused"));
  auto first = ReadDirAll(vault->ino);
  EXPECT_EQ(first.status().code(), Code::kUnavailable);
  EXPECT_NE(first.status().message().find("connection refused"), std::string::npos);
  EXPECT_EQ(first.status().message().rfind("E-LIST-01: ", 0), 0u) << first.status().message();
  EXPECT_NE((*core_->GetXattr(catalog::kRootId, "user.hsm.stats"))->find("E-LIST-01="),
            std::string::npos);
  // Within the back-off window the error is repeated without a new attempt.
  EXPECT_EQ(ReadDirAll(vault->ino).status().code(), Code::kUnavailable);
  EXPECT_EQ(faulty_->calls(Op::kList), 1);
  clock_.Advance(6s);
  auto later = ReadDirAll(vault->ino);
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_TRUE(Names(*later).count("act6"));
}

TEST_F(FsCoreTest, StaleListingsRefreshInTheBackground) {
  auto vault = Path("vault");
  ASSERT_TRUE(ReadDirAll(vault->ino).ok());
  fake_->AddFile("new.h5", "new data");
  // Fresh: answered from the catalog, the new file is not there yet.
  EXPECT_EQ(Lookup(vault->ino, "new.h5").status().code(), Code::kNotFound);
  clock_.Advance(11min);
  auto stale = ReadDirAll(vault->ino);  // answered at once, refresh started
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE(Eventually([&] { return Lookup(vault->ino, "new.h5").ok(); }));
}

TEST_F(FsCoreTest, BackendDownAfterSyncKeepsTheTree) {
  auto vault = Path("vault");
  ASSERT_TRUE(ReadDirAll(vault->ino).ok());
  faulty_->FailAlways(Op::kList, UnavailableError("root renamed away"));
  clock_.Advance(11min);
  const int before = faulty_->calls(Op::kList);
  ASSERT_TRUE(ReadDirAll(vault->ino).ok());
  ASSERT_TRUE(Eventually([&] { return faulty_->calls(Op::kList) > before; }));
  ASSERT_TRUE(engine_->TEST_WaitIdle());  // the failed refresh has ended
  auto after = ReadDirAll(vault->ino);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Names(*after), (std::set<std::string>{".", "..", "act6", "README"}));
}

TEST_F(FsCoreTest, RefreshInvalidatesWhatChanged) {
  auto vault = Path("vault");
  auto readme = Lookup(vault->ino, "README");
  ASSERT_TRUE(readme.ok());
  fake_->AddFile("README", "a longer hello", 1);
  ASSERT_TRUE(fake_->Remove("act6/season4/tod_001.dat").ok());
  ASSERT_TRUE(fake_->Remove("act6/season4/tod_002.dat").ok());
  ASSERT_TRUE(fake_->Remove("act6/season4").ok());
  ASSERT_TRUE(fake_->Remove("act6").ok());
  clock_.Advance(11min);
  ASSERT_TRUE(ReadDirAll(vault->ino).ok());
  ASSERT_TRUE(Eventually([&] { return core_->GetAttr(readme->ino)->size == 14; }));
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> l(notifier_.mu);
    return !notifier_.entries.empty();
  }));
  std::lock_guard<std::mutex> l(notifier_.mu);
  EXPECT_EQ(notifier_.entries[0], std::make_pair(vault->ino, std::string("act6")));
  EXPECT_NE(std::find(notifier_.inodes.begin(), notifier_.inodes.end(), readme->ino),
            notifier_.inodes.end());
}

TEST_F(FsCoreTest, ReadDirOffsetsResumeWithoutLossOrRepeats) {
  for (int i = 0; i < 300; ++i) fake_->AddFile("many/f" + std::to_string(i), "x");
  auto many = Path("vault/many");
  ASSERT_TRUE(many.ok());
  auto all = ReadDirAll(many->ino, 7);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 302u);
  EXPECT_EQ(Names(*all).size(), 302u);
  auto plus = ReadDirAll(many->ino);
  for (const Listed& e : *plus) {
    if (e.name == "." || e.name == "..") continue;
    EXPECT_EQ(e.attr.size, 1u);
    EXPECT_EQ(e.attr.blocks, 0u);
  }
}

TEST_F(FsCoreTest, ExtendedAttributes) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  ASSERT_TRUE(tod.ok());
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.state"), "offline");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.dmf"), "OFL");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.backend"), "vault");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.location"), "fake:act6/season4/tod_001.dat");
  EXPECT_EQ((*core_->GetXattr(tod->ino, "user.hsm.checksum"))->rfind("md5:", 0), 0u);
  EXPECT_FALSE(core_->GetXattr(tod->ino, "user.hsm.error")->has_value());
  EXPECT_FALSE(core_->GetXattr(tod->ino, "security.capability")->has_value());
  EXPECT_EQ(*core_->ListXattr(tod->ino),
            (std::vector<std::string>{"user.hsm.state", "user.hsm.dmf", "user.hsm.backend",
                                      "user.hsm.location", "user.hsm.checksum"}));
  auto dir = Path("vault/act6");
  EXPECT_FALSE(core_->GetXattr(dir->ino, "user.hsm.state")->has_value());
  EXPECT_EQ(**core_->GetXattr(dir->ino, "user.hsm.location"), "vault:/act6");
  EXPECT_EQ(core_->GetXattr(999999, "user.hsm.state").status().code(), Code::kNotFound);
}

TEST_F(FsCoreTest, DmfCodeShowsTheBackendsStateUntilTheFileIsCached) {
  fake_->SetHsmState("act6/season4/tod_001.dat", "DUL");
  fake_->SetHsmState("act6/season4/tod_002.dat", "NMG");
  auto dul = Path("vault/act6/season4/tod_001.dat");
  auto nmg = Path("vault/act6/season4/tod_002.dat");
  auto readme = Path("vault/README");
  ASSERT_TRUE(dul.ok() && nmg.ok() && readme.ok());
  // Offline here: the backend's own code (on its disk tier; never migrated).
  EXPECT_EQ(StateOf(dul->ino), "offline");
  EXPECT_EQ(**core_->GetXattr(dul->ino, "user.hsm.dmf"), "DUL");
  EXPECT_EQ(**core_->GetXattr(nmg->ino, "user.hsm.dmf"), "NMG");
  // A backend without HSM states: derived from ours.
  EXPECT_EQ(**core_->GetXattr(readme->ino, "user.hsm.dmf"), "OFL");
  // Recalled into our cache: dual, whatever the backend said.
  PendingOpen o = Open(nmg->ino);
  ASSERT_TRUE(Drive([&] { return o.ready(); }));
  auto f = o.future.get();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  core_->Release(nmg->ino, *f);
  EXPECT_EQ(StateOf(nmg->ino), "dual");
  EXPECT_EQ(**core_->GetXattr(nmg->ino, "user.hsm.dmf"), "DUL");
  auto dir = Path("vault/act6");
  EXPECT_FALSE(core_->GetXattr(dir->ino, "user.hsm.dmf")->has_value());
}

TEST_F(FsCoreTest, NotADirectory) {
  auto readme = Path("vault/README");
  ASSERT_TRUE(readme.ok());
  EXPECT_EQ(Lookup(readme->ino, "x").status().code(), Code::kNotDirectory);
  EXPECT_EQ(ReadDirAll(readme->ino).status().code(), Code::kNotDirectory);
  EXPECT_EQ(core_->GetAttr(424242).status().code(), Code::kNotFound);
}

TEST_F(FsCoreTest, StatFsCountsTheArchive) {
  ASSERT_TRUE(Path("vault/act6/season4/tod_001.dat").ok());
  auto st = core_->StatFs();
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->blocks * st->block_size, 5000u + 7000u + 5u);
  EXPECT_GE(st->files, 7u);
}

}  // namespace
}  // namespace hsmfs::fs

namespace hsmfs::fs {
namespace {

TEST_F(FsCoreTest, OpeningAnOfflineFileWaitsForItsRecall) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  ASSERT_TRUE(tod.ok());
  EXPECT_EQ(StateOf(tod->ino), "offline");
  PendingOpen open = Open(tod->ino);
  EXPECT_NE(open.wait_id, 0u);  // answered later, not on this thread
  EXPECT_EQ(StateOf(tod->ino), "staging");
  ASSERT_TRUE(Drive([&] { return open.ready(); }));
  auto file = open.future.get();
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(ReadAll(*file), std::string(5000, 'a'));
  core_->Release(tod->ino, *file);
  EXPECT_EQ(StateOf(tod->ino), "dual");
  EXPECT_EQ(core_->GetAttr(tod->ino)->blocks, 10u);  // now on local disk
  // A second open is served from the cache at once.
  PendingOpen again = Open(tod->ino);
  EXPECT_EQ(again.wait_id, 0u);
  ASSERT_TRUE(again.ready());
  auto second = again.future.get();
  ASSERT_TRUE(second.ok());
  core_->Release(tod->ino, *second);
  EXPECT_EQ(fake_->calls(Op::kRead), 1);
}

TEST_F(FsCoreTest, ConcurrentOpensShareOneRecall) {
  auto tod = Path("vault/act6/season4/tod_002.dat");
  std::vector<PendingOpen> opens;
  for (int i = 0; i < 20; ++i) opens.push_back(Open(tod->ino));
  ASSERT_TRUE(Drive([&] {
    return std::all_of(opens.begin(), opens.end(), [](PendingOpen& o) { return o.ready(); });
  }));
  for (PendingOpen& o : opens) {
    auto f = o.future.get();
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(ReadAll(*f), std::string(7000, 'b'));
    core_->Release(tod->ino, *f);
  }
  EXPECT_EQ(fake_->calls(Op::kRead), 1);
}

TEST_F(FsCoreTest, NonBlockingOpenIsEagainAndTheRecallStaysQueued) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  PendingOpen open = Open(tod->ino, O_RDONLY | O_NONBLOCK);
  EXPECT_EQ(open.wait_id, 0u);
  ASSERT_TRUE(open.ready());
  EXPECT_EQ(ToErrno(open.future.get().status()), EAGAIN);
  ASSERT_TRUE(Drive([&] { return StateOf(tod->ino) == "dual"; }));
}

TEST_F(FsCoreTest, InterruptEndsTheWaitButNotTheRecall) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  faulty_->Delay(Op::kRead, 30s);
  PendingOpen open = Open(tod->ino);
  ASSERT_TRUE(Drive([&] { return faulty_->calls(Op::kRead) == 1; }));
  core_->Interrupt(open.wait_id);
  ASSERT_TRUE(open.ready());
  EXPECT_EQ(ToErrno(open.future.get().status()), EINTR);
  ASSERT_TRUE(Drive([&] { return StateOf(tod->ino) == "dual"; }));
}

TEST_F(FsCoreTest, StageTimeoutGivesEtimedout) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  faulty_->Hang(Op::kRead);
  PendingOpen open = Open(tod->ino);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  EXPECT_FALSE(open.ready());
  clock_.Advance(1h);
  ASSERT_TRUE(Eventually([&] { return open.ready(); }));
  const Status s = open.future.get().status();
  EXPECT_EQ(ToErrno(s), ETIMEDOUT);
  EXPECT_NE(s.message().find("stage_timeout"), std::string::npos);
  EXPECT_EQ(StateOf(tod->ino), "staging");  // the recall goes on
  faulty_->Unhang(Op::kRead);
  ASSERT_TRUE(Drive([&] { return StateOf(tod->ino) == "dual"; }));
}

TEST_F(FsCoreTest, AFailedRecallIsEioWithTheReason) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  faulty_->FailAlways(Op::kRead, NotFoundError("fake:act6/season4/tod_001.dat vanished"));
  PendingOpen open = Open(tod->ino);
  ASSERT_TRUE(Drive([&] { return open.ready(); }));
  const Status s = open.future.get().status();
  EXPECT_EQ(ToErrno(s), EIO);
  EXPECT_NE(s.message().find("vanished"), std::string::npos);
  EXPECT_EQ(StateOf(tod->ino), "failed");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.error"),
            "fake:act6/season4/tod_001.dat vanished");
}

TEST_F(FsCoreTest, ScannersAreRefusedAndQueueNothing) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  const uint64_t denied_before = ErrorSiteCounts()["DENY-RECALL"];
  PendingOpen open = Open(tod->ino, O_RDONLY, "updatedb");
  ASSERT_TRUE(open.ready());
  EXPECT_EQ(ToErrno(open.future.get().status()), EACCES);
  EXPECT_EQ(StateOf(tod->ino), "offline");
  {
    auto s = engine_->catalog().Acquire();
    EXPECT_TRUE(catalog::JobQueue::List(*s, catalog::JobFilter())->empty());
  }
  EXPECT_EQ(ErrorSiteCounts()["DENY-RECALL"], denied_before + 1);
  EXPECT_NE((*core_->GetXattr(catalog::kRootId, "user.hsm.stats"))->find("DENY-RECALL="),
            std::string::npos);
}

TEST_F(FsCoreTest, ScannersStillReadCachedFiles) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  ASSERT_TRUE(core_->SetXattr(tod->ino, "user.hsm.stage", catalog::Requester{0, 1, "cat"}).ok());
  ASSERT_TRUE(Drive([&] { return StateOf(tod->ino) == "dual"; }));
  PendingOpen open = Open(tod->ino, O_RDONLY, "updatedb");
  ASSERT_TRUE(open.ready());
  auto f = open.future.get();
  ASSERT_TRUE(f.ok());
  core_->Release(tod->ino, *f);
}

TEST_F(FsCoreTest, WritingIsRefusedOutsideWritableDirectories) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  for (int flags : {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC}) {
    PendingOpen open = Open(tod->ino, flags);
    ASSERT_TRUE(open.ready());
    EXPECT_EQ(ToErrno(open.future.get().status()), EROFS);
  }
}

TEST_F(FsCoreTest, StageAndReleaseThroughXattrs) {
  auto tod = Path("vault/act6/season4/tod_001.dat");
  const catalog::Requester me{0, 1, "setfattr"};
  ASSERT_TRUE(core_->SetXattr(tod->ino, "user.hsm.stage", me).ok());  // returns at once
  EXPECT_EQ(StateOf(tod->ino), "staging");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.queue_position"), "1");
  EXPECT_EQ(**core_->GetXattr(tod->ino, "user.hsm.eta"), "5s");
  auto names = *core_->ListXattr(tod->ino);
  EXPECT_NE(std::find(names.begin(), names.end(), "user.hsm.eta"), names.end());
  ASSERT_TRUE(Drive([&] { return StateOf(tod->ino) == "dual"; }));
  EXPECT_FALSE(core_->GetXattr(tod->ino, "user.hsm.eta")->has_value());

  PendingOpen open = Open(tod->ino);
  auto f = open.future.get();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ToErrno(core_->SetXattr(tod->ino, "user.hsm.release", me)), EBUSY);
  core_->Release(tod->ino, *f);
  ASSERT_TRUE(core_->SetXattr(tod->ino, "user.hsm.release", me).ok());
  EXPECT_EQ(StateOf(tod->ino), "offline");
  EXPECT_EQ(core_->GetAttr(tod->ino)->blocks, 0u);
  EXPECT_EQ(ToErrno(core_->SetXattr(tod->ino, "user.other", me)), ENOTSUP);
}

// The FUSE adapter's catch blocks reply with what this returns; what they
// caught is in the log, not lost.
TEST(FuseBoundaryTest, ACaughtExceptionIsLoggedWithWhatItSaysCountedAndBecomesEio) {
  LogCapture log;
  const auto count = [] {
    const auto counts = ErrorSiteCounts();
    auto it = counts.find("E-FUSE-01");
    return it == counts.end() ? uint64_t{0} : it->second;
  };
  const uint64_t before = count();
  int err = 0;
  try {
    throw std::out_of_range("vector::_M_range_check: __n (which is 7) >= this->size()");
  } catch (...) {
    err = ErrnoForCaughtException("read", 42);
  }
  EXPECT_EQ(err, EIO);
  EXPECT_NE(log.text().find("E E-FUSE-01: read (inode 42): unexpected exception: "
                            "vector::_M_range_check: __n (which is 7) >= this->size() -> "
                            "Input/output error"),
            std::string::npos)
      << log.text();
  try {
    throw 7;
  } catch (...) {
    err = ErrnoForCaughtException("release", 9);
  }
  EXPECT_EQ(err, EIO);
  EXPECT_NE(log.text().find("E E-FUSE-01: release (inode 9): unexpected exception: unknown "
                            "exception -> Input/output error"),
            std::string::npos)
      << log.text();
  // Called with nothing being handled it still answers, and does not terminate.
  EXPECT_EQ(ErrnoForCaughtException("lookup", 1), EIO);
  EXPECT_EQ(count(), before + 3);
}

}  // namespace
}  // namespace hsmfs::fs
