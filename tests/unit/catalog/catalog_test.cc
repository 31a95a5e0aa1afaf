#include "catalog/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "catalog/sqlite/migrations.h"
#include "tests/unit/catalog/catalog_implementations.h"

namespace hsmfs::catalog {
namespace {

namespace stdfs = std::filesystem;

// The namespace contract: every test runs against each catalog implementation.
class CatalogTest : public ::testing::TestWithParam<CatalogImplementation> {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_catalog_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    auto c = Catalog::Open(Location());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    vault_ = *s->EnsureBackendRoot("vault", 1);
  }
  stdfs::path Location(std::string_view name = "catalog") const {
    return GetParam().location(dir_, name);
  }
  // Plain SQL on the catalog's database, for states the interface cannot make.
  Status Exec(Session& s, const std::string& sql) { return GetParam().exec(s, sql); }
  void TearDown() override {
    catalog_.reset();
    stdfs::remove_all(dir_);
  }

  static Entry Listed(std::string name, EntryType type, uint64_t size = 0, int64_t mtime = 100) {
    Entry e;
    e.name = std::move(name);
    e.type = type;
    e.size = size;
    e.mtime_ns = mtime;
    return e;
  }

  // Lists `dir` as if the backend reported exactly `objects`.
  void ApplyListing(const Entry& dir, const std::vector<Entry>& objects, int64_t gen,
                    ListingDelta* delta = nullptr, bool confirmed = false) {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s.ok());
    auto tx = s->Begin();
    ASSERT_TRUE(tx.ok());
    for (const Entry& o : objects) ASSERT_TRUE(s->UpsertListed(dir, o, gen, delta).ok());
    ASSERT_TRUE(s->FinishListing(dir, gen, "test", static_cast<int64_t>(objects.size()), gen, delta,
                                 confirmed)
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }

  Entry Get(std::string_view path) {
    auto s = catalog_->Acquire();
    auto e = s->Resolve(path);
    EXPECT_TRUE(e.ok()) << path << ": " << e.status().ToString();
    return e.value_or(Entry());
  }

  stdfs::path dir_;
  std::unique_ptr<Catalog> catalog_;
  Entry vault_;
};

// What only the SQLite implementation promises (its file format and mode).
class SqliteCatalogTest : public CatalogTest {};

// Issue 15: a listing that would remove most of a directory (a file system
// not mounted, a directory swapped for an empty one) removes nothing until
// it is confirmed.
TEST_P(CatalogTest, SuspectListingRemovesNothingUntilConfirmed) {
  std::vector<Entry> all;
  for (int i = 0; i < 12; ++i) all.push_back(Listed("f" + std::to_string(i), EntryType::kFile, 1));
  ApplyListing(vault_, all, 10);
  const std::vector<Entry> few(all.begin(), all.begin() + 5);  // 7 of 12 gone
  ListingDelta delta;
  ApplyListing(vault_, few, 20, &delta);
  EXPECT_EQ(delta.held, 7);
  EXPECT_EQ(delta.known, 12);
  EXPECT_TRUE(delta.removed.empty());
  {
    auto s = catalog_->Acquire();
    std::vector<Entry> children;
    ASSERT_TRUE(s->Children(vault_.id, 0, 100, &children).ok());
    EXPECT_EQ(children.size(), 12u);
    auto sync = s->GetSync(vault_.id);
    ASSERT_TRUE(sync.ok() && sync->has_value());
    EXPECT_EQ((*sync)->gen, 10);  // the suspect listing is not recorded
  }
  // Half or less is an ordinary listing.
  const std::vector<Entry> six(all.begin(), all.begin() + 6);
  ListingDelta half;
  ApplyListing(vault_, six, 30, &half);
  EXPECT_EQ(half.held, 0);
  EXPECT_EQ(half.removed.size(), 6u);
  // Confirmed (hsmctl sync --force), the removals happen.
  const std::vector<Entry> one(all.begin(), all.begin() + 1);
  ListingDelta forced;
  ApplyListing(vault_, one, 40, &forced);
  EXPECT_EQ(forced.held, 0);  // 6 known: below kSuspectMinKnown
  EXPECT_EQ(forced.removed.size(), 5u);
  // And a small directory is never suspect.
  EXPECT_LT(static_cast<int64_t>(six.size()), catalog::kSuspectMinKnown);
}

TEST_P(CatalogTest, ConfirmedSuspectListingRemoves) {
  std::vector<Entry> all;
  for (int i = 0; i < 20; ++i) all.push_back(Listed("f" + std::to_string(i), EntryType::kFile, 1));
  ApplyListing(vault_, all, 10);
  ListingDelta delta;
  ApplyListing(vault_, {}, 20, &delta, /*confirmed=*/true);
  EXPECT_EQ(delta.held, 0);
  EXPECT_EQ(delta.removed.size(), 20u);
}

TEST_P(CatalogTest, OpensWithRootAndBackendTop) {
  auto s = catalog_->Acquire();
  auto root = s->Get(kRootId);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->is_dir());
  EXPECT_EQ(vault_.parent, kRootId);
  EXPECT_EQ(vault_.backend, "vault");
  EXPECT_EQ(vault_.backend_path, "");
  // Idempotent.
  EXPECT_EQ(s->EnsureBackendRoot("vault", 2)->id, vault_.id);
}

