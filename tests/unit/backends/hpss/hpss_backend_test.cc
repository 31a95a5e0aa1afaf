// HpssBackend against the hsi/htar EMULATOR (tests/emulators/hpss): the
// Backend contract checks that apply to HPSS, plus what is HPSS's own: tape
// positions, one session for many commands, htar archives as read-only
// directories, "***" errors and exits never taken for success.

#include "backends/hpss/hpss_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backends/hpss/hpsspy/scan_config.h"
#include "catalog/bundle_store.h"
#include "catalog/catalog.h"
#include "common/subprocess.h"

namespace hsmfs::backends::hpss {
namespace {

namespace stdfs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

const stdfs::path kEmulator = stdfs::path(HSMFS_SOURCE_DIR) / "tests/emulators/hpss";

std::string Slurp(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class HpssBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_hpss_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_ / "hpss/home/elvis");
    stdfs::create_directories(dir_ / "scratch");
    ::setenv("HPSS_EMU_ROOT", (dir_ / "hpss").c_str(), 1);
    ::setenv("HPSS_EMU_STATE", (dir_ / "state").c_str(), 1);
    ::unsetenv("HPSS_EMU_FAULTS");
    ::unsetenv("HPSS_EMU_RECALL_DELAY");
    backend_ = Make();
  }
  void TearDown() override {
    backend_.reset();
    stdfs::remove_all(dir_);
  }
  // The backend root /home/elvis through the emulator's hsi and htar.
  static HpssOptions EmulatorOptions() {
    HpssOptions o;
    o.root = "/home/elvis";
    o.hsi = kEmulator / "hsi";
    o.htar = kEmulator / "htar";
    return o;
  }
  std::unique_ptr<HpssBackend> Make(Duration timeout = seconds(30)) {
    HpssOptions o = EmulatorOptions();
    o.command_timeout = timeout;
    o.checksum = true;
    return std::make_unique<HpssBackend>(o, clock_);
  }
  stdfs::path Local(const std::string& data) {
    const stdfs::path p = dir_ / "scratch" / ("src" + std::to_string(n_++));
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  Result<ObjectInfo> Put(const ObjectPath& path, const std::string& data) {
    return backend_->Put(Local(data), path, PutOptions());
  }
  Result<std::string> ReadAll(const ObjectPath& path, const ReadOptions& o = {}) {
    const stdfs::path dest = dir_ / "scratch" / ("dest" + std::to_string(n_++));
    HSMFS_RETURN_IF_ERROR(backend_->Read(path, dest, o));
    return Slurp(dest);
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
  // Makes the htar archive /home/elvis/<archive> from a local tree.
  void MakeArchive(const std::string& archive) {
    stdfs::create_directories(dir_ / "tree/nova/remnants");
    std::ofstream(dir_ / "tree/nova/sn1987a") << "supernova";
    std::ofstream(dir_ / "tree/nova/remnants/crab") << "pulsar!";
    std::ofstream(dir_ / "tree/readme") << "read me";
    SubprocessOptions o;
    o.argv = {(kEmulator / "htar").string(), "-c",   "-f",
              "/home/elvis/" + archive,      "nova", "readme"};
    o.cwd = dir_ / "tree";
    auto r = RunSubprocess(o, seconds(30));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  }
  // The hsi/htar commands the emulator logged, as "tool cmd line".
  std::vector<std::string> Calls(const std::string& cmd) {
    std::vector<std::string> out;
    std::ifstream in(dir_ / "state/calls.log");
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"event\": \"cmd\"") == std::string::npos) continue;
      if (line.find("\"cmd\": \"" + cmd + "\"") != std::string::npos) out.push_back(line);
    }
    return out;
  }

  FakeClock clock_;
  stdfs::path dir_;
  std::unique_ptr<HpssBackend> backend_;
  std::atomic<int> n_{0};  // Local() and ReadAll() are called from several threads
};

TEST_F(HpssBackendTest, PutStatReadBack) {
  std::string data(300'000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  auto put = Put("dir/sub/file.bin", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, data.size());
  EXPECT_EQ(put->type, ObjectType::kFile);
  EXPECT_FALSE(put->volume.empty());
  auto st = backend_->Stat("dir/sub/file.bin");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->name, "file.bin");
  EXPECT_EQ(st->size, data.size());
  EXPECT_EQ(st->residency, Residency::kTape);
  EXPECT_NE(st->location.find(st->volume), std::string::npos);
  auto back = ReadAll("dir/sub/file.bin");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
  // put went with "-c on" and mkdir -p before it.
  ASSERT_EQ(Calls("put").size(), 1u);
  EXPECT_NE(Calls("put")[0].find("-c on"), std::string::npos);
  EXPECT_EQ(Calls("mkdir").size(), 1u);
  EXPECT_TRUE(stdfs::is_regular_file(dir_ / "hpss/home/elvis/dir/sub/file.bin"));
}

