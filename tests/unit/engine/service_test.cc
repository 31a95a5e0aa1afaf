// engine::Service without any front end: what hsmctl (and next hsmrest and
// hsmingest) call. A FakeBackend, a FakeClock, a real catalog and cache in a
// temporary directory; an engine that runs no jobs, as hsmctl's does.

#include "engine/service.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "backends/testing/fake_backend.h"
#include "catalog/job_queue.h"

namespace hsmfs::fs {
namespace {

using namespace std::chrono_literals;
using catalog::Entry;
using catalog::FileState;
using catalog::JobKind;
using catalog::JobState;
namespace stdfs = std::filesystem;

const catalog::Requester kMe{1000, 42, "test", 1000};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_service_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_ / "local");
    config_.catalog.path = dir_ / "catalog.db";
    config_.cache.dir = dir_ / "cache";
    config_.cache.write_wait = 2s;
    config_.stage.workers = 2;
    BackendConfig vault;
    vault.name = "vault";
    vault.type = "posix";
    vault.root = "/nonexistent";
    vault.writable = {"incoming"};
    config_.backends.push_back(vault);
  }
  void TearDown() override {
    service_.reset();
    engine_.reset();
    stdfs::remove_all(dir_);
  }

  void Open() {
    auto fake = std::make_unique<backends::FakeBackend>();
    fake->AddFile("act6/a.dat", std::string(1000, 'a'));
    fake->AddFile("act6/b.dat", std::string(3000, 'b'));
    fake->AddFile("act6/c.dat", std::string(2000, 'c'));
    fake->SetPlacement("act6/a.dat", "T00001", 1);
    fake->SetPlacement("act6/b.dat", "T00002", 1);
    fake->SetPlacement("act6/c.dat", "T00001", 2);
    fake->AddFile("hist.dat", "h");
    fake->AddDir("incoming");
    EngineOptions options;
    options.program = "service_test";
    options.backends["vault"] = std::move(fake);
    auto engine = Engine::Open(config_, clock_, std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    service_ = std::make_unique<Service>(*engine_);
  }

  Entry Resolve(const std::string& path) {
    auto e = service_->names().Resolve(path, CancelToken::None());
    EXPECT_TRUE(e.ok()) << path << ": " << e.status().ToString();
    return e.ok() ? *e : Entry{};
  }
  std::vector<catalog::Job> Jobs(JobKind kind) {
    catalog::JobFilter filter;
    filter.kind = kind;
    return *service_->jobs().List(filter);
  }
  stdfs::path LocalFile(const std::string& name, const std::string& data) {
    const stdfs::path p = dir_ / "local" / name;
    std::ofstream(p) << data;
    return p;
  }
  IngestOptions Options() {
    IngestOptions o;
    o.who = kMe;
    o.incomplete_error = catalog::IncompletePutError(::getpid());
    return o;
  }

  stdfs::path dir_;
  FakeClock clock_;
  Config config_;
  std::unique_ptr<Engine> engine_;  // the test's window on the catalog
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, FilesBelowListsDirectoriesOnFirstUse) {
  Open();
  std::vector<Entry> files;
  int errors = 0;
  service_->names().FilesBelow(Resolve("vault/act6"), &files, [&](const Status&) { ++errors; });
  EXPECT_EQ(errors, 0);
  ASSERT_EQ(files.size(), 3u);
  // The root shows configured backends only.
  auto top = service_->names().List(Resolve(""), CancelToken::None());
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].name, "vault");
}

TEST_F(ServiceTest, RequestQueuesABatchInOneGoAndJoinsActiveRecalls) {
  Open();
  std::vector<Entry> files;
  service_->names().FilesBelow(Resolve("vault/act6"), &files, [](const Status&) {});
  auto batch = service_->recalls().Request(files, kMe);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->jobs.size(), 3u);
  EXPECT_EQ(batch->created, 3);
  EXPECT_EQ(batch->already_online, 0);
  // Asked again (the entries are staging now): the same jobs, none new.
  std::vector<Entry> again;
  service_->names().FilesBelow(Resolve("vault/act6"), &again, [](const Status&) {});
  auto joined = service_->recalls().Request(again, kMe);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->created, 0);
  EXPECT_EQ(std::set<int64_t>(joined->jobs.begin(), joined->jobs.end()),
            std::set<int64_t>(batch->jobs.begin(), batch->jobs.end()));
  auto summary = service_->jobs().Summary();
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary->size(), 1u);
  EXPECT_EQ((*summary)[0].kind, JobKind::kStage);
  EXPECT_EQ((*summary)[0].state, JobState::kQueued);
  EXPECT_EQ((*summary)[0].count, 3);
  EXPECT_TRUE(*service_->jobs().Cancel(batch->jobs[0]));
  EXPECT_FALSE(*service_->jobs().Cancel(batch->jobs[0]));  // not active any more
  EXPECT_TRUE(*service_->jobs().Retry(batch->jobs[0]));
}

