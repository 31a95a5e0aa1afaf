#include "catalog/tape_catalog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace hsmfs::catalog {
namespace {

namespace stdfs = std::filesystem;

class TapeCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_tapecat_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    catalog_.reset();
    stdfs::remove_all(dir_);
  }
  void Reopen() {
    catalog_.reset();
    auto c = Catalog::Open(dir_ / "catalog.db");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
  }
  Session S() { return std::move(catalog_->Acquire()).value(); }

  int64_t ImportDir(const std::string& path, int files) {
    auto s = S();
    Target t;
    t.path = path;
    std::vector<TargetFile> fs;
    for (int i = 0; i < files; ++i) {
      TargetFile f;
      f.rel_path = "f" + std::to_string(i) + ".dat";
      f.size = 1000 + i;
      f.md5 = std::string(32, 'a' + static_cast<char>(i % 6));
      fs.push_back(f);
    }
    auto id = TapeCatalog::Import(s, t, fs, 10);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.value_or(0);
  }

  stdfs::path dir_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(TapeCatalogTest, OpenActivateAndCloseTapes) {
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "A00001", "SN1", 1 << 30, 2, 1).ok());
  EXPECT_EQ(TapeCatalog::OpenTape(s, "A00001", "", 0, 2, 2).code(), Code::kAlreadyExists);
  EXPECT_EQ(TapeCatalog::OpenTape(s, "", "", 0, 2, 2).code(), Code::kInvalidArgument);
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "A00002", "", 0, 2, 3).ok());
  EXPECT_FALSE(TapeCatalog::ActiveTape(s)->has_value());
  ASSERT_TRUE(TapeCatalog::ActivateTape(s, "A00001", 4).ok());
  ASSERT_TRUE(TapeCatalog::ActivateTape(s, "A00002", 5).ok());
  auto active = TapeCatalog::ActiveTape(s);
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->name, "A00002");  // only one tape is active
  EXPECT_FALSE(TapeCatalog::GetTape(s, "A00001")->active);
  EXPECT_EQ(TapeCatalog::GetTape(s, "A00001")->serial, "SN1");
  EXPECT_EQ(TapeCatalog::GetTape(s, "A00001")->next_file, 1);
  EXPECT_EQ(TapeCatalog::GetTape(s, "A00001")->next_block, 2);
  ASSERT_TRUE(TapeCatalog::CloseTape(s, "A00002", 6).ok());
  EXPECT_TRUE(TapeCatalog::GetTape(s, "A00002")->closed);
  EXPECT_FALSE(TapeCatalog::ActiveTape(s)->has_value());
  EXPECT_EQ(TapeCatalog::ActivateTape(s, "A00002", 7).code(), Code::kFailedPrecondition);
  EXPECT_EQ(TapeCatalog::ActivateTape(s, "nope", 7).code(), Code::kNotFound);
  EXPECT_EQ(TapeCatalog::Tapes(s)->size(), 2u);
}

TEST_F(TapeCatalogTest, ImportIsOncePerPathAndKeepsEveryFile) {
  const int64_t id = ImportDir("/data/season4/a", 3);
  auto s = S();
  Target again;
  again.path = "/data/season4/a";
  EXPECT_EQ(TapeCatalog::Import(s, again, {}, 11).status().code(), Code::kAlreadyExists);
  again.host = "user@host";  // the same path on another host is another target
  EXPECT_TRUE(TapeCatalog::Import(s, again, {}, 11).ok());
  auto t = TapeCatalog::GetTarget(s, id);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, TargetState::kImported);
  EXPECT_EQ(t->files, 3);
  EXPECT_EQ(t->bytes, 1000u + 1001u + 1002u);
  auto files = TapeCatalog::Files(s, id);
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[2].rel_path, "f2.dat");
  EXPECT_EQ((*files)[2].data_offset, -1);
}

