#include "catalog/job_queue.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>
#include <utility>

#include "tests/unit/catalog/catalog_implementations.h"

namespace hsmfs::catalog {
namespace {

namespace stdfs = std::filesystem;

// The job queue contract: every test runs against each catalog implementation.
class JobQueueTest : public ::testing::TestWithParam<CatalogImplementation> {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_jobq_" + std::to_string(::getpid()) + "_" +
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
    auto c = Catalog::Open(GetParam().location(dir_, "catalog"));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
    auto s = catalog_->Acquire();
    vault_ = *s->EnsureBackendRoot("vault", 1);
  }

  // Adds an offline file with a placement hint.
  Entry AddFile(const std::string& name, std::string volume = "", int64_t position = 0) {
    auto s = catalog_->Acquire();
    Entry e;
    e.name = name;
    e.size = 100;
    e.volume = std::move(volume);
    e.position = position;
    EXPECT_TRUE(s->UpsertListed(vault_, e, 5, nullptr).ok());
    return *s->Lookup(vault_.id, name);
  }
  Entry Fresh(const Entry& e) {
    auto s = catalog_->Acquire();
    return *s->Get(e.id);
  }
  Job Enqueue(const Entry& e, bool* created = nullptr) {
    auto s = catalog_->Acquire();
    auto j = JobQueue::EnqueueStage(*s, e, Requester{1000, 42, "cat"}, 10, created);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    EXPECT_TRUE(j.ok() && j->has_value()) << "nothing queued";
    return j.ok() && *j ? **j : Job();
  }
  std::vector<Job> Runnable(int64_t now = 100) {
    auto s = catalog_->Acquire();
    return *JobQueue::Runnable(*s, JobKind::kStage, "vault", now, 100);
  }
  template <typename F>
  auto InSession(F f) {
    auto s = catalog_->Acquire();
    EXPECT_TRUE(s.ok());
    return f(*s);
  }
  // Plain SQL on the catalog's database, for states the interface cannot make.
  Status Exec(Session& s, const std::string& sql) { return GetParam().exec(s, sql); }
  bool Claim(int64_t id) {
    return *InSession([&](Session& s_) { return JobQueue::Claim(s_, id, "me", 1000, 20); });
  }

