#include "backends/tape/tape_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "backends/tape/tape_format.h"
#include "catalog/sqlite_db.h"
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
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tape_backend_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(VirtualLibrary::Create(dir_ / "vtl", 4, 2, uint64_t{1} << 30).ok());
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

  backends::PutOptions po;
  EXPECT_EQ(backend_->Put(dir_ / "catalog.db", "a/new", po).status().code(), Code::kReadOnly);
  EXPECT_EQ(backend_->MakeDir("a/newdir", 0755).code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Remove("a/1").code(), Code::kReadOnly);
  EXPECT_EQ(backend_->Rename("a/1", "a/3").code(), Code::kUnimplemented);
}

TEST_F(TapeBackendTest, DamagedDataIsDataLoss) {
  Archive("T1", "/a", {{"1", RandomData(300'000, 7)}});
  MakeBackend();
  auto info = backend_->Stat("a/1");
  ASSERT_TRUE(info.ok());
  // Change the catalog's md5: what the tape returns no longer matches.
  auto s = catalog_->Acquire();
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(
      s->db().Exec("UPDATE target_files SET md5 = '00000000000000000000000000000000'").ok());
  EXPECT_EQ(Recall("a/1").status().code(), Code::kDataLoss);
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
