// VirtualLibrary: creation, blank tapes in slots, load/unload with their
// costs, drives that keep their tape and head position across handles and
// processes, busy drives, crash-safe persisted state, counters across
// processes.

#include "backends/tape/virtual_library.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace hsmfs::tape {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> Rec(size_t n) { return std::vector<std::byte>(n, std::byte{0x42}); }

class VirtualLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hsmfs_vtl_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = fs::path(tmpl) / "lib";
    ASSERT_TRUE(VirtualLibrary::Create(dir_, /*slots=*/3, /*drives=*/2, /*capacity=*/1 << 20).ok());
    options_.cost.load_seconds = 10;
    options_.cost.unload_seconds = 7;
    options_.cost.rewind_base_seconds = 1;
    options_.cost.rewind_seconds_per_gb = 0;
    auto lib = VirtualLibrary::Open(dir_, options_);
    ASSERT_TRUE(lib.ok()) << lib.status().ToString();
    lib_ = std::move(lib).value();
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }

  fs::path dir_;
  VirtualLibrary::Options options_;
  std::unique_ptr<VirtualLibrary> lib_;
};

TEST_F(VirtualLibraryTest, CreateRefusesAnExistingLibraryAndBadShapes) {
  EXPECT_EQ(VirtualLibrary::Create(dir_, 3, 2, 1000).code(), Code::kAlreadyExists);
  EXPECT_EQ(VirtualLibrary::Create(dir_.parent_path() / "x", 0, 1, 1000).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(VirtualLibrary::Open(dir_.parent_path() / "none").status().code(), Code::kNotFound);
}

TEST_F(VirtualLibraryTest, TapesFillSlotsInOrder) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  ASSERT_TRUE(lib_->AddTape("A00002").ok());
  ASSERT_TRUE(lib_->AddTape("A00003").ok());
  EXPECT_EQ(lib_->AddTape("A00004").code(), Code::kResourceExhausted);
  EXPECT_EQ(lib_->AddTape("A00001").code(), Code::kAlreadyExists);
  EXPECT_EQ(lib_->AddTape("bad label").code(), Code::kInvalidArgument);
  auto inv = lib_->GetInventory();
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->slots, (std::vector<std::string>{"A00001", "A00002", "A00003"}));
  EXPECT_EQ(inv->drives, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(inv->capacity, 1u << 20);
  EXPECT_EQ(inv->early_warning, (1u << 20) / 100);
  EXPECT_TRUE(fs::exists(lib_->ImagePath("A00002")));
}

TEST_F(VirtualLibraryTest, LoadUnloadAndTheirCosts) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  ASSERT_TRUE(lib_->AddTape("A00002").ok());
  EXPECT_EQ(lib_->OpenDrive(0).status().code(), Code::kFailedPrecondition);  // empty
  ASSERT_TRUE(lib_->Load("A00001", 0).ok());
  ASSERT_TRUE(lib_->Load("A00001", 0).ok());  // already there: free
  EXPECT_EQ(lib_->counters().loads, 1u);
  EXPECT_EQ(lib_->Load("A00002", 0).code(), Code::kFailedPrecondition);  // drive full
  EXPECT_EQ(lib_->Load("A00001", 1).code(), Code::kFailedPrecondition);  // in drive 0
  EXPECT_EQ(lib_->Load("NOPE", 1).code(), Code::kNotFound);
  EXPECT_EQ(lib_->Load("A00002", 5).code(), Code::kInvalidArgument);
  ASSERT_TRUE(lib_->Load("A00002", 1).ok());
  EXPECT_EQ(lib_->GetInventory()->drives, (std::vector<std::string>{"A00001", "A00002"}));
  ASSERT_TRUE(lib_->Unload(0).ok());
  EXPECT_EQ(lib_->Unload(0).code(), Code::kFailedPrecondition);
  EXPECT_EQ(lib_->GetInventory()->drives, (std::vector<std::string>{"", "A00002"}));
  TapeCounters c = lib_->counters();
  EXPECT_EQ(c.loads, 2u);
  EXPECT_EQ(c.unloads, 1u);
  // Two loads and an unload from BOT (no rewind needed).
  EXPECT_DOUBLE_EQ(c.simulated_seconds(), 10 + 10 + 7);
}

TEST_F(VirtualLibraryTest, DriveKeepsItsTapeAndHeadBetweenHandles) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  ASSERT_TRUE(lib_->Load("A00001", 1).ok());
  {
    auto d = lib_->OpenDrive(1);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ((*d)->label(), "A00001");
    EXPECT_EQ((*d)->drive_index(), 1);
    ASSERT_TRUE((*d)->WriteRecord(Rec(1000)).ok());
    ASSERT_TRUE((*d)->WriteFileMarks(1).ok());
    ASSERT_TRUE((*d)->WriteRecord(Rec(2000)).ok());
    ASSERT_TRUE((*d)->WriteFileMarks(1).ok());
    // While open, the drive is busy for everybody else.
    EXPECT_EQ(lib_->OpenDrive(1).status().code(), Code::kBusy);
    EXPECT_EQ(lib_->Unload(1).code(), Code::kBusy);
  }
  auto d = lib_->OpenDrive(1);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->Tell()->logical_block, 4);  // non-rewinding
  ASSERT_TRUE((*d)->Locate(2).ok());
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(*(*d)->ReadRecord(buf), 2000u);
  d->reset();
  // Unloading rewinds from where the head is (block 3, 3000 bytes in).
  TapeCounters before = lib_->counters();
  ASSERT_TRUE(lib_->Unload(1).ok());
  TapeCounters after = lib_->counters();
  EXPECT_DOUBLE_EQ(after.simulated_seconds() - before.simulated_seconds(), 1 + 7);
  EXPECT_EQ(after.locate_distance_bytes - before.locate_distance_bytes, 3000u);
}

