#include "catalog/job_queue.h"

#include "catalog/session_impl.h"

namespace hsmfs::catalog {
namespace {

constexpr std::string_view kKindNames[] = {"stage", "archive"};
constexpr std::string_view kStateNames[] = {"queued", "running", "done", "failed", "cancelled"};

SessionImpl& Impl(Session& s) { return SessionAccess::Impl(s); }

}  // namespace

std::string_view JobKindName(JobKind kind) { return kKindNames[static_cast<int>(kind)]; }
std::string_view JobStateName(JobState state) { return kStateNames[static_cast<int>(state)]; }

Result<JobKind> ParseJobKind(std::string_view name) {
  for (size_t i = 0; i < std::size(kKindNames); ++i) {
    if (kKindNames[i] == name) return static_cast<JobKind>(i);
  }
  return InvalidArgumentError("unknown job kind \"" + std::string(name) + "\"");
}

Result<JobState> ParseJobState(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (kStateNames[i] == name) return static_cast<JobState>(i);
  }
  return InvalidArgumentError("unknown job state \"" + std::string(name) + "\"");
}

Result<std::optional<Job>> JobQueue::EnqueueStage(Session& s, const Entry& entry,
                                                  const Requester& who, int64_t now_ns,
                                                  bool* created) {
  return Impl(s).EnqueueStage(entry, who, now_ns, created);
}

Result<std::optional<Job>> JobQueue::EnqueueArchive(Session& s, const Entry& entry,
                                                    int64_t now_ns) {
  return Impl(s).EnqueueArchive(entry, now_ns);
}

Result<bool> JobQueue::FinishArchive(Session& s, const Job& job, std::string_view checksum,
                                     uint64_t size, std::string_view location, int64_t now_ns) {
  return Impl(s).FinishArchive(job, checksum, size, location, now_ns);
}

Status JobQueue::FailArchive(Session& s, const Job& job, const Status& error, int64_t now_ns,
                             bool retry_when_back) {
  return Impl(s).FailArchive(job, error, now_ns, retry_when_back);
}

Result<std::vector<int64_t>> JobQueue::Supersede(Session& s, EntryId entry, int64_t now_ns) {
  return Impl(s).Supersede(entry, now_ns);
}

Result<std::vector<Job>> JobQueue::Runnable(Session& s, JobKind kind, std::string_view backend,
                                            int64_t now_ns, int limit) {
  return Impl(s).Runnable(kind, backend, now_ns, limit);
}

Result<bool> JobQueue::Claim(Session& s, int64_t job_id, std::string_view owner,
                             int64_t lease_until_ns, int64_t now_ns) {
  return Impl(s).Claim(job_id, owner, lease_until_ns, now_ns);
}

Result<int> JobQueue::RenewLeases(Session& s, std::string_view owner, int64_t lease_until_ns) {
  return Impl(s).RenewLeases(owner, lease_until_ns);
}

Result<int> JobQueue::RequeueAbandoned(Session& s, std::string_view me,
                                       std::string_view dead_owner_prefix, int64_t now_ns) {
  return Impl(s).RequeueAbandoned(me, dead_owner_prefix, now_ns);
}

Status JobQueue::FinishStage(Session& s, const Job& job, int64_t now_ns) {
  return Impl(s).FinishStage(job, now_ns);
}

Status JobQueue::FailStage(Session& s, const Job& job, const Status& error, int64_t now_ns) {
  return Impl(s).FailStage(job, error, now_ns);
}

Status JobQueue::Requeue(Session& s, const Job& job, const Status& error, int64_t not_before_ns,
                         int64_t now_ns, bool count_attempt) {
  return Impl(s).Requeue(job, error, not_before_ns, now_ns, count_attempt);
}

Status JobQueue::Progress(Session& s, int64_t job_id, uint64_t bytes_done, int64_t now_ns) {
  return Impl(s).Progress(job_id, bytes_done, now_ns);
}

Result<int> JobQueue::ResetRunning(Session& s, int64_t now_ns) {
  return Impl(s).ResetRunning(now_ns);
}

Result<bool> JobQueue::Cancel(Session& s, int64_t job_id, int64_t now_ns) {
  return Impl(s).Cancel(job_id, now_ns);
}

Result<bool> JobQueue::Retry(Session& s, int64_t job_id, int64_t now_ns, bool fresh_attempts) {
  return Impl(s).Retry(job_id, now_ns, fresh_attempts);
}

Result<std::vector<int64_t>> JobQueue::FailedWhileDown(Session& s, JobKind kind,
                                                       std::string_view backend, int limit) {
  return Impl(s).FailedWhileDown(kind, backend, limit);
}

Result<std::optional<Job>> JobQueue::Get(Session& s, int64_t job_id) {
  return Impl(s).GetJob(job_id);
}

Result<std::optional<Job>> JobQueue::ActiveFor(Session& s, EntryId entry, JobKind kind) {
  return Impl(s).ActiveFor(entry, kind);
}

Result<std::vector<Job>> JobQueue::List(Session& s, const JobFilter& filter) {
  return Impl(s).ListJobs(filter);
}

Result<int64_t> JobQueue::QueuePosition(Session& s, const Job& job) {
  return Impl(s).QueuePosition(job);
}

Result<std::vector<EntryId>> JobQueue::UnarchivedWithoutJob(Session& s) {
  return Impl(s).UnarchivedWithoutJob();
}

Result<std::vector<std::pair<EntryId, int64_t>>> JobQueue::ActiveArchivesBelow(Session& s,
                                                                               EntryId dir) {
  return Impl(s).ActiveArchivesBelow(dir);
}

Result<std::vector<JobCount>> CountActiveJobs(Session& s) { return Impl(s).CountActiveJobs(); }

Result<RecallTimes> RecentRecallTimes(Session& s, std::string_view backend, int limit) {
  return Impl(s).RecentRecallTimes(backend, limit);
}

}  // namespace hsmfs::catalog