TEST_P(SqliteCatalogTest, UsesWalMode) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Location().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_P(CatalogTest, ListingInsertsEntriesWithBackendPaths) {
  ApplyListing(vault_, {Listed("act6", EntryType::kDir), Listed("README", EntryType::kFile, 42)},
               10);
  const Entry act6 = Get("vault/act6");
  ApplyListing(act6, {Listed("tod_001.dat", EntryType::kFile, 1000, 555)}, 11);
  const Entry tod = Get("vault/act6/tod_001.dat");
  EXPECT_EQ(tod.backend, "vault");
  EXPECT_EQ(tod.backend_path, "act6/tod_001.dat");
  EXPECT_EQ(tod.size, 1000u);
  EXPECT_EQ(tod.mtime_ns, 555);
  EXPECT_EQ(tod.state, FileState::kOffline);
  EXPECT_FALSE(tod.cached);
  auto s = catalog_->Acquire();
  auto sync = s->GetSync(act6.id);
  ASSERT_TRUE(sync.ok() && sync->has_value());
  EXPECT_EQ((*sync)->entries, 1);
  EXPECT_EQ((*sync)->listed_by, "test");
  EXPECT_FALSE(s->GetSync(tod.id)->has_value());
}

TEST_P(CatalogTest, RelistingUpdatesAndRemoves) {
  ApplyListing(vault_, {Listed("a", EntryType::kFile, 1), Listed("b", EntryType::kFile, 2)}, 10);
  const EntryId a_id = Get("vault/a").id;
  ListingDelta delta;
  ApplyListing(vault_, {Listed("a", EntryType::kFile, 5, 200), Listed("c", EntryType::kFile, 3)},
               20, &delta);
  const Entry a = Get("vault/a");
  EXPECT_EQ(a.id, a_id);  // same inode across refreshes
  EXPECT_EQ(a.size, 5u);
  auto s = catalog_->Acquire();
  EXPECT_EQ(s->Lookup(vault_.id, "b").status().code(), Code::kNotFound);
  EXPECT_TRUE(s->Lookup(vault_.id, "c").ok());
  EXPECT_EQ(delta.changed, std::vector<EntryId>{a_id});
  ASSERT_EQ(delta.removed.size(), 1u);
  EXPECT_EQ(delta.removed[0].second, "b");
  ASSERT_EQ(delta.added.size(), 1u);
  EXPECT_EQ(delta.added[0].second, "c");
}

