#include "catalog/catalog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "catalog/migrations.h"
#include "common/logging.h"

namespace hsmfs::catalog {
namespace {

// Whether a listed mtime is the one the catalog holds. Backends that keep
// whole seconds (HPSS, whose `ls -D` shows seconds) list a file written
// through the mount with its mtime truncated: that is the same file, and the
// catalog keeps the precise time.
bool SameMtime(int64_t ours, int64_t listed) {
  constexpr int64_t kSecond = 1'000'000'000;
  if (ours == listed) return true;
  if (listed % kSecond != 0) return false;
  const int64_t floor = ours / kSecond - (ours % kSecond < 0 ? 1 : 0);
  return floor * kSecond == listed;
}

constexpr std::string_view kStateNames[] = {"offline",   "staging", "online", "queued",
                                            "archiving", "dual",    "failed"};

constexpr char kColumns[] =
    "id, parent, name, type, mode, size, mtime_ns, backend, backend_path, state, cached, "
    "checksum, location, volume, position, error, seen_gen, last_access_ns, pinned, version, "
    "on_backend, hsm_state, link_target, ctime_ns, local_mtime, uid, gid";

// Catalogs this thread holds a Session of (to catch nested Acquire).
thread_local std::vector<const Catalog*> t_held;

Entry ReadEntry(const Stmt& s) { return ReadEntryColumns(s, 0); }

// An owner id, NULL for "none" (-1).
void BindOwner(Stmt& s, int i, int64_t id) {
  if (id < 0) {
    s.BindNull(i);
  } else {
    s.Bind(i, id);
  }
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
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

std::string_view StateName(FileState state) { return kStateNames[static_cast<int>(state)]; }

Result<FileState> ParseState(std::string_view name) {
  for (size_t i = 0; i < std::size(kStateNames); ++i) {
    if (kStateNames[i] == name) return static_cast<FileState>(i);
  }
  return InvalidArgumentError("unknown file state \"" + std::string(name) + "\"");
}

std::string_view DmfCode(const Entry& e) {
  // Not in our cache: what the backend says (DUL: on its disk, a quick recall).
  if (e.state == FileState::kOffline && !e.hsm_state.empty()) return e.hsm_state;
  return DmfCode(e.state);
}

std::string_view DmfCode(FileState state) {
  switch (state) {
    case FileState::kOffline:
      return "OFL";
    case FileState::kStaging:
      return "UNM";
    case FileState::kOnline:
      return "REG";
    case FileState::kQueued:
    case FileState::kArchiving:
      return "MIG";
    case FileState::kDual:
      return "DUL";
    case FileState::kFailed:
      return "ERR";
  }
  return "INV";
}

bool ValidEntryName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

Status CheckEntryName(std::string_view name) {
  if (ValidEntryName(name)) return Status::Ok();
  std::string shown;
  for (char c : name) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
  return InvalidArgumentError("\"" + shown + "\" cannot name a file or directory (" +
                              (name.empty() ? "empty" : "reserved name or contains / or NUL") +
                              ")");
}

namespace {
constexpr std::string_view kIncompletePrefix = "incomplete: hsmctl put (pid ";
}  // namespace

std::string IncompletePutError(int64_t pid) {
  return std::string(kIncompletePrefix) + std::to_string(pid) + ") has not finished copying it in";
}

std::optional<int64_t> IncompletePutPid(std::string_view error) {
  if (error.substr(0, kIncompletePrefix.size()) != kIncompletePrefix) return std::nullopt;
  const std::string rest(error.substr(kIncompletePrefix.size()));
  char* end = nullptr;
  const long long pid = std::strtoll(rest.c_str(), &end, 10);
  if (end == rest.c_str() || *end != ')' || pid <= 0) return std::nullopt;
  return pid;
}

std::string Entry::display() const {
  return backend_path.empty() ? backend + "/" : backend + "/" + backend_path;
}

bool Entry::holds_unarchived_data() const {
  switch (state) {
    case FileState::kOnline:
    case FileState::kQueued:
    case FileState::kArchiving:
      return true;
    case FileState::kFailed:
      // A symlink's target lives only in the catalog until it is archived.
      return cached || type == EntryType::kSymlink;
    case FileState::kOffline:
    case FileState::kStaging:
    case FileState::kDual:
      return false;
  }
  return true;
}

Session::Session(Catalog* catalog, std::unique_ptr<SqliteDb> db)
    : catalog_(catalog), db_(std::move(db)) {
  t_held.push_back(catalog_);
}

Session::Session(Session&& other) noexcept : catalog_(other.catalog_), db_(std::move(other.db_)) {
  other.catalog_ = nullptr;
}

Session::~Session() {
  if (!catalog_) return;
  auto it = std::find(t_held.begin(), t_held.end(), catalog_);
  if (it != t_held.end()) t_held.erase(it);
  catalog_->Release(std::move(db_));
}

Session::Transaction::~Transaction() {
  if (db_) db_->Exec("ROLLBACK").IgnoreError();
}

Status Session::Transaction::Commit() {
  SqliteDb* db = db_;
  db_ = nullptr;
  return db->Exec("COMMIT");
}

Result<Session::Transaction> Session::Begin() {
  HSMFS_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  return Transaction(db_.get());
}

Result<Entry> Session::Get(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare(std::string("SELECT ") + kColumns + " FROM entries WHERE id = ?"));
  s.Bind(1, id);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError("no catalog entry " + std::to_string(id));
  return ReadEntry(s);
}

Result<Entry> Session::Lookup(EntryId parent, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare(std::string("SELECT ") + kColumns +
                                              " FROM entries WHERE parent = ? AND name = ?"));
  s.Bind(1, parent).Bind(2, name);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(std::string(name) + ": no such entry");
  return ReadEntry(s);
}

Status Session::Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out) {
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

Result<Entry> Session::Resolve(std::string_view path) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, Get(kRootId));
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (!e.is_dir()) return Status(Code::kNotDirectory, e.name + ": not a directory");
    auto child = Lookup(e.id, part);
    if (!child.ok()) return NotFoundError(std::string(path) + ": not in the catalog");
    e = std::move(child).value();
  }
  return e;
}

