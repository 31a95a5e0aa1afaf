#include "catalog/tape_catalog.h"

#include "catalog/sqlite/raw_access.h"

namespace hsmfs::catalog {
namespace {

constexpr std::string_view kStateNames[] = {"imported", "assigned", "writing", "archived",
                                            "confirmed"};

TargetState ParseState(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (kStateNames[i] == name) return static_cast<TargetState>(i);
  }
  return TargetState::kImported;
}

constexpr std::string_view kTapeColumns =
    "name, serial, state, active, full, capacity, bytes_used, next_file, next_block, created_ns";

Tape ReadTape(const Stmt& s) {
  Tape t;
  t.name = s.Text(0);
  t.serial = s.Text(1);
  t.closed = s.Text(2) == "closed";
  t.active = s.Int(3) != 0;
  t.full = s.Int(4) != 0;
  t.capacity = static_cast<uint64_t>(s.Int(5));
  t.bytes_used = static_cast<uint64_t>(s.Int(6));
  t.next_file = s.Int(7);
  t.next_block = s.Int(8);
  t.created_ns = s.Int(9);
  return t;
}

constexpr std::string_view kTargetColumns =
    "t.id, t.kind, t.host, t.path, t.state, t.tape, t.file_number, t.start_block, t.block_size, "
    "t.files, t.bytes, t.tar_bytes, t.imported_ns, t.archived_ns, t.confirmed_ns, t.error";
constexpr int kTargetColumnCount = 16;

Target ReadTarget(const Stmt& s) {
  Target t;
  t.id = s.Int(0);
  t.kind = s.Text(1);
  t.host = s.Text(2);
  t.path = s.Text(3);
  t.state = ParseState(s.Text(4));
  t.tape = s.Text(5);
  t.file_number = s.IsNull(6) ? -1 : s.Int(6);
  t.start_block = s.IsNull(7) ? -1 : s.Int(7);
  t.block_size = static_cast<uint32_t>(s.Int(8));
  t.files = s.Int(9);
  t.bytes = static_cast<uint64_t>(s.Int(10));
  t.tar_bytes = static_cast<uint64_t>(s.Int(11));
  t.imported_ns = s.Int(12);
  t.archived_ns = s.Int(13);
  t.confirmed_ns = s.Int(14);
  t.error = s.Text(15);
  return t;
}

constexpr std::string_view kFileColumns =
    "f.rel_path, f.size, f.mtime_ns, f.mode, f.md5, f.data_offset, f.bad, f.id, f.tree_path, "
    "f.removed_ns, f.link_target";

TargetFile ReadFile(const Stmt& s, int first) {
  TargetFile f;
  f.rel_path = s.Text(first);
  f.size = static_cast<uint64_t>(s.Int(first + 1));
  f.mtime_ns = s.Int(first + 2);
  f.mode = static_cast<uint32_t>(s.Int(first + 3));
  f.md5 = s.Text(first + 4);
  f.data_offset = s.IsNull(first + 5) ? -1 : s.Int(first + 5);
  f.bad = s.Int(first + 6) != 0;
  f.id = s.Int(first + 7);
  f.tree_path = s.Text(first + 8);
  f.removed = !s.IsNull(first + 9);
  f.link_target = s.Text(first + 10);
  return f;
}

// kFailedPrecondition unless the last statement changed exactly one row.
Status ExpectOneChange(Session& s, std::string what) {
  if (RawSqlite(s).Changes() == 1) return Status::Ok();
  return FailedPreconditionError(std::move(what));
}

}  // namespace

std::string_view TargetStateName(TargetState state) { return kStateNames[static_cast<int>(state)]; }