TEST_F(TapeCatalogTest, TheWholeCycleMovesTheTapeOnlyWhenAWriteCompletes) {
  const int64_t a = ImportDir("/d/a", 2);
  const int64_t b = ImportDir("/d/b", 1);
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T1", "", 0, 2, 1).ok());
  EXPECT_EQ(*TapeCatalog::Assign(s, "T1"), 2);
  EXPECT_EQ(TapeCatalog::Targets(s, "T1", TargetState::kAssigned)->size(), 2u);

  // A write interrupted (crash): begun twice at the same place, the tape unmoved.
  ASSERT_TRUE(TapeCatalog::BeginWrite(s, a, 1, 1, 262144).ok());
  EXPECT_EQ(TapeCatalog::GetTape(s, "T1")->next_file, 1);
  ASSERT_TRUE(TapeCatalog::BeginWrite(s, a, 1, 1, 262144).ok());
  EXPECT_FALSE(TapeCatalog::FinishWrite(s, a, {512}, 1, 3, 10, 2).ok());  // offsets missing
  ASSERT_TRUE(TapeCatalog::FinishWrite(s, a, {512, 4096}, 10240, 3, 10, 2).ok());
  auto ta = TapeCatalog::GetTarget(s, a);
  EXPECT_EQ(ta->state, TargetState::kArchived);
  EXPECT_EQ(ta->file_number, 1);
  EXPECT_EQ(ta->start_block, 1);
  EXPECT_EQ((*TapeCatalog::Files(s, a))[1].data_offset, 4096);
  auto tape = TapeCatalog::GetTape(s, "T1");
  EXPECT_EQ(tape->next_file, 3);
  EXPECT_EQ(tape->next_block, 10);
  EXPECT_EQ(tape->bytes_used, 10240u);

  // The tape fills during b: b stays assigned, the tape is marked full.
  ASSERT_TRUE(TapeCatalog::BeginWrite(s, b, 3, 10, 262144).ok());
  ASSERT_TRUE(TapeCatalog::AbandonWrite(s, b, true, "end of tape").ok());
  EXPECT_EQ(TapeCatalog::GetTarget(s, b)->state, TargetState::kAssigned);
  EXPECT_TRUE(TapeCatalog::GetTape(s, "T1")->full);
  EXPECT_EQ(TapeCatalog::GetTape(s, "T1")->next_file, 3);
  // Closing the tape frees b for the next one.
  EXPECT_EQ(*TapeCatalog::CloseTape(s, "T1", 3), 1);
  EXPECT_EQ(TapeCatalog::GetTarget(s, b)->state, TargetState::kImported);
  EXPECT_EQ(TapeCatalog::GetTarget(s, b)->tape, "");
  EXPECT_EQ(TapeCatalog::GetTarget(s, a)->tape, "T1");  // archived units stay
  EXPECT_EQ(TapeCatalog::Assign(s, "T1").status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T2", "", 0, 2, 4).ok());
  EXPECT_EQ(*TapeCatalog::Assign(s, "T2"), 1);

  // Confirm: damaged files are marked and the unit stays archived until clean.
  EXPECT_EQ(TapeCatalog::RecordConfirm(s, b, {}, 5).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(TapeCatalog::RecordConfirm(s, a, {"f1.dat"}, 5).ok());
  EXPECT_EQ(TapeCatalog::GetTarget(s, a)->state, TargetState::kArchived);
  EXPECT_TRUE((*TapeCatalog::Files(s, a))[1].bad);
  EXPECT_NE(TapeCatalog::GetTarget(s, a)->error.find("f1.dat"), std::string::npos);
  ASSERT_TRUE(TapeCatalog::RecordConfirm(s, a, {}, 6).ok());
  EXPECT_EQ(TapeCatalog::GetTarget(s, a)->state, TargetState::kConfirmed);
  EXPECT_FALSE((*TapeCatalog::Files(s, a))[1].bad);
  EXPECT_EQ(TapeCatalog::GetTarget(s, a)->error, "");
}

TEST_F(TapeCatalogTest, WhereIsFindsFilesByAnyPartOfTheirPath) {
  ImportDir("/d/run_1%", 2);
  ImportDir("/d/other", 1);
  auto s = S();
  auto hits = TapeCatalog::WhereIs(s, "run_1%/f1", 10);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].target.path, "/d/run_1%");
  EXPECT_EQ((*hits)[0].file.rel_path, "f1.dat");
  EXPECT_EQ(TapeCatalog::WhereIs(s, "f0.dat", 10)->size(), 2u);
  EXPECT_EQ(TapeCatalog::WhereIs(s, "f0.dat", 1)->size(), 1u);
  EXPECT_TRUE(TapeCatalog::WhereIs(s, "x_", 10)->empty());  // _ is not a wildcard
}

