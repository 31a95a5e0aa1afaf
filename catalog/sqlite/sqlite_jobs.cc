#include "catalog/sqlite/sqlite_catalog.h"

// The job queue's SQL (the jobs table), for SqliteSession.

namespace hsmfs::catalog {
namespace {

std::string JobColumns() {
  return "j.id, j.kind, j.entry_id, j.state, j.attempts, j.last_error, j.requester_uid, "
         "j.requester_pid, j.requester_cmd, j.created_ns, j.updated_ns, j.not_before_ns, "
         "j.started_ns, j.finished_ns, j.backend, j.volume, j.position, j.bytes_total, "
         "j.bytes_done, j.version, j.checksum, j.owner, j.lease_until_ns, " +
         EntryColumns("e");
}
constexpr int kEntryFirstColumn = 23;

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
  j.owner = s.Text(21);
  j.lease_until_ns = s.Int(22);
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

}  // namespace

Status SqliteSession::SetEntryState(EntryId id, FileState state, std::string_view error,
                                    int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         db_->Prepare("UPDATE entries SET state = ?, error = ?, seen_gen = "
                                      "MAX(seen_gen, ?) WHERE id = ?"));
  st.Bind(1, StateName(state)).BindText(2, error).Bind(3, now_ns).Bind(4, id);
  return st.Run();
}

Result<std::optional<Job>> SqliteSession::EnqueueStage(const Entry& entry, const Requester& who,
                                                       int64_t now_ns, bool* created) {
  if (created) *created = false;
  HSMFS_ASSIGN_OR_RETURN(auto existing, ActiveFor(entry.id, JobKind::kStage));
  if (existing) return existing;
  // The caller's copy of the entry may predate a recall that just finished.
  HSMFS_ASSIGN_OR_RETURN(Entry now, Get(entry.id));
  // A symlink has nothing to recall: its target is in the catalog, and a
  // backend must never be asked to read (follow) it.
  if (now.cached || now.is_symlink()) return std::optional<Job>();
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("INSERT INTO jobs (kind, entry_id, state, requester_uid, requester_pid, "
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
  const int64_t id = db_->LastInsertId();
  HSMFS_RETURN_IF_ERROR(SetEntryState(entry.id, FileState::kStaging, "", now_ns));
  if (created) *created = true;
  HSMFS_ASSIGN_OR_RETURN(auto job, GetJob(id));
  if (!job) return InternalError("job " + std::to_string(id) + " vanished after insert");
  return job;
}

Result<std::vector<Job>> SqliteSession::Runnable(JobKind kind, std::string_view backend,
                                                 int64_t now_ns, int limit) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare(SelectJobs() +
                            "WHERE j.kind = ? AND j.state = 'queued' AND j.backend = ? AND "
                            "j.not_before_ns <= ? ORDER BY j.volume, j.position, j.id LIMIT ?"));
  st.Bind(1, JobKindName(kind)).Bind(2, backend).Bind(3, now_ns).Bind(4, limit);
  return RunQuery(st);
}

Result<bool> SqliteSession::Claim(int64_t job_id, std::string_view owner, int64_t lease_until_ns,
                                  int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'running', attempts = attempts + 1, "
                            "started_ns = ?1, updated_ns = ?1, bytes_done = 0, owner = ?2, "
                            "lease_until_ns = ?3 WHERE id = ?4 AND state = 'queued'"));
  st.Bind(1, now_ns).Bind(2, owner).Bind(3, lease_until_ns).Bind(4, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (db_->Changes() != 1) return false;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, db_->Prepare("UPDATE entries SET state = 'archiving' WHERE state = 'queued' AND "
                           "id = (SELECT entry_id FROM jobs WHERE id = ? AND kind = 'archive')"));
  e.Bind(1, job_id);
  HSMFS_RETURN_IF_ERROR(e.Run());
  return true;
}

Result<int> SqliteSession::RenewLeases(std::string_view owner, int64_t lease_until_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("UPDATE jobs SET lease_until_ns = ? WHERE "
                                               "state = 'running' AND owner = ?"));
  st.Bind(1, lease_until_ns).Bind(2, owner);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return db_->Changes();
}

