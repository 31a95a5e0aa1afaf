#include "catalog/job_queue.h"

namespace hsmfs::catalog {
namespace {

constexpr std::string_view kKindNames[] = {"stage", "archive"};
constexpr std::string_view kStateNames[] = {"queued", "running", "done", "failed", "cancelled"};

std::string JobColumns() {
  return "j.id, j.kind, j.entry_id, j.state, j.attempts, j.last_error, j.requester_uid, "
         "j.requester_pid, j.requester_cmd, j.created_ns, j.updated_ns, j.not_before_ns, "
         "j.started_ns, j.finished_ns, j.backend, j.volume, j.position, j.bytes_total, "
         "j.bytes_done, j.version, j.checksum, " +
         EntryColumns("e");
}
constexpr int kEntryFirstColumn = 21;

std::string SelectJobs() {
  return "SELECT " + JobColumns() + " FROM jobs j JOIN entries e ON e.id = j.entry_id ";
}

Job ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Int(0);
  j.kind = ParseJobKind(s.Text(1)).value_or(JobKind::kStage);
  j.entry_id = s.Int(2);
  j.state = ParseJobState(s.Text(3)).value_or(JobState::kFailed);
  j.attempts = static_cast<int>(s.Int(4));
  j.last_error = s.Text(5);
  j.requester.uid = static_cast<uint32_t>(s.Int(6));
  j.requester.pid = static_cast<int32_t>(s.Int(7));
  j.requester.command = s.Text(8);
  j.created_ns = s.Int(9);
  j.updated_ns = s.Int(10);
  j.not_before_ns = s.Int(11);
  j.started_ns = s.Int(12);
  j.finished_ns = s.Int(13);
  j.backend = s.Text(14);
  j.volume = s.Text(15);
  j.position = s.Int(16);
  j.bytes_total = static_cast<uint64_t>(s.Int(17));
  j.bytes_done = static_cast<uint64_t>(s.Int(18));
  j.version = s.Int(19);
  j.checksum = s.Text(20);
  j.entry = ReadEntryColumns(s, kEntryFirstColumn);
  return j;
}

Result<std::vector<Job>> RunQuery(Stmt& stmt) {
  std::vector<Job> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(ReadJob(stmt));
  }
}

Status SetEntryState(Session& s, EntryId id, FileState state, std::string_view error,
                     int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         s.db().Prepare("UPDATE entries SET state = ?, error = ?, seen_gen = "
                                        "MAX(seen_gen, ?) WHERE id = ?"));
  st.Bind(1, StateName(state)).BindText(2, error).Bind(3, now_ns).Bind(4, id);
  return st.Run();
}

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
  if (created) *created = false;
  HSMFS_ASSIGN_OR_RETURN(auto existing, ActiveFor(s, entry.id, JobKind::kStage));
  if (existing) return existing;
  // The caller's copy of the entry may predate a recall that just finished.
  HSMFS_ASSIGN_OR_RETURN(Entry now, s.Get(entry.id));
  // A symlink has nothing to recall: its target is in the catalog, and a
  // backend must never be asked to read (follow) it.
  if (now.cached || now.is_symlink()) return std::optional<Job>();
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      s.db().Prepare("INSERT INTO jobs (kind, entry_id, state, requester_uid, requester_pid, "
                     "requester_cmd, created_ns, updated_ns, backend, volume, position, "
                     "bytes_total) VALUES ('stage', ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, entry.id)
      .Bind(2, int64_t{who.uid})
      .Bind(3, int64_t{who.pid})
      .BindText(4, who.command)
      .Bind(5, now_ns)
      .Bind(6, now_ns)
      .Bind(7, entry.backend)
      .BindText(8, entry.volume)
      .Bind(9, entry.position)
      .Bind(10, static_cast<int64_t>(entry.size));
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int64_t id = s.db().LastInsertId();
  HSMFS_RETURN_IF_ERROR(SetEntryState(s, entry.id, FileState::kStaging, "", now_ns));
  if (created) *created = true;
  HSMFS_ASSIGN_OR_RETURN(auto job, Get(s, id));
  if (!job) return InternalError("job " + std::to_string(id) + " vanished after insert");
  return job;
}

Result<std::vector<Job>> JobQueue::Runnable(Session& s, JobKind kind, std::string_view backend,
                                            int64_t now_ns, int limit) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare(SelectJobs() +
                              "WHERE j.kind = ? AND j.state = 'queued' AND j.backend = ? AND "
                              "j.not_before_ns <= ? ORDER BY j.volume, j.position, j.id LIMIT ?"));
  st.Bind(1, JobKindName(kind)).Bind(2, backend).Bind(3, now_ns).Bind(4, limit);
  return RunQuery(st);
}

