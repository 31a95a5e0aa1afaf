#include "catalog/sqlite/sqlite_catalog.h"

#include <cstdio>
#include <cstdlib>

#include "catalog/sqlite/migrations.h"
#include "catalog/sqlite/raw_access.h"

namespace hsmfs::catalog {
namespace {

constexpr char kColumns[] =
    "id, parent, name, type, mode, size, mtime_ns, backend, backend_path, state, cached, "
    "checksum, location, volume, position, error, seen_gen, last_access_ns, pinned, version, "
    "on_backend, hsm_state, link_target, ctime_ns, local_mtime, uid, gid";

Entry ReadEntry(const Stmt& s) { return ReadEntryColumns(s, 0); }

// An owner id, NULL for "none" (-1).
void BindOwner(Stmt& s, int i, int64_t id) {
  if (id < 0) {
    s.BindNull(i);
  } else {
    s.Bind(i, id);
  }
}

}  // namespace

std::string EntryColumns(std::string_view alias) {
  std::string out;
  std::string_view cols = kColumns;
  size_t pos = 0;
  while (pos < cols.size()) {
    size_t comma = cols.find(", ", pos);
    if (comma == std::string_view::npos) comma = cols.size();
    if (!out.empty()) out += ", ";
    if (!alias.empty()) out += std::string(alias) + ".";
    out += cols.substr(pos, comma - pos);
    pos = comma + 2;
  }
  return out;
}

Entry ReadEntryColumns(const Stmt& s, int first) {
  Entry e;
  e.id = s.Int(first + 0);
  e.parent = s.Int(first + 1);
  e.name = s.Text(first + 2);
  e.type = static_cast<EntryType>(s.Int(first + 3));
  e.mode = static_cast<uint32_t>(s.Int(first + 4));
  e.size = static_cast<uint64_t>(s.Int(first + 5));
  e.mtime_ns = s.Int(first + 6);
  e.backend = s.Text(first + 7);
  e.backend_path = s.Text(first + 8);
  e.state = ParseState(s.Text(first + 9)).value_or(FileState::kFailed);
  e.cached = s.Int(first + 10) != 0;
  e.checksum = s.Text(first + 11);
  e.location = s.Text(first + 12);
  e.volume = s.Text(first + 13);
  e.position = s.Int(first + 14);
  e.error = s.Text(first + 15);
  e.seen_gen = s.Int(first + 16);
  e.last_access_ns = s.Int(first + 17);
  e.pinned = s.Int(first + 18) != 0;
  e.version = s.Int(first + 19);
  e.on_backend = s.Int(first + 20) != 0;
  e.hsm_state = s.Text(first + 21);
  e.link_target = s.Text(first + 22);
  e.ctime_ns = s.Int(first + 23);
  e.local_mtime = s.Int(first + 24) != 0;
  e.uid = s.IsNull(first + 25) ? -1 : s.Int(first + 25);
  e.gid = s.IsNull(first + 26) ? -1 : s.Int(first + 26);
  return e;
}

Status SqliteSession::ReadEntries(Stmt& st, std::vector<Entry>* out) {
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return Status::Ok();
    out->push_back(ReadEntry(st));
  }
}

Status SqliteSession::Begin() { return db_->Exec("BEGIN IMMEDIATE"); }
Status SqliteSession::Commit() { return db_->Exec("COMMIT"); }
void SqliteSession::Rollback() { db_->Exec("ROLLBACK").IgnoreError(); }

Result<Entry> SqliteSession::Get(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare(std::string("SELECT ") + kColumns + " FROM entries WHERE id = ?"));
  s.Bind(1, id);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no catalog entry " + std::to_string(id));
  return ReadEntry(s);
}

Result<Entry> SqliteSession::Lookup(EntryId parent, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare(std::string("SELECT ") + kColumns +
                                              " FROM entries WHERE parent = ? AND name = ?"));
  s.Bind(1, parent).Bind(2, name);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(std::string(name) + ": no such entry");
  return ReadEntry(s);
}

Status SqliteSession::Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare(std::string("SELECT ") + kColumns +
                           " FROM entries WHERE parent = ? AND id > ? ORDER BY id LIMIT ?"));
  s.Bind(1, dir).Bind(2, after).Bind(3, limit);
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    out->push_back(ReadEntry(s));
  }
}

