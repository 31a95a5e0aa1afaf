// VirtualTape: the image-file tape. Round trips of records and file marks,
// spacing and locating, EOD, the early-warning zone and the end of tape,
// truncation on write, crash consistency (torn tails), damage detection,
// exclusive access across handles and processes, and the cost counters.

#include "backends/tape/virtual_tape.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "backends/tape/crc32c.h"

namespace hsmfs::tape {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> Rec(size_t n, char fill) {
  return std::vector<std::byte>(n, static_cast<std::byte>(fill));
}

class VirtualTapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hsmfs_vtape_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ / "A00001.vtape";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<VirtualTape> Make(uint64_t capacity = 1 << 20, uint64_t ew = 1000,
                                    VirtualTape::Options options = {}) {
    EXPECT_TRUE(VirtualTape::Create(image_, "A00001", capacity, ew).ok());
    return Reopen(options);
  }
  std::unique_ptr<VirtualTape> Reopen(VirtualTape::Options options = {}) {
    auto t = VirtualTape::Open(image_, options);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  // Writes: file 0 = records of 100, 200, 300 bytes; file 1 = 400, 500.
  void WriteTwoFiles(TapeDrive& t) {
    ASSERT_TRUE(t.WriteRecord(Rec(100, 'a')).ok());
    ASSERT_TRUE(t.WriteRecord(Rec(200, 'b')).ok());
    ASSERT_TRUE(t.WriteRecord(Rec(300, 'c')).ok());
    ASSERT_TRUE(t.WriteFileMarks(1).ok());
    ASSERT_TRUE(t.WriteRecord(Rec(400, 'd')).ok());
    ASSERT_TRUE(t.WriteRecord(Rec(500, 'e')).ok());
    ASSERT_TRUE(t.WriteFileMarks(1).ok());
  }
  static size_t ReadLen(TapeDrive& t) {
    std::vector<std::byte> buf(4096);
    auto n = t.ReadRecord(buf);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.value_or(9999);
  }

  fs::path dir_;
  fs::path image_;
};

TEST_F(VirtualTapeTest, RecordsAndFileMarksRoundTrip) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->Rewind().ok());
  std::vector<std::byte> buf(4096);
  auto n = t->ReadRecord(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 100u);
  EXPECT_EQ(buf[0], std::byte{'a'});
  EXPECT_EQ(ReadLen(*t), 200u);
  EXPECT_EQ(ReadLen(*t), 300u);
  EXPECT_EQ(ReadLen(*t), 0u);  // file mark
  EXPECT_EQ(ReadLen(*t), 400u);
  n = t->ReadRecord(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(buf[499], std::byte{'e'});
  EXPECT_EQ(ReadLen(*t), 0u);
  EXPECT_EQ(t->ReadRecord(buf).status().code(), Code::kNotFound);  // EOD
  auto st = t->GetStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->eod);
  EXPECT_TRUE(st->eof);
}

TEST_F(VirtualTapeTest, TellCountsFilesBlocksAndLogicalBlocks) {
  auto t = Make();
  WriteTwoFiles(*t);
  EXPECT_EQ(*t->Tell(), (TapePosition{2, 0, 7}));
  ASSERT_TRUE(t->Locate(5).ok());
  EXPECT_EQ(*t->Tell(), (TapePosition{1, 1, 5}));
  ASSERT_TRUE(t->Rewind().ok());
  EXPECT_EQ(*t->Tell(), (TapePosition{0, 0, 0}));
  EXPECT_TRUE(t->GetStatus()->bot);
}

