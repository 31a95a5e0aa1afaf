#pragma once

// JobQueue: durable recall ("stage") and archive jobs, one row each in the
// catalog's `jobs` table. Every transition of a job and of its entry's state
// happens in one transaction, so the catalog never shows an entry `staging`
// without an active job, and a crash at any instant loses no job.
//
// All functions work inside the caller's Session (and transaction, if any);
// they are stateless. There is at most one active (queued or running) job per
// entry and kind: requests for a file that is already being recalled join the
// existing job. A running job is claimed by one engine (its owner) until a
// lease ends; the owner renews the lease while it works (RenewLeases). A job
// whose engine died goes back to `queued` when another engine sees its lease
// ended, or at once when the next engine of the same host starts
// (RequeueAbandoned), never while its engine still holds it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"

namespace hsmfs::catalog {

enum class JobKind { kStage, kArchive };
enum class JobState { kQueued, kRunning, kDone, kFailed, kCancelled };

std::string_view JobKindName(JobKind kind);
Result<JobKind> ParseJobKind(std::string_view name);
std::string_view JobStateName(JobState state);
Result<JobState> ParseJobState(std::string_view name);

// Who asked: shown by hsmctl jobs, and used to refuse recalls by scanners;
// uid and gid own what it creates through the mount.
struct Requester {
  uint32_t uid = 0;
  int32_t pid = 0;
  std::string command;
  uint32_t gid = 0;  // not stored with jobs
};

struct Job {
  int64_t id = 0;
  JobKind kind = JobKind::kStage;
  EntryId entry_id = 0;
  JobState state = JobState::kQueued;
  int attempts = 0;
  std::string last_error;
  Requester requester;
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
  int64_t not_before_ns = 0;  // back-off: not dispatched before this
  int64_t started_ns = 0;     // last time it started running
  int64_t finished_ns = 0;
  std::string backend;
  std::string volume;
  int64_t position = 0;
  uint64_t bytes_total = 0;
  uint64_t bytes_done = 0;
  int64_t version = 0;         // archive: the entry version it archives
  std::string checksum;        // archive: of the data sent
  std::string owner;           // the engine that claimed it last ("" if none)
  int64_t lease_until_ns = 0;  // running: the owner's claim ends then unless renewed
  Entry entry;                 // the job's entry as it is now
};

struct JobFilter {
  std::optional<JobKind> kind;
  std::vector<JobState> states;  // empty: any
  std::vector<int64_t> ids;      // empty: any
  int limit = 0;                 // 0: no limit
};

class JobQueue {
 public:
  // Queues a recall of `entry` unless one is active, and marks the entry
  // `staging`. Sets `*created` to whether a new job was made. Returns nullopt
  // when the entry is cached by now (nothing to recall).
  static Result<std::optional<Job>> EnqueueStage(Session& s, const Entry& entry,
                                                 const Requester& who, int64_t now_ns,
                                                 bool* created = nullptr);

  // Queues archiving of `entry`'s current version (its data is in the cache)
  // and marks the entry `queued`. nullopt when the entry is not `online` any
  // more or a job for it is active (a newer close will queue it).
  static Result<std::optional<Job>> EnqueueArchive(Session& s, const Entry& entry, int64_t now_ns);
  // An archive finished with data of `checksum`: the entry becomes `dual`,
  // unless it was modified or moved since (then false: the job is marked
  // superseded and the newer version has its own job).
  // `size` is how many bytes were archived.
  static Result<bool> FinishArchive(Session& s, const Job& job, std::string_view checksum,
                                    uint64_t size, std::string_view location, int64_t now_ns);
  // Archiving failed for good: the job and the entry are `failed` (the data
  // stays cached: it is the only copy). `retry_when_back`: the backend did not
  // answer; RetryWhenBack queues the job again once it does.
  static Status FailArchive(Session& s, const Job& job, const Status& error, int64_t now_ns,
                            bool retry_when_back = false);
  // A modification makes active archive jobs of `entry` obsolete: they are
  // cancelled ("superseded"). Returns their ids (running ones are the caller's
  // to stop).
  static Result<std::vector<int64_t>> Supersede(Session& s, EntryId entry, int64_t now_ns);