TEST_F(ServiceTest, PreviewAndEtaShareOneModel) {
  Open();
  std::vector<Entry> files;
  service_->names().FilesBelow(Resolve("vault/act6"), &files, [](const Status&) {});
  // Nothing timed, nothing configured: 5 s a recall, 2 workers: 2 rounds.
  auto preview = service_->recalls().Preview(files);
  ASSERT_TRUE(preview.ok());
  ASSERT_EQ(preview->backends.size(), 1u);
  const RecallPlan& plan = preview->backends[0];
  EXPECT_EQ(plan.files, 3);
  EXPECT_EQ(plan.bytes, 6000u);
  EXPECT_EQ(plan.volumes.size(), 2u);
  EXPECT_EQ(plan.timing.workers, 2);
  EXPECT_EQ(plan.eta, Duration(10s));
  EXPECT_NE(plan.timing.basis.find("assumed 5s"), std::string::npos) << plan.timing.basis;
  EXPECT_TRUE(Jobs(JobKind::kStage).empty());  // a preview queues nothing

  // One recall of the backend took 3 s: both the preview of a batch and the
  // ETA of a queued recall (user.hsm.eta) now count 3 s a round.
  Entry hist = Resolve("vault/hist.dat");
  auto one = service_->recalls().Request({hist}, kMe);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->jobs.size(), 1u);
  {
    auto session = engine_->catalog().Acquire();
    ASSERT_TRUE(session.ok());
    const int64_t t0 = clock_.WallNanos();
    ASSERT_TRUE(
        *catalog::JobQueue::Claim(*session, one->jobs[0], "service_test", t0 + 60'000'000'000, t0));
    auto job = catalog::JobQueue::Get(*session, one->jobs[0]);
    ASSERT_TRUE(job.ok() && *job);
    ASSERT_TRUE(catalog::JobQueue::FinishStage(*session, **job, t0 + 3'000'000'000).ok());
  }
  preview = service_->recalls().Preview(files);
  ASSERT_TRUE(preview.ok());
  EXPECT_EQ(preview->backends[0].eta, Duration(6s));  // 2 rounds of 3 s
  EXPECT_NE(preview->backends[0].timing.basis.find("from the last 1 recalls of vault"),
            std::string::npos)
      << preview->backends[0].timing.basis;
  catalog::Job queued;
  queued.backend = "vault";
  queued.state = JobState::kQueued;
  EXPECT_EQ(*service_->recalls().Eta(queued, 3), Duration(6s));
  EXPECT_EQ(*service_->recalls().Eta(queued, 1), Duration(3s));
}

TEST_F(ServiceTest, AConfiguredStageDelayIsTheGuessBeforeAnyRecallIsTimed) {
  config_.backends[0].stage_delay = 2s;
  Open();
  std::vector<Entry> files;
  service_->names().FilesBelow(Resolve("vault/act6"), &files, [](const Status&) {});
  auto preview = service_->recalls().Preview(files);
  ASSERT_TRUE(preview.ok());
  EXPECT_EQ(preview->backends[0].eta, Duration(4s));  // 2 rounds of 2 s
  EXPECT_NE(preview->backends[0].timing.basis.find("stage_delay"), std::string::npos);
}

TEST_F(ServiceTest, IngestCopiesAFileInAndQueuesItsArchiveJob) {
  Open();
  const stdfs::path local = LocalFile("run42.dat", "forty-two bytes of data, give or take....");
  struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, local.c_str(), times, 0), 0);
  IngestTotals totals;
  ASSERT_TRUE(
      service_->writes().Ingest({local}, Resolve("vault/incoming"), Options(), &totals).ok());
  EXPECT_EQ(totals.files, 1);
  EXPECT_EQ(totals.bytes, stdfs::file_size(local));
  ASSERT_EQ(totals.entries.size(), 1u);
  Entry e = Resolve("vault/incoming/run42.dat");
  EXPECT_EQ(e.id, totals.entries[0]);
  EXPECT_TRUE(e.cached);
  EXPECT_EQ(e.size, stdfs::file_size(local));
  EXPECT_EQ(e.mtime_ns, int64_t{1700000000} * 1'000'000'000 + 5);  // kept, as cp -p
  EXPECT_EQ(e.uid, 1000);
  // No engine runs jobs here: the job is queued at once, for whichever runs next.
  EXPECT_EQ(e.state, FileState::kQueued);
  auto jobs = Jobs(JobKind::kArchive);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].entry_id, e.id);

  // The name exists: refused without force (the others would still go in).
  IngestTotals again;
  Status exists = service_->writes().Ingest({local}, Resolve("vault/incoming"), Options(), &again);
  EXPECT_EQ(exists.code(), Code::kAlreadyExists) << exists.ToString();
  // Outside a writable directory: EROFS.
  Status ro = service_->writes().Ingest({local}, Resolve("vault/act6"), Options(), &again);
  EXPECT_EQ(ro.code(), Code::kReadOnly) << ro.ToString();
  // With force the file is replaced: a new version and a new job.
  LocalFile("run42.dat", "new");
  IngestOptions force = Options();
  force.force = true;
  ASSERT_TRUE(service_->writes().Ingest({local}, Resolve("vault/incoming"), force, &again).ok());
  EXPECT_EQ(Resolve("vault/incoming/run42.dat").size, 3u);
  EXPECT_GT(Resolve("vault/incoming/run42.dat").version, e.version);
}