Result<int> SqliteSession::RequeueAbandoned(std::string_view me, std::string_view dead_owner_prefix,
                                            int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("UPDATE jobs SET state = 'queued', updated_ns = ?1, bytes_done = 0, "
                   "attempts = MAX(attempts - 1, 0), lease_until_ns = 0 WHERE state = 'running' "
                   "AND COALESCE(owner, '') != ?2 AND (lease_until_ns <= ?1 OR (?3 != '' AND "
                   "substr(COALESCE(owner, ''), 1, length(?3)) = ?3))"));
  st.Bind(1, now_ns).Bind(2, me).Bind(3, dead_owner_prefix);
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int requeued = db_->Changes();
  if (requeued == 0) return 0;
  // Only the entries of the jobs requeued: another engine's archives stay
  // `archiving`.
  HSMFS_RETURN_IF_ERROR(
      db_->Exec("UPDATE entries SET state = 'queued' WHERE state = 'archiving' AND NOT EXISTS "
                "(SELECT 1 FROM jobs j WHERE j.entry_id = entries.id AND j.kind = 'archive' AND "
                "j.state = 'running')"));
  return requeued;
}

Result<std::optional<Job>> SqliteSession::EnqueueArchive(const Entry& entry, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Entry now, Get(entry.id));
  if (now.state != FileState::kOnline || now.version != entry.version) {
    return std::optional<Job>();
  }
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(entry.id, JobKind::kArchive));
  if (active) return std::optional<Job>();
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("INSERT INTO jobs (kind, entry_id, state, requester_uid, requester_pid, "
                   "requester_cmd, created_ns, updated_ns, backend, bytes_total, version) "
                   "VALUES ('archive', ?, 'queued', 0, 0, NULL, ?, ?, ?, ?, ?)"));
  st.Bind(1, entry.id)
      .Bind(2, now_ns)
      .Bind(3, now_ns)
      .Bind(4, now.backend)
      .Bind(5, static_cast<int64_t>(now.size))
      .Bind(6, now.version);
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int64_t id = db_->LastInsertId();
  HSMFS_RETURN_IF_ERROR(SetEntryState(entry.id, FileState::kQueued, "", now_ns));
  return GetJob(id);
}

Result<bool> SqliteSession::FinishArchive(const Job& job, std::string_view checksum, uint64_t size,
                                          std::string_view location, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, db_->Prepare("UPDATE entries SET state = 'dual', checksum = ?, size = ?, "
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
  const bool current = db_->Changes() == 1;
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         db_->Prepare("UPDATE jobs SET state = ?, last_error = ?, checksum = ?, "
                                      "finished_ns = ?, updated_ns = ?, bytes_done = bytes_total "
                                      "WHERE id = ?"));
  st.Bind(1, current ? "done" : "cancelled")
      .BindText(2, current ? "" : "superseded by a newer version")
      .Bind(3, checksum)
      .Bind(4, now_ns)
      .Bind(5, now_ns)
      .Bind(6, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (current) HSMFS_RETURN_IF_ERROR(SetOnBackend(job.entry_id));
  return current;
}

Status SqliteSession::FailArchive(const Job& job, const Status& error, int64_t now_ns,
                                  bool retry_when_back) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'failed', last_error = ?, "
                            "finished_ns = ?, updated_ns = ?, retry_when_back = ? WHERE id = ?"));
  st.Bind(1, error.message())
      .Bind(2, now_ns)
      .Bind(3, now_ns)
      .Bind(4, int64_t{retry_when_back})
      .Bind(5, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, db_->Prepare("UPDATE entries SET state = 'failed', error = ?, "
                           "seen_gen = MAX(seen_gen, ?) WHERE id = ? AND version = ? AND "
                           "state IN ('queued', 'archiving')"));
  e.Bind(1, error.message()).Bind(2, now_ns).Bind(3, job.entry_id).Bind(4, job.version);
  return e.Run();
}

Result<std::vector<int64_t>> SqliteSession::Supersede(EntryId entry, int64_t now_ns) {
  std::vector<int64_t> ids;
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(entry, JobKind::kArchive));
  if (!active) return ids;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'cancelled', last_error = 'superseded by "
                            "a newer version', finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, active->id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  ids.push_back(active->id);
  return ids;
}