  // Queued jobs of `kind` on `backend` that may run at `now_ns`, in dispatch
  // order (volume, position, age), at most `limit`.
  static Result<std::vector<Job>> Runnable(Session& s, JobKind kind, std::string_view backend,
                                           int64_t now_ns, int limit);
  // Marks a queued job running, claimed by `owner` until `lease_until_ns`
  // (an archive job's entry becomes `archiving`). False if it is no longer
  // queued (cancelled, or claimed by someone else).
  static Result<bool> Claim(Session& s, int64_t job_id, std::string_view owner,
                            int64_t lease_until_ns, int64_t now_ns);
  // Extends the lease of every job `owner` runs to `lease_until_ns`. Returns
  // how many.
  static Result<int> RenewLeases(Session& s, std::string_view owner, int64_t lease_until_ns);
  // Running jobs whose engine is gone go back to queued (the interrupted
  // attempt does not count; an archive job's entry is `queued` again). Gone
  // means: the lease ended by `now_ns`, or (`dead_owner_prefix` not empty)
  // the owner starts with it, as an earlier engine of the caller's host does
  // (the caller holds that host's engine lock). Never a job `me` owns.
  // Returns how many.
  static Result<int> RequeueAbandoned(Session& s, std::string_view me,
                                      std::string_view dead_owner_prefix, int64_t now_ns);

  // A recall finished: the job is done and the entry is cached and `dual`.
  static Status FinishStage(Session& s, const Job& job, int64_t now_ns);
  // A recall failed for good: the job and the entry are `failed`, with `error`.
  static Status FailStage(Session& s, const Job& job, const Status& error, int64_t now_ns);
  // A transient failure: the job waits until `not_before_ns` and runs again.
  // `count_attempt` false gives the attempt back (the failure was ours, e.g. a
  // full cache, not the backend's).
  static Status Requeue(Session& s, const Job& job, const Status& error, int64_t not_before_ns,
                        int64_t now_ns, bool count_attempt = true);
  static Status Progress(Session& s, int64_t job_id, uint64_t bytes_done, int64_t now_ns);

  // Every running job, whoever holds it, goes back to queued (the interrupted
  // attempt does not count): for a catalog known to have no live engine.
  // Returns how many.
  static Result<int> ResetRunning(Session& s, int64_t now_ns);
  // Cancels a queued or running job (a recall's entry goes back to offline).
  // False if the job was not active.
  static Result<bool> Cancel(Session& s, int64_t job_id, int64_t now_ns);
  // Queues a failed or cancelled job again (fresh attempts). False if it was
  // not failed or cancelled, or another job for its entry is active.
  // `fresh_attempts` false keeps the attempts used, so that one more transient
  // failure fails the job again at once (a probe of a backend that was down).
  static Result<bool> Retry(Session& s, int64_t job_id, int64_t now_ns, bool fresh_attempts = true);
  // Failed jobs of `kind` on `backend` marked retry_when_back whose entry is
  // still failed at the job's version (so Retry takes them), smallest entry
  // first, at most `limit` (0: all).
  static Result<std::vector<int64_t>> FailedWhileDown(Session& s, JobKind kind,
                                                      std::string_view backend, int limit);

  static Result<std::optional<Job>> Get(Session& s, int64_t job_id);
  static Result<std::optional<Job>> ActiveFor(Session& s, EntryId entry, JobKind kind);
  // Newest first.
  static Result<std::vector<Job>> List(Session& s, const JobFilter& filter);
  // 1-based place of a queued job among the queued jobs of its kind and
  // backend, in dispatch order; 0 when it is running.
  static Result<int64_t> QueuePosition(Session& s, const Job& job);

  // Entries written through the mount (`online`: a file with a cached copy,
  // a directory or a symlink) with no active archive job: closed before a
  // crash and never queued.
  static Result<std::vector<EntryId>> UnarchivedWithoutJob(Session& s);
  // (entry, job) of the active (queued or running) archive jobs of `dir` and
  // of everything below it.
  static Result<std::vector<std::pair<EntryId, int64_t>>> ActiveArchivesBelow(Session& s,
                                                                              EntryId dir);
};

// Queries of engine::Service (hsmctl daemon status, recall previews).

// How many jobs of one kind are in one state.
struct JobCount {
  JobKind kind = JobKind::kStage;
  JobState state = JobState::kQueued;
  int64_t count = 0;
};
// Counts of queued, running and failed jobs, by kind then state.
Result<std::vector<JobCount>> CountActiveJobs(Session& s);

// The last recalls of a backend that finished: how many (at most `limit`)
// and their mean run time.
struct RecallTimes {
  int64_t count = 0;
  double mean_seconds = 0;
};
Result<RecallTimes> RecentRecallTimes(Session& s, std::string_view backend, int limit);

}  // namespace hsmfs::catalog