TEST_F(ServiceTest, AnInterruptedIngestLeavesNothingHalfCopied) {
  Open();
  const stdfs::path tree = dir_ / "local" / "tree";
  stdfs::create_directories(tree);
  std::ofstream(tree / "big.dat") << std::string(3 << 20, 'x');  // 3 reads of 1 MiB
  std::atomic<bool> stop{false};
  IngestOptions options = Options();
  options.interrupted = &stop;
  options.progress = [&](int64_t, uint64_t bytes) {
    if (bytes > 0) stop = true;  // Ctrl-C after the first MiB
  };
  IngestTotals totals;
  Status s = service_->writes().Ingest({tree}, Resolve("vault/incoming"), options, &totals);
  EXPECT_EQ(s.code(), Code::kCancelled) << s.ToString();
  EXPECT_EQ(totals.files, 0);
  // The directory was made (and queued); the half-copied file is gone, and
  // no archive job names it.
  auto big = service_->names().Resolve("vault/incoming/tree/big.dat", CancelToken::None());
  EXPECT_EQ(big.status().code(), Code::kNotFound);
  for (const catalog::Job& j : Jobs(JobKind::kArchive)) EXPECT_NE(j.entry.name, "big.dat");
}

TEST_F(ServiceTest, AFileOpenForWritingSettlesOnlyAtItsLastClose) {
  Open();
  IngestTotals totals;
  ASSERT_TRUE(
      service_->writes()
          .Ingest({LocalFile("w.dat", "data")}, Resolve("vault/incoming"), Options(), &totals)
          .ok());
  ASSERT_TRUE(service_->jobs().Cancel(Jobs(JobKind::kArchive)[0].id).ok());
  Entry e = Resolve("vault/incoming/w.dat");
  // Two writers through the engine's registry, as two descriptors of the mount.
  bool modified = true;
  auto fd1 = service_->writes().Open(e, /*truncate=*/false, &modified);
  ASSERT_TRUE(fd1.ok()) << fd1.status().ToString();
  EXPECT_FALSE(modified);
  auto fd2 = service_->writes().Open(e, /*truncate=*/true, &modified);
  ASSERT_TRUE(fd2.ok());
  EXPECT_TRUE(modified);  // truncated: a new version already
  const size_t before = Jobs(JobKind::kArchive).size();
  // Asked to settle while open: nothing is queued under the writers.
  service_->writes().Settle(e.id);
  EXPECT_EQ(Jobs(JobKind::kArchive).size(), before);
  ASSERT_EQ(*service_->writes().Write(e.id, *fd2, "abc", 3, 0), 3u);
  service_->writes().Close(e.id, *fd2, /*keep=*/true);
  ::close(*fd2);
  engine_->cache().Closed(e.id);
  EXPECT_EQ(Jobs(JobKind::kArchive).size(), before);  // one writer is left
  service_->writes().Close(e.id, *fd1, /*keep=*/true);
  ::close(*fd1);
  engine_->cache().Closed(e.id);
  // The last close recorded the size and settled it: queued, with its data.
  auto jobs = Jobs(JobKind::kArchive);
  ASSERT_EQ(jobs.size(), before + 1);
  EXPECT_EQ(jobs[0].state, JobState::kQueued);
  EXPECT_EQ(Resolve("vault/incoming/w.dat").size, 3u);
  EXPECT_EQ(Resolve("vault/incoming/w.dat").state, FileState::kQueued);
}

}  // namespace
}  // namespace hsmfs::fs
