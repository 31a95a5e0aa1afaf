#include "engine/file_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "catalog/job_queue.h"
#include "catalog/sqlite/raw_access.h"

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;
using catalog::Entry;
using catalog::FileState;

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_cache_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    catalog_ = std::move(catalog::Catalog::Open(dir_ / "catalog.db")).value();
    {
      auto s = catalog_->Acquire();
      vault_ = *s->EnsureBackendRoot("vault", 1);
    }
    MakeCache(1000);
  }
  void TearDown() override {
    cache_.reset();
    catalog_.reset();
    stdfs::remove_all(dir_);
  }
  void MakeCache(uint64_t size) {
    FileCache::Options o;
    o.dir = dir_ / "cache";
    o.size = size;
    o.high_watermark = 0.9;
    o.low_watermark = 0.8;
    cache_ = std::make_unique<FileCache>(o, *catalog_, clock_, nullptr);
    ASSERT_TRUE(cache_->Recover().ok());
  }

  Entry AddFile(const std::string& name, uint64_t size) {
    auto s = catalog_->Acquire();
    Entry e;
    e.name = name;
    e.size = size;
    EXPECT_TRUE(s->UpsertListed(vault_, e, 5, nullptr).ok());
    return *s->Lookup(vault_.id, name);
  }
  Entry Get(catalog::EntryId id) {
    auto s = catalog_->Acquire();
    return *s->Get(id);
  }
  // Recalls `e` into the cache as the stager would, with `last_access`.
  void Cache(const Entry& e, int64_t last_access) {
    auto fill = cache_->BeginFill(e.id, e.size);
    ASSERT_TRUE(fill.ok()) << fill.status().ToString();
    std::ofstream((*fill)->tmp_path()) << std::string(e.size, 'x');
    ASSERT_TRUE((*fill)->Commit().ok());
    auto s = catalog_->Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET cached = 1, state = 'dual', last_access_ns = " +
                          std::to_string(last_access) + " WHERE id = " + std::to_string(e.id))
                    .ok());
  }

  FakeClock clock_;
  stdfs::path dir_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<FileCache> cache_;
  Entry vault_;
};

TEST_F(FileCacheTest, CommittedFillBecomesTheCopy) {
  const Entry f = AddFile("f", 10);
  auto fill = cache_->BeginFill(f.id, 10);
  ASSERT_TRUE(fill.ok());
  const auto tmp = (*fill)->tmp_path();
  EXPECT_EQ(tmp.parent_path(), dir_ / "cache" / "tmp");
  std::ofstream(tmp) << "0123456789";
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(f.id)));  // nothing served before Commit
  EXPECT_EQ(*cache_->Usage(), 10u);                   // reserved while filling
  ASSERT_TRUE((*fill)->Commit().ok());
  fill->reset();
  EXPECT_TRUE(stdfs::exists(cache_->PathOf(f.id)));
  EXPECT_FALSE(stdfs::exists(tmp));
  EXPECT_EQ(*cache_->Usage(), 0u);  // not counted until the catalog says cached
}

TEST_F(FileCacheTest, AbandonedFillLeavesNothing) {
  const Entry f = AddFile("f", 10);
  stdfs::path tmp;
  {
    auto fill = cache_->BeginFill(f.id, 10);
    tmp = (*fill)->tmp_path();
    std::ofstream(tmp) << "partial";
  }
  EXPECT_FALSE(stdfs::exists(tmp));
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(f.id)));
  EXPECT_EQ(*cache_->Usage(), 0u);
}

TEST_F(FileCacheTest, RecoverCleansUpAfterACrash) {
  const Entry kept = AddFile("kept", 4);
  const Entry orphan = AddFile("orphan", 4);
  const Entry lost = AddFile("lost", 4);
  Cache(kept, 1);
  Cache(lost, 1);
  // A crash between the rename and the catalog commit leaves an unreferenced copy.
  stdfs::create_directories(cache_->PathOf(orphan.id).parent_path());
  std::ofstream(cache_->PathOf(orphan.id)) << "xxxx";
  // A crash mid-fill leaves a temporary file.
  std::ofstream(dir_ / "cache" / "tmp" / "99.1") << "half";
  // And a copy the catalog counts went missing.
  stdfs::remove(cache_->PathOf(lost.id));
  MakeCache(1000);
  EXPECT_TRUE(stdfs::exists(cache_->PathOf(kept.id)));
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(orphan.id)));
  EXPECT_TRUE(stdfs::is_empty(dir_ / "cache" / "tmp"));
  EXPECT_FALSE(Get(lost.id).cached);
  EXPECT_EQ(Get(lost.id).state, FileState::kOffline);
  EXPECT_TRUE(Get(kept.id).cached);
}