  stdfs::path dir_;
  std::unique_ptr<Catalog> catalog_;
  Entry vault_;
};

TEST_P(JobQueueTest, EnqueueMarksStagingAndSharesOneJob) {
  const Entry f = AddFile("f");
  bool created = false;
  const Job first = Enqueue(f, &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(first.state, JobState::kQueued);
  EXPECT_EQ(first.backend, "vault");
  EXPECT_EQ(first.bytes_total, 100u);
  EXPECT_EQ(first.requester.command, "cat");
  EXPECT_EQ(Fresh(f).state, FileState::kStaging);
  const Job second = Enqueue(f, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(Runnable().size(), 1u);
}

TEST_P(JobQueueTest, NothingToRecallOnceCached) {
  const Entry f = AddFile("f");
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(Exec(*s, "UPDATE entries SET cached = 1, state = 'dual'").ok());
  }
  // The caller still holds the entry as it was before the recall finished.
  auto s = catalog_->Acquire();
  bool created = true;
  auto job = JobQueue::EnqueueStage(*s, f, Requester{}, 10, &created);
  ASSERT_TRUE(job.ok());
  EXPECT_FALSE(job->has_value());
  EXPECT_FALSE(created);
  EXPECT_EQ(s->Get(f.id)->state, FileState::kDual);
}

TEST_P(JobQueueTest, RunnableIsInVolumeAndPositionOrder) {
  Enqueue(AddFile("b2", "B", 2));
  Enqueue(AddFile("a9", "A", 9));
  Enqueue(AddFile("b1", "B", 1));
  Enqueue(AddFile("a3", "A", 3));
  std::vector<std::string> order;
  for (const Job& j : Runnable()) order.push_back(j.entry.name);
  EXPECT_EQ(order, (std::vector<std::string>{"a3", "a9", "b1", "b2"}));
}

TEST_P(JobQueueTest, ClaimIsExclusive) {
  const Job j = Enqueue(AddFile("f"));
  EXPECT_TRUE(Claim(j.id));
  EXPECT_FALSE(Claim(j.id));
  EXPECT_TRUE(Runnable().empty());
  auto s = catalog_->Acquire();
  auto got = JobQueue::Get(*s, j.id);
  EXPECT_EQ((*got)->state, JobState::kRunning);
  EXPECT_EQ((*got)->attempts, 1);
}

TEST_P(JobQueueTest, FinishMakesTheEntryCachedAndDual) {
  const Entry f = AddFile("f");
  const Job j = Enqueue(f);
  ASSERT_TRUE(Claim(j.id));
  ASSERT_TRUE(InSession([&](Session& s_) { return JobQueue::FinishStage(s_, j, 30); }).ok());
  const Entry e = Fresh(f);
  EXPECT_EQ(e.state, FileState::kDual);
  EXPECT_TRUE(e.cached);
  EXPECT_EQ(e.last_access_ns, 30);
  EXPECT_GE(e.seen_gen, 30);  // a listing that started earlier will not drop it
  auto s = catalog_->Acquire();
  EXPECT_EQ((*JobQueue::Get(*s, j.id))->state, JobState::kDone);
  EXPECT_FALSE(JobQueue::ActiveFor(*s, f.id, JobKind::kStage)->has_value());
}

TEST_P(JobQueueTest, FailureIsRecordedOnJobAndEntry) {
  const Entry f = AddFile("f");
  const Job j = Enqueue(f);
  ASSERT_TRUE(Claim(j.id));
  ASSERT_TRUE(InSession([&](Session& s_) {
                return JobQueue::FailStage(s_, j, NotFoundError("gone from tape"), 30);
              }).ok());
  const Entry e = Fresh(f);
  EXPECT_EQ(e.state, FileState::kFailed);
  EXPECT_EQ(e.error, "gone from tape");
  EXPECT_FALSE(e.cached);
  // A new request starts a fresh job and clears the error.
  bool created = false;
  Enqueue(f, &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(Fresh(f).state, FileState::kStaging);
  EXPECT_EQ(Fresh(f).error, "");
}

TEST_P(JobQueueTest, ArchivesFailedWhileTheBackendWasDownAreFoundAndProbed) {
  // Written through the mount: cached, online, then queued for archiving.
  std::vector<Job> jobs;
  for (const char* name : {"big", "small", "refused"}) {
    const Entry f = AddFile(name);
    ASSERT_TRUE(InSession([&](Session& s_) {
                  return Exec(s_, "UPDATE entries SET state = 'online', cached = 1, size = " +
                                      std::string(name == std::string("small") ? "1" : "500") +
                                      " WHERE id = " + std::to_string(f.id));
                }).ok());
    const Entry written = Fresh(f);
    auto j = InSession([&](Session& s_) { return JobQueue::EnqueueArchive(s_, written, 10); });
    ASSERT_TRUE(j.ok() && j->has_value());
    ASSERT_TRUE(Claim((*j)->id));
    jobs.push_back(**j);
  }
  const bool down[] = {true, true, false};
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(InSession([&](Session& s_) {
                  return JobQueue::FailArchive(s_, jobs[i], UnavailableError("down"), 30, down[i]);
                }).ok());
  }
  auto failed = [&](int limit) {
    return *InSession([&](Session& s_) {
      return JobQueue::FailedWhileDown(s_, JobKind::kArchive, "vault", limit);
    });
  };
  // Smallest first; the one that failed for another reason is not there.
  EXPECT_EQ(failed(0), (std::vector<int64_t>{jobs[1].id, jobs[0].id}));
  EXPECT_EQ(failed(1), (std::vector<int64_t>{jobs[1].id}));
  // A probe keeps the attempts used and clears the mark.
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Retry(s_, jobs[1].id, 40, false); }));
  auto probe = *InSession([&](Session& s_) { return JobQueue::Get(s_, jobs[1].id); });
  EXPECT_EQ(probe->state, JobState::kQueued);
  EXPECT_EQ(probe->attempts, 1);
  EXPECT_EQ(Fresh(probe->entry).state, FileState::kQueued);
  EXPECT_EQ(failed(0), (std::vector<int64_t>{jobs[0].id}));
  // A file modified since its archive failed has a newer job of its own.
  ASSERT_TRUE(InSession([&](Session& s_) {
                return Exec(s_, "UPDATE entries SET version = version + 1 WHERE id = " +
                                    std::to_string(jobs[0].entry_id));
              }).ok());
  EXPECT_TRUE(failed(0).empty());
}