TEST_P(CatalogTest, RemovedDirectoryTakesItsSubtree) {
  ApplyListing(vault_, {Listed("d", EntryType::kDir)}, 10);
  const Entry d = Get("vault/d");
  ApplyListing(d, {Listed("f", EntryType::kFile, 1)}, 11);
  const EntryId f = Get("vault/d/f").id;
  ApplyListing(vault_, {}, 12);
  auto s = catalog_->Acquire();
  EXPECT_EQ(s->Get(d.id).status().code(), Code::kNotFound);
  EXPECT_EQ(s->Get(f).status().code(), Code::kNotFound);
}

TEST_P(CatalogTest, UnarchivedDataSurvivesListingsThatDoNotShowIt) {
  ApplyListing(vault_, {Listed("incoming", EntryType::kDir)}, 10);
  const Entry incoming = Get("vault/incoming");
  {
    // A file written through the mount, not yet on the backend.
    auto s = catalog_->Acquire();
    ASSERT_TRUE(Exec(*s,
                     "INSERT INTO entries (parent, name, type, mode, backend, "
                     "backend_path, state, cached) VALUES (" +
                         std::to_string(incoming.id) +
                         ", 'new.h5', 1, 420, 'vault', 'incoming/new.h5', 'queued', 1)")
                    .ok());
  }
  ApplyListing(incoming, {}, 20);
  ApplyListing(vault_, {}, 21);  // even the directory vanished from the backend
  auto s = catalog_->Acquire();
  EXPECT_TRUE(s->Resolve("vault/incoming/new.h5").ok());
}

TEST_P(CatalogTest, CachedCopyOfChangedBackendFileGoesOffline) {
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 100)}, 10);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(Exec(*s, "UPDATE entries SET state = 'dual', cached = 1 WHERE name = 'f'").ok());
  }
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 100)}, 11);
  EXPECT_EQ(Get("vault/f").state, FileState::kDual);  // unchanged: stays dual
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 12, 200)}, 12);
  const Entry f = Get("vault/f");
  EXPECT_EQ(f.state, FileState::kOffline);
  EXPECT_FALSE(f.cached);
  EXPECT_EQ(f.size, 12u);
}

TEST_P(CatalogTest, AWholeSecondListingOfThePreciseMtimeIsNoChange) {
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 100)}, 10);
  {
    // Written through the mount at 1700000000.250 s and archived.
    auto s = catalog_->Acquire();
    ASSERT_TRUE(Exec(*s,
                     "UPDATE entries SET state = 'dual', cached = 1, "
                     "mtime_ns = 1700000000250000000 WHERE name = 'f'")
                    .ok());
  }
  // HPSS lists whole seconds.
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 1'700'000'000'000'000'000)}, 11);
  Entry f = Get("vault/f");
  EXPECT_EQ(f.state, FileState::kDual);
  EXPECT_EQ(f.mtime_ns, 1'700'000'000'250'000'000);  // the precise time stays
  // Another second is a change.
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 1'700'000'001'000'000'000)}, 12);
  f = Get("vault/f");
  EXPECT_EQ(f.state, FileState::kOffline);
  EXPECT_EQ(f.mtime_ns, 1'700'000'001'000'000'000);
}

TEST_P(CatalogTest, AListingOlderThanTheEnginesLastChangeLeavesTheFileAlone) {
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 10, 100)}, 10);
  {
    // Archived (or recalled) at "time" 50, after a listing that began at 20
    // read the backend while the put was half done.
    auto s = catalog_->Acquire();
    ASSERT_TRUE(Exec(*s,
                     "UPDATE entries SET state = 'dual', cached = 1, size = 12, "
                     "mtime_ns = 300, seen_gen = 50 WHERE name = 'f'")
                    .ok());
  }
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 12, 999)}, 20);
  Entry f = Get("vault/f");
  EXPECT_EQ(f.state, FileState::kDual);
  EXPECT_TRUE(f.cached);
  EXPECT_EQ(f.mtime_ns, 300);
  // A listing that began after the change still sees a changed backend copy.
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 12, 999)}, 60);
  f = Get("vault/f");
  EXPECT_EQ(f.state, FileState::kOffline);
  EXPECT_EQ(f.mtime_ns, 999);
}

