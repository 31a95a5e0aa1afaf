// The recall engine against a FakeBackend (behind a FaultInjectingBackend),
// a FakeClock and a real catalog and cache in a temporary directory.

#include "engine/stager.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "backends/testing/fake_backend.h"
#include "backends/testing/fault_injecting_backend.h"
#include "catalog/sqlite/raw_access.h"
#include "common/logging.h"
#include "tests/unit/log_capture.h"

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using backends::FakeBackend;
using backends::FaultInjectingBackend;
using backends::Op;
using catalog::Entry;
using catalog::FileState;
using catalog::Job;
using catalog::JobQueue;
using catalog::JobState;

class StagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_stager_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    catalog_ = std::move(catalog::Catalog::Open(dir_ / "catalog.db")).value();
    {
      auto s = catalog_->Acquire();
      vault_ = *s->EnsureBackendRoot("vault", 1);
    }
    auto fake = std::make_unique<FakeBackend>();
    fake_ = fake.get();
    faulty_ = std::make_unique<FaultInjectingBackend>(std::move(fake), clock_);
    backends_["vault"] = faulty_.get();
    FileCache::Options co;
    co.dir = dir_ / "cache";
    co.size = uint64_t{1} << 30;
    cache_ = std::make_unique<FileCache>(co, *catalog_, clock_, nullptr);
    ASSERT_TRUE(cache_->Recover().ok());
    options_.workers = 1;
    options_.retry_delay = 2s;
    options_.max_attempts = 3;
  }
  void TearDown() override {
    stager_.reset();
    cache_.reset();
    faulty_.reset();
    catalog_.reset();
    stdfs::remove_all(dir_);
  }
  // Starts a stager as the engine does: jobs this host's earlier engines left
  // running go back to the queue.
  void StartStager() {
    {
      auto s = catalog_->Acquire();
      ASSERT_TRUE(JobQueue::RequeueAbandoned(*s, "", EngineOwnerPrefix(), clock_.WallNanos()).ok());
    }
    stager_ = std::make_unique<Stager>(*catalog_, backends_, *cache_, clock_, options_, nullptr);
    ASSERT_TRUE(stager_->Start().ok());
  }

  // A file on the backend, listed into the catalog (offline).
  Entry AddFile(const std::string& name, const std::string& data, std::string volume = "",
                int64_t position = 0) {
    fake_->AddFile(name, data);
    if (!volume.empty()) fake_->SetPlacement(name, volume, position);
    auto info = fake_->Stat(name);
    Entry e;
    e.name = name;
    e.size = info->size;
    e.mtime_ns = info->mtime_ns;
    e.checksum = info->checksum;
    e.volume = info->volume;
    e.position = info->position;
    auto s = catalog_->Acquire();
    EXPECT_TRUE(s->UpsertListed(vault_, e, 5, nullptr).ok());
    return *s->Lookup(vault_.id, name);
  }
  Entry Get(const Entry& e) {
    auto s = catalog_->Acquire();
    return *s->Get(e.id);
  }
  Job JobOf(int64_t id) {
    auto s = catalog_->Acquire();
    return **JobQueue::Get(*s, id);
  }
  std::future<Status> Watch(const Entry& e) {
    auto p = std::make_shared<std::promise<Status>>();
    stager_->Watch(e.id, [p](Status s) { p->set_value(std::move(s)); });
    return p->get_future();
  }
  // The job recalling `e`; a default Job when `e` was cached already.
  Job Request(const Entry& e) {
    auto job = stager_->Request(e, catalog::Requester{0, 1, "test"});
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() && *job ? **job : Job();
  }
  // Moves the fake clock in small steps until `pred` holds (or gives up).
  template <typename Pred>
  bool Drive(Pred pred, Duration step = 50ms, int max_steps = 2000) {
    for (int i = 0; i < max_steps; ++i) {
      if (pred()) return true;
      clock_.Advance(step);
      std::this_thread::sleep_for(1ms);
    }
    return pred();
  }
  static bool Ready(std::future<Status>& f) { return f.wait_for(0ms) == std::future_status::ready; }
  std::string CachedData(const Entry& e) {
    std::ifstream in(cache_->PathOf(e.id), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  stdfs::path dir_;
  FakeClock clock_;
  std::unique_ptr<catalog::Catalog> catalog_;
  Entry vault_;
  FakeBackend* fake_;
  std::unique_ptr<FaultInjectingBackend> faulty_;
  BackendMap backends_;
  std::unique_ptr<FileCache> cache_;
  RunnerOptions options_;
  std::unique_ptr<Stager> stager_;
};

TEST_F(StagerTest, RecallsIntoTheCacheAndMarksTheFileDual) {
  StartStager();
  const Entry f = AddFile("f", "the data of f");
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(CachedData(f), "the data of f");
  EXPECT_EQ(Get(f).state, FileState::kDual);
  EXPECT_TRUE(Get(f).cached);
  EXPECT_EQ(JobOf(job.id).state, JobState::kDone);
  EXPECT_EQ(fake_->calls(Op::kRead), 1);
}

TEST_F(StagerTest, ConcurrentRequestsShareOneRecall) {
  StartStager();
  const Entry f = AddFile("f", "shared");
  std::vector<std::future<Status>> waiters;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<int64_t> job_ids;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&] {
      const Job j = Request(f);
      std::lock_guard<std::mutex> l(mu);
      if (j.id != 0) job_ids.insert(j.id);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 10; ++i) waiters.push_back(Watch(f));
  EXPECT_EQ(job_ids.size(), 1u);
  ASSERT_TRUE(Drive([&] { return Ready(waiters.back()); }));
  for (auto& w : waiters) EXPECT_TRUE(w.get().ok());
  EXPECT_EQ(fake_->calls(Op::kRead), 1);
}

