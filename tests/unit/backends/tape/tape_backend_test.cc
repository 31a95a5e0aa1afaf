#include "backends/tape/tape_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "backends/tape/tape_format.h"
#include "catalog/sqlite/raw_access.h"
#include "catalog/tape_catalog.h"
#include "common/checksum.h"

namespace hsmfs::tape {
namespace {

namespace fs = std::filesystem;
using backends::ObjectInfo;
using backends::ObjectType;
using backends::Residency;
using catalog::TapeCatalog;
using catalog::Target;
using catalog::TargetFile;

constexpr uint32_t kBlock = 64 * 1024;
// Long enough that Puts started together on a busy machine join one unit.
constexpr Duration kQuiet = std::chrono::seconds(1);

std::string Md5Hex(const std::string& data) {
  auto h = Hasher::Create(ChecksumAlgo::kMd5);
  h->Update(data.data(), data.size());
  return h->Finish().substr(4);
}

std::string RandomData(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string d(n, '\0');
  for (auto& c : d) c = static_cast<char>(rng());
  return d;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TapeBackendTest : public ::testing::Test {
 protected:
  virtual uint64_t Capacity() const { return uint64_t{1} << 30; }

  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tape_backend_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(VirtualLibrary::Create(dir_ / "vtl", 4, 2, Capacity()).ok());
    auto cat = catalog::Catalog::Open(dir_ / "catalog.db");
    ASSERT_TRUE(cat.ok()) << cat.status().ToString();
    catalog_ = std::move(cat).value();
    for (const std::string name : {"T1", "T2", "T3"}) OpenTape(name);
  }
  void TearDown() override {
    backend_.reset();
    catalog_.reset();
    fs::remove_all(dir_);
  }

  // Labels tape `name` and records it in the catalog.
  void OpenTape(const std::string& name) {
    auto lib = VirtualLibrary::Open(dir_ / "vtl");
    ASSERT_TRUE(lib.ok());
    ASSERT_TRUE((*lib)->AddTape(name).ok());
    auto drive = (*lib)->MountTape(name);
    ASSERT_TRUE(drive.ok()) << drive.status().ToString();
    ASSERT_TRUE(WriteLabel(**drive, {name, "S-" + name, kBlock}).ok());
    auto pos = (*drive)->Tell();
    ASSERT_TRUE(pos.ok());
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(TapeCatalog::OpenTape(*s, name, "S-" + name, 0, pos->logical_block, 1).ok());
  }

  // Archives the directory `path` with `files` (rel_path -> data) as one unit
  // on `tape`, as `hsmtape archive` does.
  void Archive(const std::string& tape, const std::string& path,
               const std::map<std::string, std::string>& files) {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    Target t;
    t.path = path;
    std::vector<TargetFile> tf;
    std::vector<std::string> data;
    for (const auto& [rel, d] : files) {
      TargetFile f;
      f.rel_path = rel;
      f.size = d.size();
      f.mtime_ns = 1'700'000'000'000'000'000;
      f.mode = 0640;
      f.md5 = Md5Hex(d);
      tf.push_back(f);
      data.push_back(d);
    }
    auto id = TapeCatalog::Import(*s, t, tf, 2);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ASSERT_TRUE(TapeCatalog::ActivateTape(*s, tape, 3).ok());
    ASSERT_TRUE(TapeCatalog::Assign(*s, tape).ok());
    auto tp = TapeCatalog::GetTape(*s, tape);
    ASSERT_TRUE(tp.ok());
    ASSERT_TRUE(TapeCatalog::BeginWrite(*s, *id, tp->next_file, tp->next_block, kBlock).ok());
    auto target = TapeCatalog::GetTarget(*s, *id);
    ASSERT_TRUE(target.ok());
    auto lib = VirtualLibrary::Open(dir_ / "vtl");
    ASSERT_TRUE(lib.ok());
    auto drive = (*lib)->MountTape(tape);
    ASSERT_TRUE(drive.ok()) << drive.status().ToString();
    ASSERT_TRUE((*drive)->Locate(tp->next_block).ok());
    size_t at = 0;
    auto open = [&](size_t i) -> Result<ChunkReader> {
      at = 0;
      const std::string* d = &data[i];
      return ChunkReader([d, &at](std::span<std::byte> buf) -> Result<size_t> {
        const size_t n = std::min(buf.size(), d->size() - at);
        std::memcpy(buf.data(), d->data() + at, n);
        at += n;
        return n;
      });
    };
    auto files_now = TapeCatalog::Files(*s, *id);
    ASSERT_TRUE(files_now.ok());
    auto written = WriteUnit(**drive, *target, *files_now, open, CancelToken::None(), nullptr);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    ASSERT_TRUE(TapeCatalog::FinishWrite(*s, *id, written->offsets, written->tar_bytes,
                                         written->next_file, written->next_block, 4)
                    .ok());
  }

  void MakeBackend(const std::string& strip_prefix = "/",
                   Duration idle_close = std::chrono::seconds(30)) {
    TapeBackendOptions o;
    auto spec = ParseDeviceSpec("vtl:" + (dir_ / "vtl").string());
    ASSERT_TRUE(spec.ok());
    o.devices.push_back(*spec);
    o.catalog = dir_ / "catalog.db";
    o.strip_prefix = strip_prefix;
    o.idle_close = idle_close;
    o.refresh = Duration(0);
    auto b = TapeBackend::Create(std::move(o), Clock::Real());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(b).value();
  }

  // A backend that writes: units closed at `unit_size` or after `unit_quiet`.
  void MakeWriter(Duration unit_quiet, uint64_t unit_size = uint64_t{1} << 30,
                  Clock& clock = Clock::Real()) {
    TapeBackendOptions o;
    auto spec = ParseDeviceSpec("vtl:" + (dir_ / "vtl").string());
    ASSERT_TRUE(spec.ok());
    o.devices.push_back(*spec);
    o.catalog = dir_ / "catalog.db";
    o.refresh = Duration(0);
    o.unit_quiet = unit_quiet;
    o.unit_size = unit_size;
    auto b = TapeBackend::Create(std::move(o), clock);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(b).value();
  }

  void Activate(const std::string& tape) {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(TapeCatalog::ActivateTape(*s, tape, 5).ok());
  }

  // A local file holding `data`, as the cache would.
  fs::path Source(const std::string& name, const std::string& data) {
    const fs::path p = dir_ / "src" / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }

  // Puts every (path, data) at once, each from its own thread, as the
  // engine's archive workers do.
  std::map<std::string, Result<ObjectInfo>> PutAll(
      const std::map<std::string, std::string>& files,
      const std::map<std::string, std::string>& checksums = {}) {
    std::map<std::string, Result<ObjectInfo>> out;
    std::mutex mu;
    std::vector<std::thread> threads;
    int n = 0;
    for (const auto& [path, data] : files) {
      const fs::path src = Source("f" + std::to_string(n++), data);
      threads.emplace_back([&, path = path, data = data, src] {
        backends::PutOptions po;
        auto c = checksums.find(path);
        po.checksum = c != checksums.end() ? c->second : "md5:" + Md5Hex(data);
        po.mtime_ns = 1'700'000'000'000'000'000;
        po.mode = 0600;
        auto r = backend_->Put(src, path, po);
        std::lock_guard<std::mutex> l(mu);
        out.emplace(path, std::move(r));
      });
    }
    for (auto& t : threads) t.join();
    return out;
  }

  std::vector<Target> Units(const std::string& tape) {
    auto s = catalog_->Acquire();
    EXPECT_TRUE(s.ok());
    auto t = TapeCatalog::Targets(*s, tape, std::nullopt);
    EXPECT_TRUE(t.ok());
    return t.value_or(std::vector<Target>{});
  }

  catalog::Tape GetTape(const std::string& name) {
    auto s = catalog_->Acquire();
    EXPECT_TRUE(s.ok());
    auto t = TapeCatalog::GetTape(*s, name);
    EXPECT_TRUE(t.ok());
    return t.value_or(catalog::Tape{});
  }

  std::vector<Manifest> ManifestsOn(const std::string& tape) {
    auto lib = VirtualLibrary::Open(dir_ / "vtl");
    EXPECT_TRUE(lib.ok());
    auto drive = (*lib)->MountTape(tape);
    EXPECT_TRUE(drive.ok()) << drive.status().ToString();
    if (!drive.ok()) return {};
    auto m = ReadManifests(**drive);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.value_or(std::vector<Manifest>{});
  }

  std::map<std::string, ObjectInfo> ListAll(const std::string& dir) {
    std::map<std::string, ObjectInfo> out;
    Status st = backend_->List(
        dir,
        [&](std::vector<ObjectInfo>&& batch) {
          for (auto& i : batch) out[i.name] = i;
          return Status::Ok();
        },
        CancelToken::None());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& [name, info] : ListAll(dir)) names.push_back(name);
    return names;
  }

