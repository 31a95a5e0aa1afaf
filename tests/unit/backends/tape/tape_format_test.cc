#include "backends/tape/tape_format.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>

#include "common/checksum.h"

namespace hsmfs::tape {
namespace {

// A tape in memory: a list of records and file marks, with a capacity, a way
// to make one record unreadable, and a count of the bytes read (to prove that
// a member is read without the rest of its unit).
class MemoryTape final : public TapeDrive {
 public:
  explicit MemoryTape(uint64_t capacity = UINT64_MAX) : capacity_(capacity) {}

  Status WriteRecord(std::span<const std::byte> data) override {
    Truncate();
    if (used_ + data.size() > capacity_) return ResourceExhaustedError("end of tape");
    used_ += data.size();
    blocks_.push_back(Block{false, {data.begin(), data.end()}});
    ++pos_;
    return Status::Ok();
  }
  Result<size_t> ReadRecord(std::span<std::byte> buf) override {
    if (pos_ >= blocks_.size()) return NotFoundError("end of data");
    const Block& b = blocks_[pos_++];
    if (b.mark) return size_t{0};
    if (bad_.count(pos_ - 1)) return DataLossError("unreadable record");
    if (b.data.size() > buf.size()) return InvalidArgumentError("record too long");
    std::memcpy(buf.data(), b.data.data(), b.data.size());
    bytes_read_ += b.data.size();
    return b.data.size();
  }
  Status WriteFileMarks(int count) override {
    Truncate();
    for (int i = 0; i < count; ++i) blocks_.push_back(Block{true, {}});
    pos_ += static_cast<size_t>(count);
    return Status::Ok();
  }
  Status Space(SpaceOp op, int count) override {
    if (op != SpaceOp::kFileMarksForward) return UnimplementedError("not needed here");
    for (int i = 0; i < count; ++i) {
      for (;;) {
        if (pos_ >= blocks_.size()) return NotFoundError("end of data");
        if (blocks_[pos_++].mark) break;
      }
    }
    return Status::Ok();
  }
  Status Locate(int64_t block) override {
    if (block < 0 || static_cast<size_t>(block) > blocks_.size()) {
      return NotFoundError("beyond end of data");
    }
    pos_ = static_cast<size_t>(block);
    return Status::Ok();
  }
  Result<TapePosition> Tell() override {
    TapePosition p;
    p.logical_block = static_cast<int64_t>(pos_);
    for (size_t i = 0; i < pos_; ++i) {
      if (blocks_[i].mark) {
        ++p.file_number;
        p.block_number = 0;
      } else {
        ++p.block_number;
      }
    }
    return p;
  }
  Status Rewind() override {
    pos_ = 0;
    return Status::Ok();
  }
  Result<DriveStatus> GetStatus() override {
    DriveStatus s;
    s.online = true;
    return s;
  }

  void MakeUnreadable(int64_t block) { bad_.insert({static_cast<size_t>(block), true}); }
  uint64_t bytes_read() const { return bytes_read_; }
  size_t blocks() const { return blocks_.size(); }