TEST_P(JobQueueTest, RequeuedJobsWaitForTheirBackOff) {
  const Job j = Enqueue(AddFile("f"));
  ASSERT_TRUE(Claim(j.id));
  ASSERT_TRUE(InSession([&](Session& s_) {
                return JobQueue::Requeue(s_, j, UnavailableError("drive busy"), 500, 30);
              }).ok());
  EXPECT_TRUE(Runnable(499).empty());
  ASSERT_EQ(Runnable(500).size(), 1u);
  EXPECT_EQ(Runnable(500)[0].last_error, "drive busy");
  EXPECT_EQ(Runnable(500)[0].attempts, 1);
}

TEST_P(JobQueueTest, ResetRunningRequeuesWithoutCountingTheAttempt) {
  const Entry f = AddFile("f");
  const Job j = Enqueue(f);
  ASSERT_TRUE(Claim(j.id));
  // The engine dies here; the next one starts.
  Reopen();
  EXPECT_EQ(*InSession([&](Session& s_) { return JobQueue::ResetRunning(s_, 40); }), 1);
  auto runnable = Runnable();
  ASSERT_EQ(runnable.size(), 1u);
  EXPECT_EQ(runnable[0].attempts, 0);
  EXPECT_EQ(Fresh(f).state, FileState::kStaging);
}

TEST_P(JobQueueTest, CancelAndRetry) {
  const Entry f = AddFile("f");
  const Job j = Enqueue(f);
  auto s = catalog_->Acquire();
  EXPECT_TRUE(*JobQueue::Cancel(*s, j.id, 30));
  EXPECT_FALSE(*JobQueue::Cancel(*s, j.id, 31));
  EXPECT_EQ(s->Get(f.id)->state, FileState::kOffline);
  EXPECT_TRUE(*JobQueue::Retry(*s, j.id, 32));
  EXPECT_EQ(s->Get(f.id)->state, FileState::kStaging);
  EXPECT_FALSE(*JobQueue::Retry(*s, j.id, 33));  // it is queued, not failed
  auto again = JobQueue::Get(*s, j.id);
  EXPECT_EQ((*again)->state, JobState::kQueued);
  EXPECT_EQ((*again)->attempts, 0);
}

TEST_P(JobQueueTest, RetryRefusesWhenAnotherJobIsActive) {
  const Entry f = AddFile("f");
  const Job j = Enqueue(f);
  {
    auto s = catalog_->Acquire();
    ASSERT_TRUE(*JobQueue::Cancel(*s, j.id, 30));
  }
  const Job other = Enqueue(f);
  EXPECT_NE(other.id, j.id);
  EXPECT_FALSE(*InSession([&](Session& s_) { return JobQueue::Retry(s_, j.id, 31); }));
}

TEST_P(JobQueueTest, QueuePositionFollowsDispatchOrder) {
  const Job b = Enqueue(AddFile("b", "B", 1));
  const Job a2 = Enqueue(AddFile("a2", "A", 2));
  const Job a1 = Enqueue(AddFile("a1", "A", 1));
  auto s = catalog_->Acquire();
  EXPECT_EQ(*JobQueue::QueuePosition(*s, a1), 1);
  EXPECT_EQ(*JobQueue::QueuePosition(*s, a2), 2);
  EXPECT_EQ(*JobQueue::QueuePosition(*s, b), 3);
  ASSERT_TRUE(*JobQueue::Claim(*s, a1.id, "me", 1000, 20));
  EXPECT_EQ(*JobQueue::QueuePosition(*s, **JobQueue::Get(*s, a1.id)), 0);
  EXPECT_EQ(*JobQueue::QueuePosition(*s, a2), 1);
}

TEST_P(JobQueueTest, ListFilters) {
  const Job a = Enqueue(AddFile("a"));
  const Job b = Enqueue(AddFile("b"));
  auto s = catalog_->Acquire();
  ASSERT_TRUE(*JobQueue::Cancel(*s, a.id, 30));
  JobFilter active;
  active.states = {JobState::kQueued, JobState::kRunning};
  auto jobs = JobQueue::List(*s, active);
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].id, b.id);
  JobFilter by_id;
  by_id.ids = {a.id};
  EXPECT_EQ((*JobQueue::List(*s, by_id))[0].state, JobState::kCancelled);
  EXPECT_EQ(JobQueue::List(*s, JobFilter())->size(), 2u);
}