TEST_F(HpssBackendTest, EmptyFileAndReplace) {
  ASSERT_TRUE(Put("empty", "").ok());
  EXPECT_EQ(backend_->Stat("empty")->size, 0u);
  EXPECT_EQ(*ReadAll("empty"), "");
  ASSERT_TRUE(Put("f", "first version").ok());
  ASSERT_TRUE(Put("f", "v2").ok());
  EXPECT_EQ(*ReadAll("f"), "v2");
  EXPECT_EQ(ListAll("").size(), 2u);
}

TEST_F(HpssBackendTest, ListShowsChildrenWithTapePositions) {
  ASSERT_TRUE(Put("a/b/c.txt", "ccc").ok());
  ASSERT_TRUE(Put("a/d.txt", "dd").ok());
  ASSERT_TRUE(Put("a/e.txt", "eee").ok());
  auto top = ListAll("");
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].name, "a");
  EXPECT_EQ(top[0].type, ObjectType::kDir);
  auto a = ListAll("a");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].name, "b");
  EXPECT_EQ(a[0].type, ObjectType::kDir);
  EXPECT_EQ(a[1].name, "d.txt");
  EXPECT_EQ(a[1].size, 2u);
  EXPECT_EQ(a[1].residency, Residency::kTape);
  EXPECT_EQ(a[1].volume, "EM000000");
  // Files put one after the other follow each other on tape.
  EXPECT_EQ(a[2].position, a[1].position + 1);
}

TEST_F(HpssBackendTest, ListingFollowsTheLayoutFile) {
  stdfs::create_directories(dir_ / "state");
  std::ofstream(dir_ / "state/layout")
      << "/home/elvis/t/x VOLB0000 7\n/home/elvis/t/y VOLA0000 9\n";
  ASSERT_TRUE(Put("t/x", "1").ok());
  ASSERT_TRUE(Put("t/y", "2").ok());
  auto t = ListAll("t");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].volume, "VOLB0000");
  EXPECT_EQ(t[0].position, 7);
  EXPECT_EQ(t[1].volume, "VOLA0000");
  EXPECT_EQ(t[1].position, 9);
}

TEST_F(HpssBackendTest, ManyEntriesArriveWhole) {
  for (int i = 0; i < 1500; ++i) {
    stdfs::create_directories(dir_ / "hpss/home/elvis/many" / ("d" + std::to_string(i)));
  }
  EXPECT_EQ(ListAll("many").size(), 1500u);
}