Result<Entry> Session::InsertEntry(const Entry& e) {
  HSMFS_RETURN_IF_ERROR(CheckEntryName(e.name));
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

Status Session::UpdateListedAttrs(const Entry& e) {
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

Status Session::DeleteEntry(EntryId id) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("DELETE FROM entries WHERE id = ?"));
  s.Bind(1, id);
  return s.Run();
}

Result<Entry> Session::EnsureBackendRoot(std::string_view backend, int64_t now_ns,
                                         std::optional<uint32_t> mode) {
  auto existing = Lookup(kRootId, backend);
  if (existing.ok() && mode && existing->mode != (*mode & 07777)) {
    HSMFS_RETURN_IF_ERROR(SetMode(existing->id, *mode));
    existing->mode = *mode & 07777;
  }
  if (existing.ok() || existing.status().code() != Code::kNotFound) return existing;
  Entry e;
  e.parent = kRootId;
  e.name = std::string(backend);
  e.type = EntryType::kDir;
  e.mode = mode ? *mode & 07777 : 0755;
  e.mtime_ns = now_ns;
  e.backend = std::string(backend);
  return InsertEntry(e);
}

Result<std::optional<DirSync>> Session::GetSync(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("SELECT listed_ns, listed_by, gen, entries FROM dir_sync WHERE dir_id = ?"));
  s.Bind(1, dir);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<DirSync>();
  return std::optional<DirSync>(DirSync{s.Int(0), s.Text(1), s.Int(2), s.Int(3)});
}