TEST_P(CatalogTest, ADirectoryTimeSetThroughTheMountOutlivesListings) {
  ApplyListing(vault_, {Listed("d", EntryType::kDir, 0, 100), Listed("e", EntryType::kDir, 0, 100)},
               10);
  const EntryId d = Get("vault/d").id, e_id = Get("vault/e").id;
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s->SetMtime(d, 42).ok());           // touch -d, rsync -a, tar -x
    ASSERT_TRUE(s->DirChanged(e_id, 77).ok());      // a file created inside
    ASSERT_TRUE(s->DirChanged(d + 1000, 77).ok());  // no such entry: no-op
  }
  Entry e = Get("vault/e");
  EXPECT_EQ(e.mtime_ns, 77);
  EXPECT_EQ(e.ctime_ns, 77);
  // The archiver's puts changed both on the backend; the listing says so.
  ApplyListing(vault_,
               {Listed("d", EntryType::kDir, 0, 500), Listed("e", EntryType::kDir, 0, 500),
                Listed("g", EntryType::kDir, 0, 500)},
               11);
  EXPECT_EQ(Get("vault/d").mtime_ns, 42);
  EXPECT_EQ(Get("vault/e").mtime_ns, 77);
  EXPECT_EQ(Get("vault/g").mtime_ns, 500);  // never set through the mount: the backend's
  EXPECT_EQ(Get("vault/g").ctime_ns, 0);
}

TEST_P(CatalogTest, ChildrenPageInIdOrder) {
  std::vector<Entry> objects;
  for (int i = 0; i < 50; ++i) objects.push_back(Listed("f" + std::to_string(i), EntryType::kFile));
  ApplyListing(vault_, objects, 10);
  auto s = catalog_->Acquire();
  std::vector<Entry> all;
  EntryId after = 0;
  for (;;) {
    std::vector<Entry> page;
    ASSERT_TRUE(s->Children(vault_.id, after, 7, &page).ok());
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    after = page.back().id;
    all.insert(all.end(), page.begin(), page.end());
  }
  ASSERT_EQ(all.size(), 50u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id, all[i].id);
}

TEST_P(CatalogTest, IdsAreNeverReused) {
  ApplyListing(vault_, {Listed("a", EntryType::kFile)}, 10);
  const EntryId first = Get("vault/a").id;
  ApplyListing(vault_, {}, 11);
  ApplyListing(vault_, {Listed("a", EntryType::kFile)}, 12);
  EXPECT_GT(Get("vault/a").id, first);
}

TEST_P(CatalogTest, ResolveErrors) {
  ApplyListing(vault_, {Listed("f", EntryType::kFile)}, 10);
  auto s = catalog_->Acquire();
  EXPECT_EQ(s->Resolve("vault/nope").status().code(), Code::kNotFound);
  EXPECT_EQ(s->Resolve("vault/f/x").status().code(), Code::kNotDirectory);
  EXPECT_EQ(s->Resolve("")->id, kRootId);
  EXPECT_EQ(s->Resolve("vault/")->id, vault_.id);
}

TEST_P(CatalogTest, StatsSumFiles) {
  ApplyListing(vault_,
               {Listed("a", EntryType::kFile, 10), Listed("b", EntryType::kFile, 32),
                Listed("d", EntryType::kDir)},
               10);
  auto s = catalog_->Acquire();
  auto stats = s->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->files, 2);
  EXPECT_EQ(stats->dirs, 3);  // root, vault, d
  EXPECT_EQ(stats->bytes, 42u);
  EXPECT_EQ(stats->cached_bytes, 0u);
}

TEST_P(CatalogTest, TransactionRollsBackUnlessCommitted) {
  {
    auto s = catalog_->Acquire();
    auto tx = s->Begin();
    ASSERT_TRUE(s->SetMeta("k", "v").ok());
  }
  auto s = catalog_->Acquire();
  EXPECT_FALSE(s->GetMeta("k")->has_value());
  auto tx = s->Begin();
  ASSERT_TRUE(s->SetMeta("k", "v").ok());
  ASSERT_TRUE(tx->Commit().ok());
  EXPECT_EQ(**s->GetMeta("k"), "v");
}