// A crash can end the process at any point of a recall's life. Replay the
// life of a batch and "crash" after step N (uncommitted work is lost, as in a
// real crash), for every N: after recovery no job is lost, none is done twice,
// and no entry says staging without an active job.
TEST_P(JobQueueTest, CrashAtEveryStepLosesNoJob) {
  for (int crash_at = 1; crash_at <= 6; ++crash_at) {
    SCOPED_TRACE("crash after step " + std::to_string(crash_at));
    TearDown();
    SetUp();
    const Entry f = AddFile("f");
    const Entry g = AddFile("g");
    int step = 0;
    const auto crashed = [&] { return ++step >= crash_at; };
    [&] {
      Enqueue(f);
      if (crashed()) return;
      Enqueue(g);
      if (crashed()) return;
      auto jobs = Runnable();
      ASSERT_EQ(jobs.size(), 2u);
      ASSERT_TRUE(Claim(jobs[0].id));
      if (crashed()) return;
      {
        // Crash inside the finishing transaction: it must not half-apply.
        auto s = catalog_->Acquire();
        auto tx = s->Begin();
        ASSERT_TRUE(JobQueue::FinishStage(*s, jobs[0], 50).ok());
        if (crashed()) return;  // tx rolls back, as a killed process's would
        ASSERT_TRUE(tx->Commit().ok());
      }
      if (crashed()) return;
      ASSERT_TRUE(Claim(jobs[1].id));
    }();
    Reopen();
    ASSERT_TRUE(InSession([&](Session& s_) { return JobQueue::ResetRunning(s_, 60); }).ok());
    auto s = catalog_->Acquire();
    for (const Entry& e : {f, g}) {
      const Entry now = *s->Get(e.id);
      auto active = *JobQueue::ActiveFor(*s, e.id, JobKind::kStage);
      const std::vector<Job> all = *JobQueue::List(*s, JobFilter());
      int done = 0;
      for (const Job& j : all) {
        if (j.entry_id == e.id && j.state == JobState::kDone) ++done;
      }
      EXPECT_LE(done, 1);
      if (now.state == FileState::kStaging) {
        EXPECT_TRUE(active.has_value()) << e.name << " staging without a job";
        EXPECT_EQ(active->state, JobState::kQueued);
      }
      if (now.cached) {
        EXPECT_EQ(done, 1);
        EXPECT_FALSE(active.has_value());
      }
      // Queued before the crash means still queued or done after it.
      const bool was_queued = e.name == "f" || crash_at >= 2;
      if (was_queued) {
        EXPECT_TRUE(now.cached || active.has_value()) << e.name << " lost its recall";
      }
    }
  }
}

// Files closed before a crash and never queued are found at start; a file
// whose archive job is active, one without data, and archived ones are not.
TEST_P(JobQueueTest, UnarchivedWithoutJobFindsWritesThatNeverGotAJob) {
  const Entry kept = AddFile("kept");
  const Entry queued = AddFile("queued");
  AddFile("no_data");
  AddFile("archived");
  EntryId dir = 0;
  ASSERT_TRUE(
      InSession([&](Session& s_) -> Status {
        Entry d;
        d.name = "d";
        d.type = EntryType::kDir;
        HSMFS_RETURN_IF_ERROR(s_.UpsertListed(vault_, d, 5, nullptr));
        HSMFS_ASSIGN_OR_RETURN(Entry listed, s_.Lookup(vault_.id, "d"));
        dir = listed.id;
        HSMFS_RETURN_IF_ERROR(Exec(s_,
                                   "UPDATE entries SET state = 'online', cached = 1 WHERE name IN "
                                   "('kept', 'queued')"));
        HSMFS_RETURN_IF_ERROR(
            Exec(s_, "UPDATE entries SET state = 'online', cached = 0 WHERE name = 'no_data'"));
        HSMFS_RETURN_IF_ERROR(
            Exec(s_, "UPDATE entries SET state = 'dual', cached = 1 WHERE name = 'archived'"));
        HSMFS_RETURN_IF_ERROR(Exec(s_, "UPDATE entries SET state = 'online' WHERE name = 'd'"));
        HSMFS_ASSIGN_OR_RETURN(Entry q, s_.Get(queued.id));
        HSMFS_ASSIGN_OR_RETURN(auto job, JobQueue::EnqueueArchive(s_, q, 10));
        if (!job) return InternalError("no archive job queued");
        // Even where its entry reads online, the active job
        // excludes it.
        return Exec(s_, "UPDATE entries SET state = 'online' WHERE name = 'queued'");
      }).ok());
  auto found = *InSession([&](Session& s_) { return JobQueue::UnarchivedWithoutJob(s_); });
  std::sort(found.begin(), found.end());
  std::vector<EntryId> expected = {kept.id, dir};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(found, expected);
}