 private:
  struct Block {
    bool mark;
    std::vector<std::byte> data;
  };
  void Truncate() {
    for (size_t i = pos_; i < blocks_.size(); ++i) used_ -= blocks_[i].data.size();
    blocks_.resize(pos_);
  }
  std::vector<Block> blocks_;
  std::map<size_t, bool> bad_;
  size_t pos_ = 0;
  uint64_t capacity_;
  uint64_t used_ = 0;
  uint64_t bytes_read_ = 0;
};

std::string Md5Hex(const std::string& data) {
  auto h = Hasher::Create(ChecksumAlgo::kMd5);
  h->Update(data.data(), data.size());
  return h->Finish().substr(4);
}

class TapeFormatTest : public ::testing::Test {
 protected:
  // A unit of `sizes.size()` files of random bytes.
  void MakeUnit(int64_t id, const std::vector<size_t>& sizes) {
    std::mt19937 rng(static_cast<unsigned>(id));
    target_ = Target{};
    target_.id = id;
    target_.path = "/data/run" + std::to_string(id);
    target_.tape = "A00001";
    target_.block_size = 4096;
    files_.clear();
    data_.clear();
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::string d(sizes[i], '\0');
      for (auto& c : d) c = static_cast<char>(rng());
      TargetFile f;
      f.rel_path = "sub/file" + std::to_string(i) + ".bin";
      f.size = d.size();
      f.mtime_ns = 1'600'000'000'123'000'000;
      f.mode = 0640;
      f.md5 = Md5Hex(d);
      files_.push_back(f);
      data_.push_back(std::move(d));
    }
  }
  Result<WrittenUnit> Write(int64_t file_number, int64_t start_block) {
    target_.file_number = file_number;
    target_.start_block = start_block;
    auto open = [this](size_t i) -> Result<ChunkReader> {
      auto pos = std::make_shared<size_t>(0);
      const std::string* d = &data_[i];
      return ChunkReader([d, pos](std::span<std::byte> buf) -> Result<size_t> {
        const size_t n = std::min(buf.size(), d->size() - *pos);
        std::memcpy(buf.data(), d->data() + *pos, n);
        *pos += n;
        return n;
      });
    };
    auto w = WriteUnit(tape_, target_, files_, open, CancelToken::None(), nullptr);
    if (w.ok()) {
      target_.tar_bytes = w->tar_bytes;
      for (size_t i = 0; i < files_.size(); ++i) files_[i].data_offset = w->offsets[i];
    }
    return w;
  }
  Result<std::string> Read(size_t i) {
    std::string out;
    Status s = ReadMember(
        tape_, target_, files_[i],
        [&](std::span<const std::byte> part) {
          out.append(reinterpret_cast<const char*>(part.data()), part.size());
          return Status::Ok();
        },
        CancelToken::None());
    if (!s.ok()) return s;
    return out;
  }

  MemoryTape tape_;
  Target target_;
  std::vector<TargetFile> files_;
  std::vector<std::string> data_;
};

TEST_F(TapeFormatTest, LabelRoundTrip) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "SN 42", 4096}).ok());
  auto l = ReadLabel(tape_);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->name, "A00001");
  EXPECT_EQ(l->serial, "SN 42");
  EXPECT_EQ(l->block_size, 4096u);
  MemoryTape blank;
  EXPECT_EQ(ReadLabel(blank).status().code(), Code::kNotFound);
  MemoryTape other;
  ASSERT_TRUE(other.WriteRecord(std::as_bytes(std::span("not a label", 11))).ok());
  EXPECT_EQ(ReadLabel(other).status().code(), Code::kFailedPrecondition);
  // A damaged block_size is an incomplete label, not an uncaught std::stoul throw.
  for (const std::string bad : {"99999999999999999999999", "x", "-1", "4096x"}) {
    MemoryTape damaged;
    const std::string text = "HSMFS-TAPE 1\nname=A00001\nblock_size=" + bad + "\n";
    ASSERT_TRUE(damaged.WriteRecord(std::as_bytes(std::span(text.data(), text.size()))).ok());
    EXPECT_EQ(ReadLabel(damaged).status().code(), Code::kFailedPrecondition) << bad;
  }
}

TEST_F(TapeFormatTest, AMemberIsReadFromItsOwnBlocksOnly) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {100, 50'000, 0, 7, 200'000, 4096});
  auto w = Write(1, 2);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->next_file, 3);  // tar stream, then the manifest
  EXPECT_EQ(static_cast<size_t>(w->next_block), tape_.blocks());
  EXPECT_EQ(w->md5[4], files_[4].md5);
  for (size_t i = 0; i < files_.size(); ++i) {
    const uint64_t before = tape_.bytes_read();
    auto got = Read(i);
    ASSERT_TRUE(got.ok()) << files_[i].rel_path << ": " << got.status().ToString();
    EXPECT_EQ(*got, data_[i]) << files_[i].rel_path;
    // At most the records the member touches (plus one for a partial start).
    EXPECT_LE(tape_.bytes_read() - before, files_[i].size + 2 * 4096) << files_[i].rel_path;
  }
  // The tar stream is a real tar: libarchive's offsets put each member's data
  // right after a 512-byte aligned header.
  for (const auto& f : files_) EXPECT_EQ(f.data_offset % 512, 0) << f.rel_path;
}