TEST_F(VirtualTapeTest, SpacingOverFileMarksAndRecords) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->Rewind().ok());
  ASSERT_TRUE(t->Space(SpaceOp::kFileMarksForward, 1).ok());
  EXPECT_EQ(t->Tell()->logical_block, 4);  // start of file 1
  EXPECT_EQ(ReadLen(*t), 400u);
  // Back over one file mark: on its BOT side, i.e. at the mark itself.
  ASSERT_TRUE(t->Space(SpaceOp::kFileMarksBackward, 1).ok());
  EXPECT_EQ(t->Tell()->logical_block, 3);
  EXPECT_EQ(ReadLen(*t), 0u);
  ASSERT_TRUE(t->Space(SpaceOp::kRecordsForward, 1).ok());
  EXPECT_EQ(ReadLen(*t), 500u);
  ASSERT_TRUE(t->Space(SpaceOp::kRecordsBackward, 2).ok());
  EXPECT_EQ(ReadLen(*t), 400u);
  // Spacing over records stops past a file mark.
  ASSERT_TRUE(t->Rewind().ok());
  EXPECT_EQ(t->Space(SpaceOp::kRecordsForward, 10).code(), Code::kNotFound);
  EXPECT_EQ(t->Tell()->logical_block, 4);
  // ... and back, on its BOT side.
  EXPECT_EQ(t->Space(SpaceOp::kRecordsBackward, 10).code(), Code::kNotFound);
  EXPECT_EQ(t->Tell()->logical_block, 3);
  EXPECT_EQ(t->Space(SpaceOp::kFileMarksForward, 5).code(), Code::kNotFound);
  EXPECT_TRUE(t->GetStatus()->eod);
  EXPECT_EQ(t->Space(SpaceOp::kFileMarksBackward, 5).code(), Code::kNotFound);
  EXPECT_TRUE(t->GetStatus()->bot);
  ASSERT_TRUE(t->Space(SpaceOp::kEndOfData, 0).ok());
  EXPECT_EQ(t->Tell()->logical_block, 7);
}

TEST_F(VirtualTapeTest, LocateReadsOnlyTheBlocksAsked) {
  auto t = Make();
  WriteTwoFiles(*t);
  TapeCounters before = t->counters();
  ASSERT_TRUE(t->Locate(4).ok());
  EXPECT_EQ(ReadLen(*t), 400u);
  TapeCounters after = t->counters();
  EXPECT_EQ(after.bytes_read - before.bytes_read, 400u);
  EXPECT_EQ(after.records_read - before.records_read, 1u);
  EXPECT_EQ(after.locates - before.locates, 1u);
  // From EOD (1500 bytes in) back to block 4 (600 bytes in).
  EXPECT_EQ(after.locate_distance_bytes - before.locate_distance_bytes, 900u);
  EXPECT_EQ(t->Locate(8).code(), Code::kNotFound);
  EXPECT_TRUE(t->GetStatus()->eod);
}

TEST_F(VirtualTapeTest, WritingInTheMiddleTruncatesTheRest) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->Locate(2).ok());
  ASSERT_TRUE(t->WriteRecord(Rec(50, 'z')).ok());
  ASSERT_TRUE(t->WriteFileMarks(1).ok());
  EXPECT_EQ(t->info().blocks, 4);
  EXPECT_EQ(t->info().file_marks, 1);
  EXPECT_EQ(t->info().used_bytes, 350u);
  t.reset();
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 4);
  EXPECT_EQ(ReadLen(*t), 100u);
  EXPECT_EQ(ReadLen(*t), 200u);
  EXPECT_EQ(ReadLen(*t), 50u);
  EXPECT_EQ(ReadLen(*t), 0u);
  std::vector<std::byte> buf(10);
  EXPECT_EQ(t->ReadRecord(buf).status().code(), Code::kNotFound);
}