TEST_F(StagerTest, ABurstIsReadInVolumeAndPositionOrder) {
  StartStager();
  std::vector<Entry> files = {AddFile("b5", "x", "B", 5), AddFile("a7", "x", "A", 7),
                              AddFile("b1", "x", "B", 1), AddFile("a2", "x", "A", 2)};
  std::vector<std::future<Status>> waiters;
  for (const Entry& f : files) Request(f);  // one coalescing window: the clock has not moved
  for (const Entry& f : files) waiters.push_back(Watch(f));
  ASSERT_TRUE(Drive([&] { return Ready(waiters[2]) && Ready(waiters[0]); }));
  EXPECT_EQ(fake_->reads(), (std::vector<std::string>{"a2", "a7", "b1", "b5"}));
}

TEST_F(StagerTest, TheBackendIsToldOfABurstOnceAndOfLaterRecallsSeparately) {
  StartStager();
  std::vector<Entry> files = {AddFile("b5", "x", "B", 5), AddFile("a7", "x", "A", 7),
                              AddFile("b1", "x", "B", 1), AddFile("a2", "x", "A", 2)};
  std::vector<std::future<Status>> waiters;
  for (const Entry& f : files) Request(f);  // one coalescing window
  for (const Entry& f : files) waiters.push_back(Watch(f));
  ASSERT_TRUE(Drive([&] {
    return std::all_of(waiters.begin(), waiters.end(), [&](auto& w) { return Ready(w); });
  }));
  // One StageMany for the burst, in dispatch order, before the first Read.
  ASSERT_EQ(fake_->stage_batches().size(), 1u);
  EXPECT_EQ(fake_->stage_batches()[0], (std::vector<std::string>{"a2", "a7", "b1", "b5"}));
  // A later recall is a batch of its own; recalls already told are not told again.
  Entry late = AddFile("c1", "y", "C", 1);
  Request(late);
  auto w = Watch(late);
  ASSERT_TRUE(Drive([&] { return Ready(w); }));
  ASSERT_EQ(fake_->stage_batches().size(), 2u);
  EXPECT_EQ(fake_->stage_batches()[1], std::vector<std::string>{"c1"});
}