Status TapeCatalog::OpenTape(Session& s, std::string_view name, std::string_view serial,
                             uint64_t capacity, int64_t first_block, int64_t now_ns) {
  if (name.empty()) return InvalidArgumentError("a tape needs a name");
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("INSERT INTO tapes (name, serial, capacity, next_block, created_ns, "
                           "updated_ns) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"));
  st.Bind(1, name)
      .Bind(2, serial)
      .Bind(3, static_cast<int64_t>(capacity))
      .Bind(4, first_block)
      .Bind(5, now_ns)
      .Bind(6, now_ns);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (RawSqlite(s).Changes() == 0) {
    return AlreadyExistsError("tape " + std::string(name) + " is already in the catalog");
  }
  return Status::Ok();
}

Result<Tape> TapeCatalog::GetTape(Session& s, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kTapeColumns) +
                                                       " FROM tapes WHERE name = ?"));
  st.Bind(1, name);
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFoundError("no tape " + std::string(name) + " in the catalog");
  return ReadTape(st);
}

Result<std::vector<Tape>> TapeCatalog::Tapes(Session& s) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kTapeColumns) +
                                                       " FROM tapes ORDER BY created_ns, name"));
  std::vector<Tape> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(ReadTape(st));
  }
}

Result<std::optional<Tape>> TapeCatalog::ActiveTape(Session& s) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kTapeColumns) +
                                                       " FROM tapes WHERE active = 1"));
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Tape>();
  return std::optional<Tape>(ReadTape(st));
}

Status TapeCatalog::ActivateTape(Session& s, std::string_view name, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Tape t, GetTape(s, name));
  if (t.closed) return FailedPreconditionError("tape " + t.name + " is closed");
  HSMFS_RETURN_IF_ERROR(RawSqlite(s).Exec("UPDATE tapes SET active = 0 WHERE active = 1"));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("UPDATE tapes SET active = 1, updated_ns = ? WHERE name = ?"));
  st.Bind(1, now_ns).Bind(2, name);
  return st.Run();
}

Result<int> TapeCatalog::CloseTape(Session& s, std::string_view name, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Tape t, GetTape(s, name));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("UPDATE tapes SET state = 'closed', active = 0, updated_ns = ? "
                                    "WHERE name = ?"));
  st.Bind(1, now_ns).Bind(2, t.name);
  HSMFS_RETURN_IF_ERROR(st.Run());
  // A batch has no source to be written again from: the mount puts its files
  // in a new one.
  HSMFS_ASSIGN_OR_RETURN(int dropped, DropUnfinishedBatches(s, t.name));
  static_cast<void>(dropped);
  HSMFS_ASSIGN_OR_RETURN(Stmt u,
                         RawSqlite(s).Prepare("UPDATE targets SET state = 'imported', tape = NULL, "
                                              "file_number = NULL, start_block = NULL "
                                              "WHERE tape = ? AND state IN ('assigned', 'writing') "
                                              "AND kind = 'import'"));
  u.Bind(1, t.name);
  HSMFS_RETURN_IF_ERROR(u.Run());
  return RawSqlite(s).Changes();
}

Status TapeCatalog::SetSerial(Session& s, std::string_view name, std::string_view serial) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         RawSqlite(s).Prepare("UPDATE tapes SET serial = ? WHERE name = ?"));
  st.Bind(1, serial).Bind(2, name);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return ExpectOneChange(s, "no tape " + std::string(name) + " in the catalog");
}