TEST_F(HpssBackendTest, MissingObjectsAreNotFound) {
  EXPECT_EQ(backend_->Stat("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(ReadAll("nope").status().code(), Code::kNotFound);
  Status s;
  ListAll("nope", &s);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(backend_->Remove("nope").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Rename("nope", "other").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Stage("nope", Deadline::Never()).code(), Code::kNotFound);
}

TEST_F(HpssBackendTest, ListOfAFileIsNotADirectory) {
  ASSERT_TRUE(Put("f", "x").ok());
  Status s;
  ListAll("f", &s);
  EXPECT_EQ(s.code(), Code::kNotDirectory);
}

TEST_F(HpssBackendTest, ReadVerifiesExpectedChecksumAndHonoursCancel) {
  ASSERT_TRUE(Put("f", "abc").ok());
  ReadOptions good;
  good.expect_checksum = "md5:900150983cd24fb0d6963f7d28e17f72";
  EXPECT_EQ(*ReadAll("f", good), "abc");
  ReadOptions bad;
  bad.expect_checksum = "md5:00000000000000000000000000000000";
  EXPECT_EQ(ReadAll("f", bad).status().code(), Code::kDataLoss);
  CancelToken cancel;
  cancel.Cancel();
  ReadOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(ReadAll("f", o).status().code(), Code::kCancelled);
}

TEST_F(HpssBackendTest, RemoveRenameMakeDir) {
  ASSERT_TRUE(Put("d/f", "payload").ok());
  EXPECT_EQ(backend_->Remove("d").code(), Code::kNotEmpty);
  ASSERT_TRUE(backend_->Rename("d/f", "d/g").ok());
  EXPECT_EQ(*ReadAll("d/g"), "payload");
  EXPECT_EQ(backend_->Stat("d/f").status().code(), Code::kNotFound);
  ASSERT_TRUE(backend_->Rename("d", "e").ok());
  EXPECT_EQ(*ReadAll("e/g"), "payload");
  EXPECT_TRUE(backend_->Remove("e/g").ok());
  EXPECT_TRUE(backend_->Remove("e").ok());
  EXPECT_EQ(backend_->Stat("e").status().code(), Code::kNotFound);
  ASSERT_TRUE(backend_->MakeDir("new", 0750).ok());
  EXPECT_EQ(backend_->Stat("new")->type, ObjectType::kDir);
  EXPECT_EQ(backend_->Stat("new")->mode, 0750u);
  EXPECT_EQ(backend_->MakeDir("new", 0750).code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->MakeDir("missing/child", 0755).code(), Code::kNotFound);
}

TEST_F(HpssBackendTest, SymlinksAreMadeWithHsiLnAndListedNeverFollowed) {
  ASSERT_TRUE(Put("run/data.bin", "payload").ok());
  PutOptions po;
  po.symlink_target = "data.bin";
  auto made = backend_->Put({}, "run/latest", po);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->type, ObjectType::kSymlink);
  EXPECT_EQ(made->link_target, "data.bin");
  EXPECT_EQ(made->size, 8u);
  // In the HPSS namespace: a symlink holding the target verbatim.
  const stdfs::path on_hpss = dir_ / "hpss/home/elvis/run/latest";
  ASSERT_TRUE(stdfs::is_symlink(on_hpss));
  EXPECT_EQ(stdfs::read_symlink(on_hpss), "data.bin");
  ASSERT_EQ(Calls("ln").size(), 1u);
  // Dangling, absolute, and with a space; a missing parent is made first.
  po.symlink_target = "../nowhere/x";
  ASSERT_TRUE(backend_->Put({}, "new/dir/dangling", po).ok());
  po.symlink_target = "/home/elvis/run with space";
  ASSERT_TRUE(backend_->Put({}, "run/abs", po).ok());
  // Put replaces, as for files.
  po.symlink_target = "other.bin";
  ASSERT_TRUE(backend_->Put({}, "run/latest", po).ok());
  EXPECT_EQ(stdfs::read_symlink(on_hpss), "other.bin");

  const auto listed = ListAll("run");
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].name, "abs");
  EXPECT_EQ(listed[0].type, ObjectType::kSymlink);
  EXPECT_EQ(listed[0].link_target, "/home/elvis/run with space");
  EXPECT_EQ(listed[1].name, "data.bin");
  EXPECT_EQ(listed[1].type, ObjectType::kFile);
  EXPECT_EQ(listed[2].name, "latest");
  EXPECT_EQ(listed[2].link_target, "other.bin");
  EXPECT_EQ(listed[2].size, 9u);
  auto dangling = backend_->Stat("new/dir/dangling");
  ASSERT_TRUE(dangling.ok()) << dangling.status().ToString();
  EXPECT_EQ(dangling->type, ObjectType::kSymlink);
  EXPECT_EQ(dangling->link_target, "../nowhere/x");
  // Renamed and removed as names; nothing is ever read through one.
  ASSERT_TRUE(backend_->Rename("run/latest", "run/newest").ok());
  EXPECT_EQ(backend_->Stat("run/newest")->link_target, "other.bin");
  ASSERT_TRUE(backend_->Remove("run/newest").ok());
  EXPECT_FALSE(stdfs::is_symlink(dir_ / "hpss/home/elvis/run/newest"));
  EXPECT_EQ(*ReadAll("run/data.bin"), "payload");
  EXPECT_TRUE(Calls("get").size() == 1u);
}

