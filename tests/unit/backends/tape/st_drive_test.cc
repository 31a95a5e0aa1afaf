// StDrive against FakeStDevice: each TapeDrive operation issues the right st
// ioctl sequence, and st's results (status bits, errno values, the
// early-warning protocol) are decoded as tape_drive.h promises.

#include "backends/tape/st_drive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "tests/unit/backends/tape/fake_st_device.h"

namespace hsmfs::tape {
namespace {

using ::testing::ElementsAre;
using testing::FakeStDevice;
using testing::FakeStScript;
using testing::MakeMtget;

class StDriveTest : public ::testing::Test {
 protected:
  std::unique_ptr<StDrive> OpenDrive(uint32_t block_size = 0) {
    auto drive = StDrive::Open("/dev/nst0", StDrive::Options{block_size},
                               std::make_unique<FakeStDevice>(script_));
    EXPECT_TRUE(drive.ok()) << drive.status().ToString();
    script_->calls.clear();
    return std::move(drive).value();
  }

  std::shared_ptr<FakeStScript> script_ = std::make_shared<FakeStScript>();
};

std::vector<std::byte> Bytes(size_t n) { return std::vector<std::byte>(n, std::byte{0x5a}); }

TEST_F(StDriveTest, OpenIsReadWriteAndSetsVariableBlockMode) {
  auto drive =
      StDrive::Open("/dev/nst0", StDrive::Options{}, std::make_unique<FakeStDevice>(script_));
  ASSERT_TRUE(drive.ok());
  EXPECT_THAT(script_->calls, ElementsAre("open /dev/nst0 rw", "MTSETBLK 0"));
}

TEST_F(StDriveTest, OpenSetsFixedBlockSize) {
  auto drive =
      StDrive::Open("/dev/nst1", StDrive::Options{262144}, std::make_unique<FakeStDevice>(script_));
  ASSERT_TRUE(drive.ok());
  EXPECT_THAT(script_->calls, ElementsAre("open /dev/nst1 rw", "MTSETBLK 262144"));
}

TEST_F(StDriveTest, WriteProtectedTapeOpensReadOnlyAndRefusesWrites) {
  script_->open_results = {-EROFS, 0};
  auto drive =
      StDrive::Open("/dev/nst0", StDrive::Options{}, std::make_unique<FakeStDevice>(script_));
  ASSERT_TRUE(drive.ok());
  EXPECT_THAT(script_->calls, ElementsAre("open /dev/nst0 rw", "open /dev/nst0 ro", "MTSETBLK 0"));
  script_->calls.clear();
  auto buf = Bytes(10);
  EXPECT_EQ((*drive)->WriteRecord(buf).code(), Code::kReadOnly);
  EXPECT_EQ((*drive)->WriteFileMarks(1).code(), Code::kReadOnly);
  EXPECT_TRUE(script_->calls.empty());  // refused without touching the drive
}

TEST_F(StDriveTest, OpenErrorsAreDecoded) {
  script_->open_results = {-EBUSY};
  auto busy =
      StDrive::Open("/dev/nst0", StDrive::Options{}, std::make_unique<FakeStDevice>(script_));
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  script_->open_results = {-ENOMEDIUM};
  auto empty =
      StDrive::Open("/dev/nst0", StDrive::Options{}, std::make_unique<FakeStDevice>(script_));
  EXPECT_EQ(empty.status().code(), Code::kUnavailable);
}

TEST_F(StDriveTest, WriteRecordIsOneWrite) {
  auto drive = OpenDrive();
  auto buf = Bytes(65536);
  ASSERT_TRUE(drive->WriteRecord(buf).ok());
  EXPECT_THAT(script_->calls, ElementsAre("write 65536"));
}

TEST_F(StDriveTest, FixedModeRejectsOtherRecordLengths) {
  auto drive = OpenDrive(1024);
  auto buf = Bytes(1000);
  EXPECT_EQ(drive->WriteRecord(buf).code(), Code::kInvalidArgument);
  EXPECT_TRUE(script_->calls.empty());
}

TEST_F(StDriveTest, EarlyWarningWriteIsRetriedOnceThenEndOfTapeIsExhausted) {
  auto drive = OpenDrive();
  auto buf = Bytes(100);
  // st: the write after the early warning fails with ENOSPC, the next one
  // succeeds; two failures in a row are the physical end.
  script_->write_results = {100, -ENOSPC, 100};
  ASSERT_TRUE(drive->WriteRecord(buf).ok());
  ASSERT_TRUE(drive->WriteRecord(buf).ok());
  EXPECT_THAT(script_->calls, ElementsAre("write 100", "write 100", "write 100"));
  auto st = drive->GetStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->early_warning);