Result<int64_t> TapeCatalog::Import(Session& s, const Target& target,
                                    const std::vector<TargetFile>& files, int64_t now_ns) {
  uint64_t bytes = 0;
  for (const auto& f : files) bytes += f.size;
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("INSERT INTO targets (kind, host, path, files, bytes, imported_ns) "
                           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, path) DO NOTHING"));
  st.Bind(1, target.kind)
      .Bind(2, target.host)
      .Bind(3, target.path)
      .Bind(4, static_cast<int64_t>(files.size()))
      .Bind(5, static_cast<int64_t>(bytes))
      .Bind(6, now_ns);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (RawSqlite(s).Changes() == 0) {
    return AlreadyExistsError((target.host.empty() ? "" : target.host + ":") + target.path +
                              " was imported before");
  }
  const int64_t id = RawSqlite(s).LastInsertId();
  HSMFS_ASSIGN_OR_RETURN(
      Stmt f, RawSqlite(s).Prepare("INSERT INTO target_files (target_id, rel_path, size, mtime_ns, "
                                   "mode, md5, link_target) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  for (const auto& file : files) {
    f.Reset();
    f.Bind(1, id)
        .Bind(2, file.rel_path)
        .Bind(3, static_cast<int64_t>(file.size))
        .Bind(4, file.mtime_ns)
        .Bind(5, static_cast<int64_t>(file.mode))
        .Bind(6, file.md5)
        .BindText(7, file.link_target);
    HSMFS_RETURN_IF_ERROR(f.Run());
  }
  return id;
}

Result<Target> TapeCatalog::GetTarget(Session& s, int64_t id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kTargetColumns) +
                                                       " FROM targets t WHERE t.id = ?"));
  st.Bind(1, id);
  HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFoundError("no target " + std::to_string(id) + " in the catalog");
  return ReadTarget(st);
}

Result<std::vector<Target>> TapeCatalog::Targets(Session& s, std::string_view tape,
                                                 std::optional<TargetState> state) {
  // Both filters are optional: NULL parameters match everything.
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         RawSqlite(s).Prepare("SELECT " + std::string(kTargetColumns) +
                                              " FROM targets t WHERE (?1 IS NULL OR t.tape = ?1) "
                                              "AND (?2 IS NULL OR t.state = ?2) ORDER BY t.id"));
  st.BindText(1, tape);
  if (state) {
    st.Bind(2, TargetStateName(*state));
  } else {
    st.BindNull(2);
  }
  std::vector<Target> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(ReadTarget(st));
  }
}

Result<std::vector<TargetFile>> TapeCatalog::Files(Session& s, int64_t target_id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kFileColumns) +
                                                       " FROM target_files f WHERE f.target_id = ? "
                                                       "ORDER BY f.id"));
  st.Bind(1, target_id);
  std::vector<TargetFile> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(ReadFile(st, 0));
  }
}

Result<int> TapeCatalog::Assign(Session& s, std::string_view tape) {
  HSMFS_ASSIGN_OR_RETURN(Tape t, GetTape(s, tape));
  if (t.closed) return FailedPreconditionError("tape " + t.name + " is closed");
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare(
                   "UPDATE targets SET state = 'assigned', tape = ? WHERE state = 'imported' "
                   "AND kind = 'import'"));
  st.Bind(1, t.name);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return RawSqlite(s).Changes();
}

Status TapeCatalog::BeginWrite(Session& s, int64_t id, int64_t file_number, int64_t start_block,
                               uint32_t block_size) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("UPDATE targets SET state = 'writing', file_number = ?, "
                                    "start_block = ?, block_size = ?, error = NULL "
                                    "WHERE id = ? AND state IN ('assigned', 'writing')"));
  st.Bind(1, file_number).Bind(2, start_block).Bind(3, int64_t{block_size}).Bind(4, id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return ExpectOneChange(s, "target " + std::to_string(id) + " is not assigned to a tape");
}