TEST_F(HpssBackendTest, StageAndMalformedPaths) {
  ASSERT_TRUE(Put("f", "x").ok());
  EXPECT_TRUE(backend_->Stage("f", Deadline::Never()).ok());
  EXPECT_EQ(Calls("stage").size(), 1u);
  for (const char* bad : {"../etc/passwd", "/abs", "a//b", "a/./b", "trailing/"}) {
    EXPECT_EQ(backend_->Stat(bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(Put(bad, "x").status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST_F(HpssBackendTest, OneSessionServesManyCommandsOfAThread) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put("s/f" + std::to_string(i), "x").ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ReadAll("s/f" + std::to_string(i)).ok());
  EXPECT_EQ(backend_->SessionStarts(), 1);
  std::set<std::string> sessions;
  for (const std::string& line : Calls("get")) {
    const size_t at = line.find("\"session\": \"");
    sessions.insert(line.substr(at, line.find('"', at + 12) - at));
  }
  EXPECT_EQ(Calls("get").size(), 20u);
  EXPECT_EQ(sessions.size(), 1u);
}

TEST_F(HpssBackendTest, ConcurrentThreadsUseTheirOwnSessions) {
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string path = "t" + std::to_string(t) + "/f" + std::to_string(i);
        const std::string data(static_cast<size_t>(i * 100 + t), static_cast<char>('a' + t));
        if (!backend_->Put(Local(data), path, PutOptions()).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ListAll("t3").size(), 10u);
  EXPECT_EQ(*ReadAll("t2/f7"), std::string(702, 'c'));
  EXPECT_EQ(backend_->SessionStarts(), 5);  // one per thread, and this one
}

TEST_F(HpssBackendTest, ErrorLineIsAFailureEvenWhenHsiWouldExitZero) {
  ASSERT_TRUE(Put("f7", "data").ok());
  ::setenv("HPSS_EMU_FAULTS", "action=error-exit0 match=^get .*f7$", 1);
  backend_ = Make();  // a new session sees the fault variable
  auto r = ReadAll("f7");
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("***"), std::string::npos);
}

TEST_F(HpssBackendTest, DyingSessionIsUnavailableAndRestarted) {
  ASSERT_TRUE(Put("f", "data").ok());
  ::setenv("HPSS_EMU_FAULTS", "action=exit code=75 times=1 match=^stage", 1);
  backend_ = Make();  // a new session sees the fault variable
  EXPECT_EQ(backend_->Stage("f", Deadline::Never()).code(), Code::kUnavailable);
  EXPECT_TRUE(backend_->Stage("f", Deadline::Never()).ok());
  EXPECT_EQ(backend_->SessionStarts(), 2);
}

TEST_F(HpssBackendTest, HangingCommandTimesOutAsUnavailable) {
  ASSERT_TRUE(Put("f", "data").ok());
  ::setenv("HPSS_EMU_FAULTS", "action=hang tool=hsi times=1 match=^stage", 1);
  backend_ = Make(milliseconds(1500));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(backend_->Stage("f", Deadline::Never()).code(), Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
  EXPECT_TRUE(backend_->Stage("f", Deadline::Never()).ok());
}

TEST_F(HpssBackendTest, HtarArchiveIsAReadOnlyDirectory) {
  MakeArchive("nova.tar");
  auto top = ListAll("");
  ASSERT_EQ(top.size(), 1u);  // nova.tar.idx is hidden
  EXPECT_EQ(top[0].name, "nova.tar");
  EXPECT_EQ(top[0].type, ObjectType::kDir);
  EXPECT_EQ(top[0].mode, 0555u);  // the 0644 archive file, as a directory one can enter
  auto inside = ListAll("nova.tar");
  ASSERT_EQ(inside.size(), 2u);
  EXPECT_EQ(inside[0].name, "nova");
  EXPECT_EQ(inside[0].type, ObjectType::kDir);
  EXPECT_EQ(inside[1].name, "readme");
  EXPECT_EQ(inside[1].size, 7u);
  auto nova = ListAll("nova.tar/nova");
  ASSERT_EQ(nova.size(), 2u);
  EXPECT_EQ(nova[0].name, "remnants");
  EXPECT_EQ(nova[1].name, "sn1987a");
  EXPECT_EQ(backend_->Stat("nova.tar")->type, ObjectType::kDir);
  EXPECT_EQ(backend_->Stat("nova.tar/nova/sn1987a")->size, 9u);
  EXPECT_EQ(backend_->Stat("nova.tar/nothere").status().code(), Code::kNotFound);

  EXPECT_EQ(Put("nova.tar/new", "x").status().code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Remove("nova.tar/readme").code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Rename("nova.tar/readme", "r").code(), Code::kReadOnly);
  EXPECT_EQ(backend_->MakeDir("nova.tar/d", 0755).code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Remove("nova.tar").code(), Code::kNotPermitted);
}

TEST_F(HpssBackendTest, ReadingAMemberExtractsOnlyThatMember) {
  MakeArchive("nova.tar");
  auto r = ReadAll("nova.tar/nova/remnants/crab");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "pulsar!");
  const auto extracts = Calls("extract");
  ASSERT_EQ(extracts.size(), 1u);
  EXPECT_NE(extracts[0].find("\"files\": [{\"name\": \"nova/remnants/crab\""), std::string::npos);
  EXPECT_EQ(extracts[0].find("sn1987a"), std::string::npos);
  // No temporary extraction directory is left behind.
  for (const auto& e : stdfs::directory_iterator(dir_ / "scratch")) {
    EXPECT_EQ(e.path().filename().string().find(".hsmfs-htar"), std::string::npos);
  }
}

TEST_F(HpssBackendTest, FailingHtarIsAFailure) {
  MakeArchive("nova.tar");
  ::setenv("HPSS_EMU_FAULTS", "action=error tool=htar match=-x", 1);
  auto r = ReadAll("nova.tar/readme");
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
}

TEST_F(HpssBackendTest, HtarThatExtractsFewerMembersThanAskedFails) {
  MakeArchive("nova.tar");
  ASSERT_TRUE(ListAll("nova.tar").size() == 2u);  // listing cached from the real emulator
  // An htar that claims success but names no extracted member (the emulator
  // cannot be told to do that on extract).
  const stdfs::path fake = dir_ / "fake_htar";
  std::ofstream(fake) << "#!/bin/sh\necho 'HTAR: HTAR SUCCESSFUL'\nexit 0\n";
  stdfs::permissions(fake, stdfs::perms::owner_all);
  HpssOptions o = EmulatorOptions();
  o.htar = fake;
  HpssBackend b(o, clock_);
  const stdfs::path dest = dir_ / "scratch/dest";
  Status s = b.Read("nova.tar/readme", dest, ReadOptions());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("did not extract"), std::string::npos) << s.ToString();
}

TEST_F(HpssBackendTest, ReadNeverReplacesADevice) {
  // hsi get and htar -x replace their destination; a FIFO stands in for /dev/null.
  ASSERT_TRUE(Put("obs/a.fits", "data").ok());
  const stdfs::path fifo = dir_ / "scratch/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Status s = backend_->Read("obs/a.fits", fifo, ReadOptions());
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(stdfs::is_fifo(fifo));
  // ReadBack is the way to check an object without keeping it.
  ReadOptions ro;
  ro.expect_checksum = "md5:8d777f385d3dfec8815d20f7496026dc";
  EXPECT_TRUE(ReadBack(*backend_, "obs/a.fits", dir_ / "scratch", ro).ok());
  ro.expect_checksum = "md5:00000000000000000000000000000000";
  EXPECT_EQ(ReadBack(*backend_, "obs/a.fits", dir_ / "scratch", ro).code(), Code::kDataLoss);
  for (const auto& e : stdfs::directory_iterator(dir_ / "scratch")) {
    EXPECT_EQ(e.path().filename().string().find("readback"), std::string::npos);
  }
}

// Bundled writes: section "sky" of an HPSSPy config whose hpss_root is the
// backend root. run*/ files go into runN.tar, notes/ files into
// notes_files.tar, raw/ is AUTOMATED (put per file).
class HpssBundleTest : public HpssBackendTest {
 protected:
  void SetUp() override {
    HpssBackendTest::SetUp();
    auto c = catalog::Catalog::Open(dir_ / "catalog.db");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto rules = hpsspy::ParseScanConfig(R"({
      "__config__": {"root": "/data", "hpss_root": "/home/elvis", "physical_disks": false},
      "sky": {"__exclude__": ["run1/private"],
              "run1": {"(run[0-9]+)/.*$": "\\1.tar"},
              "notes": {"notes/[^/]+$": "notes/notes_files.tar"},
              "raw": {"raw/.*$": "AUTOMATED"}}})",
                                         "rules.json", "sky");
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    rules_ = std::make_shared<const hpsspy::ScanConfig>(std::move(rules).value());
    backend_ = MakeBundling();
  }
  std::unique_ptr<HpssBackend> MakeBundling(uint64_t max_size = 30, int workers = 0) {
    HpssOptions o = EmulatorOptions();
    o.bundle_rules = rules_;
    o.bundle_max_size = max_size;
    o.bundle_workers = workers;
    o.bundle_quiet = seconds(30);
    o.bundle_store = catalog::OpenBundleStore(dir_ / "catalog.db");
    o.bundle_spool = dir_ / "spool";
    return std::make_unique<HpssBackend>(o, clock_);
  }
  // Puts from a thread each (a bundled Put returns once its bundle is
  // written), advancing the fake clock until all have returned.
  std::vector<Result<ObjectInfo>> PutAll(
      const std::vector<std::pair<ObjectPath, std::string>>& files, bool advance_clock = true) {
    std::vector<Result<ObjectInfo>> out(files.size(), Status(Code::kInternal, "not run"));
    std::atomic<size_t> left{files.size()};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < files.size(); ++i) {
      const stdfs::path src = Local(files[i].second);
      threads.emplace_back([&, i, src] {
        PutOptions po;
        po.mtime_ns = 1'600'000'000'000'000'000 + static_cast<int64_t>(i);
        po.mode = 0640;
        out[i] = backend_->Put(src, files[i].first, po);
        --left;
      });
    }
    for (int n = 0; left > 0 && n < 3000; ++n) {
      std::this_thread::sleep_for(milliseconds(10));
      if (advance_clock && n % 20 == 19) clock_.Advance(seconds(10));
    }
    if (left > 0) {
      // Fail rather than hang: let bundle_quiet pass so that every Put returns.
      ADD_FAILURE() << left << " Put(s) still waiting after 30 s";
      clock_.Advance(std::chrono::hours(1));
    }
    for (auto& t : threads) t.join();
    return out;
  }
  bool OnHpss(const std::string& rel) { return stdfs::exists(dir_ / "hpss/home/elvis" / rel); }

  std::shared_ptr<const hpsspy::ScanConfig> rules_;
};