TEST_F(StagerTest, ANewVolumeIsTheOneWithTheMostWaitingRecalls) {
  StartStager();
  std::vector<Entry> files = {AddFile("a1", "x", "A", 1), AddFile("b3", "x", "B", 3),
                              AddFile("b1", "x", "B", 1), AddFile("b2", "x", "B", 2)};
  std::vector<std::future<Status>> waiters;
  for (const Entry& f : files) Request(f);  // one coalescing window
  for (const Entry& f : files) waiters.push_back(Watch(f));
  ASSERT_TRUE(Drive([&] {
    return std::all_of(waiters.begin(), waiters.end(), [&](auto& w) { return Ready(w); });
  }));
  // A sorts first, but B has three recalls waiting: its mount pays for more.
  EXPECT_EQ(fake_->reads(), (std::vector<std::string>{"b1", "b2", "b3", "a1"}));
}

TEST_F(StagerTest, ABurstDuringEngineStartIsOneCoalescingWindow) {
  // The first recall of the burst arrives while the engine starts (before its
  // workers run), the others just after: still one window, one batch. A lane
  // that began without its window dispatched the first recall alone whenever
  // its worker ran before the rest arrived (a flaky
  // ANewVolumeIsTheOneWithTheMostWaitingRecalls); rounds make that visible.
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(JobQueue::ResetRunning(*s, clock_.WallNanos()).ok());
  }
  size_t batches = 0;
  for (int round = 0; round < 20; ++round) {
    const std::string r = std::to_string(round);
    std::vector<Entry> files = {
        AddFile("a1-" + r, "x", "A" + r, 1), AddFile("b3-" + r, "x", "B" + r, 3),
        AddFile("b1-" + r, "x", "B" + r, 1), AddFile("b2-" + r, "x", "B" + r, 2)};
    stager_ = std::make_unique<Stager>(*catalog_, backends_, *cache_, clock_, options_, nullptr);
    const size_t reads_before = fake_->reads().size();
    Request(files[0]);  // queued before the workers start
    ASSERT_TRUE(stager_->Start().ok());
    for (size_t i = 1; i < files.size(); ++i) Request(files[i]);
    std::vector<std::future<Status>> waiters;
    for (const Entry& f : files) waiters.push_back(Watch(f));
    ASSERT_TRUE(Drive([&] {
      return std::all_of(waiters.begin(), waiters.end(), [&](auto& w) { return Ready(w); });
    })) << "round "
        << round;
    const std::vector<std::string> all = fake_->reads();
    const std::vector<std::string> reads(all.begin() + static_cast<ptrdiff_t>(reads_before),
                                         all.end());
    EXPECT_EQ(reads, (std::vector<std::string>{"b1-" + r, "b2-" + r, "b3-" + r, "a1-" + r}))
        << "round " << round;
    ASSERT_EQ(fake_->stage_batches().size(), ++batches) << "round " << round;
    stager_.reset();
  }
}

TEST_F(StagerTest, AWorkerStaysOnTheVolumeItUsedLast) {
  StartStager();
  const Entry b1 = AddFile("b1", "x", "B", 1);
  Request(b1);
  auto first = Watch(b1);
  ASSERT_TRUE(Drive([&] { return Ready(first); }));
  const Entry a1 = AddFile("a1", "x", "A", 1);
  const Entry b9 = AddFile("b9", "x", "B", 9);
  Request(a1);
  Request(b9);
  auto wa = Watch(a1), wb = Watch(b9);
  ASSERT_TRUE(Drive([&] { return Ready(wa) && Ready(wb); }));
  // Volume A sorts first, but B is mounted: finish B before switching.
  EXPECT_EQ(fake_->reads(), (std::vector<std::string>{"b1", "b9", "a1"}));
}