TEST_F(TapeCatalogTest, RestoredUnitsAreArchivedWhereTheManifestSays) {
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T9", "", 0, 2, 1).ok());
  Target t;
  t.path = "/d/x";
  t.tape = "T9";
  t.file_number = 1;
  t.start_block = 2;
  t.block_size = 65536;
  t.tar_bytes = 70000;
  TargetFile f;
  f.rel_path = "a";
  f.size = 5;
  f.md5 = "abc";
  f.data_offset = 1536;
  auto id = TapeCatalog::RestoreUnit(s, t, {f}, 3, 7, 1);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto got = TapeCatalog::GetTarget(s, *id);
  EXPECT_EQ(got->state, TargetState::kArchived);
  EXPECT_EQ(got->tape, "T9");
  EXPECT_EQ(got->start_block, 2);
  EXPECT_EQ((*TapeCatalog::Files(s, *id))[0].data_offset, 1536);
  EXPECT_EQ(TapeCatalog::GetTape(s, "T9")->next_file, 3);
  EXPECT_EQ(TapeCatalog::GetTape(s, "T9")->next_block, 7);
  EXPECT_EQ(TapeCatalog::RestoreUnit(s, t, {f}, 3, 7, 1).status().code(), Code::kAlreadyExists);
}

Target Batch(const std::string& tape, int64_t file, int64_t block) {
  Target t;
  t.kind = "batch";
  t.host = "batch:" + tape + ":" + std::to_string(file);
  t.path = "/incoming";
  t.tape = tape;
  t.file_number = file;
  t.start_block = block;
  t.block_size = 65536;
  return t;
}

std::vector<TargetFile> BatchFiles() {
  TargetFile a, b;
  a.rel_path = "a";
  a.size = 1;
  b.rel_path = "sub/b";
  b.size = 2;
  return {a, b};
}

TEST_F(TapeCatalogTest, BatchesAreWrittenOrDroppedNeverAssigned) {
  const int64_t imported = ImportDir("/data/x", 1);
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T1", "", 0, 2, 1).ok());
  auto id = TapeCatalog::BeginBatch(s, Batch("T1", 1, 2), BatchFiles(), 5);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto t = TapeCatalog::GetTarget(s, *id);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, TargetState::kWriting);
  EXPECT_EQ(t->kind, "batch");
  EXPECT_EQ(t->tape, "T1");
  EXPECT_EQ(t->file_number, 1);
  EXPECT_EQ(t->start_block, 2);
  // A batch is not an import: assign leaves it, and hsmtape never sees it
  // assigned.
  auto n = TapeCatalog::Assign(s, "T1");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(TapeCatalog::GetTarget(s, *id)->state, TargetState::kWriting);
  // FinishWrite records the md5 that was written.
  ASSERT_TRUE(TapeCatalog::FinishWrite(s, *id, {512, 2048}, 4096, 3, 10, 6,
                                       {std::string(32, '1'), std::string(32, '2')})
                  .ok());
  auto files = TapeCatalog::Files(s, *id);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].md5, std::string(32, '2'));
  EXPECT_EQ((*files)[1].data_offset, 2048);
  EXPECT_GT((*files)[0].id, 0);
  EXPECT_EQ(TapeCatalog::GetTape(s, "T1")->next_file, 3);
  // A finished batch cannot be dropped.
  EXPECT_EQ(TapeCatalog::DropBatch(s, *id).code(), Code::kFailedPrecondition);
  // An import cannot be dropped as a batch.
  ASSERT_TRUE(TapeCatalog::BeginWrite(s, imported, 3, 10, 65536).ok());
  EXPECT_EQ(TapeCatalog::DropBatch(s, imported).code(), Code::kFailedPrecondition);
  EXPECT_EQ(TapeCatalog::BeginBatch(s, Target{}, BatchFiles(), 7).status().code(),
            Code::kInvalidArgument);
}