TEST_F(HpssBundleTest, WritesOfOneArchiveShareOneHtarRunAndStayWhereWritten) {
  // 3 x 10 bytes reach bundle_max_size (30): written without waiting for quiet.
  auto r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"},
                   {"sky/run1/deep/b.fits", "bbbbbbbbbb"},
                   {"sky/run1/c.fits", "cccccccccc"}});
  for (const auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(r[0]->location, "htar /home/elvis/sky/run1.tar member run1/a.fits");
  EXPECT_EQ(r[0]->checksum, "md5:e09c80c42fda55f9d992e59ca6b3307d");  // computed: none was given
  EXPECT_EQ(Calls("create").size(), 1u);
  EXPECT_TRUE(OnHpss("sky/run1.tar") && OnHpss("sky/run1.tar.idx"));
  EXPECT_FALSE(OnHpss("sky/run1/a.fits"));  // no plain copy
  EXPECT_TRUE(stdfs::is_directory(dir_ / "hpss/home/elvis/sky/run1/deep"));
  // No spool left behind.
  EXPECT_TRUE(stdfs::is_empty(dir_ / "spool"));

  auto st = backend_->Stat("sky/run1/deep/b.fits");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, 10u);
  EXPECT_EQ(st->mode, 0640u);
  EXPECT_EQ(st->mtime_ns, 1'600'000'000'000'000'001);
  auto run1 = ListAll("sky/run1");
  ASSERT_EQ(run1.size(), 3u);
  EXPECT_EQ(run1[0].name, "a.fits");
  EXPECT_EQ(run1[1].name, "c.fits");
  EXPECT_EQ(run1[2].name, "deep");
  auto sky = ListAll("sky");
  ASSERT_EQ(sky.size(), 2u);
  EXPECT_EQ(sky[0].name, "run1");
  EXPECT_EQ(sky[1].name, "run1.tar");  // the archive itself, as a directory of members
  EXPECT_EQ(sky[1].type, ObjectType::kDir);
  EXPECT_EQ(*ReadAll("sky/run1.tar/run1/c.fits"), "cccccccccc");

  // Reading one extracts only that member; the index survives a restart.
  backend_ = MakeBundling();
  auto data = ReadAll("sky/run1/deep/b.fits");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "bbbbbbbbbb");
  const auto extracts = Calls("extract");
  EXPECT_NE(extracts.back().find("run1/deep/b.fits"), std::string::npos);
  EXPECT_EQ(extracts.back().find("a.fits"), std::string::npos);
  EXPECT_EQ(ListAll("sky/run1/deep").size(), 1u);
}