// Holds the catalog's write lock from a connection of its own, as another
// process writing would: writers that give up waiting get SQLITE_BUSY.
class CatalogWriteLock {
 public:
  explicit CatalogWriteLock(const stdfs::path& db) {
    EXPECT_EQ(sqlite3_open(db.c_str(), &db_), SQLITE_OK);
    // The engine writes too (lease renewals, touches): wait for its short
    // transactions, as another process would, before taking the lock.
    sqlite3_busy_timeout(db_, 30000);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~CatalogWriteLock() { Release(); }
  void Release() {
    if (!db_) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

uint64_t SiteCount(const std::string& id) {
  const auto counts = ErrorSiteCounts();
  auto it = counts.find(id);
  return it == counts.end() ? 0 : it->second;
}

// Destroys `stager` when it goes out of scope, before the catalog and log
// declared ahead of it. A worker may be in a back-off on the fake clock, so
// time moves on meanwhile.
struct StopStagerFirst {
  std::unique_ptr<Stager>& stager;
  FakeClock& clock;
  ~StopStagerFirst() {
    std::atomic<bool> stopped{false};
    std::thread ticker([&] {
      while (!stopped) {
        clock.Advance(1s);
        std::this_thread::sleep_for(1ms);
      }
    });
    stager.reset();
    stopped = true;
    ticker.join();
  }
};

// Until `n` threads sleep on the fake clock (a bookkeeping back-off), in real time.
bool WaitForSleepers(const FakeClock& clock, int n) {
  for (int i = 0; i < 10000 && clock.sleepers() != n; ++i) std::this_thread::sleep_for(1ms);
  return clock.sleepers() == n;
}

TEST_F(StagerTest, AFailedRecallIsRecordedOnceTheBusyCatalogLetsGoOrLoggedWithItsSite) {
  // The stager's catalog gives up on a lock after 20 ms, not 10 s.
  catalog::Catalog::Options quick;
  quick.busy_timeout_ms = 20;
  auto busy_catalog = catalog::Catalog::Open(dir_ / "catalog.db", quick);
  ASSERT_TRUE(busy_catalog.ok()) << busy_catalog.status().ToString();
  auto log = std::make_unique<LogCapture>();
  // The stager goes first, also when an assertion returns early: its threads
  // use the catalog and the log above.
  StopStagerFirst stop_first{stager_, clock_};
  stager_ = std::make_unique<Stager>(**busy_catalog, backends_, *cache_, clock_, options_, nullptr);
  ASSERT_TRUE(stager_->Start().ok());
  const uint64_t failures_before = SiteCount("E-BOOK-02");

  // The failure is recorded while another writer holds the catalog: it waits
  // for it (back-off on the clock) and is recorded once the lock is let go.
  const Entry f = AddFile("f", "x");
  faulty_->Hang(Op::kRead);
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  auto lock = std::make_unique<CatalogWriteLock>(dir_ / "catalog.db");
  faulty_->FailAlways(Op::kRead, FailedPreconditionError("the object is gone"));
  faulty_->Unhang(Op::kRead);
  ASSERT_TRUE(WaitForSleepers(clock_, 1));
  EXPECT_EQ(JobOf(job.id).state, JobState::kRunning);  // not recorded yet
  lock->Release();
  clock_.Advance(100ms);
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_EQ(done.get().code(), Code::kFailedPrecondition);
  EXPECT_EQ(JobOf(job.id).state, JobState::kFailed);
  EXPECT_EQ(Get(f).state, FileState::kFailed);
  EXPECT_EQ(SiteCount("E-BOOK-02"), failures_before);
  EXPECT_NE(log->text().find("W E-BOOK-02: cannot record the failed recall of "), std::string::npos)
      << log->text();

  // A lock that is never let go: after the retries, one error line under the
  // site, counted; the job stays running for the next start to requeue.
  const Entry g = AddFile("g", "y");
  faulty_->Clear(Op::kRead);
  faulty_->Hang(Op::kRead);
  const Job job_g = Request(g);
  auto done_g = Watch(g);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  lock = std::make_unique<CatalogWriteLock>(dir_ / "catalog.db");
  faulty_->FailAlways(Op::kRead, FailedPreconditionError("the object is gone"));
  faulty_->Unhang(Op::kRead);
  for (Duration backoff : {Duration(100ms), Duration(200ms)}) {
    ASSERT_TRUE(WaitForSleepers(clock_, 1));
    clock_.Advance(backoff);
    ASSERT_TRUE(WaitForSleepers(clock_, 0));
  }
  for (int i = 0; i < 10000 && !Ready(done_g); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(Ready(done_g));
  EXPECT_EQ(done_g.get().code(), Code::kFailedPrecondition);  // the waiter is told anyway
  EXPECT_EQ(SiteCount("E-BOOK-02"), failures_before + 1);
  EXPECT_NE(log->text().find("E E-BOOK-02: cannot record the failed recall of "), std::string::npos)
      << log->text();
  EXPECT_NE(log->text().find("after 3 attempt(s)"), std::string::npos) << log->text();
  lock->Release();
  EXPECT_EQ(JobOf(job_g.id).state, JobState::kRunning);
}

TEST_F(StagerTest, TheRetryOfAFailedAttemptIsRecordedOnceTheBusyCatalogLetsGo) {
  catalog::Catalog::Options quick;
  quick.busy_timeout_ms = 20;
  auto busy_catalog = catalog::Catalog::Open(dir_ / "catalog.db", quick);
  ASSERT_TRUE(busy_catalog.ok()) << busy_catalog.status().ToString();
  auto log = std::make_unique<LogCapture>();
  StopStagerFirst stop_first{stager_, clock_};
  stager_ = std::make_unique<Stager>(**busy_catalog, backends_, *cache_, clock_, options_, nullptr);
  ASSERT_TRUE(stager_->Start().ok());
  const uint64_t failures_before = SiteCount("E-BOOK-01");

  const Entry f = AddFile("f", "the data");
  faulty_->Hang(Op::kRead);
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  auto lock = std::make_unique<CatalogWriteLock>(dir_ / "catalog.db");
  faulty_->FailAlways(Op::kRead, UnavailableError("tape library busy"));
  faulty_->Unhang(Op::kRead);
  ASSERT_TRUE(WaitForSleepers(clock_, 1));  // the requeue waits for the catalog
  EXPECT_EQ(JobOf(job.id).state, JobState::kRunning);
  lock->Release();
  faulty_->Clear(Op::kRead);
  clock_.Advance(100ms);
  ASSERT_TRUE(WaitForSleepers(clock_, 0));
  // RunnerOptions::name is "jobs" here ("stage" in the engine).
  EXPECT_NE(log->text().find("W E-BOOK-01: cannot record the retry of jobs job " +
                             std::to_string(job.id) + " (vault/f) (attempt 1 of 3)"),
            std::string::npos)
      << log->text();
  // Requeued with its back-off, then recalled: nothing was lost.
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(JobOf(job.id).state, JobState::kDone);
  EXPECT_EQ(JobOf(job.id).attempts, 2);
  EXPECT_EQ(SiteCount("E-BOOK-01"), failures_before);
}

TEST_F(StagerTest, TransientFailuresAreRetriedWithBackOff) {
  StartStager();
  const Entry f = AddFile("f", "eventually");
  faulty_->FailFirst(Op::kRead, 2, UnavailableError("drive busy"));
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return faulty_->calls(Op::kRead) == 1; }));
  const TimePoint first_failure = clock_.Now();
  ASSERT_TRUE(Drive([&] { return faulty_->calls(Op::kRead) == 2; }));
  // The first back-off is retry_delay (2 s); the catalog says why it waits.
  EXPECT_GE(clock_.Now() - first_failure, Duration(2s));
  EXPECT_EQ(JobOf(job.id).last_error, "drive busy");
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(JobOf(job.id).attempts, 3);
  EXPECT_EQ(CachedData(f), "eventually");
}

TEST_F(StagerTest, PermanentFailuresFailAtOnce) {
  StartStager();
  const Entry f = AddFile("f", "data");
  faulty_->FailAlways(Op::kRead, NotFoundError("tape A00012 has no file 7"));
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  const Status s = done.get();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tape A00012 has no file 7"), std::string::npos);
  EXPECT_EQ(faulty_->calls(Op::kRead), 1);
  EXPECT_EQ(Get(f).state, FileState::kFailed);
  EXPECT_EQ(Get(f).error, "tape A00012 has no file 7");
  EXPECT_EQ(JobOf(job.id).state, JobState::kFailed);
}

TEST_F(StagerTest, GivesUpAfterMaxAttempts) {
  StartStager();
  const Entry f = AddFile("f", "data");
  faulty_->FailAlways(Op::kRead, UnavailableError("library offline"));
  Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }, 500ms));
  EXPECT_FALSE(done.get().ok());
  EXPECT_EQ(faulty_->calls(Op::kRead), 3);
  EXPECT_EQ(Get(f).state, FileState::kFailed);
}