  script_->calls.clear();
  script_->write_results = {-ENOSPC, -ENOSPC};
  Status s = drive->WriteRecord(buf);
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
  EXPECT_THAT(script_->calls, ElementsAre("write 100", "write 100"));
}

TEST_F(StDriveTest, ShortWriteIsInternalError) {
  auto drive = OpenDrive();
  auto buf = Bytes(100);
  script_->write_results = {60};
  EXPECT_EQ(drive->WriteRecord(buf).code(), Code::kInternal);
}

TEST_F(StDriveTest, ReadRecordReturnsData) {
  auto drive = OpenDrive();
  script_->read_results = {"hello"};
  std::vector<std::byte> buf(4096);
  auto n = drive->ReadRecord(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(static_cast<char>(buf[0]), 'h');
  EXPECT_THAT(script_->calls, ElementsAre("read 4096"));
}

TEST_F(StDriveTest, ZeroByteReadIsFileMarkUnlessStatusSaysEndOfData) {
  auto drive = OpenDrive();
  std::vector<std::byte> buf(4096);
  script_->get_results = {MakeMtget(GMT_EOF(~0L) | GMT_ONLINE(~0L), 1, 0)};
  auto fm = drive->ReadRecord(buf);
  ASSERT_TRUE(fm.ok());
  EXPECT_EQ(*fm, 0u);
  EXPECT_THAT(script_->calls, ElementsAre("read 4096", "MTIOCGET"));

  script_->get_results = {MakeMtget(GMT_EOD(~0L) | GMT_ONLINE(~0L), 2, 0)};
  EXPECT_EQ(drive->ReadRecord(buf).status().code(), Code::kNotFound);
}

TEST_F(StDriveTest, ReadErrorsAreDecoded) {
  auto drive = OpenDrive();
  std::vector<std::byte> buf(16);
  script_->read_errors = {ENOMEM};
  EXPECT_EQ(drive->ReadRecord(buf).status().code(), Code::kInvalidArgument);
  // EIO at EOD (blank check) is end of data; elsewhere it is a media error.
  script_->read_errors = {EIO};
  script_->get_results = {MakeMtget(GMT_EOD(~0L), 3, 0)};
  EXPECT_EQ(drive->ReadRecord(buf).status().code(), Code::kNotFound);
  script_->read_errors = {EIO};
  script_->get_results = {MakeMtget(GMT_ONLINE(~0L), 3, 7)};
  EXPECT_EQ(drive->ReadRecord(buf).status().code(), Code::kDataLoss);
}

TEST_F(StDriveTest, FixedModeReadsOneBlock) {
  auto drive = OpenDrive(512);
  std::vector<std::byte> buf(4096);
  script_->read_results = {std::string(512, 'x')};
  auto n = drive->ReadRecord(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 512u);
  EXPECT_THAT(script_->calls, ElementsAre("read 512"));
}

TEST_F(StDriveTest, FileMarksRewindLocateAndSpaceAreOneIoctlEach) {
  auto drive = OpenDrive();
  ASSERT_TRUE(drive->WriteFileMarks(2).ok());
  ASSERT_TRUE(drive->WriteFileMarks(0).ok());  // st: flush the buffer
  ASSERT_TRUE(drive->Rewind().ok());
  ASSERT_TRUE(drive->Space(SpaceOp::kFileMarksForward, 3).ok());
  ASSERT_TRUE(drive->Space(SpaceOp::kFileMarksBackward, 1).ok());
  ASSERT_TRUE(drive->Space(SpaceOp::kRecordsForward, 5).ok());
  ASSERT_TRUE(drive->Space(SpaceOp::kRecordsBackward, 2).ok());
  ASSERT_TRUE(drive->Space(SpaceOp::kEndOfData, 0).ok());
  ASSERT_TRUE(drive->Locate(123456).ok());
  EXPECT_THAT(script_->calls, ElementsAre("MTWEOF 2", "MTWEOF 0", "MTREW 1", "MTFSF 3", "MTBSF 1",
                                          "MTFSR 5", "MTBSR 2", "MTEOM 1", "MTSEEK 123456"));
}

TEST_F(StDriveTest, BadCountsNeverReachTheDrive) {
  auto drive = OpenDrive();
  EXPECT_EQ(drive->WriteFileMarks(-1).code(), Code::kInvalidArgument);
  EXPECT_EQ(drive->Space(SpaceOp::kFileMarksForward, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(drive->Locate(-5).code(), Code::kInvalidArgument);
  EXPECT_TRUE(script_->calls.empty());
}

TEST_F(StDriveTest, SpacingIntoEndOfDataOrBotIsNotFound) {
  auto drive = OpenDrive();
  script_->op_results = {-EIO};
  script_->get_results = {MakeMtget(GMT_EOD(~0L) | GMT_ONLINE(~0L), 4, 0)};
  EXPECT_EQ(drive->Space(SpaceOp::kFileMarksForward, 10).code(), Code::kNotFound);
  EXPECT_THAT(script_->calls, ElementsAre("MTFSF 10", "MTIOCGET"));

  script_->op_results = {-EIO};
  script_->get_results = {MakeMtget(GMT_BOT(~0L) | GMT_ONLINE(~0L), 0, 0)};
  EXPECT_EQ(drive->Space(SpaceOp::kFileMarksBackward, 10).code(), Code::kNotFound);

  script_->op_results = {-EIO};
  script_->get_results = {MakeMtget(GMT_EOF(~0L) | GMT_ONLINE(~0L), 1, 0)};
  EXPECT_EQ(drive->Space(SpaceOp::kRecordsForward, 10).code(), Code::kNotFound);

  script_->op_results = {-EIO};
  script_->get_results = {MakeMtget(GMT_ONLINE(~0L), 1, 4)};
  EXPECT_EQ(drive->Locate(99).code(), Code::kDataLoss);
}

TEST_F(StDriveTest, TellCombinesMtiocgetAndMtiocpos) {
  auto drive = OpenDrive();
  script_->get_results = {MakeMtget(GMT_ONLINE(~0L), 3, 17)};
  script_->pos_results = {1234};
  auto pos = drive->Tell();
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(*pos, (TapePosition{3, 17, 1234}));
  EXPECT_THAT(script_->calls, ElementsAre("MTIOCGET", "MTIOCPOS"));
}

TEST_F(StDriveTest, TellAfterSeekReportsUnknownFileNumber) {
  auto drive = OpenDrive();
  script_->get_results = {MakeMtget(GMT_ONLINE(~0L), -1, -1)};
  script_->pos_results = {500};
  auto pos = drive->Tell();
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(*pos, (TapePosition{-1, -1, 500}));
}

TEST_F(StDriveTest, StatusDecodesEveryBit) {
  auto drive = OpenDrive();
  script_->get_results = {MakeMtget(GMT_ONLINE(~0L) | GMT_BOT(~0L) | GMT_WR_PROT(~0L), 0, 0, 0)};
  script_->pos_results = {0};
  auto s = drive->GetStatus();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->online);
  EXPECT_TRUE(s->bot);
  EXPECT_TRUE(s->write_protected);
  EXPECT_FALSE(s->eof);
  EXPECT_FALSE(s->eod);
  EXPECT_FALSE(s->early_warning);
  EXPECT_EQ(s->block_size, 0u);
  EXPECT_THAT(script_->calls, ElementsAre("MTIOCGET", "MTIOCPOS"));

  script_->calls.clear();
  script_->get_results = {
      MakeMtget(GMT_ONLINE(~0L) | GMT_EOF(~0L) | GMT_EOD(~0L) | GMT_EOT(~0L), 5, 0, 262144)};
  script_->pos_results = {999};
  s = drive->GetStatus();
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->bot);
  EXPECT_TRUE(s->eof);
  EXPECT_TRUE(s->eod);
  EXPECT_TRUE(s->early_warning);
  EXPECT_FALSE(s->write_protected);
  EXPECT_EQ(s->block_size, 262144u);
  EXPECT_EQ(s->position, (TapePosition{5, 0, 999}));
}

TEST_F(StDriveTest, OfflineStatusSkipsThePositionQuery) {
  auto drive = OpenDrive();
  script_->get_results = {MakeMtget(0, -1, -1)};
  auto s = drive->GetStatus();
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->online);
  EXPECT_EQ(s->position.logical_block, -1);
  EXPECT_THAT(script_->calls, ElementsAre("MTIOCGET"));
}

}  // namespace
}  // namespace hsmfs::tape