Status SqliteSession::FinishStage(const Job& job, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         db_->Prepare("UPDATE jobs SET state = 'done', last_error = NULL, "
                                      "finished_ns = ?, updated_ns = ?, bytes_done = bytes_total "
                                      "WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt e, db_->Prepare("UPDATE entries SET state = 'dual', cached = 1, error = NULL, "
                           "last_access_ns = ?, seen_gen = MAX(seen_gen, ?) WHERE id = ?"));
  e.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job.entry_id);
  return e.Run();
}

Status SqliteSession::FailStage(const Job& job, const Status& error, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("UPDATE jobs SET state = 'failed', last_error = ?, "
                                               "finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, error.message()).Bind(2, now_ns).Bind(3, now_ns).Bind(4, job.id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return SetEntryState(job.entry_id, FileState::kFailed, error.message(), now_ns);
}

Status SqliteSession::Requeue(const Job& job, const Status& error, int64_t not_before_ns,
                              int64_t now_ns, bool count_attempt) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'queued', last_error = ?, "
                            "not_before_ns = ?, updated_ns = ?, attempts = MAX(attempts - ?, 0) "
                            "WHERE id = ?"));
  st.Bind(1, error.message())
      .Bind(2, not_before_ns)
      .Bind(3, now_ns)
      .Bind(4, int64_t{count_attempt ? 0 : 1})
      .Bind(5, job.id);
  return st.Run();
}

Status SqliteSession::Progress(int64_t job_id, uint64_t bytes_done, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET bytes_done = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, static_cast<int64_t>(bytes_done)).Bind(2, now_ns).Bind(3, job_id);
  return st.Run();
}

Result<int> SqliteSession::ResetRunning(int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'queued', updated_ns = ?, bytes_done = 0, "
                            "attempts = MAX(attempts - 1, 0), lease_until_ns = 0 "
                            "WHERE state = 'running'"));
  st.Bind(1, now_ns);
  HSMFS_RETURN_IF_ERROR(st.Run());
  const int requeued = db_->Changes();
  HSMFS_RETURN_IF_ERROR(db_->Exec("UPDATE entries SET state = 'queued' WHERE state = 'archiving'"));
  return requeued;
}

Result<bool> SqliteSession::Cancel(int64_t job_id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(auto job, GetJob(job_id));
  if (!job || (job->state != JobState::kQueued && job->state != JobState::kRunning)) return false;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'cancelled', last_error = 'cancelled', "
                            "finished_ns = ?, updated_ns = ? WHERE id = ?"));
  st.Bind(1, now_ns).Bind(2, now_ns).Bind(3, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (job->kind == JobKind::kStage && !job->entry.cached) {
    HSMFS_RETURN_IF_ERROR(SetEntryState(job->entry_id, FileState::kOffline, "", now_ns));
  }
  if (job->kind == JobKind::kArchive && job->entry.version == job->version &&
      (job->entry.state == FileState::kQueued || job->entry.state == FileState::kArchiving)) {
    // Not archived: the data stays in the cache as it is, `online`.
    HSMFS_RETURN_IF_ERROR(SetEntryState(job->entry_id, FileState::kOnline, "", now_ns));
  }
  return true;
}

Result<bool> SqliteSession::Retry(int64_t job_id, int64_t now_ns, bool fresh_attempts) {
  HSMFS_ASSIGN_OR_RETURN(auto job, GetJob(job_id));
  if (!job || (job->state != JobState::kFailed && job->state != JobState::kCancelled)) {
    return false;
  }
  HSMFS_ASSIGN_OR_RETURN(auto active, ActiveFor(job->entry_id, job->kind));
  if (active) return false;
  if (job->kind == JobKind::kStage && job->entry.cached) return false;  // nothing to recall
  // An archive job may only run again for the version it was made for.
  if (job->kind == JobKind::kArchive &&
      (job->entry.version != job->version ||
       (job->entry.state != FileState::kFailed && job->entry.state != FileState::kOnline))) {
    return false;
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE jobs SET state = 'queued', attempts = CASE WHEN ? THEN 0 "
                            "ELSE attempts END, not_before_ns = 0, finished_ns = 0, "
                            "updated_ns = ?, bytes_done = 0, retry_when_back = 0 WHERE id = ?"));
  st.Bind(1, int64_t{fresh_attempts}).Bind(2, now_ns).Bind(3, job_id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_RETURN_IF_ERROR(SetEntryState(
      job->entry_id, job->kind == JobKind::kStage ? FileState::kStaging : FileState::kQueued, "",
      now_ns));
  return true;
}