TEST_F(HpssBundleTest, ASymlinkJoinsItsBundleAsATarSymlinkMember) {
  // A file and a symlink of one bundle, Put together.
  std::vector<Result<ObjectInfo>> out(2, Status(Code::kInternal, "not run"));
  std::atomic<int> left{2};
  std::thread file([&] {
    PutOptions po;
    po.mtime_ns = 1'600'000'000'000'000'000;
    out[0] = backend_->Put(Local("0123456789"), "sky/run1/f1", po);
    --left;
  });
  std::thread link([&] {
    PutOptions po;
    po.symlink_target = "f1";
    po.mtime_ns = 1'500'000'000'000'000'000;
    out[1] = backend_->Put({}, "sky/run1/latest", po);
    --left;
  });
  for (int n = 0; left > 0 && n < 3000; ++n) {
    std::this_thread::sleep_for(milliseconds(10));
    if (n % 20 == 19) clock_.Advance(seconds(10));
  }
  file.join();
  link.join();
  ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
  ASSERT_TRUE(out[1].ok()) << out[1].status().ToString();
  EXPECT_EQ(out[1]->type, ObjectType::kSymlink);
  EXPECT_EQ(out[1]->link_target, "f1");
  EXPECT_EQ(Calls("create").size(), 1u);  // one htar run for both
  EXPECT_TRUE(Calls("ln").empty());
  EXPECT_FALSE(stdfs::is_symlink(dir_ / "hpss/home/elvis/sky/run1/latest"));  // only in the tar
  // Listed where it was written, from the bundle index; a new backend too.
  for (int round = 0; round < 2; ++round) {
    const auto listed = ListAll("sky/run1");
    ASSERT_EQ(listed.size(), 2u) << round;
    EXPECT_EQ(listed[0].name, "f1");
    EXPECT_EQ(listed[1].name, "latest");
    EXPECT_EQ(listed[1].type, ObjectType::kSymlink) << round;
    EXPECT_EQ(listed[1].link_target, "f1") << round;
    EXPECT_EQ(listed[1].mtime_ns, 1'500'000'000'000'000'000) << round;
    backend_ = MakeBundling();
  }
  EXPECT_EQ(*ReadAll("sky/run1/f1"), "0123456789");
  // The archive holds a real tar symlink member.
  const stdfs::path x = dir_ / "x";
  stdfs::create_directories(x);
  SubprocessOptions o;
  o.argv = {(kEmulator / "htar").string(), "-x", "-f", "/home/elvis/sky/run1.tar", "run1/latest"};
  o.cwd = x;
  auto r = RunSubprocess(o, seconds(30));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  ASSERT_TRUE(stdfs::is_symlink(x / "run1/latest"));
  EXPECT_EQ(stdfs::read_symlink(x / "run1/latest"), "f1");
}