TEST_F(VirtualTapeTest, EarlyWarningThenEndOfTape) {
  auto t = Make(/*capacity=*/10000, /*ew=*/2500);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(t->WriteRecord(Rec(1000, 'x')).ok());
  EXPECT_FALSE(t->GetStatus()->early_warning);  // 7000 < 7500
  ASSERT_TRUE(t->WriteRecord(Rec(1000, 'x')).ok());
  EXPECT_TRUE(t->GetStatus()->early_warning);  // writes succeed in the zone
  ASSERT_TRUE(t->WriteRecord(Rec(1000, 'x')).ok());
  Status full = t->WriteRecord(Rec(1001, 'x'));
  EXPECT_EQ(full.code(), Code::kResourceExhausted) << full.ToString();
  EXPECT_EQ(t->info().used_bytes, 9000u);            // nothing of the failed write
  ASSERT_TRUE(t->WriteRecord(Rec(1000, 'x')).ok());  // exactly to the end
  EXPECT_EQ(t->WriteRecord(Rec(1, 'x')).code(), Code::kResourceExhausted);
  EXPECT_TRUE(t->WriteFileMarks(1).ok());  // file marks still fit
}

TEST_F(VirtualTapeTest, FixedBlockMode) {
  VirtualTape::Options o;
  o.block_size = 512;
  auto t = Make(1 << 20, 1000, o);
  EXPECT_EQ(t->WriteRecord(Rec(100, 'x')).code(), Code::kInvalidArgument);
  ASSERT_TRUE(t->WriteRecord(Rec(512, 'x')).ok());
  EXPECT_EQ(t->GetStatus()->block_size, 512u);
  ASSERT_TRUE(t->Rewind().ok());
  EXPECT_EQ(ReadLen(*t), 512u);
}

TEST_F(VirtualTapeTest, RecordLongerThanBufferIsSkipped) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->Rewind().ok());
  std::vector<std::byte> small(50);
  EXPECT_EQ(t->ReadRecord(small).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadLen(*t), 200u);  // as st: the long record is passed
}

TEST_F(VirtualTapeTest, IndexIsRebuiltOnOpen) {
  auto t = Make();
  WriteTwoFiles(*t);
  t.reset();
  t = Reopen();
  auto info = t->info();
  EXPECT_EQ(info.label, "A00001");
  EXPECT_EQ(info.blocks, 7);
  EXPECT_EQ(info.file_marks, 2);
  EXPECT_EQ(info.used_bytes, 1500u);
  EXPECT_EQ(info.torn_bytes_cut, 0u);
  ASSERT_TRUE(t->Locate(5).ok());
  std::vector<std::byte> buf(4096);
  ASSERT_EQ(*t->ReadRecord(buf), 500u);
  EXPECT_EQ(buf[0], std::byte{'e'});
}

TEST_F(VirtualTapeTest, TornTailIsCutOffOnOpen) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->WriteRecord(Rec(1000, 'f')).ok());
  t.reset();  // closing writes a trailing file mark, as st does
  auto size = fs::file_size(image_);
  // Cut the trailing file mark and half of the last record: a crash mid-write.
  fs::resize_file(image_, size - 24 - 500);
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 7);
  EXPECT_EQ(t->info().used_bytes, 1500u);
  EXPECT_EQ(t->info().torn_bytes_cut, 24u + 500u);
  EXPECT_FALSE(t->info().damaged);
  EXPECT_EQ(fs::file_size(image_), size - 24 - 500 - 24 - 500);
  // The tape appends where the intact data ends.
  ASSERT_TRUE(t->Space(SpaceOp::kEndOfData, 0).ok());
  ASSERT_TRUE(t->WriteRecord(Rec(10, 'g')).ok());
  ASSERT_TRUE(t->WriteFileMarks(1).ok());
  t.reset();
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 9);
}

TEST_F(VirtualTapeTest, TornHeaderAndCorruptLastPayloadAreCut) {
  auto t = Make();
  WriteTwoFiles(*t);
  ASSERT_TRUE(t->WriteRecord(Rec(300, 'h')).ok());
  ASSERT_TRUE(t->WriteFileMarks(0).ok());  // sync, no mark
  t.reset();
  auto size = fs::file_size(image_);
  {
    // Flip a byte inside the last record's payload (the write that was in
    // flight when the power went).
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 24 - 10));
    f.put('Z');
  }
  // ... and leave half a frame header after it.
  {
    std::ofstream f(image_, std::ios::app | std::ios::binary);
    f.write("VTRC\0\0\0\0\0\0", 10);
  }
  t = Reopen();
  // The partial header is a torn tail, and so is the record before it whose
  // payload fails its CRC: both are cut.
  EXPECT_EQ(t->info().blocks, 7);
  EXPECT_EQ(t->info().torn_bytes_cut, 10u + 24u + 300u);
  EXPECT_EQ(fs::file_size(image_), size - 24 - 300);
}