TEST_F(StagerTest, ChecksumMismatchIsDataLoss) {
  StartStager();
  const Entry f = AddFile("f", "data");
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET checksum = 'md5:00000000000000000000000000000000'"
                          " WHERE id = " +
                          std::to_string(f.id))
                    .ok());
  }
  Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }, 500ms));
  EXPECT_FALSE(done.get().ok());
  EXPECT_EQ(faulty_->calls(Op::kRead), 3);  // re-read in case the read was bad
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(f.id)));
}

TEST_F(StagerTest, SizeDifferentFromTheCatalogFails) {
  StartStager();
  const Entry f = AddFile("f", "data");
  fake_->AddFile("f", "longer data now");  // changed on the backend, not re-listed
  {
    // As on a posix backend: no checksum to catch it first.
    auto s = catalog_->Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s).Exec("UPDATE entries SET checksum = NULL").ok());
  }
  Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  const Status s = done.get();
  EXPECT_NE(s.message().find("hsmctl sync"), std::string::npos) << s.message();
  EXPECT_FALSE(Get(f).cached);
}

TEST_F(StagerTest, CancellingARunningRecallStopsIt) {
  StartStager();
  const Entry f = AddFile("f", "data");
  faulty_->Hang(Op::kRead);
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  {
    // What hsmctl cancel does, from another process.
    auto s = catalog_->Acquire();
    ASSERT_TRUE(*JobQueue::Cancel(*s, job.id, clock_.WallNanos()));
  }
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_EQ(done.get().code(), Code::kAborted);
  EXPECT_EQ(Get(f).state, FileState::kOffline);
  EXPECT_EQ(JobOf(job.id).state, JobState::kCancelled);
  EXPECT_FALSE(stdfs::exists(cache_->PathOf(f.id)));
}

