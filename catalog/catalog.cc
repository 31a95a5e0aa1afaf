#include "catalog/catalog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "catalog/session_impl.h"
#include "common/config.h"
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

// Catalogs this thread holds a Session of (to catch nested Acquire).
thread_local std::vector<const Catalog*> t_held;

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

}  // namespace

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

Session::Session(Catalog* catalog, std::unique_ptr<SessionImpl> impl)
    : catalog_(catalog), impl_(std::move(impl)) {
  t_held.push_back(catalog_);
}

Session::Session(Session&& other) noexcept
    : catalog_(other.catalog_), impl_(std::move(other.impl_)) {
  other.catalog_ = nullptr;
}

Session::~Session() {
  if (!catalog_) return;
  auto it = std::find(t_held.begin(), t_held.end(), catalog_);
  if (it != t_held.end()) t_held.erase(it);
  catalog_->Release(std::move(impl_));
}

Session::Transaction::~Transaction() {
  if (impl_) impl_->Rollback();
}

Status Session::Transaction::Commit() {
  SessionImpl* impl = impl_;
  impl_ = nullptr;
  return impl->Commit();
}

Result<Session::Transaction> Session::Begin() {
  HSMFS_RETURN_IF_ERROR(impl_->Begin());
  return Transaction(impl_.get());
}

Result<Entry> Session::Get(EntryId id) { return impl_->Get(id); }

Result<Entry> Session::Lookup(EntryId parent, std::string_view name) {
  return impl_->Lookup(parent, name);
}

Status Session::Children(EntryId dir, EntryId after, int limit, std::vector<Entry>* out) {
  return impl_->Children(dir, after, limit, out);
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
  HSMFS_RETURN_IF_ERROR(CheckEntryName(e.name));
  return impl_->InsertEntry(e);
}

Result<std::optional<DirSync>> Session::GetSync(EntryId dir) { return impl_->GetSync(dir); }

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
    HSMFS_RETURN_IF_ERROR(impl_->Remove(old->id));
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
    HSMFS_RETURN_IF_ERROR(CheckEntryName(e.name));
    HSMFS_RETURN_IF_ERROR(impl_->InsertEntry(e).status());
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
  HSMFS_RETURN_IF_ERROR(impl_->UpdateListedAttrs(e));
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
  return impl_->FinishListing(dir, gen, listed_by, count, now_ns, delta, confirmed);
}

Result<CatalogStats> Session::Stats() { return impl_->Stats(); }
Result<uint64_t> Session::CachedBytes() { return impl_->CachedBytes(); }

Status Session::EvictionCandidates(int limit, std::vector<Entry>* out) {
  return impl_->EvictionCandidates(limit, out);
}

Result<bool> Session::DropCachedCopy(EntryId id, int64_t now_ns) {
  return impl_->DropCachedCopy(id, now_ns);
}

Status Session::Touch(const std::vector<EntryId>& ids, int64_t now_ns) {
  return impl_->Touch(ids, now_ns);
}

Status Session::SetPinned(EntryId id, bool pinned) { return impl_->SetPinned(id, pinned); }
Status Session::CachedIds(std::vector<EntryId>* out) { return impl_->CachedIds(out); }
Status Session::MarkCachedCopyLost(EntryId id) { return impl_->MarkCachedCopyLost(id); }

Result<Entry> Session::Create(const Entry& e) {
  auto existing = Lookup(e.parent, e.name);
  if (existing.ok()) return AlreadyExistsError(e.name + ": exists");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  HSMFS_RETURN_IF_ERROR(CheckEntryName(e.name));
  return impl_->InsertEntry(e);
}

Status Session::Remove(EntryId id) { return impl_->Remove(id); }
Result<bool> Session::HasChildren(EntryId dir) { return impl_->HasChildren(dir); }

Result<Entry> Session::BeginModify(EntryId id, bool cached, int64_t now_ns) {
  return impl_->BeginModify(id, cached, now_ns);
}

Status Session::SetLocalAttrs(EntryId id, uint64_t size, int64_t mtime_ns) {
  return impl_->SetLocalAttrs(id, size, mtime_ns);
}