// Issue 15: an entry listed away while its backend root was wrong (or any
// other file nothing owns) may hold the last copy of its data: Recover keeps
// it in lost+found instead of deleting it.
TEST_F(FileCacheTest, RecoverMovesUnownedFilesToLostFound) {
  const Entry gone = AddFile("gone", 4);
  const Entry unarchived = AddFile("unarchived", 4);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s->Remove(gone.id).ok());
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET state = 'failed', on_backend = 0 WHERE id = " +
                          std::to_string(unarchived.id))
                    .ok());
  }
  for (const Entry* e : {&gone, &unarchived}) {
    stdfs::create_directories(cache_->PathOf(e->id).parent_path());
    std::ofstream(cache_->PathOf(e->id)) << "last";
  }
  std::ofstream(dir_ / "cache" / "data" / "junk") << "what";
  std::ofstream(dir_ / "outside") << "secret";
  stdfs::create_symlink(dir_ / "outside", dir_ / "cache" / "data" / "12345");
  MakeCache(1000);
  const stdfs::path lf = cache_->lost_found_dir();
  for (const std::string& name : {std::to_string(gone.id), std::to_string(unarchived.id),
                                  std::string("junk"), std::string("12345")}) {
    EXPECT_TRUE(stdfs::exists(stdfs::symlink_status(lf / name))) << name;
  }
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(gone.id)));
  std::ifstream in(lf / std::to_string(gone.id));
  std::string data;
  in >> data;
  EXPECT_EQ(data, "last");
  EXPECT_TRUE(stdfs::is_symlink(lf / "12345"));
  EXPECT_TRUE(stdfs::exists(dir_ / "outside"));  // the link moved, its target untouched
  // A second start finds nothing new and keeps what lost+found holds.
  std::ofstream(cache_->PathOf(gone.id)) << "again";
  MakeCache(1000);
  EXPECT_TRUE(stdfs::exists(lf / (std::to_string(gone.id) + ".1")));
  EXPECT_TRUE(stdfs::exists(lf / std::to_string(gone.id)));
}

TEST_F(FileCacheTest, RecoverRemovesOnlyItsOwnScratchFiles) {
  // A cache dir that was someone's directory with a tmp/ of their own (the
  // config refuses the worst cases; this is the last line): recovery removes
  // what hsmfs leaves there and nothing else, and never recurses elsewhere.
  const stdfs::path tmp = dir_ / "cache" / "tmp";
  std::ofstream(tmp / "12.3") << "fill";
  std::ofstream(tmp / "readback-AbC123") << "readback";
  stdfs::create_directories(tmp / "hpss-bundle-XyZ987" / "tree");
  std::ofstream(tmp / "hpss-bundle-XyZ987" / "tree" / "f") << "member";
  std::ofstream(tmp / "notes.txt") << "theirs";
  std::ofstream(tmp / "12") << "theirs";
  stdfs::create_directories(tmp / "project" / "sub");
  std::ofstream(tmp / "project" / "sub" / "data") << "theirs";
  stdfs::create_directories(dir_ / "elsewhere");
  std::ofstream(dir_ / "elsewhere" / "keep") << "theirs";
  stdfs::create_directory_symlink(dir_ / "elsewhere", tmp / "hpss-prefetch-link");
  MakeCache(1000);
  EXPECT_FALSE(stdfs::exists(tmp / "12.3"));
  EXPECT_FALSE(stdfs::exists(tmp / "readback-AbC123"));
  EXPECT_FALSE(stdfs::exists(tmp / "hpss-bundle-XyZ987"));
  EXPECT_TRUE(stdfs::exists(tmp / "notes.txt"));
  EXPECT_TRUE(stdfs::exists(tmp / "12"));
  EXPECT_TRUE(stdfs::exists(tmp / "project" / "sub" / "data"));
  EXPECT_TRUE(stdfs::exists(dir_ / "elsewhere" / "keep"));
}