TEST_F(StagerTest, JobsQueuedByAnotherProcessAreRun) {
  StartStager();
  const Entry f = AddFile("f", "data");
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(
        JobQueue::EnqueueStage(*s, f, catalog::Requester{0, 2, "hsmctl"}, clock_.WallNanos()).ok());
  }
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_TRUE(done.get().ok());
}

TEST_F(StagerTest, ShutdownLeavesTheJobForTheNextEngine) {
  StartStager();
  const Entry f = AddFile("f", "data");
  faulty_->Hang(Op::kRead);
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return faulty_->hanging() == 1; }));
  stager_->Shutdown();
  EXPECT_EQ(done.get().code(), Code::kUnavailable);
  EXPECT_EQ(JobOf(job.id).state, JobState::kRunning);  // as after a crash
  faulty_->Unhang(Op::kRead);
  StartStager();
  auto again = Watch(f);
  ASSERT_TRUE(Drive([&] { return Ready(again); }));
  EXPECT_TRUE(again.get().ok());
  EXPECT_EQ(JobOf(job.id).state, JobState::kDone);
  EXPECT_EQ(JobOf(job.id).attempts, 1);  // the interrupted attempt does not count
  EXPECT_EQ(CachedData(f), "data");
}

// Item 5 of issue 13: a job another engine claimed stays its own while its
// lease holds, and is recalled here once that engine stops renewing it.
TEST_F(StagerTest, ARecallOfAnEngineThatStoppedRenewingItsLeaseIsTakenOver) {
  const Entry f = AddFile("f", "data");
  const int64_t lease_end = clock_.WallNanos() + std::chrono::nanoseconds(90s).count();
  int64_t id = 0;
  {
    auto s = catalog_->Acquire();
    auto job = JobQueue::EnqueueStage(*s, f, catalog::Requester{0, 2, "cat"}, clock_.WallNanos());
    ASSERT_TRUE(job.ok() && job->has_value());
    id = (*job)->id;
    ASSERT_TRUE(*JobQueue::Claim(*s, id, "another-host pid 1 at 1", lease_end, clock_.WallNanos()));
  }
  // An engine that is not the claimant's successor: nothing is requeued at
  // its start.
  stager_ = std::make_unique<Stager>(*catalog_, backends_, *cache_, clock_, options_, nullptr);
  ASSERT_TRUE(stager_->Start().ok());
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return clock_.WallNanos() >= lease_end - 1'000'000'000; }));
  EXPECT_EQ(JobOf(id).state, JobState::kRunning);
  EXPECT_EQ(JobOf(id).owner, "another-host pid 1 at 1");
  EXPECT_EQ(fake_->calls(Op::kRead), 0);
  ASSERT_TRUE(Drive([&] { return Ready(done); }, 100ms));
  EXPECT_TRUE(done.get().ok());
  EXPECT_EQ(CachedData(f), "data");
  EXPECT_EQ(JobOf(id).state, JobState::kDone);
  EXPECT_EQ(JobOf(id).attempts, 1);  // the other engine's interrupted attempt does not count
  EXPECT_NE(JobOf(id).owner, "another-host pid 1 at 1");
}