Status Session::UpsertListed(const Entry& dir, const Entry& listed, int64_t gen,
                             ListingDelta* delta, bool add_names) {
  if (!ValidEntryName(listed.name)) {
    // One object the mount cannot show must not fail the whole listing.
    if (FirstTimeFor("bad-listed-name:" + dir.display() + "/" + listed.name)) {
      spdlog::warn("{}: the backend lists an entry named \"{}\", which cannot be shown; skipped",
                   dir.display(), listed.name);
    }
    return Status::Ok();
  }
  auto old = Lookup(dir.id, listed.name);
  if (!old.ok() && old.status().code() != Code::kNotFound) return old.status();
  if (!add_names && (!old.ok() || old->type != listed.type)) return Status::Ok();
  if (old.ok() && old->type != listed.type) {
    if (old->holds_unarchived_data()) {
      spdlog::warn("{}/{}: backend now has a {} where the cache holds unarchived data; keeping it",
                   dir.backend, listed.backend_path, listed.is_dir() ? "directory" : "file");
      return Status::Ok();
    }
    HSMFS_RETURN_IF_ERROR(DeleteEntry(old->id));
    if (delta) delta->removed.emplace_back(dir.id, listed.name);
    old = NotFoundError("replaced");
  }
  if (!old.ok()) {
    Entry e = listed;
    e.mode = listed.mode & 07777;
    e.parent = dir.id;
    e.backend = dir.backend;
    e.backend_path = JoinPath(dir.backend_path, listed.name);
    e.state = FileState::kOffline;
    e.cached = false;
    e.seen_gen = gen;
    // A symlink's whole content, its target, comes with the listing.
    if (e.is_symlink()) e.state = FileState::kDual;
    HSMFS_RETURN_IF_ERROR(InsertEntry(e).status());
    if (delta) delta->added.emplace_back(dir.id, listed.name);
    return Status::Ok();
  }
  Entry e = std::move(old).value();
  if (!e.is_dir() && e.seen_gen > gen) {
    // The engine changed it (archived, recalled) after this listing began:
    // what the listing saw may predate that (a put half done), so the
    // catalog's newer view stands.
    return Status::Ok();
  }
  const Entry before = e;
  e.seen_gen = gen;
  const bool listed_mode = (listed.mode & kListedModeIsDefault) == 0;
  if (e.is_dir()) {
    // The mode stays the catalog's: chmod through the mount changes only the
    // catalog (no backend call may block it), so a listing must not undo it.
    // So does an mtime the mount set (mkdir, a change inside, utimens): the
    // backend's changes whenever the archiver puts a file there. So does the
    // owner, once known.
    if (!e.local_mtime) e.mtime_ns = listed.mtime_ns;
    if (e.uid < 0) e.uid = listed.uid;
    if (e.gid < 0) e.gid = listed.gid;
  } else if (!e.holds_unarchived_data()) {
    const bool same_mtime = SameMtime(e.mtime_ns, listed.mtime_ns);
    const bool changed_on_backend = e.size != listed.size || !same_mtime;
    if (changed_on_backend && e.cached) {
      // Someone replaced the file on the backend behind our back: the cached
      // copy is stale, so the next read recalls the new version.
      e.cached = false;
      e.state = FileState::kOffline;
    }
    if (listed_mode) e.mode = listed.mode;
    // A chown through the mount changes only the catalog: the backend's owner
    // counts for a file it changed, or one the catalog has no owner for.
    if (listed.uid >= 0 && (changed_on_backend || e.uid < 0)) e.uid = listed.uid;
    if (listed.gid >= 0 && (changed_on_backend || e.gid < 0)) e.gid = listed.gid;
    e.size = listed.size;
    if (!same_mtime) e.mtime_ns = listed.mtime_ns;
    if (!listed.checksum.empty() || changed_on_backend) e.checksum = listed.checksum;
    e.location = listed.location;
    e.volume = listed.volume;
    e.position = listed.position;
    e.hsm_state = listed.hsm_state;
    e.link_target = listed.link_target;
  }
  HSMFS_RETURN_IF_ERROR(UpdateListedAttrs(e));
  if (delta &&
      (e.mode != before.mode || e.size != before.size || e.mtime_ns != before.mtime_ns ||
       e.state != before.state || e.hsm_state != before.hsm_state ||
       e.link_target != before.link_target || e.uid != before.uid || e.gid != before.gid)) {
    delta->changed.push_back(e.id);
  }
  return Status::Ok();
}