Status Session::SetMode(EntryId id, uint32_t mode) { return impl_->SetMode(id, mode); }

Status Session::SetOwner(EntryId id, int64_t uid, int64_t gid) {
  return impl_->SetOwner(id, uid, gid);
}

Status Session::SetMtime(EntryId id, int64_t mtime_ns) { return impl_->SetMtime(id, mtime_ns); }
Status Session::SetCtime(EntryId id, int64_t now_ns) { return impl_->SetCtime(id, now_ns); }
Status Session::DirChanged(EntryId dir, int64_t now_ns) { return impl_->DirChanged(dir, now_ns); }

Status Session::MarkIncomplete(EntryId id, std::string_view error) {
  return impl_->MarkIncomplete(id, error);
}

Result<bool> Session::ClearIncomplete(EntryId id, std::string_view error) {
  return impl_->ClearIncomplete(id, error);
}

Status Session::Move(EntryId id, EntryId new_parent, std::string_view new_name,
                     std::string_view new_path) {
  HSMFS_RETURN_IF_ERROR(CheckEntryName(new_name));
  return impl_->Move(id, new_parent, new_name, new_path);
}

Status Session::SetOnBackend(EntryId id) { return impl_->SetOnBackend(id); }

Status Session::Subtree(EntryId id, std::vector<Entry>* out) { return impl_->Subtree(id, out); }
Status Session::BadlyNamed(std::vector<Entry>* out) { return impl_->BadlyNamed(out); }

Status Session::Files(EntryId after, int limit, std::vector<Entry>* out) {
  return impl_->Files(after, limit, out);
}

Status Session::ResetForArchive(EntryId id) { return impl_->ResetForArchive(id); }
Status Session::RevertToBackendVersion(EntryId id) { return impl_->RevertToBackendVersion(id); }
Status Session::ForgetListing(EntryId dir) { return impl_->ForgetListing(dir); }

Result<std::optional<std::string>> Session::GetMeta(std::string_view key) {
  return impl_->GetMeta(key);
}

Status Session::SetMeta(std::string_view key, std::string_view value) {
  return impl_->SetMeta(key, value);
}

Catalog::Catalog(std::filesystem::path path, Options options, std::unique_ptr<CatalogImpl> impl)
    : path_(std::move(path)),
      options_(options),
      impl_(std::move(impl)),
      max_connections_(impl_->MaxConnections(options.max_connections)) {}

Catalog::~Catalog() = default;

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::filesystem::path& path, Options options) {
  HSMFS_ASSIGN_OR_RETURN(auto impl, OpenCatalogImpl(path, options));
  HSMFS_ASSIGN_OR_RETURN(auto first, impl->Connect());
  std::unique_ptr<Catalog> catalog(new Catalog(path, options, std::move(impl)));
  catalog->open_ = 1;
  catalog->free_.push_back(std::move(first));
  return catalog;
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const CatalogConfig& config) {
  return Open(config.path, Options());
}

Result<Session> Catalog::Acquire() {
  if (std::find(t_held.begin(), t_held.end(), this) != t_held.end()) {
    // A programming error that would deadlock once the pool is exhausted.
    std::fputs("hsmfs: catalog: a thread acquired a second session of one catalog\n", stderr);
    std::abort();
  }
  std::unique_ptr<SessionImpl> impl;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !free_.empty() || open_ < max_connections_; });
    if (!free_.empty()) {
      impl = std::move(free_.back());
      free_.pop_back();
    } else {
      ++open_;
    }
  }
  if (!impl) {
    auto opened = impl_->Connect();
    if (!opened.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      --open_;
      cv_.notify_one();
      return opened.status();
    }
    impl = std::move(opened).value();
  }
  return Session(this, std::move(impl));
}

void Catalog::Release(std::unique_ptr<SessionImpl> impl) {
  {
    std::lock_guard<std::mutex> l(mu_);
    free_.push_back(std::move(impl));
  }
  cv_.notify_one();
}

}  // namespace hsmfs::catalog