Result<Entry> SqliteSession::InsertEntry(const Entry& e) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare(
          "INSERT INTO entries (parent, name, type, mode, size, mtime_ns, backend, "
          "backend_path, state, cached, checksum, location, volume, position, "
          "error, seen_gen, version, on_backend, hsm_state, link_target, ctime_ns, "
          "local_mtime, uid, gid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  s.Bind(1, e.parent)
      .Bind(2, e.name)
      .Bind(3, static_cast<int64_t>(e.type))
      .Bind(4, static_cast<int64_t>(e.mode))
      .Bind(5, static_cast<int64_t>(e.size))
      .Bind(6, e.mtime_ns)
      .Bind(7, e.backend)
      .Bind(8, e.backend_path)
      .Bind(9, StateName(e.state))
      .Bind(10, int64_t{e.cached})
      .BindText(11, e.checksum)
      .BindText(12, e.location)
      .BindText(13, e.volume)
      .Bind(14, e.position)
      .BindText(15, e.error)
      .Bind(16, e.seen_gen)
      .Bind(17, e.version)
      .Bind(18, int64_t{e.on_backend})
      .BindText(19, e.hsm_state)
      .BindText(20, e.link_target)
      .Bind(21, e.ctime_ns)
      .Bind(22, int64_t{e.local_mtime});
  BindOwner(s, 23, e.uid);
  BindOwner(s, 24, e.gid);
  HSMFS_RETURN_IF_ERROR(s.Run());
  Entry out = e;
  out.id = db_->LastInsertId();
  return out;
}

Status SqliteSession::UpdateListedAttrs(const Entry& e) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("UPDATE entries SET mode = ?, size = ?, mtime_ns = ?, state = ?, "
                           "cached = ?, checksum = ?, location = ?, volume = ?, position = ?, "
                           "seen_gen = ?, hsm_state = ?, link_target = ?, uid = ?, gid = ?, "
                           "on_backend = 1 WHERE id = ?"));
  s.Bind(1, static_cast<int64_t>(e.mode))
      .Bind(2, static_cast<int64_t>(e.size))
      .Bind(3, e.mtime_ns)
      .Bind(4, StateName(e.state))
      .Bind(5, int64_t{e.cached})
      .BindText(6, e.checksum)
      .BindText(7, e.location)
      .BindText(8, e.volume)
      .Bind(9, e.position)
      .Bind(10, e.seen_gen)
      .BindText(11, e.hsm_state)
      .BindText(12, e.link_target)
      .Bind(15, e.id);
  BindOwner(s, 13, e.uid);
  BindOwner(s, 14, e.gid);
  return s.Run();
}

Status SqliteSession::Remove(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("DELETE FROM entries WHERE id = ?"));
  s.Bind(1, id);
  return s.Run();
}

Result<std::optional<DirSync>> SqliteSession::GetSync(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("SELECT listed_ns, listed_by, gen, entries FROM dir_sync WHERE dir_id = ?"));
  s.Bind(1, dir);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<DirSync>();
  return std::optional<DirSync>(DirSync{s.Int(0), s.Text(1), s.Int(2), s.Int(3)});
}

Status SqliteSession::FinishListing(const Entry& dir, int64_t gen, std::string_view listed_by,
                                    int64_t count, int64_t now_ns, ListingDelta* delta,
                                    bool confirmed) {
  std::vector<Entry> unseen;
  {
    HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare(std::string("SELECT ") + kColumns +
                                                " FROM entries WHERE parent = ? AND seen_gen < ?"));
    s.Bind(1, dir.id).Bind(2, gen);
    for (;;) {
      HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      unseen.push_back(ReadEntry(s));
    }
  }
  std::vector<const Entry*> doomed;
  for (const Entry& e : unseen) {
    if (e.holds_unarchived_data()) continue;
    if (e.is_dir()) {
      HSMFS_ASSIGN_OR_RETURN(
          Stmt s, db_->Prepare("WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL "
                               "SELECT e.id FROM entries e JOIN sub ON e.parent = sub.id) "
                               "SELECT EXISTS (SELECT 1 FROM entries WHERE id IN sub AND "
                               "(state IN ('online', 'queued', 'archiving') OR "
                               "(state = 'failed' AND (cached = 1 OR type = 3))))"));
      s.Bind(1, e.id);
      HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row && s.Int(0) != 0) continue;
    }
    doomed.push_back(&e);
  }
  if (!doomed.empty() && !confirmed) {
    HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("SELECT COUNT(*) FROM entries WHERE parent = ?"));
    s.Bind(1, dir.id);
    HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
    const int64_t known = row ? s.Int(0) : 0;
    if (known >= kSuspectMinKnown && static_cast<int64_t>(doomed.size()) * 2 > known) {
      if (delta) {
        delta->held = static_cast<int64_t>(doomed.size());
        delta->known = known;
      }
      return Status::Ok();
    }
  }
  for (const Entry* e : doomed) {
    HSMFS_RETURN_IF_ERROR(Remove(e->id));
    if (delta) delta->removed.emplace_back(dir.id, e->name);
  }
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("INSERT INTO dir_sync (dir_id, listed_ns, listed_by, gen, entries) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dir_id) DO UPDATE SET "
                           "listed_ns = excluded.listed_ns, listed_by = excluded.listed_by, "
                           "gen = excluded.gen, entries = excluded.entries"));
  s.Bind(1, dir.id).Bind(2, now_ns).Bind(3, listed_by).Bind(4, gen).Bind(5, count);
  return s.Run();
}