Status Session::FinishListing(const Entry& dir, int64_t gen, std::string_view listed_by,
                              int64_t count, int64_t now_ns, ListingDelta* delta, bool confirmed) {
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
    HSMFS_RETURN_IF_ERROR(DeleteEntry(e->id));
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

Result<CatalogStats> Session::Stats() {
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

Result<uint64_t> Session::CachedBytes() {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("SELECT COALESCE(SUM(size), 0) FROM entries WHERE cached = 1"));
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<uint64_t>(s.Int(0)) : 0;
}

Status Session::EvictionCandidates(int limit, std::vector<Entry>* out) {
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

Result<bool> Session::DropCachedCopy(EntryId id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET cached = 0, state = 'offline', "
                                      "seen_gen = MAX(seen_gen, ?) WHERE id = ? AND cached = 1 AND "
                                      "state = 'dual'"));
  s.Bind(1, now_ns).Bind(2, id);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return db_->Changes() == 1;
}

Status Session::Touch(const std::vector<EntryId>& ids, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET last_access_ns = ? WHERE id = ?"));
  for (EntryId id : ids) {
    s.Reset();
    s.Bind(1, now_ns).Bind(2, id);
    HSMFS_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

Status Session::SetPinned(EntryId id, bool pinned) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET pinned = ? WHERE id = ?"));
  s.Bind(1, int64_t{pinned}).Bind(2, id);
  return s.Run();
}

Result<Entry> Session::Create(const Entry& e) {
  auto existing = Lookup(e.parent, e.name);
  if (existing.ok()) return AlreadyExistsError(e.name + ": exists");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  return InsertEntry(e);
}

Status Session::Remove(EntryId id) { return DeleteEntry(id); }

Result<bool> Session::HasChildren(EntryId dir) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("SELECT EXISTS (SELECT 1 FROM entries WHERE parent = ?)"));
  s.Bind(1, dir);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row && s.Int(0) != 0;
}

Result<Entry> Session::BeginModify(EntryId id, bool cached, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("UPDATE entries SET state = 'online', version = version + 1, "
                                      "error = NULL, cached = ?1, seen_gen = MAX(seen_gen, ?2), "
                                      "ctime_ns = ?2 WHERE id = ?3"));
  s.Bind(1, int64_t{cached}).Bind(2, now_ns).Bind(3, id);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return Get(id);
}

Status Session::SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET size = ?1, mtime_ns = ?2, "
                                              "ctime_ns = MAX(ctime_ns, ?2) WHERE id = ?3"));
  s.Bind(1, static_cast<int64_t>(size)).Bind(2, mtime_ns).Bind(3, id);
  return s.Run();
}

Status Session::SetMode(EntryId id, uint32_t mode) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET mode = ? WHERE id = ?"));
  s.Bind(1, static_cast<int64_t>(mode & 07777)).Bind(2, id);
  return s.Run();
}

Status Session::SetOwner(EntryId id, int64_t uid, int64_t gid) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("UPDATE entries SET uid = CASE WHEN ?1 >= 0 THEN ?1 ELSE uid END, "
                           "gid = CASE WHEN ?2 >= 0 THEN ?2 ELSE gid END WHERE id = ?3"));
  s.Bind(1, uid).Bind(2, gid).Bind(3, id);
  return s.Run();
}