TEST_P(CatalogTest, ManyThreadsShareTheCatalog) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto s = catalog_->Acquire();
        if (!s.ok()) {
          ++failures;
          continue;
        }
        if (!s->SetMeta("t" + std::to_string(t), std::to_string(i)).ok()) ++failures;
        if (!s->Get(vault_.id).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  auto s = catalog_->Acquire();
  EXPECT_EQ(**s->GetMeta("t7"), "49");
}

TEST_P(CatalogTest, SecondProcessStyleOpenSeesTheSameData) {
  ApplyListing(vault_, {Listed("shared", EntryType::kFile, 7)}, 10);
  auto other = Catalog::Open(Location());
  ASSERT_TRUE(other.ok());
  auto s = (*other)->Acquire();
  EXPECT_EQ(s->Resolve("vault/shared")->size, 7u);
}

TEST_P(SqliteCatalogTest, RefusesACatalogFromANewerSchema) {
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(
        Exec(*s, "PRAGMA user_version = " + std::to_string(LatestSchemaVersion() + 1)).ok());
  }
  catalog_.reset();
  auto again = Catalog::Open(Location());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("written by a newer hsmfs"), std::string::npos);
}

TEST_P(CatalogTest, MissingFileWithoutCreateFails) {
  Catalog::Options options;
  options.create = false;
  auto c = Catalog::Open(Location("absent"), options);
  EXPECT_FALSE(c.ok());
}

TEST(SqliteCatalogMemoryTest, InMemoryCatalogWorks) {
  auto c = Catalog::Open(":memory:");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto s = (*c)->Acquire();
  EXPECT_TRUE(s->EnsureBackendRoot("tape", 1).ok());
  EXPECT_EQ(s->Resolve("tape")->backend, "tape");
}

TEST(CatalogDeathTest, NestedSessionsAbort) {
  auto c = Catalog::Open(":memory:");
  ASSERT_TRUE(c.ok());
  EXPECT_DEATH(
      {
        auto a = (*c)->Acquire();
        auto b = (*c)->Acquire();
      },
      "second session");
}

TEST(StateTest, NamesAndDmfCodes) {
  for (FileState s :
       {FileState::kOffline, FileState::kStaging, FileState::kOnline, FileState::kQueued,
        FileState::kArchiving, FileState::kDual, FileState::kFailed}) {
    EXPECT_EQ(*ParseState(StateName(s)), s);
  }
  EXPECT_EQ(DmfCode(FileState::kOffline), "OFL");
  EXPECT_EQ(DmfCode(FileState::kStaging), "UNM");
  EXPECT_EQ(DmfCode(FileState::kOnline), "REG");
  EXPECT_EQ(DmfCode(FileState::kQueued), "MIG");
  EXPECT_EQ(DmfCode(FileState::kArchiving), "MIG");
  EXPECT_EQ(DmfCode(FileState::kDual), "DUL");
  EXPECT_FALSE(ParseState("lost").ok());
}

}  // namespace
TEST_P(CatalogTest, EmptyDotAndSlashNamesAreNeverAdded) {
  auto s = catalog_->Acquire();
  for (const std::string& name :
       std::vector<std::string>{"", ".", "..", "a/b", std::string("a\0b", 3)}) {
    Entry e;
    e.parent = vault_.id;
    e.name = name;
    e.backend = "vault";
    e.backend_path = name;
    auto created = s->Create(e);
    ASSERT_FALSE(created.ok()) << "\"" << name << "\" was accepted";
    EXPECT_EQ(created.status().code(), Code::kInvalidArgument);
  }
  Entry good;
  good.parent = vault_.id;
  good.name = "f";
  good.backend = "vault";
  good.backend_path = "f";
  auto f = s->Create(good);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(s->Move(f->id, vault_.id, "", "").code(), Code::kInvalidArgument);
  EXPECT_EQ(s->Move(f->id, vault_.id, "..", "..").code(), Code::kInvalidArgument);
  EXPECT_EQ(s->Get(f->id)->name, "f");
}