TEST_F(VirtualLibraryTest, MountTapeLoadsEvictsAndReuses) {
  for (const char* l : {"A00001", "A00002", "A00003"}) ASSERT_TRUE(lib_->AddTape(l).ok());
  {
    auto d = lib_->MountTape("A00001");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ((*d)->drive_index(), 0);
  }
  {
    auto d = lib_->MountTape("A00002");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)->drive_index(), 1);
    // Both drives full, drive 1 open: A00003 evicts drive 0's tape.
    auto e = lib_->MountTape("A00003");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ((*e)->drive_index(), 0);
    // Everything busy now.
    EXPECT_EQ(lib_->MountTape("A00001").status().code(), Code::kBusy);
  }
  auto d = lib_->MountTape("A00002");  // already loaded: no new load
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(lib_->counters().loads, 3u);
  EXPECT_EQ(lib_->counters().unloads, 1u);
  EXPECT_EQ(lib_->MountTape("NOPE").status().code(), Code::kNotFound);
}

TEST_F(VirtualLibraryTest, ConcurrentMountsNeverGetAnotherTapesDrive) {
  // Three tapes, two drives: mounts race for drives and evict each other's
  // tapes. A mount that succeeds must hold the tape it asked for, in a drive
  // nobody else holds (a tape loaded but not yet opened used to be evictable).
  for (const char* l : {"A00001", "A00002", "A00003"}) ASSERT_TRUE(lib_->AddTape(l).ok());
  std::atomic<int> wrong{0}, mounted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      const std::string label = "A0000" + std::to_string(t + 1);
      for (int i = 0; i < 400; ++i) {
        auto d = lib_->MountTape(label);
        if (!d.ok()) continue;  // kBusy: every drive is open
        ++mounted;
        if ((*d)->label() != label) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(mounted.load(), 0);
}

TEST_F(VirtualLibraryTest, StateAndCountersPersistAcrossProcesses) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto lib = VirtualLibrary::Open(dir_, options_);
    if (!lib.ok()) _exit(1);
    auto d = (*lib)->MountTape("A00001");
    if (!d.ok()) _exit(2);
    auto rec = Rec(5000);
    if (!(*d)->WriteRecord(rec).ok() || !(*d)->WriteFileMarks(1).ok()) _exit(3);
    _exit(0);  // the handle's destructor does not run: counters so far were persisted at load
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // The child died holding the drive: its lock went with it.
  EXPECT_EQ(lib_->GetInventory()->drives[0], "A00001");
  auto d = lib_->OpenDrive(0);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE((*d)->Rewind().ok());
  std::vector<std::byte> buf(8192);
  EXPECT_EQ(*(*d)->ReadRecord(buf), 5000u);
  d->reset();
  auto total = lib_->PersistedCounters();
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(total->loads, 1u);          // the child's load
  EXPECT_EQ(total->bytes_read, 5000u);  // this process's read
}

TEST_F(VirtualLibraryTest, CountersOfAClosedHandleArePersisted) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  {
    auto d = lib_->MountTape("A00001");
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE((*d)->WriteRecord(Rec(1234)).ok());
  }
  auto other = VirtualLibrary::Open(dir_);
  ASSERT_TRUE(other.ok());
  auto total = (*other)->PersistedCounters();
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(total->bytes_written, 1234u);
  EXPECT_EQ(total->filemarks_written, 1u);  // written on close, as st does
  EXPECT_EQ(total->loads, 1u);
}

TEST_F(VirtualLibraryTest, StateFileIsReplacedAtomically) {
  ASSERT_TRUE(lib_->AddTape("A00001").ok());
  // A crash before the rename leaves a stray temp file and the old state.
  std::ofstream(dir_ / "library.json.tmp") << "{ torn";
  auto lib = VirtualLibrary::Open(dir_);
  ASSERT_TRUE(lib.ok());
  EXPECT_EQ((*lib)->GetInventory()->slots[0], "A00001");
  ASSERT_TRUE((*lib)->AddTape("A00002").ok());
  EXPECT_EQ((*lib)->GetInventory()->slots[1], "A00002");
  // A damaged state file is reported, not guessed at.
  std::ofstream(dir_ / "library.json") << "{ torn";
  EXPECT_EQ((*lib)->GetInventory().status().code(), Code::kDataLoss);
}

TEST_F(VirtualLibraryTest, OrphanImageFromACrashIsAdopted) {
  // A crash between creating the image and recording its slot.
  ASSERT_TRUE(VirtualTape::Create(lib_->ImagePath("A00009"), "A00009", 1 << 20, 100).ok());
  ASSERT_TRUE(lib_->AddTape("A00009").ok());
  EXPECT_EQ(lib_->GetInventory()->slots[0], "A00009");
}

TEST_F(VirtualLibraryTest, ConcurrentAddsFromProcessesLoseNothing) {
  std::vector<pid_t> pids;
  for (int p = 0; p < 3; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto lib = VirtualLibrary::Open(dir_);
      _exit(lib.ok() && (*lib)->AddTape("P" + std::to_string(p)).ok() ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto slots = lib_->GetInventory()->slots;
  std::sort(slots.begin(), slots.end());
  EXPECT_EQ(slots, (std::vector<std::string>{"P0", "P1", "P2"}));
}

}  // namespace
}  // namespace hsmfs::tape