  Result<std::string> Recall(const std::string& path, const std::string& expect = "") {
    backends::ReadOptions ro;
    ro.expect_checksum = expect;
    const fs::path dest = dir_ / "recalled";
    HSMFS_RETURN_IF_ERROR(backend_->Read(path, dest, ro));
    return ReadFile(dest);
  }

  fs::path dir_;
  FakeClock fake_clock_;  // outlives backend_
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<TapeBackend> backend_;
};

TEST_F(TapeBackendTest, ListsUnitsUnderTheirSourcePathsMinusStripPrefix) {
  Archive("T1", "/mnt/act6/season4", {{"a.txt", "alpha"}, {"sub/b.bin", "bravo!"}});
  Archive("T1", "/mnt/act6/season5", {{"c.txt", "charlie"}});
  Archive("T2", "/elsewhere/x", {{"d", "delta"}});
  MakeBackend("/mnt");

  EXPECT_EQ(Names(""), (std::vector<std::string>{".by-tape", "act6", "elsewhere"}));
  EXPECT_EQ(Names("act6"), (std::vector<std::string>{"season4", "season5"}));
  EXPECT_EQ(Names("act6/season4"), (std::vector<std::string>{"a.txt", "sub"}));
  EXPECT_EQ(Names("act6/season4/sub"), (std::vector<std::string>{"b.bin"}));
  EXPECT_EQ(Names("elsewhere/x"), (std::vector<std::string>{"d"}));

  auto dir = backend_->Stat("act6/season4/sub");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_EQ(dir->type, ObjectType::kDir);

  auto info = backend_->Stat("act6/season4/sub/b.bin");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->type, ObjectType::kFile);
  EXPECT_EQ(info->name, "b.bin");
  EXPECT_EQ(info->size, 6u);
  EXPECT_EQ(info->mode, 0640u);
  EXPECT_EQ(info->mtime_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(info->checksum, "md5:" + Md5Hex("bravo!"));
  EXPECT_EQ(info->volume, "T1");
  EXPECT_EQ(info->residency, Residency::kTape);
  EXPECT_GT(info->position, 0);
  EXPECT_EQ(info->location, "tape T1 file 1 block " + std::to_string(info->position));
  // The second unit on T1 follows the first unit's tar file and manifest file.
  auto c = backend_->Stat("act6/season5/c.txt");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->location.substr(0, 15), "tape T1 file 3 ");
  EXPECT_GT(c->position, info->position);
}