Status TapeCatalog::FinishWrite(Session& s, int64_t id, const std::vector<int64_t>& offsets,
                                uint64_t tar_bytes, int64_t next_file, int64_t next_block,
                                int64_t now_ns, const std::vector<std::string>& md5) {
  HSMFS_ASSIGN_OR_RETURN(Target t, GetTarget(s, id));
  if (t.state != TargetState::kWriting) {
    return FailedPreconditionError("target " + std::to_string(id) + " is not being written");
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt ids,
      RawSqlite(s).Prepare("SELECT id FROM target_files WHERE target_id = ? ORDER BY id"));
  ids.Bind(1, id);
  std::vector<int64_t> file_ids;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, ids.Step());
    if (!row) break;
    file_ids.push_back(ids.Int(0));
  }
  if (file_ids.size() != offsets.size()) {
    return InternalError("target " + std::to_string(id) + " has " +
                         std::to_string(file_ids.size()) + " files but " +
                         std::to_string(offsets.size()) + " offsets were written");
  }
  if (!md5.empty() && md5.size() != offsets.size()) {
    return InternalError("target " + std::to_string(id) + ": " + std::to_string(md5.size()) +
                         " md5 sums for " + std::to_string(offsets.size()) + " files");
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt f,
      RawSqlite(s).Prepare("UPDATE target_files SET data_offset = ?, md5 = COALESCE(?, md5) "
                           "WHERE id = ?"));
  for (size_t i = 0; i < file_ids.size(); ++i) {
    f.Reset();
    f.Bind(1, offsets[i]).Bind(3, file_ids[i]);
    if (md5.empty()) {
      f.BindNull(2);
    } else {
      f.Bind(2, md5[i]);
    }
    HSMFS_RETURN_IF_ERROR(f.Run());
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("UPDATE targets SET state = 'archived', tar_bytes = ?, "
                                    "archived_ns = ? WHERE id = ?"));
  st.Bind(1, static_cast<int64_t>(tar_bytes)).Bind(2, now_ns).Bind(3, id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt tape,
      RawSqlite(s).Prepare("UPDATE tapes SET next_file = ?, next_block = ?, "
                           "bytes_used = bytes_used + ?, updated_ns = ? WHERE name = ?"));
  tape.Bind(1, next_file)
      .Bind(2, next_block)
      .Bind(3, static_cast<int64_t>(tar_bytes))
      .Bind(4, now_ns)
      .Bind(5, t.tape);
  return tape.Run();
}

Status TapeCatalog::AbandonWrite(Session& s, int64_t id, bool tape_full, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(Target t, GetTarget(s, id));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("UPDATE targets SET state = 'assigned', file_number = NULL, "
                           "start_block = NULL, error = ? WHERE id = ? AND state = 'writing'"));
  st.BindText(1, error).Bind(2, id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (tape_full) {
    HSMFS_ASSIGN_OR_RETURN(Stmt f,
                           RawSqlite(s).Prepare("UPDATE tapes SET full = 1 WHERE name = ?"));
    f.Bind(1, t.tape);
    HSMFS_RETURN_IF_ERROR(f.Run());
  }
  return Status::Ok();
}

Status TapeCatalog::RecordConfirm(Session& s, int64_t id, const std::vector<std::string>& bad,
                                  int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Target t, GetTarget(s, id));
  if (t.state != TargetState::kArchived && t.state != TargetState::kConfirmed) {
    return FailedPreconditionError("target " + std::to_string(id) + " is not archived");
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt clear, RawSqlite(s).Prepare("UPDATE target_files SET bad = 0 WHERE target_id = ?"));
  clear.Bind(1, id);
  HSMFS_RETURN_IF_ERROR(clear.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt mark,
      RawSqlite(s).Prepare("UPDATE target_files SET bad = 1 WHERE target_id = ? AND rel_path = ?"));
  for (const auto& path : bad) {
    mark.Reset();
    mark.Bind(1, id).Bind(2, path);
    HSMFS_RETURN_IF_ERROR(mark.Run());
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("UPDATE targets SET state = ?, confirmed_ns = ?, error = ? "
                                    "WHERE id = ?"));
  st.Bind(1, bad.empty() ? "confirmed" : "archived")
      .Bind(2, now_ns)
      .BindText(3, bad.empty()
                       ? ""
                       : std::to_string(bad.size()) + " damaged file(s), first: " + bad.front())
      .Bind(4, id);
  return st.Run();
}