Status Session::SetMtime(EntryId id, int64_t mtime_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, db_->Prepare("UPDATE entries SET mtime_ns = ?, local_mtime = 1 WHERE id = ?"));
  s.Bind(1, mtime_ns).Bind(2, id);
  return s.Run();
}

Status Session::SetCtime(EntryId id, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET ctime_ns = ? WHERE id = ?"));
  s.Bind(1, now_ns).Bind(2, id);
  return s.Run();
}

Status Session::DirChanged(EntryId dir, int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET mtime_ns = ?1, ctime_ns = ?1, "
                                              "local_mtime = 1 WHERE id = ?2 AND type = 2"));
  s.Bind(1, now_ns).Bind(2, dir);
  return s.Run();
}

Status Session::MarkIncomplete(EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s,
      db_->Prepare("UPDATE entries SET state = 'failed', error = ? WHERE id = ? AND type = 1"));
  s.Bind(1, error).Bind(2, id);
  return s.Run();
}

Result<bool> Session::ClearIncomplete(EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("UPDATE entries SET state = 'online', error = NULL "
                                              "WHERE id = ? AND state = 'failed' AND error = ?"));
  s.Bind(1, id).Bind(2, error);
  HSMFS_RETURN_IF_ERROR(s.Run());
  return db_->Changes() == 1;
}

Status Session::Move(EntryId id, EntryId new_parent, std::string_view new_name,
                     std::string_view new_path) {
  HSMFS_RETURN_IF_ERROR(CheckEntryName(new_name));
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

Status Session::SetOnBackend(EntryId id) {
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

Result<std::optional<std::string>> Session::GetMeta(std::string_view key) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, db_->Prepare("SELECT value FROM meta WHERE key = ?"));
  s.Bind(1, key);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status Session::SetMeta(std::string_view key, std::string_view value) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         db_->Prepare("INSERT INTO meta (key, value) VALUES (?, ?) "
                                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  s.Bind(1, key).Bind(2, value);
  return s.Run();
}

Catalog::Catalog(std::filesystem::path path, Options options)
    : path_(std::move(path)), options_(options) {}

Catalog::~Catalog() = default;

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::filesystem::path& path, Options options) {
  if (path == ":memory:") options.max_connections = 1;
  std::unique_ptr<Catalog> catalog(new Catalog(path, options));
  const std::string label = "catalog " + path.string();
  HSMFS_ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, options.create, options.busy_timeout_ms));
  HSMFS_RETURN_IF_ERROR(Migrate(*db, label));
  HSMFS_RETURN_IF_ERROR(
      db->Exec("INSERT OR IGNORE INTO entries (id, parent, name, type, mode, mtime_ns, backend, "
               "backend_path) VALUES (1, NULL, '', 2, 493, unixepoch() * 1000000000, '', '')"));
  catalog->open_ = 1;
  catalog->free_.push_back(std::move(db));
  return catalog;
}

Result<Session> Catalog::Acquire() {
  if (std::find(t_held.begin(), t_held.end(), this) != t_held.end()) {
    // A programming error that would deadlock once the pool is exhausted.
    std::fputs("hsmfs: catalog: a thread acquired a second session of one catalog\n", stderr);
    std::abort();
  }
  std::unique_ptr<SqliteDb> db;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !free_.empty() || open_ < options_.max_connections; });
    if (!free_.empty()) {
      db = std::move(free_.back());
      free_.pop_back();
    } else {
      ++open_;
    }
  }
  if (!db) {
    auto opened = SqliteDb::Open(path_, false, options_.busy_timeout_ms);
    if (!opened.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      --open_;
      cv_.notify_one();
      return opened.status();
    }
    db = std::move(opened).value();
  }
  return Session(this, std::move(db));
}

void Catalog::Release(std::unique_ptr<SqliteDb> db) {
  {
    std::lock_guard<std::mutex> l(mu_);
    free_.push_back(std::move(db));
  }
  cv_.notify_one();
}

}  // namespace hsmfs::catalog