TEST_F(VirtualTapeTest, DamageInsideIsDataLossOrPassedThrough) {
  auto t = Make();
  WriteTwoFiles(*t);
  t.reset();
  {
    // Flip a byte of the 200-byte record (block 1): header 64 + frame 0 (24+100) + header 24.
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 124 + 24 + 7);
    f.put('Q');
  }
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 7);  // damage is not a torn tail
  ASSERT_TRUE(t->Locate(1).ok());
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(t->ReadRecord(buf).status().code(), Code::kDataLoss);
  EXPECT_EQ(ReadLen(*t), 300u);  // the next record reads fine
  t.reset();

  VirtualTape::Options o;
  o.verify_crc = false;
  t = Reopen(o);
  ASSERT_TRUE(t->Locate(1).ok());
  ASSERT_EQ(*t->ReadRecord(buf), 200u);
  EXPECT_EQ(buf[7], std::byte{'Q'});
  EXPECT_EQ(buf[6], std::byte{'b'});
}

TEST_F(VirtualTapeTest, DamagedFrameHeaderEndsDataButKeepsTheBytes) {
  auto t = Make();
  WriteTwoFiles(*t);
  t.reset();
  auto size = fs::file_size(image_);
  {
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 124 + 2);  // inside the header of block 1
    f.put('\x7f');
  }
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 1);
  EXPECT_TRUE(t->info().damaged);
  EXPECT_EQ(fs::file_size(image_), size);
}