TEST_F(TapeFormatTest, TheUnitIsAPlainTarThatAnyTarReads) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {3000, 0, 9000});
  ASSERT_TRUE(Write(1, 2).ok());
  ASSERT_TRUE(tape_.Locate(2).ok());
  std::string tar;
  std::vector<std::byte> buf(4096);
  for (;;) {
    auto n = tape_.ReadRecord(buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    tar.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  EXPECT_EQ(tar.size(), target_.tar_bytes);
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* e;
  size_t i = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    ASSERT_LT(i, files_.size());
    EXPECT_EQ(archive_entry_pathname(e), files_[i].rel_path);
    EXPECT_EQ(archive_entry_mtime(e), 1'600'000'000);
    EXPECT_EQ(archive_entry_perm(e), 0640u);
    std::string content(files_[i].size, '\0');
    EXPECT_EQ(archive_read_data(a, content.data(), content.size()),
              static_cast<la_ssize_t>(content.size()));
    EXPECT_EQ(content, data_[i]);
    ++i;
  }
  EXPECT_EQ(i, files_.size());
  archive_read_free(a);
}

TEST_F(TapeFormatTest, ConfirmFindsExactlyTheDamagedFiles) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {10'000, 10'000, 10'000, 10'000});
  ASSERT_TRUE(Write(1, 2).ok());
  auto clean = ConfirmUnit(tape_, target_, files_, CancelToken::None(), nullptr);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->empty());
  // The record holding the middle of file2's data becomes unreadable.
  const int64_t block = target_.start_block + (files_[2].data_offset + 5000) / 4096;
  tape_.MakeUnreadable(block);
  auto damaged = ConfirmUnit(tape_, target_, files_, CancelToken::None(), nullptr);
  ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
  EXPECT_EQ(*damaged, std::vector<std::string>{"sub/file2.bin"});
  EXPECT_EQ(Read(2).status().code(), Code::kDataLoss);
  // A catalog md5 that differs (data changed on tape) is found too.
  files_[1].md5 = std::string(32, '0');
  damaged = ConfirmUnit(tape_, target_, files_, CancelToken::None(), nullptr);
  EXPECT_EQ(*damaged, (std::vector<std::string>{"sub/file1.bin", "sub/file2.bin"}));
}

TEST_F(TapeFormatTest, AFileChangedSinceImportFailsTheUnit) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {1000, 1000});
  files_[1].md5 = std::string(32, 'f');
  EXPECT_EQ(Write(1, 2).status().code(), Code::kDataLoss);
  MakeUnit(1, {1000, 1000});
  files_[0].size = 999;
  EXPECT_EQ(Write(1, 2).status().code(), Code::kDataLoss);
}

TEST_F(TapeFormatTest, EndOfTapeFailsTheUnitAndTheNextWriteStartsAtTheSamePlace) {
  tape_ = MemoryTape(100'000);
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {30'000});
  auto first = Write(1, 2);
  ASSERT_TRUE(first.ok());
  MakeUnit(2, {80'000});
  EXPECT_EQ(Write(first->next_file, first->next_block).status().code(), Code::kResourceExhausted);
  // A smaller unit then fits at the same start, overwriting the partial one.
  MakeUnit(3, {20'000});
  auto third = Write(first->next_file, first->next_block);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  auto manifests = ReadManifests(tape_);
  ASSERT_TRUE(manifests.ok()) << manifests.status().ToString();
  ASSERT_EQ(manifests->size(), 2u);
  EXPECT_EQ((*manifests)[0].target.id, 1);
  EXPECT_EQ((*manifests)[1].target.id, 3);
  EXPECT_EQ((*manifests)[1].target.file_number, first->next_file);
  EXPECT_EQ((*manifests)[1].files[0].md5, files_[0].md5);
  EXPECT_EQ((*manifests)[1].files[0].data_offset, files_[0].data_offset);
  EXPECT_EQ((*manifests)[1].files[0].mtime_ns, files_[0].mtime_ns);
}

TEST_F(TapeFormatTest, ManifestsStopAtAUnitCutShortByACrash) {
  ASSERT_TRUE(WriteLabel(tape_, {"A00001", "", 4096}).ok());
  MakeUnit(1, {5000});
  auto first = Write(1, 2);
  ASSERT_TRUE(first.ok());
  // A second unit whose tar stream was being written when the process died.
  ASSERT_TRUE(tape_.WriteRecord(std::as_bytes(std::span("partial tar", 11))).ok());
  auto manifests = ReadManifests(tape_);
  ASSERT_TRUE(manifests.ok()) << manifests.status().ToString();
  EXPECT_EQ(manifests->size(), 1u);
}

}  // namespace
}  // namespace hsmfs::tape