TEST_F(TapeBackendTest, ByTapeViewShowsEveryTapeAndItsUnits) {
  Archive("T1", "/data/one", {{"x", "1"}});
  Archive("T1", "/data/two", {{"y/z", "22"}});
  Archive("T2", "/data/three", {{"w", "333"}});
  MakeBackend();
  EXPECT_EQ(Names(".by-tape"), (std::vector<std::string>{"T1", "T2", "T3"}));
  EXPECT_EQ(Names(".by-tape/T1"), (std::vector<std::string>{"file1", "file3"}));
  EXPECT_EQ(Names(".by-tape/T2"), (std::vector<std::string>{"file1"}));
  EXPECT_TRUE(Names(".by-tape/T3").empty());
  EXPECT_EQ(Names(".by-tape/T1/file3/y"), (std::vector<std::string>{"z"}));
  auto by_tape = backend_->Stat(".by-tape/T1/file3/y/z");
  auto by_path = backend_->Stat("data/two/y/z");
  ASSERT_TRUE(by_tape.ok() && by_path.ok());
  EXPECT_EQ(by_tape->location, by_path->location);
  auto data = Recall(".by-tape/T2/file1/w");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "333");
}

TEST_F(TapeBackendTest, ReadingAMemberReadsOnlyItsBlocks) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 8; ++i) {
    files["f" + std::to_string(i)] = RandomData(1'000'000 + i * 1000, static_cast<unsigned>(i));
  }
  Archive("T1", "/big", files);
  MakeBackend();
  const TapeCounters before = backend_->library()->counters();
  auto data = Recall("big/f5");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, files["f5"]);
  const TapeCounters after = backend_->library()->counters();
  const uint64_t read = after.bytes_read - before.bytes_read;
  EXPECT_GE(read, files["f5"].size());
  // Its own records only: at most one partial block at each end.
  EXPECT_LE(read, files["f5"].size() + 2 * kBlock);
  EXPECT_LE(after.locates - before.locates, 1u);
}

TEST_F(TapeBackendTest, RecallsFromOneTapeShareOneLoadAndOneHandle) {
  Archive("T1", "/a", {{"1", "one"}, {"2", "two"}, {"3", "three"}});
  Archive("T2", "/b", {{"4", "four"}});
  Archive("T3", "/c", {{"5", "five"}});
  MakeBackend();
  // Empty the drives so that every load is counted.
  {
    auto lib = VirtualLibrary::Open(dir_ / "vtl");
    ASSERT_TRUE(lib.ok());
    ASSERT_TRUE((*lib)->Unload(0).ok());
    ASSERT_TRUE((*lib)->Unload(1).ok());
  }
  const uint64_t loads0 = backend_->library()->counters().loads;
  for (const char* p : {"a/1", "a/2", "a/3"}) ASSERT_TRUE(Recall(p).ok()) << p;
  EXPECT_EQ(backend_->library()->counters().loads - loads0, 1u);
  // The open handle keeps drive busy for everybody else.
  auto other = VirtualLibrary::Open(dir_ / "vtl");
  ASSERT_TRUE(other.ok());
  auto inv = (*other)->GetInventory();
  ASSERT_TRUE(inv.ok());
  const int t1_drive = inv->drives[0] == "T1" ? 0 : 1;
  EXPECT_EQ((*other)->OpenDrive(t1_drive).status().code(), Code::kBusy);
  // Two more tapes with two drives: the idle T1 handle gives way.
  ASSERT_EQ(*Recall("b/4"), "four");
  ASSERT_EQ(*Recall("c/5"), "five");
  EXPECT_EQ(backend_->library()->counters().loads - loads0, 3u);
  ASSERT_EQ(*Recall("c/5"), "five");
  EXPECT_EQ(backend_->library()->counters().loads - loads0, 3u);
}