TEST_P(CatalogTest, AListingSkipsANameItCannotShowAndKeepsTheRest) {
  ApplyListing(vault_,
               {Listed("", EntryType::kFile, 1), Listed(".", EntryType::kDir),
                Listed("ok", EntryType::kFile, 2)},
               10);
  auto s = catalog_->Acquire();
  std::vector<Entry> children;
  ASSERT_TRUE(s->Children(vault_.id, 0, 100, &children).ok());
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].name, "ok");
}

TEST_P(CatalogTest, IncompletePutMarksRoundTrip) {
  const std::string mark = IncompletePutError(4242);
  EXPECT_EQ(IncompletePutPid(mark), 4242);
  EXPECT_EQ(IncompletePutPid("incomplete: hsmctl put (pid x)"), std::nullopt);
  EXPECT_EQ(IncompletePutPid("some other failure"), std::nullopt);
  auto s = catalog_->Acquire();
  Entry e;
  e.parent = vault_.id;
  e.name = "f";
  e.backend = "vault";
  e.backend_path = "f";
  e.state = FileState::kOnline;
  e.cached = true;
  auto f = s->Create(e);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(s->MarkIncomplete(f->id, mark).ok());
  EXPECT_EQ(s->Get(f->id)->state, FileState::kFailed);
  EXPECT_EQ(s->Get(f->id)->error, mark);
  EXPECT_FALSE(*s->ClearIncomplete(f->id, IncompletePutError(1)));  // not our mark
  EXPECT_TRUE(*s->ClearIncomplete(f->id, mark));
  EXPECT_EQ(s->Get(f->id)->state, FileState::kOnline);
  EXPECT_EQ(s->Get(f->id)->error, "");
}

// The checks and repairs of hsmctl fsck and the file cache's start.
TEST_P(CatalogTest, SubtreeIsTopDownAndFilesPageThroughFilesOnly) {
  ApplyListing(vault_, {Listed("d", EntryType::kDir), Listed("f", EntryType::kFile, 1)}, 10);
  const Entry d = Get("vault/d");
  ApplyListing(d, {Listed("e", EntryType::kDir), Listed("g", EntryType::kFile, 2)}, 11);
  ApplyListing(Get("vault/d/e"), {Listed("h", EntryType::kFile, 3)}, 12);
  auto names = [](const std::vector<Entry>& entries) {
    std::vector<std::string> out;
    for (const Entry& e : entries) out.push_back(e.name);
    return out;
  };
  auto s = catalog_->Acquire();
  std::vector<Entry> below;
  ASSERT_TRUE(s->Subtree(d.id, &below).ok());
  EXPECT_EQ(names(below), (std::vector<std::string>{"d", "e", "g", "h"}));
  std::vector<Entry> page;
  ASSERT_TRUE(s->Files(0, 2, &page).ok());
  EXPECT_EQ(names(page), (std::vector<std::string>{"f", "g"}));
  std::vector<Entry> rest;
  ASSERT_TRUE(s->Files(page.back().id, 2, &rest).ok());
  EXPECT_EQ(names(rest), (std::vector<std::string>{"h"}));
}

TEST_P(CatalogTest, BadlyNamedFindsNamesNoListingCouldAdd) {
  ApplyListing(vault_, {Listed("ok", EntryType::kFile)}, 10);
  auto s = catalog_->Acquire();
  const std::vector<std::string> bad_names = {"", "..", "a/b"};
  for (const std::string& name : bad_names) {
    ASSERT_TRUE(Exec(*s,
                     "INSERT INTO entries (parent, name, type, mode, backend, backend_path, "
                     "state) VALUES (" +
                         std::to_string(vault_.id) + ", '" + name + "', 1, 420, 'vault', 'x" +
                         name + "', 'offline')")
                    .ok());
  }
  std::vector<Entry> bad;
  ASSERT_TRUE(s->BadlyNamed(&bad).ok());
  std::vector<std::string> found;
  for (const Entry& e : bad) found.push_back(e.name);
  EXPECT_EQ(found, bad_names);
}