Result<int64_t> TapeCatalog::BeginBatch(Session& s, const Target& target,
                                        const std::vector<TargetFile>& files, int64_t now_ns) {
  if (target.kind != "batch" || target.tape.empty() || target.file_number < 1 ||
      target.start_block < 0 || target.block_size == 0) {
    return InvalidArgumentError("a batch needs kind batch, a tape and its position");
  }
  HSMFS_ASSIGN_OR_RETURN(int64_t id, Import(s, target, files, now_ns));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("UPDATE targets SET state = 'writing', tape = ?, file_number = ?, "
                           "start_block = ?, block_size = ? WHERE id = ?"));
  st.Bind(1, target.tape)
      .Bind(2, target.file_number)
      .Bind(3, target.start_block)
      .Bind(4, int64_t{target.block_size})
      .Bind(5, id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  return id;
}

Status TapeCatalog::DropBatch(Session& s, int64_t id) {
  // Explicit deletes: foreign keys may be off on this connection.
  HSMFS_ASSIGN_OR_RETURN(
      Stmt f,
      RawSqlite(s).Prepare("DELETE FROM target_files WHERE target_id = ?1 AND EXISTS (SELECT 1 "
                           "FROM targets WHERE id = ?1 AND kind = 'batch' AND "
                           "state = 'writing')"));
  f.Bind(1, id);
  HSMFS_RETURN_IF_ERROR(f.Run());
  HSMFS_ASSIGN_OR_RETURN(
      Stmt t, RawSqlite(s).Prepare("DELETE FROM targets WHERE id = ? AND kind = 'batch' AND "
                                   "state = 'writing'"));
  t.Bind(1, id);
  HSMFS_RETURN_IF_ERROR(t.Run());
  return ExpectOneChange(s, "target " + std::to_string(id) + " is not a batch being written");
}

Result<int> TapeCatalog::DropUnfinishedBatches(Session& s, std::string_view tape) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt f,
      RawSqlite(s).Prepare("DELETE FROM target_files WHERE target_id IN (SELECT id FROM targets "
                           "WHERE tape = ?1 AND kind = 'batch' AND state = 'writing')"));
  f.Bind(1, tape);
  HSMFS_RETURN_IF_ERROR(f.Run());
  HSMFS_ASSIGN_OR_RETURN(Stmt t, RawSqlite(s).Prepare("DELETE FROM targets WHERE tape = ? AND "
                                                      "kind = 'batch' AND state = 'writing'"));
  t.Bind(1, tape);
  HSMFS_RETURN_IF_ERROR(t.Run());
  return RawSqlite(s).Changes();
}

Status TapeCatalog::MarkFull(Session& s, std::string_view tape) {
  HSMFS_ASSIGN_OR_RETURN(Stmt f, RawSqlite(s).Prepare("UPDATE tapes SET full = 1 WHERE name = ?"));
  f.Bind(1, tape);
  HSMFS_RETURN_IF_ERROR(f.Run());
  return ExpectOneChange(s, "no tape " + std::string(tape) + " in the catalog");
}

Status TapeCatalog::SetTreePath(Session& s, int64_t file_id, std::string_view tree_path) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt f, RawSqlite(s).Prepare("UPDATE target_files SET tree_path = ? WHERE id = ?"));
  f.Bind(1, tree_path).Bind(2, file_id);
  HSMFS_RETURN_IF_ERROR(f.Run());
  return ExpectOneChange(s, "no file " + std::to_string(file_id) + " on tape");
}

Status TapeCatalog::HideFile(Session& s, int64_t file_id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt f, RawSqlite(s).Prepare("UPDATE target_files SET removed_ns = ? "
                                                      "WHERE id = ? AND removed_ns IS NULL"));
  f.Bind(1, now_ns).Bind(2, file_id);
  return f.Run();
}

Result<std::vector<TapeDir>> TapeCatalog::Dirs(Session& s) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("SELECT path, mode, mtime_ns FROM tape_dirs ORDER BY path"));
  std::vector<TapeDir> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back({st.Text(0), static_cast<uint32_t>(st.Int(1)), st.Int(2)});
  }
}