TEST_F(TapeCatalogTest, UnfinishedBatchesAreDroppedAndCloseTapeDropsThem) {
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T1", "", 0, 2, 1).ok());
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T2", "", 0, 2, 1).ok());
  auto a = TapeCatalog::BeginBatch(s, Batch("T1", 1, 2), BatchFiles(), 5);
  auto b = TapeCatalog::BeginBatch(s, Batch("T2", 1, 2), BatchFiles(), 5);
  ASSERT_TRUE(a.ok() && b.ok());
  auto dropped = TapeCatalog::DropUnfinishedBatches(s, "T1");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 1);
  EXPECT_EQ(TapeCatalog::GetTarget(s, *a).status().code(), Code::kNotFound);
  EXPECT_TRUE(TapeCatalog::Files(s, *a)->empty());
  EXPECT_TRUE(TapeCatalog::GetTarget(s, *b).ok());
  // The same place can be recorded again.
  EXPECT_TRUE(TapeCatalog::BeginBatch(s, Batch("T1", 1, 2), BatchFiles(), 6).ok());
  // Closing a tape drops its unfinished batches rather than unassigning them.
  ASSERT_TRUE(TapeCatalog::CloseTape(s, "T2", 7).ok());
  EXPECT_EQ(TapeCatalog::GetTarget(s, *b).status().code(), Code::kNotFound);
  ASSERT_TRUE(TapeCatalog::MarkFull(s, "T1").ok());
  EXPECT_TRUE(TapeCatalog::GetTape(s, "T1")->full);
  EXPECT_EQ(TapeCatalog::MarkFull(s, "nope").code(), Code::kFailedPrecondition);
}

TEST_F(TapeCatalogTest, TreeChangesAndDirectories) {
  auto s = S();
  ASSERT_TRUE(TapeCatalog::OpenTape(s, "T1", "", 0, 2, 1).ok());
  auto id = TapeCatalog::BeginBatch(s, Batch("T1", 1, 2), BatchFiles(), 5);
  ASSERT_TRUE(id.ok());
  auto files = TapeCatalog::Files(s, *id);
  ASSERT_TRUE(files.ok());
  ASSERT_TRUE(TapeCatalog::SetTreePath(s, (*files)[0].id, "incoming/renamed").ok());
  ASSERT_TRUE(TapeCatalog::HideFile(s, (*files)[1].id, 9).ok());
  EXPECT_EQ(TapeCatalog::SetTreePath(s, 99999, "x").code(), Code::kFailedPrecondition);
  files = TapeCatalog::Files(s, *id);
  EXPECT_EQ((*files)[0].tree_path, "incoming/renamed");
  EXPECT_FALSE((*files)[0].removed);
  EXPECT_TRUE((*files)[1].removed);
  // where_is still finds them by their name on tape.
  auto hits = TapeCatalog::WhereIs(s, "sub/b", 10);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_TRUE((*hits)[0].file.removed);

  ASSERT_TRUE(TapeCatalog::AddDir(s, {"in/a", 0750, 1}).ok());
  ASSERT_TRUE(TapeCatalog::AddDir(s, {"in/a/b", 0755, 2}).ok());
  ASSERT_TRUE(TapeCatalog::AddDir(s, {"in/a%", 0755, 3}).ok());
  EXPECT_EQ(TapeCatalog::AddDir(s, {"in/a", 0700, 4}).code(), Code::kAlreadyExists);
  ASSERT_TRUE(TapeCatalog::RenameDirs(s, "in/a", "in/z").ok());
  auto dirs = TapeCatalog::Dirs(s);
  ASSERT_TRUE(dirs.ok());
  std::vector<std::string> paths;
  for (const auto& d : *dirs) paths.push_back(d.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"in/a%", "in/z", "in/z/b"}));
  EXPECT_EQ((*dirs)[1].mode, 0750u);
  ASSERT_TRUE(TapeCatalog::RemoveDir(s, "in/z/b").ok());
  EXPECT_EQ(TapeCatalog::RemoveDir(s, "in/z/b").code(), Code::kNotFound);
}

TEST_F(TapeCatalogTest, StateSurvivesReopening) {
  const int64_t a = ImportDir("/d/a", 1);
  {
    auto s = S();
    ASSERT_TRUE(TapeCatalog::OpenTape(s, "T1", "", 0, 2, 1).ok());
    ASSERT_TRUE(TapeCatalog::ActivateTape(s, "T1", 1).ok());
    ASSERT_EQ(*TapeCatalog::Assign(s, "T1"), 1);
    ASSERT_TRUE(TapeCatalog::BeginWrite(s, a, 1, 1, 65536).ok());
  }
  Reopen();
  auto s = S();
  EXPECT_EQ(TapeCatalog::GetTarget(s, a)->state, TargetState::kWriting);
  EXPECT_EQ((*TapeCatalog::ActiveTape(s))->name, "T1");
}

}  // namespace
}  // namespace hsmfs::catalog