// A rename stops the active archive jobs of everything below what moves.
TEST_P(JobQueueTest, ActiveArchivesBelowCoversTheWholeSubtreeAndNothingElse) {
  std::map<std::string, Entry> entries;
  ASSERT_TRUE(InSession([&](Session& s_) -> Status {
                const auto add = [&](const Entry& parent, const std::string& name,
                                     EntryType type) -> Status {
                  Entry e;
                  e.name = name;
                  e.type = type;
                  HSMFS_RETURN_IF_ERROR(s_.UpsertListed(parent, e, 5, nullptr));
                  HSMFS_ASSIGN_OR_RETURN(entries[name], s_.Lookup(parent.id, name));
                  return Status::Ok();
                };
                HSMFS_RETURN_IF_ERROR(add(vault_, "d", EntryType::kDir));
                HSMFS_RETURN_IF_ERROR(add(entries["d"], "a", EntryType::kFile));
                HSMFS_RETURN_IF_ERROR(add(entries["d"], "e", EntryType::kDir));
                HSMFS_RETURN_IF_ERROR(add(entries["e"], "b", EntryType::kFile));
                HSMFS_RETURN_IF_ERROR(add(entries["d"], "finished", EntryType::kFile));
                HSMFS_RETURN_IF_ERROR(add(vault_, "outside", EntryType::kFile));
                return Exec(s_, "UPDATE entries SET state = 'online', cached = 1 WHERE type = 1");
              }).ok());
  std::map<std::string, int64_t> jobs;
  for (const char* name : {"a", "b", "finished", "outside"}) {
    const Entry now = Fresh(entries[name]);
    auto j = InSession([&](Session& s_) { return JobQueue::EnqueueArchive(s_, now, 10); });
    ASSERT_TRUE(j.ok() && j->has_value()) << name;
    jobs[name] = (*j)->id;
  }
  ASSERT_TRUE(Claim(jobs["b"]));  // running counts as active
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Cancel(s_, jobs["finished"], 20); }));
  auto below =
      *InSession([&](Session& s_) { return JobQueue::ActiveArchivesBelow(s_, entries["d"].id); });
  std::sort(below.begin(), below.end());
  std::vector<std::pair<EntryId, int64_t>> expected = {{entries["a"].id, jobs["a"]},
                                                       {entries["b"].id, jobs["b"]}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(below, expected);
}

// What hsmctl reports: recall times for the stage ETA, and the job summary.
TEST_P(JobQueueTest, RecentRecallTimesAverageTheLastFinishedRecalls) {
  EXPECT_EQ((*InSession([&](Session& s_) { return RecentRecallTimes(s_, "vault", 200); })).count,
            0);
  const int64_t ms = 1'000'000;
  int64_t start = 1000 * ms;
  for (const auto& [name, took_ms] :
       std::vector<std::pair<std::string, int64_t>>{{"a", 100}, {"b", 300}, {"c", 500}}) {
    const Job j = Enqueue(AddFile(name));
    ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Claim(s_, j.id, "me", 0, start); }));
    ASSERT_TRUE(InSession([&](Session& s_) {
                  return JobQueue::FinishStage(s_, j, start + took_ms * ms);
                }).ok());
    start += 1000 * ms;
  }
  // One more that failed: not a timed recall.
  const Job failed = Enqueue(AddFile("d"));
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Claim(s_, failed.id, "me", 0, 1); }));
  ASSERT_TRUE(InSession([&](Session& s_) {
                return JobQueue::FailStage(s_, failed, NotFoundError("gone"), 99'000 * ms);
              }).ok());
  const auto all = *InSession([&](Session& s_) { return RecentRecallTimes(s_, "vault", 200); });
  EXPECT_EQ(all.count, 3);
  EXPECT_DOUBLE_EQ(all.mean_seconds, 0.3);
  const auto last_two = *InSession([&](Session& s_) { return RecentRecallTimes(s_, "vault", 2); });
  EXPECT_EQ(last_two.count, 2);
  EXPECT_DOUBLE_EQ(last_two.mean_seconds, 0.4);
  EXPECT_EQ((*InSession([&](Session& s_) { return RecentRecallTimes(s_, "other", 200); })).count,
            0);
}