Result<CatalogStats> SqliteSession::Stats() {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("SELECT COALESCE(SUM(type = 1), 0), COALESCE(SUM(type = 2), 0), "
                           "COALESCE(SUM(CASE WHEN type = 1 THEN size END), 0), "
                           "COALESCE(SUM(CASE WHEN type = 1 AND cached THEN size END), 0) "
                           "FROM entries"));
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  CatalogStats stats;
  if (row) {
    stats.files = s.Int(0);
    stats.dirs = s.Int(1);
    stats.bytes = static_cast<uint64_t>(s.Int(2));
    stats.cached_bytes = static_cast<uint64_t>(s.Int(3));
  }
  return stats;
}

Result<uint64_t> SqliteSession::CachedBytes() {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("SELECT COALESCE(SUM(size), 0) FROM entries WHERE cached = 1"));
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : 0;
}

Status SqliteSession::EvictionCandidates(int limit, std::vector<Entry>* out) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare(std::string("SELECT ") + kColumns +
                           " FROM entries WHERE cached = 1 AND state = 'dual' AND pinned = 0 "
                           "ORDER BY last_access_ns LIMIT ?"));
  s.Bind(1, limit);
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    out->push_back(ReadEntry(s));
  }
}

Result<bool> SqliteSession::DropCachedCopy(EntryId id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET cached = 0, state = 'offline', "
                                      "seen_gen = MAX(seen_gen, ?) WHERE id = ? AND cached = 1 AND "
                                      "state = 'dual'"));
  s.Bind(1, now_ns).Bind(2, id);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return db_->Changes() == 1;
}

Status SqliteSession::Touch(const std::vector<EntryId>& ids, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET last_access_ns = ? WHERE id = ?"));
  for (EntryId id : ids) {
    s.Reset();
    s.Bind(1, now_ns).Bind(2, id);
    HSMFS_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

Status SqliteSession::SetPinned(EntryId id, bool pinned) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET pinned = ? WHERE id = ?"));
  s.Bind(1, int64_t{pinned}).Bind(2, id);
  return s.Run();
}

Result<bool> SqliteSession::HasChildren(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("SELECT EXISTS (SELECT 1 FROM entries WHERE parent = ?)"));
  s.Bind(1, dir);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row && s.Int(0) != 0;
}

Result<Entry> SqliteSession::BeginModify(EntryId id, bool cached, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET state = 'online', version = version + 1, "
                                      "error = NULL, cached = ?1, seen_gen = MAX(seen_gen, ?2), "
                                      "ctime_ns = ?2 WHERE id = ?3"));
  s.Bind(1, int64_t{cached}).Bind(2, now_ns).Bind(3, id);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return Get(id);
}

Status SqliteSession::SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET size = ?1, mtime_ns = ?2, "
                                              "ctime_ns = MAX(ctime_ns, ?2) WHERE id = ?3"));
  s.Bind(1, static_cast<int64_t>(size)).Bind(2, mtime_ns).Bind(3, id);
  return s.Run();
}

Status SqliteSession::SetMode(EntryId id, uint32_t mode) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET mode = ? WHERE id = ?"));
  s.Bind(1, static_cast<int64_t>(mode & 07777)).Bind(2, id);
  return s.Run();
}

Status SqliteSession::SetOwner(EntryId id, int64_t uid, int64_t gid) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("UPDATE entries SET uid = CASE WHEN ?1 >= 0 THEN ?1 ELSE uid END, "
                           "gid = CASE WHEN ?2 >= 0 THEN ?2 ELSE gid END WHERE id = ?3"));
  s.Bind(1, uid).Bind(2, gid).Bind(3, id);
  return s.Run();
}