Result<bool> JobQueue::Claim(Session& s, int64_t job_id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'running', attempts = attempts + 1, "
                              "started_ns = ?, updated_ns = ?, bytes_done = 0 "
                              "WHERE id = ? AND state = 'queued'"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (s.db().Changes() != 1) return false;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, s.db().Prepare("UPDATE entries SET state = 'archiving' WHERE state = 'queued' AND "
                             "id = (SELECT entry_id FROM jobs WHERE id = ? AND kind = 'archive')"));
  e.Bind(1, job_id);
  HSMFS_RETURN_IF_ERROR(e.Run());
  return true;
}

Result<std::optional<Job>> JobQueue::EnqueueArchive(Session& s, const Entry& entry,
                                                    int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Entry now, s.Get(entry.id));
  if (now.state != FileState::kOnline || now.version != entry.version) {
    return std::optional<Job>();
  }
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(s, entry.id, JobKind::kArchive));
  if (active) return std::optional<Job>();
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      s.db().Prepare("INSERT INTO jobs (kind, entry_id, state, requester_uid, requester_pid, "
                     "requester_cmd, created_ns, updated_ns, backend, bytes_total, version) "
                     "VALUES ('archive', ?, 'queued', 0, 0, NULL, ?, ?, ?, ?, ?)"));
  st.Bind(1, entry.id)
      .Bind(2, now_ns)
      .Bind(3, now_ns)
      .Bind(4, now.backend)
      .Bind(5, static_cast<int64_t>(now.size))
      .Bind(6, now.version);
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int64_t id = s.db().LastInsertId();
  HSMFS_RETURN_IF_ERROR(SetEntryState(s, entry.id, FileState::kQueued, "", now_ns));
  return Get(s, id);
}

Result<bool> JobQueue::FinishArchive(Session& s, const Job& job, std::string_view checksum,
                                     uint64_t size, std::string_view location, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, s.db().Prepare("UPDATE entries SET state = 'dual', checksum = ?, size = ?, "
                             "location = ?, on_backend = 1, error = NULL, "
                             "seen_gen = MAX(seen_gen, ?) "
                             "WHERE id = ? AND version = ? AND state IN ('queued', 'archiving')"));
  e.Bind(1, checksum)
      .Bind(2, static_cast<int64_t>(size))
      .BindText(3, location)
      .Bind(4, now_ns)
      .Bind(5, job.entry_id)
      .Bind(6, job.version);
  HSMFS_RETURN_IF_ERROR(e.Run());
  const bool current = s.db().Changes() == 1;
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         s.db().Prepare("UPDATE jobs SET state = ?, last_error = ?, checksum = ?, "
                                        "finished_ns = ?, updated_ns = ?, bytes_done = bytes_total "
                                        "WHERE id = ?"));
  st.Bind(1, current ? "done" : "cancelled")
      .BindText(2, current ? "" : "superseded by a newer version")
      .Bind(3, checksum)
      .Bind(4, now_ns)
      .Bind(5, now_ns)
      .Bind(6, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (current) HSMFS_RETURN_IF_ERROR(s.SetOnBackend(job.entry_id));
  return current;
}

Status JobQueue::FailArchive(Session& s, const Job& job, const Status& error, int64_t now_ns,
                             bool retry_when_back) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'failed', last_error = ?, "
                              "finished_ns = ?, updated_ns = ?, retry_when_back = ? WHERE id = ?"));
  st.Bind(1, error.message())
      .Bind(2, now_ns)
      .Bind(3, now_ns)
      .Bind(4, int64_t{retry_when_back})
      .Bind(5, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, s.db().Prepare("UPDATE entries SET state = 'failed', error = ?, "
                             "seen_gen = MAX(seen_gen, ?) WHERE id = ? AND version = ? AND "
                             "state IN ('queued', 'archiving')"));
  e.Bind(1, error.message()).Bind(2, now_ns).Bind(3, job.entry_id).Bind(4, job.version);
  return e.Run();
}

Result<std::vector<int64_t>> JobQueue::Supersede(Session& s, EntryId entry, int64_t now_ns) {
  std::vector<int64_t> ids;
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(s, entry, JobKind::kArchive));
  if (!active) return ids;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'cancelled', last_error = 'superseded by "
                              "a newer version', finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, active->id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  ids.push_back(active->id);
  return ids;
}