TEST_P(JobQueueTest, CountActiveJobsCountsQueuedRunningAndFailedJobsByKindAndState) {
  const Job a = Enqueue(AddFile("a"));
  Enqueue(AddFile("b"));
  const Job c = Enqueue(AddFile("c"));
  const Job d = Enqueue(AddFile("d"));
  ASSERT_TRUE(Claim(a.id));
  ASSERT_TRUE(Claim(c.id));
  ASSERT_TRUE(InSession([&](Session& s_) {
                return JobQueue::FailStage(s_, c, NotFoundError("gone"), 30);
              }).ok());
  ASSERT_TRUE(Claim(d.id));
  ASSERT_TRUE(InSession([&](Session& s_) { return JobQueue::FinishStage(s_, d, 30); }).ok());
  const Entry w = AddFile("w");
  ASSERT_TRUE(InSession([&](Session& s_) {
                return Exec(s_, "UPDATE entries SET state = 'online', cached = 1 WHERE id = " +
                                    std::to_string(w.id));
              }).ok());
  const Entry written = Fresh(w);
  ASSERT_TRUE(
      InSession([&](Session& s_) { return JobQueue::EnqueueArchive(s_, written, 10); }).ok());
  const auto summary = *InSession([&](Session& s_) { return CountActiveJobs(s_); });
  std::vector<std::tuple<JobKind, JobState, int64_t>> got;
  for (const JobCount& n : summary) got.emplace_back(n.kind, n.state, n.count);
  EXPECT_EQ(got, (std::vector<std::tuple<JobKind, JobState, int64_t>>{
                     {JobKind::kArchive, JobState::kQueued, 1},
                     {JobKind::kStage, JobState::kFailed, 1},
                     {JobKind::kStage, JobState::kQueued, 1},
                     {JobKind::kStage, JobState::kRunning, 1}}));
}

// Item 5 of issue 13: claims carry an owner and a lease.
TEST_P(JobQueueTest, AClaimRecordsItsOwnerAndLease) {
  const Job j = Enqueue(AddFile("f"));
  ASSERT_TRUE(
      *InSession([&](Session& s_) { return JobQueue::Claim(s_, j.id, "host-a pid 1", 500, 20); }));
  const auto now = *InSession([&](Session& s_) { return JobQueue::Get(s_, j.id); });
  EXPECT_EQ(now->state, JobState::kRunning);
  EXPECT_EQ(now->owner, "host-a pid 1");
  EXPECT_EQ(now->lease_until_ns, 500);
  EXPECT_EQ(now->started_ns, 20);
  // Someone else's claim of a running job fails and changes nothing.
  EXPECT_FALSE(
      *InSession([&](Session& s_) { return JobQueue::Claim(s_, j.id, "host-b pid 2", 900, 30); }));
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, j.id); }))->owner,
            "host-a pid 1");
}