Status SqliteSession::SetMtime(EntryId id, int64_t mtime_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("UPDATE entries SET mtime_ns = ?, local_mtime = 1 WHERE id = ?"));
  s.Bind(1, mtime_ns).Bind(2, id);
  return s.Run();
}

Status SqliteSession::SetCtime(EntryId id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET ctime_ns = ? WHERE id = ?"));
  s.Bind(1, now_ns).Bind(2, id);
  return s.Run();
}

Status SqliteSession::DirChanged(EntryId dir, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET mtime_ns = ?1, ctime_ns = ?1, "
                                              "local_mtime = 1 WHERE id = ?2 AND type = 2"));
  s.Bind(1, now_ns).Bind(2, dir);
  return s.Run();
}

Status SqliteSession::MarkIncomplete(EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("UPDATE entries SET state = 'failed', error = ? WHERE id = ? AND type = 1"));
  s.Bind(1, error).Bind(2, id);
  return s.Run();
}

Result<bool> SqliteSession::ClearIncomplete(EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET state = 'online', error = NULL "
                                              "WHERE id = ? AND state = 'failed' AND error = ?"));
  s.Bind(1, id).Bind(2, error);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return db_->Changes() == 1;
}

Status SqliteSession::Move(EntryId id, EntryId new_parent, std::string_view new_name,
                           std::string_view new_path) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, Get(id));
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("UPDATE entries SET parent = ?, name = ?, backend_path = ? WHERE id = ?"));
  s.Bind(1, new_parent).Bind(2, new_name).Bind(3, new_path).Bind(4, id);
  HSMFS_RETURN_IF_ERROR(s.Run());
  if (!e.is_dir()) return Status::Ok();
  // Below a directory only the prefix of the backend path changes. Compared
  // with substr, not LIKE: names may contain % and _.
  HSMFS_ASSIGN_OR_RETURN(
      Stmt d, db_->Prepare("UPDATE entries SET backend_path = ?1 || substr(backend_path, ?2) "
                           "WHERE backend = ?3 AND substr(backend_path, 1, ?4) = ?5"));
  const std::string old_prefix = e.backend_path + "/";
  d.Bind(1, new_path)
      .Bind(2, static_cast<int64_t>(e.backend_path.size()) + 1)
      .Bind(3, e.backend)
      .Bind(4, static_cast<int64_t>(old_prefix.size()))
      .Bind(5, old_prefix);
  return d.Run();
}

Status SqliteSession::SetOnBackend(EntryId id) {
  // The parents exist on the backend too once something below them does.
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("WITH RECURSIVE up(id) AS (SELECT ?1 UNION ALL SELECT e.parent FROM "
                           "entries e JOIN up ON e.id = up.id WHERE e.parent IS NOT NULL) "
                           "UPDATE entries SET on_backend = 1, state = CASE WHEN type = 2 AND "
                           "state = 'online' THEN 'dual' ELSE state END WHERE id IN up AND "
                           "(on_backend = 0 OR (type = 2 AND state = 'online'))"));
  s.Bind(1, id);
  return s.Run();
}

Result<std::optional<std::string>> SqliteSession::GetMeta(std::string_view key) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("SELECT value FROM meta WHERE key = ?"));
  s.Bind(1, key);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status SqliteSession::SetMeta(std::string_view key, std::string_view value) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("INSERT INTO meta (key, value) VALUES (?, ?) "
                                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

Status SqliteSession::CachedIds(std::vector<EntryId>* out) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT id FROM entries WHERE cached = 1"));
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return Status::Ok();
    out->push_back(st.Int(0));
  }
}

Status SqliteSession::MarkCachedCopyLost(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE entries SET cached = 0, state = CASE WHEN state = 'dual' "
                            "THEN 'offline' ELSE 'failed' END, error = CASE WHEN state = "
                            "'dual' THEN error ELSE 'the cached copy was lost before it was "
                            "archived' END WHERE id = ?"));
  st.Bind(1, id);
  return st.Run();
}

Status SqliteSession::Subtree(EntryId id, std::vector<Entry>* out) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("WITH RECURSIVE sub(id, depth) AS (SELECT ?1, 0 UNION ALL SELECT e.id, "
                            "sub.depth + 1 FROM entries e JOIN sub ON e.parent = sub.id) SELECT " +
                            EntryColumns("e") +
                            " FROM entries e JOIN sub ON e.id = sub.id ORDER BY sub.depth, e.id"));
  st.Bind(1, id);
  return ReadEntries(st, out);
}

