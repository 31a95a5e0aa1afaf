// The TapeDrive contract on a real drive. Skipped unless
// HSMFS_TEST_TAPE_DEVICE names a device spec:
//   HSMFS_TEST_TAPE_DEVICE=/dev/nst0   a scratch tape in a real st drive
//                                      (ITS CONTENTS ARE OVERWRITTEN FROM BOT)
//   HSMFS_TEST_TAPE_DEVICE=vtl:DIR     a virtual library (created with one
//                                      scratch tape if DIR holds none), to
//                                      check the test itself
// Optional: HSMFS_TEST_TAPE_BLOCK_SIZE=N for fixed block mode (st only).
// See docs/TAPE.md, "Testing on a real drive".

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "backends/tape/device_spec.h"
#include "backends/tape/st_drive.h"
#include "backends/tape/virtual_library.h"

namespace hsmfs::tape {
namespace {

class RealDriveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* spec_text = std::getenv("HSMFS_TEST_TAPE_DEVICE");
    if (spec_text == nullptr || *spec_text == '\0') {
      GTEST_SKIP() << "set HSMFS_TEST_TAPE_DEVICE=/dev/nstN (a scratch tape) to run";
    }
    auto spec = ParseDeviceSpec(spec_text);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    if (spec->kind == DeviceSpec::Kind::kStDevice) {
      StDrive::Options o;
      if (const char* bs = std::getenv("HSMFS_TEST_TAPE_BLOCK_SIZE")) {
        o.block_size = static_cast<uint32_t>(std::strtoul(bs, nullptr, 10));
      }
      block_size_ = o.block_size;
      auto d = StDrive::Open(spec->path.string(), o);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      drive_ = std::move(d).value();
      return;
    }
    if (!std::filesystem::exists(spec->path / "library.json")) {
      ASSERT_TRUE(VirtualLibrary::Create(spec->path, 1, spec->drive + 1, 1ULL << 30).ok());
      ASSERT_TRUE(VirtualLibrary::Open(spec->path).value()->AddTape("SCRATCH").ok());
    }
    auto lib = VirtualLibrary::Open(spec->path);
    ASSERT_TRUE(lib.ok()) << lib.status().ToString();
    library_ = std::move(lib).value();
    std::string label = library_->GetInventory()->slots.at(0);
    if (library_->GetInventory()->drives.at(static_cast<size_t>(spec->drive)).empty()) {
      ASSERT_TRUE(library_->Load(label, spec->drive).ok());
    }
    auto d = library_->OpenDrive(spec->drive);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    drive_ = std::move(d).value();
  }

  size_t RecordSize(size_t wanted) const { return block_size_ != 0 ? block_size_ : wanted; }
  std::vector<std::byte> Record(size_t wanted, int seed) const {
    std::vector<std::byte> r(RecordSize(wanted));
    for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
    return r;
  }

  std::unique_ptr<VirtualLibrary> library_;
  std::unique_ptr<TapeDrive> drive_;
  uint32_t block_size_ = 0;
};

TEST_F(RealDriveTest, WriteSpaceLocateAndReadBack) {
  TapeDrive& d = *drive_;
  auto st = d.GetStatus();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->online);
  ASSERT_FALSE(st->write_protected) << "the scratch tape is write-protected";

  ASSERT_TRUE(d.Rewind().ok());
  // File 0: three records; file 1: two records.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(d.WriteRecord(Record(65536, i)).ok());
  ASSERT_TRUE(d.WriteFileMarks(1).ok());
  for (int i = 3; i < 5; ++i) ASSERT_TRUE(d.WriteRecord(Record(32768, i)).ok());
  ASSERT_TRUE(d.WriteFileMarks(1).ok());
  auto end = d.Tell();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(end->logical_block, 7);
  EXPECT_EQ(end->file_number, 2);

  ASSERT_TRUE(d.Rewind().ok());
  EXPECT_TRUE(d.GetStatus()->bot);
  std::vector<std::byte> buf(1 << 20);
  auto n = d.ReadRecord(buf);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::vector<std::byte>(buf.begin(), buf.begin() + static_cast<long>(*n)),
            Record(65536, 0));

  ASSERT_TRUE(d.Space(SpaceOp::kFileMarksForward, 1).ok());
  EXPECT_EQ(d.Tell()->logical_block, 4);
  ASSERT_TRUE(d.Locate(5).ok());
  n = d.ReadRecord(buf);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(std::vector<std::byte>(buf.begin(), buf.begin() + static_cast<long>(*n)),
            Record(32768, 4));
  n = d.ReadRecord(buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);                                              // the second file mark
  EXPECT_EQ(d.ReadRecord(buf).status().code(), Code::kNotFound);  // end of data

  ASSERT_TRUE(d.Space(SpaceOp::kEndOfData, 0).ok());
  EXPECT_EQ(d.Tell()->logical_block, 7);
  ASSERT_TRUE(d.Rewind().ok());
}

}  // namespace
}  // namespace hsmfs::tape