Status JobQueue::FinishStage(Session& s, const Job& job, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         s.db().Prepare("UPDATE jobs SET state = 'done', last_error = NULL, "
                                        "finished_ns = ?, updated_ns = ?, bytes_done = bytes_total "
                                        "WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, s.db().Prepare("UPDATE entries SET state = 'dual', cached = 1, error = NULL, "
                             "last_access_ns = ?, seen_gen = MAX(seen_gen, ?) WHERE id = ?"));
  e.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job.entry_id);
  return e.Run();
}

Status JobQueue::FailStage(Session& s, const Job& job, const Status& error, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         s.db().Prepare("UPDATE jobs SET state = 'failed', last_error = ?, "
                                        "finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, error.message()).Bind(2, now_ns).Bind(3, now_ns).Bind(4, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return SetEntryState(s, job.entry_id, FileState::kFailed, error.message(), now_ns);
}

Status JobQueue::Requeue(Session& s, const Job& job, const Status& error, int64_t not_before_ns,
                         int64_t now_ns, bool count_attempt) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'queued', last_error = ?, "
                              "not_before_ns = ?, updated_ns = ?, attempts = MAX(attempts - ?, 0) "
                              "WHERE id = ?"));
  st.Bind(1, error.message())
      .Bind(2, not_before_ns)
      .Bind(3, now_ns)
      .Bind(4, int64_t{count_attempt ? 0 : 1})
      .Bind(5, job.id);
  return st.Run();
}

Status JobQueue::Progress(Session& s, int64_t job_id, uint64_t bytes_done, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET bytes_done = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, static_cast<int64_t>(bytes_done)).Bind(2, now_ns).Bind(3, job_id);
  return st.Run();
}

Result<int> JobQueue::ResetRunning(Session& s, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'queued', updated_ns = ?, bytes_done = 0, "
                              "attempts = MAX(attempts - 1, 0) WHERE state = 'running'"));
  st.Bind(1, now_ns);
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int requeued = s.db().Changes();
  HSMFS_RETURN_IF_ERROR(
      s.db().Exec("UPDATE entries SET state = 'queued' WHERE state = 'archiving'"));
  return requeued;
}

Result<bool> JobQueue::Cancel(Session& s, int64_t job_id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(auto job, Get(s, job_id));
  if (!job || (job->state != JobState::kQueued && job->state != JobState::kRunning)) return false;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'cancelled', last_error = 'cancelled', "
                              "finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (job->kind == JobKind::kStage && !job->entry.cached) {
    HSMFS_RETURN_IF_ERROR(SetEntryState(s, job->entry_id, FileState::kOffline, "", now_ns));
  }
  if (job->kind == JobKind::kArchive && job->entry.version == job->version &&
      (job->entry.state == FileState::kQueued || job->entry.state == FileState::kArchiving)) {
    // Not archived: the data stays in the cache as it is, `online`.
    HSMFS_RETURN_IF_ERROR(SetEntryState(s, job->entry_id, FileState::kOnline, "", now_ns));
  }
  return true;
}

Result<bool> JobQueue::Retry(Session& s, int64_t job_id, int64_t now_ns, bool fresh_attempts) {
  HSMFS_ASSIGN_OR_RETURN(auto job, Get(s, job_id));
  if (!job || (job->state != JobState::kFailed && job->state != JobState::kCancelled)) {
    return false;
  }
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(s, job->entry_id, job->kind));
  if (active) return false;
  if (job->kind == JobKind::kStage && job->entry.cached) return false;  // nothing to recall
  // An archive job may only run again for the version it was made for.
  if (job->kind == JobKind::kArchive &&
      (job->entry.version != job->version ||
       (job->entry.state != FileState::kFailed && job->entry.state != FileState::kOnline))) {
    return false;
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("UPDATE jobs SET state = 'queued', attempts = CASE WHEN ? THEN 0 "
                              "ELSE attempts END, not_before_ns = 0, finished_ns = 0, "
                              "updated_ns = ?, bytes_done = 0, retry_when_back = 0 WHERE id = ?"));
  st.Bind(1, int64_t{fresh_attempts}).Bind(2, now_ns).Bind(3, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_RETURN_IF_ERROR(SetEntryState(
      s, job->entry_id, job->kind == JobKind::kStage ? FileState::kStaging : FileState::kQueued, "",
      now_ns));
  return true;
}