TEST_P(JobQueueTest, AnEndedLeaseIsRequeuedByAnyEngineButItsOwner) {
  // An archive job, so that its entry's state goes back with it.
  const Entry f = AddFile("f");
  ASSERT_TRUE(InSession([&](Session& s_) {
                return Exec(s_, "UPDATE entries SET state = 'online', cached = 1 WHERE id = " +
                                    std::to_string(f.id));
              }).ok());
  const Entry written = Fresh(f);
  auto queued = InSession([&](Session& s_) { return JobQueue::EnqueueArchive(s_, written, 10); });
  ASSERT_TRUE(queued.ok() && queued->has_value());
  const int64_t id = (*queued)->id;
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Claim(s_, id, "a pid 1", 100, 20); }));
  EXPECT_EQ(Fresh(f).state, FileState::kArchiving);
  const auto requeue = [&](const std::string& me, int64_t now) {
    return *InSession([&](Session& s_) { return JobQueue::RequeueAbandoned(s_, me, "", now); });
  };
  EXPECT_EQ(requeue("b pid 2", 99), 0);   // still held
  EXPECT_EQ(requeue("a pid 1", 500), 0);  // its owner never takes its own job back
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, id); }))->state,
            JobState::kRunning);
  EXPECT_EQ(requeue("b pid 2", 100), 1);  // ended: the other engine takes it back
  const auto job = *InSession([&](Session& s_) { return JobQueue::Get(s_, id); });
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->attempts, 0);  // the interrupted attempt does not count
  EXPECT_EQ(Fresh(f).state, FileState::kQueued);
  ASSERT_TRUE(
      *InSession([&](Session& s_) { return JobQueue::Claim(s_, id, "b pid 2", 900, 110); }));
  EXPECT_EQ(Fresh(f).state, FileState::kArchiving);
}

TEST_P(JobQueueTest, ARenewedLeaseIsNotRequeued) {
  const Job j = Enqueue(AddFile("f"));
  const Job k = Enqueue(AddFile("g"));
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Claim(s_, j.id, "a", 100, 20); }));
  ASSERT_TRUE(*InSession([&](Session& s_) { return JobQueue::Claim(s_, k.id, "c", 100, 20); }));
  EXPECT_EQ(*InSession([&](Session& s_) { return JobQueue::RenewLeases(s_, "a", 200); }), 1);
  // Only c's job had its lease end.
  EXPECT_EQ(*InSession([&](Session& s_) { return JobQueue::RequeueAbandoned(s_, "b", "", 150); }),
            1);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, j.id); }))->state,
            JobState::kRunning);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, k.id); }))->state,
            JobState::kQueued);
  EXPECT_EQ(*InSession([&](Session& s_) { return JobQueue::RequeueAbandoned(s_, "b", "", 200); }),
            1);
}

// A job running when the catalog was migrated to schema 15 names no owner
// and no lease: any engine takes it back.
TEST_P(JobQueueTest, ARunningJobFromBeforeLeasesIsRequeuedByAnyEngine) {
  const Job j = Enqueue(AddFile("f"));
  ASSERT_TRUE(Claim(j.id));
  ASSERT_TRUE(InSession([&](Session& s_) {
                return Exec(s_, "UPDATE jobs SET owner = NULL, lease_until_ns = 0 WHERE id = " +
                                    std::to_string(j.id));
              }).ok());
  EXPECT_EQ(
      *InSession([&](Session& s_) { return JobQueue::RequeueAbandoned(s_, "b pid 2", "", 1); }), 1);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, j.id); }))->state,
            JobState::kQueued);
}

TEST_P(JobQueueTest, AStartingEngineRequeuesWhatItsHostsEarlierEnginesRan) {
  const Job mine = Enqueue(AddFile("f"));
  const Job theirs = Enqueue(AddFile("g"));
  const Job similar = Enqueue(AddFile("h"));
  ASSERT_TRUE(*InSession(
      [&](Session& s_) { return JobQueue::Claim(s_, mine.id, "node1 pid 7 at 1", 1000, 20); }));
  ASSERT_TRUE(*InSession(
      [&](Session& s_) { return JobQueue::Claim(s_, theirs.id, "node2 pid 7 at 1", 1000, 20); }));
  ASSERT_TRUE(*InSession(
      [&](Session& s_) { return JobQueue::Claim(s_, similar.id, "node10 pid 7 at 1", 1000, 20); }));
  // node1 restarts long before the leases end: its old engine's job comes
  // back at once, the other hosts' jobs stay theirs.
  EXPECT_EQ(*InSession([&](Session& s_) {
    return JobQueue::RequeueAbandoned(s_, "node1 pid 9 at 2", "node1 ", 30);
  }),
            1);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, mine.id); }))->state,
            JobState::kQueued);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, theirs.id); }))->state,
            JobState::kRunning);
  EXPECT_EQ((*InSession([&](Session& s_) { return JobQueue::Get(s_, similar.id); }))->state,
            JobState::kRunning);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Implementations, JobQueueTest,
                         ::testing::ValuesIn(CatalogImplementations()), ImplementationName);

}  // namespace hsmfs::catalog