Result<std::vector<int64_t>> SqliteSession::FailedWhileDown(JobKind kind, std::string_view backend,
                                                            int limit) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         db_->Prepare("SELECT j.id FROM jobs j JOIN entries e ON e.id = j.entry_id "
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

Result<std::optional<Job>> SqliteSession::GetJob(int64_t job_id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(SelectJobs() + "WHERE j.id = ?"));
  st.Bind(1, job_id);
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Job>();
  return std::optional<Job>(ReadJob(st));
}

Result<std::optional<Job>> SqliteSession::ActiveFor(EntryId entry, JobKind kind) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         db_->Prepare(SelectJobs() + "WHERE j.entry_id = ? AND j.kind = ? AND "
                                                     "j.state IN ('queued', 'running')"));
  st.Bind(1, entry).Bind(2, JobKindName(kind));
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Job>();
  return std::optional<Job>(ReadJob(st));
}

Result<std::vector<Job>> SqliteSession::ListJobs(const JobFilter& filter) {
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
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->PrepareUncached(sql));
  return RunQuery(st);
}

Result<int64_t> SqliteSession::QueuePosition(const Job& job) {
  if (job.state != JobState::kQueued) return int64_t{0};
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("SELECT COUNT(*) FROM jobs WHERE kind = ?1 AND state = 'queued' AND "
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

Result<RecallTimes> SqliteSession::RecentRecallTimes(std::string_view backend, int limit) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("SELECT COUNT(*), COALESCE(AVG((finished_ns - started_ns) / 1000000), 0) FROM "
                   "(SELECT finished_ns, started_ns FROM jobs WHERE kind = 'stage' AND state = "
                   "'done' AND backend = ? AND started_ns > 0 ORDER BY id DESC LIMIT ?)"));
  st.Bind(1, backend).Bind(2, int64_t{limit});
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  RecallTimes out;
  if (row) {
    out.count = st.Int(0);
    out.mean_seconds = static_cast<double>(st.Int(1)) / 1000.0;
  }
  return out;
}

Result<std::vector<JobCount>> SqliteSession::CountActiveJobs() {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("SELECT kind, state, COUNT(*) FROM jobs WHERE state IN ('queued', "
                            "'running', 'failed') GROUP BY kind, state ORDER BY kind, state"));
  std::vector<JobCount> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    JobCount c;
    HSMFS_ASSIGN_OR_RETURN(c.kind, ParseJobKind(st.Text(0)));
    HSMFS_ASSIGN_OR_RETURN(c.state, ParseJobState(st.Text(1)));
    c.count = st.Int(2);
    out.push_back(c);
  }
}

Result<std::vector<EntryId>> SqliteSession::UnarchivedWithoutJob() {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("SELECT e.id FROM entries e WHERE e.state = 'online' AND "
                   "(e.cached = 1 OR e.type IN (2, 3)) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
                   "j.entry_id = e.id AND j.kind = 'archive' AND j.state IN "
                   "('queued', 'running'))"));
  std::vector<EntryId> ids;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return ids;
    ids.push_back(st.Int(0));
  }
}

Result<std::vector<std::pair<EntryId, int64_t>>> SqliteSession::ActiveArchivesBelow(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL SELECT e.id FROM entries e "
                   "JOIN sub ON e.parent = sub.id) SELECT j.entry_id, j.id FROM jobs j WHERE "
                   "j.entry_id IN sub AND j.kind = 'archive' AND j.state IN "
                   "('queued', 'running')"));
  st.Bind(1, dir);
  std::vector<std::pair<EntryId, int64_t>> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.emplace_back(st.Int(0), st.Int(1));
  }
}

}  // namespace hsmfs::catalog