TEST_F(FileCacheTest, RecoverRefusesADirectoryThatIsNotAnAbsolutePath) {
  // "cache/\0" would be "cache/" to every system call below it.
  for (const stdfs::path& bad :
       {stdfs::path(), stdfs::path("relative/cache"), stdfs::path(std::string("/x\0", 3))}) {
    FileCache::Options o;
    o.dir = bad;
    FileCache cache(o, *catalog_, clock_, nullptr);
    EXPECT_EQ(cache.Recover().code(), Code::kInvalidArgument) << bad;
  }
}

TEST_F(FileCacheTest, EvictsLeastRecentlyUsedDualCopies) {
  const Entry a = AddFile("a", 300), b = AddFile("b", 300), c = AddFile("c", 300);
  Cache(a, 30);
  Cache(b, 10);  // the oldest
  Cache(c, 20);
  EXPECT_EQ(*cache_->Usage(), 900u);
  ASSERT_TRUE(cache_->EvictIfNeeded().ok());  // 900 > high (900)? no: equal
  EXPECT_EQ(*cache_->Usage(), 900u);
  const Entry d = AddFile("d", 300);
  Cache(d, 40);  // needs room: evicts until usage with d is under the low watermark (800)
  EXPECT_FALSE(Get(b.id).cached);
  EXPECT_FALSE(Get(c.id).cached);
  EXPECT_TRUE(Get(a.id).cached);
  EXPECT_TRUE(Get(d.id).cached);
  EXPECT_EQ(Get(b.id).state, FileState::kOffline);
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(b.id)));
  EXPECT_LE(*cache_->Usage(), 1000u);
}

TEST_F(FileCacheTest, NeverEvictsOpenPinnedOrUnarchivedCopies) {
  const Entry open = AddFile("open", 300), pinned = AddFile("pinned", 300),
              fresh = AddFile("fresh", 300);
  Cache(open, 1);
  Cache(pinned, 2);
  Cache(fresh, 3);
  cache_->Opened(open.id);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s->SetPinned(pinned.id, true).ok());
    // Written through the mount, not archived yet.
    ASSERT_TRUE(
        catalog::RawSqlite(*s)
            .Exec("UPDATE entries SET state = 'online' WHERE id = " + std::to_string(fresh.id))
            .ok());
  }
  const Entry big = AddFile("big", 200);
  auto fill = cache_->BeginFill(big.id, 200);
  EXPECT_EQ(fill.status().code(), Code::kResourceExhausted) << fill.status().ToString();
  EXPECT_TRUE(Get(open.id).cached);
  EXPECT_TRUE(Get(pinned.id).cached);
  EXPECT_TRUE(Get(fresh.id).cached);
  cache_->Closed(open.id);
  EXPECT_TRUE(cache_->BeginFill(big.id, 200).ok());
  EXPECT_FALSE(Get(open.id).cached);
}

TEST_F(FileCacheTest, FileLargerThanTheCacheIsAPermanentError) {
  const Entry huge = AddFile("huge", 5000);
  EXPECT_EQ(cache_->BeginFill(huge.id, 5000).status().code(), Code::kFailedPrecondition);
}

TEST_F(FileCacheTest, ReleaseRules) {
  const Entry dual = AddFile("dual", 10), fresh = AddFile("fresh", 10), off = AddFile("off", 10);
  Cache(dual, 1);
  Cache(fresh, 1);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(
        catalog::RawSqlite(*s)
            .Exec("UPDATE entries SET state = 'queued' WHERE id = " + std::to_string(fresh.id))
            .ok());
  }
  cache_->Opened(dual.id);
  EXPECT_EQ(cache_->Release(dual.id).code(), Code::kBusy);
  cache_->Closed(dual.id);
  EXPECT_TRUE(cache_->Release(dual.id).ok());
  EXPECT_FALSE(Get(dual.id).cached);
  EXPECT_EQ(Get(dual.id).state, FileState::kOffline);
  EXPECT_EQ(cache_->Release(fresh.id).code(), Code::kNotPermitted);
  EXPECT_TRUE(stdfs::exists(cache_->PathOf(fresh.id)));
  EXPECT_TRUE(cache_->Release(off.id).ok());  // nothing cached: nothing to do
}

TEST_F(FileCacheTest, TouchesAreWrittenInBatches) {
  const Entry a = AddFile("a", 10);
  Cache(a, 1);
  cache_->Touch(a.id);
  EXPECT_EQ(Get(a.id).last_access_ns, 1);
  ASSERT_TRUE(cache_->FlushTouches().ok());
  EXPECT_EQ(Get(a.id).last_access_ns, clock_.WallNanos());
}

}  // namespace
}  // namespace hsmfs::fs