TEST_F(VirtualTapeTest, DamagedImageHeaderIsRefused) {
  auto t = Make();
  t.reset();
  {
    std::fstream f(image_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x01');
  }
  auto r = VirtualTape::Open(image_, {});
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  std::ofstream(dir_ / "junk") << std::string(100, 'j');  // no magic
  EXPECT_EQ(VirtualTape::Open(dir_ / "junk", {}).status().code(), Code::kInvalidArgument);
}

TEST_F(VirtualTapeTest, CreateRefusesExistingImageAndBadLabels) {
  ASSERT_TRUE(VirtualTape::Create(image_, "A00001", 1000, 10).ok());
  EXPECT_EQ(VirtualTape::Create(image_, "A00001", 1000, 10).code(), Code::kAlreadyExists);
  EXPECT_EQ(VirtualTape::Create(dir_ / "x", "", 1000, 10).code(), Code::kInvalidArgument);
  EXPECT_EQ(VirtualTape::Create(dir_ / "x", std::string(24, 'L'), 1000, 10).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(VirtualTape::Create(dir_ / "x", "L", 1000, 2000).code(), Code::kInvalidArgument);
}

TEST_F(VirtualTapeTest, ClosingAfterRecordsWritesAFileMark) {
  auto t = Make();
  ASSERT_TRUE(t->WriteRecord(Rec(10, 'x')).ok());
  t.reset();
  t = Reopen();
  EXPECT_EQ(t->info().blocks, 2);
  EXPECT_EQ(t->info().file_marks, 1);
  t.reset();
  t = Reopen();  // nothing written: nothing added
  EXPECT_EQ(t->info().blocks, 2);
}

TEST_F(VirtualTapeTest, ReadOnlyTapeRefusesWrites) {
  auto t = Make();
  t.reset();
  VirtualTape::Options o;
  o.read_only = true;
  t = Reopen(o);
  EXPECT_EQ(t->WriteRecord(Rec(10, 'x')).code(), Code::kReadOnly);
  EXPECT_EQ(t->WriteFileMarks(1).code(), Code::kReadOnly);
  EXPECT_TRUE(t->GetStatus()->write_protected);
}

TEST_F(VirtualTapeTest, SecondHandleIsBusyUntilTheFirstCloses) {
  auto t = Make();
  auto second = VirtualTape::Open(image_, {});
  EXPECT_EQ(second.status().code(), Code::kBusy);
  t.reset();
  EXPECT_TRUE(VirtualTape::Open(image_, {}).ok());
}

TEST_F(VirtualTapeTest, AnotherProcessIsBusyAndSeesWhatWasWritten) {
  auto t = Make();
  WriteTwoFiles(*t);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto r = VirtualTape::Open(image_, {});
    _exit(!r.ok() && r.status().code() == Code::kBusy ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  t.reset();
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto r = VirtualTape::Open(image_, {});
    _exit(r.ok() && (*r)->info().blocks == 7 ? 0 : 1);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(VirtualTapeTest, KilledWriterLeavesAConsistentImage) {
  ASSERT_TRUE(VirtualTape::Create(image_, "A00001", 1 << 30, 1000).ok());
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    auto r = VirtualTape::Open(image_, {});
    if (!r.ok()) _exit(1);
    auto rec = Rec(65536, 'k');
    for (int i = 0;; ++i) {
      if (!(*r)->WriteRecord(rec).ok()) _exit(1);
      if (i % 16 == 15 && !(*r)->WriteFileMarks(1).ok()) _exit(1);
      if (i == 40) (void)!write(pipefd[1], "x", 1);
    }
  }
  close(pipefd[1]);
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(pipefd[0]);
  auto t = Reopen();
  auto info = t->info();
  EXPECT_GE(info.blocks, 41);
  // Every block reads back intact, up to EOD.
  std::vector<std::byte> buf(65536);
  int64_t n = 0;
  for (;; ++n) {
    auto r = t->ReadRecord(buf);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
      break;
    }
    EXPECT_TRUE(*r == 0 || *r == 65536u);
  }
  EXPECT_EQ(n, info.blocks);
}

TEST_F(VirtualTapeTest, CostsFollowTheModel) {
  CostModel model;
  model.write_mb_per_s = 100;
  model.read_mb_per_s = 200;
  model.filemark_seconds = 1;
  model.locate_base_seconds = 0;
  model.locate_seconds_per_gb = 0;
  VirtualTape::Options o;
  o.meter = std::make_shared<CostMeter>(model);
  auto t = Make(1 << 30, 1000, o);
  auto rec = Rec(1000000, 'x');
  ASSERT_TRUE(t->WriteRecord(rec).ok());
  ASSERT_TRUE(t->WriteFileMarks(1).ok());
  ASSERT_TRUE(t->Locate(0).ok());
  std::vector<std::byte> buf(1000000);
  ASSERT_TRUE(t->ReadRecord(buf).ok());
  // 1 MB at 100 MB/s + 1 file mark + 1 MB at 200 MB/s.
  EXPECT_NEAR(t->counters().simulated_seconds(), 0.01 + 1 + 0.005, 1e-9);
  EXPECT_EQ(t->counters().bytes_written, 1000000u);
  EXPECT_EQ(t->counters().filemarks_written, 1u);
}

TEST(Crc32cTest, KnownValueAndBothImplementationsAgree) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);  // the standard check value
  EXPECT_EQ(Crc32cSw(0, "123456789", 9), 0xE3069283u);
  std::vector<unsigned char> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7 + 3);
  for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 1000u}) {
    EXPECT_EQ(Crc32c(0, data.data(), len), Crc32cSw(0, data.data(), len)) << len;
  }
  // Extending a CRC equals computing it in one go.
  EXPECT_EQ(Crc32c(Crc32c(0, data.data(), 333), data.data() + 333, 667),
            Crc32c(0, data.data(), 1000));
}

}  // namespace
}  // namespace hsmfs::tape