TEST_F(StagerTest, AFullCacheDelaysTheRecallInsteadOfFailingIt) {
  FileCache::Options co;
  co.dir = dir_ / "cache";
  co.size = 10;
  cache_ = std::make_unique<FileCache>(co, *catalog_, clock_, nullptr);
  options_.max_attempts = 1;  // waiting for room must not use up attempts
  StartStager();
  const Entry pinned = AddFile("pinned", "0123456789");
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(catalog::RawSqlite(*s)
                    .Exec("UPDATE entries SET cached = 1, state = 'dual', pinned = 1 "
                          "WHERE id = " +
                          std::to_string(pinned.id))
                    .ok());
  }
  const Entry f = AddFile("f", "abc");
  const Job job = Request(f);
  auto done = Watch(f);
  ASSERT_TRUE(Drive([&] { return !JobOf(job.id).last_error.empty(); }));
  EXPECT_EQ(JobOf(job.id).state, JobState::kQueued);
  EXPECT_NE(JobOf(job.id).last_error.find("cache full"), std::string::npos);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(s->SetPinned(pinned.id, false).ok());
  }
  ASSERT_TRUE(Drive([&] { return Ready(done); }));
  EXPECT_TRUE(done.get().ok());
  EXPECT_FALSE(Get(pinned).cached);  // evicted to make room
}

TEST_F(StagerTest, EtaFollowsQueuePosition) {
  options_.workers = 2;
  StartStager();
  Job job;
  job.backend = "vault";
  EXPECT_EQ(stager_->Eta(job, 4), Duration(10s));  // 2 rounds of the 5 s default
  EXPECT_EQ(stager_->Eta(job, 1), Duration(5s));
}

}  // namespace
}  // namespace hsmfs::fs

namespace hsmfs::fs {
namespace {

TEST_F(StagerTest, EtaStartsFromTheExpectedRecallTime) {
  options_.expected_by_backend["vault"] = std::chrono::hours(1);
  StartStager();
  Job job;
  job.backend = "vault";
  EXPECT_EQ(stager_->Eta(job, 1), Duration(std::chrono::hours(1)));
}

}  // namespace
}  // namespace hsmfs::fs