TEST_P(CatalogTest, RepairsMakeANewVersionToArchiveOrGoBackToTheBackends) {
  ApplyListing(vault_, {Listed("f", EntryType::kFile, 5)}, 10);
  const Entry f = Get("vault/f");
  auto s = catalog_->Acquire();
  ASSERT_TRUE(
      Exec(*s, "UPDATE entries SET state = 'failed', error = 'boom', cached = 1 WHERE id = " +
                   std::to_string(f.id))
          .ok());
  ASSERT_TRUE(s->ResetForArchive(f.id).ok());
  Entry now = *s->Get(f.id);
  EXPECT_EQ(now.state, FileState::kOnline);
  EXPECT_EQ(now.error, "");
  EXPECT_FALSE(now.on_backend);
  EXPECT_TRUE(now.cached);
  EXPECT_EQ(now.version, f.version + 1);
  ASSERT_TRUE(
      Exec(*s, "UPDATE entries SET error = 'again' WHERE id = " + std::to_string(f.id)).ok());
  ASSERT_TRUE(s->RevertToBackendVersion(f.id).ok());
  now = *s->Get(f.id);
  EXPECT_EQ(now.state, FileState::kOffline);
  EXPECT_FALSE(now.cached);
  EXPECT_EQ(now.error, "");
  EXPECT_EQ(now.version, f.version + 2);
  ASSERT_TRUE(s->GetSync(vault_.id)->has_value());
  ASSERT_TRUE(s->ForgetListing(vault_.id).ok());
  EXPECT_FALSE(s->GetSync(vault_.id)->has_value());
}

TEST_P(CatalogTest, ALostCachedCopyLeavesArchivedDataOfflineAndUnarchivedDataFailed) {
  ApplyListing(vault_,
               {Listed("archived", EntryType::kFile, 1), Listed("unarchived", EntryType::kFile, 1),
                Listed("offline", EntryType::kFile, 1)},
               10);
  const Entry archived = Get("vault/archived");
  const Entry unarchived = Get("vault/unarchived");
  auto s = catalog_->Acquire();
  ASSERT_TRUE(
      Exec(*s, "UPDATE entries SET state = 'dual', cached = 1 WHERE name = 'archived'").ok());
  ASSERT_TRUE(
      Exec(*s, "UPDATE entries SET state = 'online', cached = 1 WHERE name = 'unarchived'").ok());
  std::vector<EntryId> cached;
  ASSERT_TRUE(s->CachedIds(&cached).ok());
  std::sort(cached.begin(), cached.end());
  EXPECT_EQ(cached, (std::vector<EntryId>{archived.id, unarchived.id}));
  ASSERT_TRUE(s->MarkCachedCopyLost(archived.id).ok());
  ASSERT_TRUE(s->MarkCachedCopyLost(unarchived.id).ok());
  const Entry a = *s->Get(archived.id);
  EXPECT_EQ(a.state, FileState::kOffline);
  EXPECT_FALSE(a.cached);
  EXPECT_EQ(a.error, "");
  const Entry u = *s->Get(unarchived.id);
  EXPECT_EQ(u.state, FileState::kFailed);
  EXPECT_FALSE(u.cached);
  EXPECT_EQ(u.error, "the cached copy was lost before it was archived");
  cached.clear();
  ASSERT_TRUE(s->CachedIds(&cached).ok());
  EXPECT_TRUE(cached.empty());
}

INSTANTIATE_TEST_SUITE_P(Implementations, CatalogTest,
                         ::testing::ValuesIn(CatalogImplementations()), ImplementationName);
INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteCatalogTest, ::testing::Values(SqliteImplementation()),
                         ImplementationName);

}  // namespace hsmfs::catalog