TEST_F(TapeBackendTest, IdleHandlesAreClosedForOtherUsers) {
  Archive("T1", "/a", {{"1", "one"}});
  MakeBackend("/", std::chrono::milliseconds(100));
  ASSERT_EQ(*Recall("a/1"), "one");
  auto other = VirtualLibrary::Open(dir_ / "vtl");
  ASSERT_TRUE(other.ok());
  auto inv = (*other)->GetInventory();
  ASSERT_TRUE(inv.ok());
  const int drive = inv->drives[0] == "T1" ? 0 : 1;
  bool opened = false;
  for (int i = 0; i < 50 && !opened; ++i) {
    ::usleep(50'000);
    opened = (*other)->OpenDrive(drive).ok();
  }
  EXPECT_TRUE(opened) << "the backend kept the drive open";
  // And it reopens it for the next recall.
  ASSERT_EQ(*Recall("a/1"), "one");
}

TEST_F(TapeBackendTest, UnitsArchivedLaterAppear) {
  Archive("T1", "/a", {{"1", "one"}});
  MakeBackend();
  EXPECT_EQ(Names(""), (std::vector<std::string>{".by-tape", "a"}));
  Archive("T2", "/b", {{"2", "two"}});
  EXPECT_EQ(Names(""), (std::vector<std::string>{".by-tape", "a", "b"}));
  EXPECT_EQ(*Recall("b/2"), "two");
}

TEST_F(TapeBackendTest, UnitsNotYetWrittenAreNotShown) {
  auto s = catalog_->Acquire();
  ASSERT_TRUE(s.ok());
  Target t;
  t.path = "/pending";
  TargetFile f;
  f.rel_path = "p";
  f.size = 1;
  f.md5 = Md5Hex("p");
  ASSERT_TRUE(TapeCatalog::Import(*s, t, {f}, 1).ok());
  ASSERT_TRUE(TapeCatalog::Assign(*s, "T1").ok());
  MakeBackend();
  EXPECT_EQ(Names(""), (std::vector<std::string>{".by-tape"}));
  EXPECT_EQ(backend_->Stat("pending/p").status().code(), Code::kNotFound);
}

TEST_F(TapeBackendTest, Errors) {
  Archive("T1", "/a", {{"1", "one"}, {"d/2", "two"}});
  MakeBackend();
  EXPECT_EQ(backend_->Stat("a/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(Recall("a/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(Recall("a/d").status().code(), Code::kIsDirectory);
  EXPECT_EQ(backend_
                ->List(
                    "a/1", [](auto&&) { return Status::Ok(); }, CancelToken::None())
                .code(),
            Code::kNotDirectory);
  EXPECT_EQ(backend_
                ->List(
                    "nope", [](auto&&) { return Status::Ok(); }, CancelToken::None())
                .code(),
            Code::kNotFound);
  EXPECT_EQ(backend_->Stat("../x").status().code(), Code::kInvalidArgument);
  // A checksum of another algorithm that does not match the data.
  EXPECT_EQ(Recall("a/1", "sha256:00").status().code(), Code::kDataLoss);
  auto h = Hasher::Create(ChecksumAlgo::kSha256);
  h->Update("one", 3);
  EXPECT_EQ(*Recall("a/1", h->Finish()), "one");

  // .by-tape shows what is on tape: nothing changes it.
  backends::PutOptions po;
  EXPECT_EQ(backend_->Put(dir_ / "catalog.db", ".by-tape/T1/x", po).status().code(),
            Code::kReadOnly);
  EXPECT_EQ(backend_->MakeDir(".by-tape/T1/d", 0755).code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Remove(".by-tape/T1/file1/1").code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Rename("a/1", ".by-tape/T1/1").code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Put(dir_ / "no-such-file", "a/new", po).status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->Put(dir_, "a/new", po).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Remove("a/missing").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Rename("a/missing", "a/x").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Rename("a", "a/d/x").code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Remove("a/d").code(), Code::kNotEmpty);
}

TEST_F(TapeBackendTest, DamagedDataIsDataLoss) {
  Archive("T1", "/a", {{"1", RandomData(300'000, 7)}});
  MakeBackend();
  auto info = backend_->Stat("a/1");
  ASSERT_TRUE(info.ok());
  // Change the catalog's md5: what the tape returns no longer matches.
  auto s = catalog_->Acquire();
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(catalog::RawSqlite(*s)
                  .Exec("UPDATE target_files SET md5 = '00000000000000000000000000000000'")
                  .ok());
  EXPECT_EQ(Recall("a/1").status().code(), Code::kDataLoss);
}

TEST_F(TapeBackendTest, ConcurrentPutsFormOneVerifiedUnitOnTheActiveTape) {
  Activate("T2");
  MakeWriter(kQuiet);
  std::map<std::string, std::string> files;
  for (int i = 0; i < 12; ++i) {
    const std::string dir = i % 3 == 0 ? "incoming/run1" : "incoming/run1/sub";
    files[dir + "/f" + std::to_string(i)] =
        i == 4 ? "" : RandomData(50'000 * static_cast<size_t>(i) + 7, static_cast<unsigned>(i));
  }
  auto results = PutAll(files);
  ASSERT_EQ(results.size(), files.size());
  std::set<std::string> units;
  for (const auto& [path, r] : results) {
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().ToString();
    EXPECT_EQ(r->name, path.substr(path.rfind('/') + 1));
    EXPECT_EQ(r->volume, "T2");
    EXPECT_EQ(r->checksum, "md5:" + Md5Hex(files[path]));
    EXPECT_EQ(r->size, files[path].size());
    EXPECT_EQ(r->location, "tape T2 file 1 block " + std::to_string(r->position));
    units.insert(r->location.substr(0, r->location.find(" block")));
  }
  EXPECT_EQ(units.size(), 1u);
  // One batch unit, verified (confirmed) when the Puts returned.
  auto on_t2 = Units("T2");
  ASSERT_EQ(on_t2.size(), 1u);
  EXPECT_EQ(on_t2[0].kind, "batch");
  EXPECT_EQ(on_t2[0].state, catalog::TargetState::kConfirmed);
  EXPECT_EQ(on_t2[0].path, "/incoming/run1");
  EXPECT_EQ(on_t2[0].files, 12);
  EXPECT_TRUE(Units("T1").empty());
  EXPECT_EQ(GetTape("T2").next_file, 3);
  // On tape: the unit's tar and its manifest, which names every member.
  backend_.reset();
  auto manifests = ManifestsOn("T2");
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_EQ(manifests[0].target.kind, "batch");
  EXPECT_EQ(manifests[0].files.size(), 12u);

  // The tree shows each file where it was put, recalled by its own blocks.
  MakeWriter(std::chrono::milliseconds(300));
  EXPECT_EQ(Names("incoming"), (std::vector<std::string>{"run1"}));
  EXPECT_EQ(Names("incoming/run1").size(), 5u);  // f0 f3 f6 f9 and sub
  EXPECT_EQ(Names("incoming/run1/sub").size(), 8u);
  for (const auto& [path, data] : files) {
    auto info = backend_->Stat(path);
    ASSERT_TRUE(info.ok()) << path;
    EXPECT_EQ(info->location, results.at(path)->location);
    EXPECT_EQ(info->mode, 0600u);
    const TapeCounters before = backend_->library()->counters();
    auto got = Recall(path);
    ASSERT_TRUE(got.ok()) << path << ": " << got.status().ToString();
    EXPECT_EQ(*got, data) << path;
    const uint64_t read = backend_->library()->counters().bytes_read - before.bytes_read;
    EXPECT_LE(read, data.size() + 2 * kBlock) << path;
  }
}

TEST_F(TapeBackendTest, SymlinksAreTarSymlinkMembersAndSurviveARebuiltCatalog) {
  Activate("T2");
  MakeWriter(kQuiet);
  const std::string data = RandomData(70'000, 9);
  std::map<std::string, Result<ObjectInfo>> results;
  std::mutex mu;
  std::vector<std::thread> threads;
  const std::map<std::string, std::string> links = {{"incoming/run2/latest", "data.bin"},
                                                    {"incoming/run2/dangling", "../nowhere/x"},
                                                    {"incoming/run2/abs", "/etc"}};
  threads.emplace_back([&] {
    backends::PutOptions po;
    po.checksum = "md5:" + Md5Hex(data);
    po.mtime_ns = 1'700'000'000'000'000'000;
    auto r = backend_->Put(Source("data", data), "incoming/run2/data.bin", po);
    std::lock_guard<std::mutex> l(mu);
    results.emplace("incoming/run2/data.bin", std::move(r));
  });
  for (const auto& [path, target] : links) {
    threads.emplace_back([&, path = path, target = target] {
      backends::PutOptions po;
      po.symlink_target = target;
      po.mtime_ns = 1'600'000'000'000'000'000;
      auto r = backend_->Put({}, path, po);
      std::lock_guard<std::mutex> l(mu);
      results.emplace(path, std::move(r));
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& [path, target] : links) {
    const auto& r = results.at(path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().ToString();
    EXPECT_EQ(r->type, ObjectType::kSymlink) << path;
    EXPECT_EQ(r->link_target, target) << path;
    EXPECT_EQ(r->size, target.size()) << path;
  }
  ASSERT_TRUE(results.at("incoming/run2/data.bin").ok());
  // One verified unit holding the file and the three symlinks.
  auto units = Units("T2");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, catalog::TargetState::kConfirmed);
  EXPECT_EQ(units[0].files, 4);
  auto listed = ListAll("incoming/run2");
  ASSERT_EQ(listed.size(), 4u);
  for (const auto& [path, target] : links) {
    const ObjectInfo& info = listed.at(path.substr(path.rfind('/') + 1));
    EXPECT_EQ(info.type, ObjectType::kSymlink);
    EXPECT_EQ(info.link_target, target);
    EXPECT_EQ(info.mtime_ns, 1'600'000'000'000'000'000);
  }
  EXPECT_EQ(listed.at("data.bin").type, ObjectType::kFile);
  EXPECT_EQ(backend_->Read("incoming/run2/latest", dir_ / "x", {}).code(), Code::kInvalidArgument);
  EXPECT_EQ(*Recall("incoming/run2/data.bin"), data);

  // The manifest names each symlink's target: a catalog rebuilt from the
  // tape alone (hsmtape rebuild_catalog) shows them again.
  backend_.reset();
  auto manifests = ManifestsOn("T2");
  ASSERT_EQ(manifests.size(), 1u);
  std::map<std::string, std::string> in_manifest;
  for (const TargetFile& f : manifests[0].files) in_manifest[f.rel_path] = f.link_target;
  EXPECT_EQ(in_manifest.at("latest"), "data.bin");
  EXPECT_EQ(in_manifest.at("data.bin"), "");
  catalog_.reset();
  fs::remove(dir_ / "catalog.db");
  {
    auto fresh = catalog::Catalog::Open(dir_ / "catalog.db");
    ASSERT_TRUE(fresh.ok());
    catalog_ = std::move(fresh).value();
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(TapeCatalog::OpenTape(*s, "T2", "S-T2", 0, 2, 1).ok());
    Target t = manifests[0].target;
    t.tape = "T2";
    ASSERT_TRUE(TapeCatalog::RestoreUnit(*s, t, manifests[0].files, t.file_number + 2,
                                         t.start_block + 1000, 2)
                    .ok());
  }
  MakeBackend();
  listed = ListAll("incoming/run2");
  ASSERT_EQ(listed.size(), 4u);
  for (const auto& [path, target] : links) {
    const ObjectInfo& info = listed.at(path.substr(path.rfind('/') + 1));
    EXPECT_EQ(info.type, ObjectType::kSymlink) << path;
    EXPECT_EQ(info.link_target, target) << path;
  }
  EXPECT_EQ(*Recall("incoming/run2/data.bin"), data);
}

TEST_F(TapeBackendTest, UnitSizeClosesAUnitWithoutWaitingForQuiet) {
  Activate("T1");
  // The clock never moves: only the size can close a unit.
  MakeWriter(std::chrono::hours(1), 100'000, fake_clock_);
  auto results = PutAll({{"in/a", RandomData(60'000, 1)}, {"in/b", RandomData(60'000, 2)}});
  for (const auto& [path, r] : results) ASSERT_TRUE(r.ok()) << path << r.status().ToString();
  EXPECT_EQ(results.at("in/a")->location.substr(0, 15), "tape T1 file 1 ");
  EXPECT_EQ(results.at("in/b")->location.substr(0, 15), "tape T1 file 1 ");
  // A file as big as unit_size is a unit of its own.
  auto big = PutAll({{"in/c", RandomData(150'000, 3)}});
  ASSERT_TRUE(big.at("in/c").ok());
  EXPECT_EQ(big.at("in/c")->location.substr(0, 15), "tape T1 file 3 ");
  EXPECT_EQ(Units("T1").size(), 2u);
}

TEST_F(TapeBackendTest, UnitQuietClosesAUnitAfterTheQuietTime) {
  Activate("T1");
  FakeClock& clock = fake_clock_;
  MakeWriter(std::chrono::seconds(30), uint64_t{1} << 30, clock);
  auto put = std::async(std::launch::async, [&] { return PutAll({{"q/x", "quiet"}}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  clock.Advance(std::chrono::seconds(29));
  EXPECT_EQ(put.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "written before unit_quiet passed";
  EXPECT_TRUE(Units("T1").empty());
  clock.Advance(std::chrono::seconds(2));
  ASSERT_EQ(put.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  auto results = put.get();
  ASSERT_TRUE(results.at("q/x").ok()) << results.at("q/x").status().ToString();
  EXPECT_EQ(*Recall("q/x"), "quiet");
}

TEST_F(TapeBackendTest, NoActiveTapeIsUnavailableAndRecordsNothing) {
  MakeWriter(std::chrono::milliseconds(50));
  auto results = PutAll({{"in/a", "a"}, {"in/b", "b"}});
  for (const auto& [path, r] : results) {
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << path;
    EXPECT_NE(r.status().message().find("open_tape"), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(Units("").empty());
  EXPECT_EQ(backend_->Stat("in/a").status().code(), Code::kNotFound);
  // Once a tape is active, the engine's retry succeeds.
  Activate("T1");
  auto again = PutAll({{"in/a", "a"}});
  ASSERT_TRUE(again.at("in/a").ok()) << again.at("in/a").status().ToString();
  EXPECT_EQ(*Recall("in/a"), "a");
}

TEST_F(TapeBackendTest, AChangedFileFailsAloneAndTheRestIsWritten) {
  Activate("T1");
  MakeWriter(kQuiet);
  // in/b's checksum is not its data's: it changed after the engine summed it.
  auto results = PutAll({{"in/a", "alpha"}, {"in/b", "bravo"}, {"in/c", "charlie"}},
                        {{"in/b", "md5:" + Md5Hex("something else")}});
  EXPECT_EQ(results.at("in/b").status().code(), Code::kDataLoss);
  ASSERT_TRUE(results.at("in/a").ok()) << results.at("in/a").status().ToString();
  ASSERT_TRUE(results.at("in/c").ok());
  EXPECT_EQ(backend_->Stat("in/b").status().code(), Code::kNotFound);
  EXPECT_EQ(*Recall("in/c"), "charlie");
  // The discarded attempt left nothing: one unit of two files, at file 1.
  auto units = Units("T1");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].files, 2);
  EXPECT_EQ(units[0].file_number, 1);
}

TEST_F(TapeBackendTest, ACancelledPutLeavesItsUnitBeforeTheWrite) {
  Activate("T1");
  FakeClock& clock = fake_clock_;
  MakeWriter(std::chrono::seconds(30), uint64_t{1} << 30, clock);
  CancelToken cancel;
  const fs::path src = Source("c", "cancel me");
  auto put = std::async(std::launch::async, [&] {
    backends::PutOptions po;
    po.cancel = &cancel;
    return backend_->Put(src, "in/c", po);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  cancel.Cancel();
  ASSERT_EQ(put.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(put.get().status().code(), Code::kCancelled);
  clock.Advance(std::chrono::seconds(60));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(Units("T1").empty());
}

TEST_F(TapeBackendTest, AnUnfinishedBatchIsDroppedAndItsPlaceWrittenAgain) {
  Activate("T1");
  const catalog::Tape before = GetTape("T1");
  // A crash mid-unit: the batch is recorded `writing` and part of its tar is
  // on tape, but the tape's end never moved.
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    Target t;
    t.kind = "batch";
    t.host = "batch:T1:1";
    t.path = "/in";
    t.tape = "T1";
    t.file_number = before.next_file;
    t.start_block = before.next_block;
    t.block_size = kBlock;
    TargetFile f;
    f.rel_path = "lost";
    f.size = 200'000;
    ASSERT_TRUE(TapeCatalog::BeginBatch(*s, t, {f}, 1).ok());
    auto lib = VirtualLibrary::Open(dir_ / "vtl");
    ASSERT_TRUE(lib.ok());
    auto drive = (*lib)->MountTape("T1");
    ASSERT_TRUE(drive.ok());
    ASSERT_TRUE((*drive)->Locate(before.next_block).ok());
    const std::string junk = RandomData(kBlock, 9);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*drive)
                      ->WriteRecord({reinterpret_cast<const std::byte*>(junk.data()), junk.size()})
                      .ok());
    }
  }
  MakeWriter(std::chrono::milliseconds(50));
  EXPECT_EQ(backend_->Stat("in/lost").status().code(), Code::kNotFound);
  auto results = PutAll({{"in/new", "fresh data"}});
  ASSERT_TRUE(results.at("in/new").ok()) << results.at("in/new").status().ToString();
  EXPECT_EQ(results.at("in/new")->location.substr(0, 15), "tape T1 file 1 ");
  auto units = Units("T1");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].state, catalog::TargetState::kConfirmed);
  EXPECT_EQ(units[0].start_block, before.next_block);
  EXPECT_EQ(*Recall("in/new"), "fresh data");
  backend_.reset();
  EXPECT_EQ(ManifestsOn("T1").size(), 1u);
}

TEST_F(TapeBackendTest, RenameRemoveAndMakeDirChangeOnlyTheTree) {
  Activate("T1");
  MakeWriter(kQuiet);
  auto first = PutAll({{"in/a", "a1"}, {"in/b", "b1"}, {"in/d/c", "c1"}});
  for (const auto& [p, r] : first) ASSERT_TRUE(r.ok()) << p << r.status().ToString();

  // Rename: the same member under its new name.
  ASSERT_TRUE(backend_->Rename("in/a", "in/a2").ok());
  EXPECT_EQ(backend_->Stat("in/a").status().code(), Code::kNotFound);
  auto a2 = backend_->Stat("in/a2");
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->location, first.at("in/a")->location);
  EXPECT_EQ(*Recall("in/a2"), "a1");

  // A second version: the newest wins; renaming it leaves no older one behind.
  auto second = PutAll({{"in/b", "b2 longer"}});
  ASSERT_TRUE(second.at("in/b").ok());
  EXPECT_EQ(second.at("in/b")->location.substr(0, 15), "tape T1 file 3 ");
  EXPECT_EQ(*Recall("in/b"), "b2 longer");
  ASSERT_TRUE(backend_->Rename("in/b", "in/b2").ok());
  EXPECT_EQ(backend_->Stat("in/b").status().code(), Code::kNotFound);
  EXPECT_EQ(*Recall("in/b2"), "b2 longer");

  // Rename onto an existing file replaces it.
  ASSERT_TRUE(backend_->Rename("in/a2", "in/b2").ok());
  EXPECT_EQ(*Recall("in/b2"), "a1");
  EXPECT_EQ(Names("in"), (std::vector<std::string>{"b2", "d"}));

  // A directory moves with everything below it.
  ASSERT_TRUE(backend_->Rename("in/d", "in/e").ok());
  EXPECT_EQ(Names("in"), (std::vector<std::string>{"b2", "e"}));
  EXPECT_EQ(*Recall("in/e/c"), "c1");

  // Remove hides; the data stays on tape and in .by-tape.
  ASSERT_TRUE(backend_->Remove("in/b2").ok());
  EXPECT_EQ(backend_->Stat("in/b2").status().code(), Code::kNotFound);
  EXPECT_EQ(Names(".by-tape/T1/file1"), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(*Recall(".by-tape/T1/file3/b"), "b2 longer");

  // MakeDir: an empty directory is listed, survives a restart, then goes.
  ASSERT_TRUE(backend_->MakeDir("in/empty", 0750).ok());
  EXPECT_EQ(backend_->MakeDir("in/empty", 0750).code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->MakeDir("in/e/c", 0750).code(), Code::kAlreadyExists);
  backend_.reset();
  MakeWriter(std::chrono::milliseconds(100));
  auto empty = backend_->Stat("in/empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->type, ObjectType::kDir);
  EXPECT_EQ(empty->mode, 0750u);
  EXPECT_TRUE(Names("in/empty").empty());
  // A directory made through the mount (here by the rename) stays after its
  // files move away.
  EXPECT_EQ(backend_->MakeDir("in/e", 0755).code(), Code::kAlreadyExists);
  ASSERT_TRUE(backend_->Rename("in/e/c", "in/empty/c").ok());
  EXPECT_TRUE(Names("in/e").empty());
  EXPECT_EQ(backend_->Remove("in/empty").code(), Code::kNotEmpty);
  ASSERT_TRUE(backend_->Remove("in/e").ok());
  EXPECT_EQ(backend_->Stat("in/e").status().code(), Code::kNotFound);
  EXPECT_EQ(Names("in"), (std::vector<std::string>{"empty"}));
  EXPECT_EQ(*Recall("in/empty/c"), "c1");
}

// Tapes of 3 MB: a unit of 2.8 MB does not fit after 0.5 MB.
class TapeBackendSmallTapeTest : public TapeBackendTest {
 protected:
  uint64_t Capacity() const override { return 3'000'000; }
};

TEST_F(TapeBackendSmallTapeTest, AFullTapeMidUnitMovesTheUnitToTheNextTape) {
  Activate("T1");
  MakeWriter(kQuiet);
  auto small = PutAll({{"in/small", RandomData(500'000, 1)}});
  ASSERT_TRUE(small.at("in/small").ok());
  const catalog::Tape t1 = GetTape("T1");
  std::map<std::string, std::string> big;
  for (int i = 0; i < 4; ++i) big["in/big" + std::to_string(i)] = RandomData(700'000, 10 + i);
  auto results = PutAll(big);
  for (const auto& [path, r] : results) {
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().ToString();
    EXPECT_EQ(r->volume, "T2") << path;
  }
  // T1 is full, unchanged past its first unit; T2 took over.
  const catalog::Tape t1_after = GetTape("T1");
  EXPECT_TRUE(t1_after.full);
  EXPECT_FALSE(t1_after.active);
  EXPECT_EQ(t1_after.next_block, t1.next_block);
  EXPECT_EQ(Units("T1").size(), 1u);
  EXPECT_TRUE(GetTape("T2").active);
  for (const auto& [path, data] : big) EXPECT_EQ(*Recall(path), data) << path;
  backend_.reset();
  EXPECT_EQ(ManifestsOn("T1").size(), 1u);
}

TEST_F(TapeBackendSmallTapeTest, AFullTapeWithoutANextOneFailsTransiently) {
  Activate("T1");
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(TapeCatalog::CloseTape(*s, "T2", 6).ok());
    ASSERT_TRUE(TapeCatalog::CloseTape(*s, "T3", 6).ok());
  }
  MakeWriter(kQuiet);
  ASSERT_TRUE(PutAll({{"in/small", RandomData(500'000, 3)}}).at("in/small").ok());
  auto results = PutAll({{"in/a", RandomData(1'500'000, 1)}, {"in/b", RandomData(1'500'000, 2)}});
  for (const auto& [path, r] : results) {
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << path << ": " << r.status().ToString();
  }
  EXPECT_TRUE(GetTape("T1").full);
  EXPECT_EQ(Units("").size(), 1u);
  EXPECT_EQ(backend_->Stat("in/a").status().code(), Code::kNotFound);
  // Later units wait for a new tape too, without touching the full one.
  EXPECT_EQ(PutAll({{"in/c", "c"}}).at("in/c").status().code(), Code::kUnavailable);
  backend_.reset();
  EXPECT_EQ(ManifestsOn("T1").size(), 1u);
}

TEST_F(TapeBackendSmallTapeTest, AUnitLargerThanATapeFailsWithoutFillingTapes) {
  Activate("T1");
  MakeWriter(kQuiet);
  auto results = PutAll({{"in/a", RandomData(2'000'000, 1)}, {"in/b", RandomData(2'000'000, 2)}});
  for (const auto& [path, r] : results) {
    EXPECT_EQ(r.status().code(), Code::kFailedPrecondition)
        << path << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("unit_size"), std::string::npos);
  }
  EXPECT_FALSE(GetTape("T1").full);
  EXPECT_TRUE(Units("").empty());
  ASSERT_TRUE(PutAll({{"in/c", "c"}}).at("in/c").ok());
}

TEST(TapeBackendCreateTest, MissingLibraryOrCatalog) {
  TapeBackendOptions o;
  EXPECT_EQ(TapeBackend::Create(o, Clock::Real()).status().code(), Code::kInvalidArgument);
  o.devices.push_back(*ParseDeviceSpec("vtl:/nonexistent/hsmfs-vtl"));
  EXPECT_FALSE(TapeBackend::Create(o, Clock::Real()).ok());

  const fs::path dir =
      fs::temp_directory_path() / ("tape_backend_create." + std::to_string(getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE(VirtualLibrary::Create(dir / "vtl", 2, 1, 1 << 20).ok());
  o.devices = {*ParseDeviceSpec("vtl:" + (dir / "vtl").string())};
  o.catalog = dir / "missing.db";
  auto b = TapeBackend::Create(o, Clock::Real());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)->Stat("").status().code(), Code::kUnavailable);
  b->reset();
  fs::remove_all(dir);
}

// Not a test of its own: tests/bench/bench_tape_recall.sh runs it to cost a
// recall order with the library's CostModel. It reads every path of
// HSMFS_REPLAY_LIST (relative to the backend root) through a TapeBackend on
// the library HSMFS_REPLAY_LIBRARY, one at a time, either in the order given
// (HSMFS_REPLAY_ORDER=fifo) or sorted by tape and position (=sorted: one load
// per tape, each tape read in one forward pass), and prints the simulated time.
TEST(TapeRecallReplay, CostOfAnOrder) {
  const char* library = std::getenv("HSMFS_REPLAY_LIBRARY");
  if (!library) GTEST_SKIP() << "HSMFS_REPLAY_LIBRARY is not set (run by bench_tape_recall.sh)";
  const std::string order =
      std::getenv("HSMFS_REPLAY_ORDER") ? std::getenv("HSMFS_REPLAY_ORDER") : "fifo";
  TapeBackendOptions o;
  o.devices = {*ParseDeviceSpec(std::string("vtl:") + library)};
  o.catalog = std::getenv("HSMFS_REPLAY_CATALOG");
  o.strip_prefix = std::getenv("HSMFS_REPLAY_STRIP");
  o.refresh = std::chrono::hours(1);
  auto b = TapeBackend::Create(std::move(o), Clock::Real());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::vector<std::string> paths;
  std::ifstream in(std::getenv("HSMFS_REPLAY_LIST"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) paths.push_back(line);
  }
  ASSERT_FALSE(paths.empty());
  if (order == "sorted") {
    std::map<std::string, std::pair<std::string, int64_t>> key;
    for (const auto& p : paths) {
      auto info = (*b)->Stat(p);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      key[p] = {info->volume, info->position};
    }
    std::sort(paths.begin(), paths.end(),
              [&](const std::string& a, const std::string& c) { return key[a] < key[c]; });
  }
  const fs::path dest = fs::temp_directory_path() / ("replay." + std::to_string(getpid()));
  const TapeCounters before = (*b)->library()->counters();
  for (const auto& p : paths) {
    Status st = (*b)->Read(p, dest, backends::ReadOptions{});
    ASSERT_TRUE(st.ok()) << p << ": " << st.ToString();
  }
  fs::remove(dest);
  const TapeCounters after = (*b)->library()->counters();
  std::printf(
      "replay %s: %zu recalls, simulated_seconds=%.1f loads=%llu unloads=%llu locates=%llu "
      "bytes_read=%llu\n",
      order.c_str(), paths.size(), after.simulated_seconds() - before.simulated_seconds(),
      static_cast<unsigned long long>(after.loads - before.loads),
      static_cast<unsigned long long>(after.unloads - before.unloads),
      static_cast<unsigned long long>(after.locates - before.locates),
      static_cast<unsigned long long>(after.bytes_read - before.bytes_read));
}

}  // namespace
}  // namespace hsmfs::tape