Status TapeCatalog::AddDir(Session& s, const TapeDir& dir) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st,
                         RawSqlite(s).Prepare("INSERT INTO tape_dirs (path, mode, mtime_ns) "
                                              "VALUES (?, ?, ?) ON CONFLICT (path) DO NOTHING"));
  st.Bind(1, dir.path).Bind(2, int64_t{dir.mode}).Bind(3, dir.mtime_ns);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (RawSqlite(s).Changes() == 0) return AlreadyExistsError("directory " + dir.path + " exists");
  return Status::Ok();
}

Status TapeCatalog::RemoveDir(Session& s, std::string_view path) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("DELETE FROM tape_dirs WHERE path = ?"));
  st.Bind(1, path);
  HSMFS_RETURN_IF_ERROR(st.Run());
  if (RawSqlite(s).Changes() == 0) return NotFoundError("no directory " + std::string(path));
  return Status::Ok();
}

Status TapeCatalog::RenameDirs(Session& s, std::string_view from, std::string_view to) {
  // substr() rather than LIKE: names may contain % and _.
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare(
                   "UPDATE OR REPLACE tape_dirs SET path = ?2 || substr(path, length(?1) + 1) "
                   "WHERE path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '/'"));
  st.Bind(1, from).Bind(2, to);
  return st.Run();
}

Result<int64_t> TapeCatalog::RestoreUnit(Session& s, const Target& target,
                                         const std::vector<TargetFile>& files, int64_t next_file,
                                         int64_t next_block, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Tape tape, GetTape(s, target.tape));
  HSMFS_ASSIGN_OR_RETURN(int64_t id, Import(s, target, files, now_ns));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("UPDATE targets SET state = 'archived', tape = ?, file_number = ?, "
                           "start_block = ?, block_size = ?, tar_bytes = ?, archived_ns = ? "
                           "WHERE id = ?"));
  st.Bind(1, tape.name)
      .Bind(2, target.file_number)
      .Bind(3, target.start_block)
      .Bind(4, int64_t{target.block_size})
      .Bind(5, static_cast<int64_t>(target.tar_bytes))
      .Bind(6, now_ns)
      .Bind(7, id);
  HSMFS_RETURN_IF_ERROR(st.Run());
  HSMFS_ASSIGN_OR_RETURN(Stmt f, RawSqlite(s).Prepare("UPDATE target_files SET data_offset = ? "
                                                      "WHERE target_id = ? AND rel_path = ?"));
  for (const auto& file : files) {
    f.Reset();
    f.Bind(1, file.data_offset).Bind(2, id).Bind(3, file.rel_path);
    HSMFS_RETURN_IF_ERROR(f.Run());
  }
  // The tape's end moves only forward (units may be restored in any order).
  HSMFS_ASSIGN_OR_RETURN(
      Stmt t,
      RawSqlite(s).Prepare("UPDATE tapes SET bytes_used = bytes_used + ?3, updated_ns = ?4, "
                           "next_file = CASE WHEN ?2 > next_block THEN ?1 ELSE next_file END, "
                           "next_block = MAX(next_block, ?2) WHERE name = ?5"));
  t.Bind(1, next_file)
      .Bind(2, next_block)
      .Bind(3, static_cast<int64_t>(target.tar_bytes))
      .Bind(4, now_ns)
      .Bind(5, tape.name);
  HSMFS_RETURN_IF_ERROR(t.Run());
  return id;
}

Result<std::vector<FileLocation>> TapeCatalog::WhereIs(Session& s, std::string_view needle,
                                                       int limit) {
  // instr() instead of LIKE: file names may contain % and _.
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, RawSqlite(s).Prepare("SELECT " + std::string(kTargetColumns) + ", " +
                                    std::string(kFileColumns) +
                                    " FROM target_files f JOIN targets t ON t.id = f.target_id "
                                    "WHERE instr(t.path || '/' || f.rel_path, ?) > 0 "
                                    "ORDER BY t.id, f.id LIMIT ?"));
  st.Bind(1, needle).Bind(2, int64_t{limit});
  std::vector<FileLocation> out;
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back({ReadTarget(st), ReadFile(st, kTargetColumnCount)});
  }
}

}  // namespace hsmfs::catalog