TEST_F(HpssBundleTest, QuietBundleIsWrittenAndALaterOneGetsTheNextName) {
  auto first = PutAll({{"sky/run1/a.fits", "first"}});  // 5 bytes: waits for bundle_quiet
  ASSERT_TRUE(first[0].ok()) << first[0].status().ToString();
  auto again = PutAll({{"sky/run1/a.fits", "second"}});
  ASSERT_TRUE(again[0].ok()) << again[0].status().ToString();
  EXPECT_EQ(again[0]->location, "htar /home/elvis/sky/run1.1.tar member run1/a.fits");
  EXPECT_EQ(*ReadAll("sky/run1/a.fits"), "second");
  EXPECT_EQ(*ReadAll("sky/run1.tar/run1/a.fits"), "first");  // archives are never rewritten
  auto third = PutAll({{"sky/run1/a.fits", "third"}});
  ASSERT_TRUE(third[0].ok());
  EXPECT_EQ(third[0]->location, "htar /home/elvis/sky/run1.2.tar member run1/a.fits");
}

TEST_F(HpssBundleTest, FilesListsAndUnmatchedFilesFollowTheRules) {
  auto r = PutAll({{"sky/notes/n1.txt", "note one"},
                   {"sky/raw/x.dat", "raw"},
                   {"sky/run1/private", "secret"},
                   {"elsewhere/y.dat", "y"},
                   {"sky/run2/big.fits", std::string(40, 'B')}});
  for (const auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  // notes/notes_files.tar: members named from the archive's directory.
  EXPECT_EQ(r[0]->location, "htar /home/elvis/sky/notes/notes_files.tar member n1.txt");
  // AUTOMATED, __exclude__, outside the section, and over bundle_max_size: hsi put.
  for (const char* plain :
       {"sky/raw/x.dat", "sky/run1/private", "elsewhere/y.dat", "sky/run2/big.fits"}) {
    EXPECT_TRUE(OnHpss(plain)) << plain;
  }
  EXPECT_EQ(Calls("create").size(), 1u);
}

TEST_F(HpssBundleTest, RenameAndRemoveChangeOnlyTheIndex) {
  auto r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"},
                   {"sky/run1/b.fits", "bbbbbbbbbb"},
                   {"sky/run1/c.fits", "cccccccccc"}});
  for (const auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  ASSERT_TRUE(backend_->Rename("sky/run1/a.fits", "sky/run1/z.fits").ok());
  EXPECT_EQ(backend_->Stat("sky/run1/a.fits").status().code(), Code::kNotFound);
  EXPECT_EQ(*ReadAll("sky/run1/z.fits"), "aaaaaaaaaa");
  // A directory rename carries its bundled files along.
  ASSERT_TRUE(backend_->Rename("sky/run1", "sky/moved").ok());
  EXPECT_EQ(*ReadAll("sky/moved/b.fits"), "bbbbbbbbbb");
  EXPECT_EQ(ListAll("sky/moved").size(), 3u);
  // Remove forgets the file; its member stays in the archive.
  ASSERT_TRUE(backend_->Remove("sky/moved/c.fits").ok());
  EXPECT_EQ(backend_->Stat("sky/moved/c.fits").status().code(), Code::kNotFound);
  EXPECT_EQ(*ReadAll("sky/run1.tar/run1/c.fits"), "cccccccccc");
  EXPECT_EQ(backend_->Remove("sky/moved").code(), Code::kNotEmpty);
  // A plain put over a bundled path replaces it (moved/ is described by no rule).
  ASSERT_TRUE(backend_->Put(Local("plain"), "sky/moved/b.fits", PutOptions()).ok());
  EXPECT_EQ(*ReadAll("sky/moved/b.fits"), "plain");
  EXPECT_TRUE(OnHpss("sky/moved/b.fits"));
}