Status SqliteSession::BadlyNamed(std::vector<Entry>* out) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(std::string("SELECT ") + kColumns +
                                               " FROM entries WHERE id != 1 AND (name IN ('', "
                                               "'.', '..') OR instr(name, '/') > 0) ORDER BY id"));
  return ReadEntries(st, out);
}

Status SqliteSession::Files(EntryId after, int limit, std::vector<Entry>* out) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(std::string("SELECT ") + kColumns +
                                               " FROM entries WHERE id > ? AND type = 1 "
                                               "ORDER BY id LIMIT ?"));
  st.Bind(1, after).Bind(2, limit);
  return ReadEntries(st, out);
}

Status SqliteSession::ResetForArchive(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("UPDATE entries SET state = 'online', error = NULL, on_backend = 0, "
                            "version = version + 1 WHERE id = ?"));
  st.Bind(1, id);
  return st.Run();
}

Status SqliteSession::RevertToBackendVersion(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("UPDATE entries SET state = 'offline', cached = 0, "
                                               "error = NULL, version = version + 1 WHERE id = ?"));
  st.Bind(1, id);
  return st.Run();
}

Status SqliteSession::ForgetListing(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("DELETE FROM dir_sync WHERE dir_id = ?"));
  st.Bind(1, dir);
  return st.Run();
}

Result<std::optional<std::string>> SqliteSession::GetBackendRootId(std::string_view backend) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("SELECT root_id FROM backend_ids WHERE backend = ?"));
  s.Bind(1, backend);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status SqliteSession::SetBackendRootId(std::string_view backend, std::string_view root_id,
                                       int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("INSERT INTO backend_ids (backend, root_id, recorded_ns) VALUES (?, ?, ?) "
                   "ON CONFLICT (backend) DO UPDATE SET root_id = excluded.root_id, "
                   "recorded_ns = excluded.recorded_ns"));
  s.Bind(1, backend).Bind(2, root_id).Bind(3, now_ns);
  return s.Run();
}

Result<bool> SqliteSession::BackendUsed(std::string_view backend) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("SELECT EXISTS (SELECT 1 FROM entries WHERE backend = ?1 AND on_backend = 1 "
                   "AND parent != ?2) OR EXISTS (SELECT 1 FROM dir_sync d JOIN entries e ON "
                   "e.id = d.dir_id WHERE e.backend = ?1 AND d.entries > 0)"));
  s.Bind(1, backend).Bind(2, kRootId);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row && s.Int(0) != 0;
}

Status SqliteSession::SetEntryError(EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET error = ? WHERE id = ?"));
  s.BindText(1, error).Bind(2, id);
  return s.Run();
}

Result<std::unique_ptr<SqliteCatalog>> SqliteCatalog::Open(const std::filesystem::path& path,
                                                           const Catalog::Options& options) {
  std::unique_ptr<SqliteCatalog> catalog(new SqliteCatalog(path, options.busy_timeout_ms));
  const std::string label = "catalog " + path.string();
  HSMFS_ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, options.create, options.busy_timeout_ms));
  HSMFS_RETURN_IF_ERROR(Migrate(*db, label));
  HSMFS_RETURN_IF_ERROR(
      db->Exec("INSERT OR IGNORE INTO entries (id, parent, name, type, mode, mtime_ns, backend, "
               "backend_path) VALUES (1, NULL, '', 2, 493, unixepoch() * 1000000000, '', '')"));
  catalog->first_ = std::move(db);
  return catalog;
}

Result<std::unique_ptr<SessionImpl>> SqliteCatalog::Connect() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (first_)
      return std::unique_ptr<SessionImpl>(std::make_unique<SqliteSession>(std::move(first_)));
  }
  HSMFS_ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path_, false, busy_timeout_ms_));
  return std::unique_ptr<SessionImpl>(std::make_unique<SqliteSession>(std::move(db)));
}

int SqliteCatalog::MaxConnections(int requested) const {
  // Every connection to ":memory:" is a database of its own.
  return path_ == ":memory:" ? 1 : requested;
}

SqliteDb& RawSqlite(Session& s) {
  auto* sqlite = dynamic_cast<SqliteSession*>(&SessionAccess::Impl(s));
  if (!sqlite) {
    std::fputs("hsmfs: catalog: RawSqlite on a session that is not SQLite's\n", stderr);
    std::abort();
  }
  return sqlite->db();
}

}  // namespace hsmfs::catalog