Result<std::vector<int64_t>> JobQueue::FailedWhileDown(Session& s, JobKind kind,
                                                       std::string_view backend, int limit) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("SELECT j.id FROM jobs j JOIN entries e ON e.id = j.entry_id "
                              "WHERE j.retry_when_back = 1 AND j.state = 'failed' AND "
                              "j.kind = ? AND j.backend = ? AND e.state = 'failed' AND "
                              "e.version = j.version ORDER BY e.size, j.id LIMIT ?"));
  st.Bind(1, JobKindName(kind)).Bind(2, backend).Bind(3, int64_t{limit > 0 ? limit : -1});
  std::vector<int64_t> ids;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return ids;
    ids.push_back(st.Int(0));
  }
}

Result<std::optional<Job>> JobQueue::Get(Session& s, int64_t job_id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, s.db().Prepare(SelectJobs() + "WHERE j.id = ?"));
  st.Bind(1, job_id);
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Job>();
  return std::optional<Job>(ReadJob(st));
}

Result<std::optional<Job>> JobQueue::ActiveFor(Session& s, EntryId entry, JobKind kind) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         s.db().Prepare(SelectJobs() + "WHERE j.entry_id = ? AND j.kind = ? AND "
                                                       "j.state IN ('queued', 'running')"));
  st.Bind(1, entry).Bind(2, JobKindName(kind));
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Job>();
  return std::optional<Job>(ReadJob(st));
}

Result<std::vector<Job>> JobQueue::List(Session& s, const JobFilter& filter) {
  std::string sql = SelectJobs() + "WHERE 1";
  if (filter.kind) sql += " AND j.kind = '" + std::string(JobKindName(*filter.kind)) + "'";
  if (!filter.states.empty()) {
    sql += " AND j.state IN (";
    for (size_t i = 0; i < filter.states.size(); ++i) {
      sql += (i ? ", '" : "'") + std::string(JobStateName(filter.states[i])) + "'";
    }
    sql += ")";
  }
  if (!filter.ids.empty()) {
    sql += " AND j.id IN (";
    for (size_t i = 0; i < filter.ids.size(); ++i) {
      sql += (i ? ", " : "") + std::to_string(filter.ids[i]);
    }
    sql += ")";
  }
  sql += " ORDER BY j.id DESC";
  if (filter.limit > 0) sql += " LIMIT " + std::to_string(filter.limit);
  // Built only from enum names and integers, so no injection; not cached, as
  // the text varies with the filter.
  HSMFS_ASSIGN_OR_RETURN(Stmt st, s.db().PrepareUncached(sql));
  return RunQuery(st);
}

Result<int64_t> JobQueue::QueuePosition(Session& s, const Job& job) {
  if (job.state != JobState::kQueued) return int64_t{0};
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      s.db().Prepare("SELECT COUNT(*) FROM jobs WHERE kind = ?1 AND state = 'queued' AND "
                     "backend = ?2 AND (COALESCE(volume, '') < ?3 OR (COALESCE(volume, '') = ?3 "
                     "AND (position < ?4 OR (position = ?4 AND id < ?5))))"));
  st.Bind(1, JobKindName(job.kind))
      .Bind(2, job.backend)
      .Bind(3, job.volume)
      .Bind(4, job.position)
      .Bind(5, job.id);
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  return (row ? st.Int(0) : 0) + 1;
}

Result<std::vector<JobCount>> CountActiveJobs(Session& s) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, s.db().Prepare("SELECT kind, state, COUNT(*) FROM jobs WHERE state IN ('queued', "
                              "'running', 'failed') GROUP BY kind, state ORDER BY kind, state"));
  std::vector<JobCount> counts;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return counts;
    JobCount c;
    HSMFS_ASSIGN_OR_RETURN(c.kind, ParseJobKind(st.Text(0)));
    HSMFS_ASSIGN_OR_RETURN(c.state, ParseJobState(st.Text(1)));
    c.count = st.Int(2);
    counts.push_back(c);
  }
}

Result<RecallTimes> RecentRecallTimes(Session& s, std::string_view backend, int limit) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      s.db().Prepare("SELECT COUNT(*), COALESCE(AVG((finished_ns - started_ns) / 1000000), 0) "
                     "FROM (SELECT finished_ns, started_ns FROM jobs WHERE kind = 'stage' AND "
                     "state = 'done' AND backend = ?1 AND started_ns > 0 ORDER BY id DESC "
                     "LIMIT ?2)"));
  st.Bind(1, backend).Bind(2, int64_t{limit});
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  RecallTimes t;
  if (row) {
    t.count = st.Int(0);
    t.mean_seconds = static_cast<double>(st.Int(1)) / 1000.0;
  }
  return t;
}

}  // namespace hsmfs::catalog