TEST_F(HpssBundleTest, MembersRecalledTogetherAreExtractedByOneHtarRun) {
  auto r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"},
                   {"sky/run1/b.fits", "bbbbbbbbbb"},
                   {"sky/run1/c.fits", "cccccccccc"},
                   {"sky/notes/n1.txt", "note"}});
  for (const auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  const size_t before = Calls("extract").size();
  ASSERT_TRUE(backend_
                  ->StageMany({"sky/run1/c.fits", "sky/notes/n1.txt", "sky/run1/a.fits",
                               "sky/run1/b.fits", "sky/raw/none"},
                              Deadline::Never())
                  .ok());
  EXPECT_EQ(*ReadAll("sky/run1/a.fits"), "aaaaaaaaaa");
  EXPECT_EQ(*ReadAll("sky/run1/b.fits"), "bbbbbbbbbb");
  ReadOptions checked;
  checked.expect_checksum = "md5:00000000000000000000000000000000";
  EXPECT_EQ(ReadAll("sky/run1/c.fits", checked).status().code(), Code::kDataLoss);
  EXPECT_EQ(*ReadAll("sky/notes/n1.txt"), "note");  // alone from its archive: read by itself
  const auto extracts = Calls("extract");
  ASSERT_EQ(extracts.size(), before + 2) << "one run for run1's three, one for n1.txt";
  EXPECT_NE(extracts[before].find("run1/c.fits"), std::string::npos);
  EXPECT_NE(extracts[before].find("run1/b.fits"), std::string::npos);
  // Taken copies leave nothing behind in the spool; a later Read extracts again.
  EXPECT_TRUE(stdfs::is_empty(dir_ / "spool"));
  EXPECT_EQ(*ReadAll("sky/run1/a.fits"), "aaaaaaaaaa");
  EXPECT_EQ(Calls("extract").size(), before + 3);
}

TEST_F(HpssBundleTest, WhenEveryArchiveWorkerWaitsTheBundlesAreWrittenAtOnce) {
  backend_ = MakeBundling(1000, 2);
  // Two small files of two archives, far from bundle_max_size, and the fake
  // clock never reaches bundle_quiet: both workers wait, so both are written.
  auto r = PutAll({{"sky/run1/a.fits", "a"}, {"sky/notes/b.txt", "b"}}, false);
  for (const auto& x : r) ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(Calls("create").size(), 2u);
}

TEST_F(HpssBundleTest, FailedHtarFailsEveryMemberAndRecordsNothing) {
  ::setenv("HPSS_EMU_FAULTS", "action=error tool=htar match=-cvf", 1);
  auto r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"},
                   {"sky/run1/b.fits", "bbbbbbbbbb"},
                   {"sky/run1/c.fits", "cccccccccc"}});
  for (const auto& x : r) EXPECT_EQ(x.status().code(), Code::kUnavailable) << x.status().ToString();
  EXPECT_EQ(backend_->Stat("sky/run1/a.fits").status().code(), Code::kNotFound);
  ::unsetenv("HPSS_EMU_FAULTS");
  r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"}});
  ASSERT_TRUE(r[0].ok()) << r[0].status().ToString();
}

TEST_F(HpssBundleTest, HtarThatDropsAMemberIsAFailure) {
  ::setenv("HPSS_EMU_FAULTS", "action=short tool=htar match=-c", 1);
  auto r = PutAll({{"sky/run1/a.fits", "aaaaaaaaaa"},
                   {"sky/run1/b.fits", "bbbbbbbbbb"},
                   {"sky/run1/c.fits", "cccccccccc"}});
  for (const auto& x : r) {
    EXPECT_EQ(x.status().code(), Code::kUnavailable) << x.status().ToString();
    EXPECT_NE(x.status().message().find("lists 2 of 3"), std::string::npos)
        << x.status().ToString();
  }
  EXPECT_EQ(ListAll("sky/run1").size(), 0u);
}

TEST_F(HpssBackendTest, MissingHsiIsAConfigurationError) {
  HpssOptions o = EmulatorOptions();
  o.hsi = dir_ / "no/hsi";
  o.htar = dir_ / "no/htar";
  HpssBackend b(o, clock_);
  EXPECT_EQ(b.Stat("x").status().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace hsmfs::backends::hpss
