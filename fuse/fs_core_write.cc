// FsCore: the write path (create, write, truncate, mkdir, rename, unlink...).
// See docs/SEMANTICS.md "Writing" for the contract.

#include <fcntl.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/registry.h"
#include "catalog/job_queue.h"
#include "common/logging.h"
#include "engine/bookkeeping.h"
#include "fuse/fs_core.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;
using catalog::FileState;

std::string Join(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : std::string(dir) + "/" + std::string(name);
}

int64_t MtimeNs(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

Status FsCore::CheckWritable(const std::string& backend, const std::string& path) const {
  const BackendConfig* b = engine_.config().FindBackend(backend);
  if (b && IsWritablePath(*b, path)) return Status::Ok();
  std::string where;
  if (b && !b->writable.empty()) {
    for (const std::string& w : b->writable) where += (where.empty() ? "" : ", ") + w;
    where = " (writable here: " + where + ")";
  }
  return ReadOnlyError(backend + "/" + path + ": not in a writable directory" + where);
}

Status FsCore::CheckName(const std::string& backend, std::string_view name) const {
  if (name.size() > kNameMax) {
    return Status(Code::kNameTooLong, "a name of " + std::to_string(name.size()) +
                                          " bytes is longer than NAME_MAX (" +
                                          std::to_string(kNameMax) + ")");
  }
  const BackendConfig* b = engine_.config().FindBackend(backend);
  if (!b) return Status::Ok();
  return backends::CheckStorableName(b->type, name);
}

Result<Entry> FsCore::LookupChild(uint64_t parent, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  auto e = session.Lookup(static_cast<EntryId>(parent), name);
  if (!e.ok() && e.status().code() != Code::kNotFound) return AtSite("E-CAT-01", e.status());
  return e;
}

Status FsCore::BeginModify(EntryId id, bool cached) {
  std::vector<int64_t> superseded;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_ASSIGN_OR_RETURN(const Entry now, s.BeginModify(id, cached, engine_.clock().WallNanos()));
    // hsmctl put marks the files it writes; a directory holds no data to lose.
    if (!options_.incomplete_error.empty() && !now.is_dir()) {
      HSMFS_RETURN_IF_ERROR(s.MarkIncomplete(id, options_.incomplete_error));
    }
    HSMFS_ASSIGN_OR_RETURN(superseded,
                           catalog::JobQueue::Supersede(s, id, engine_.clock().WallNanos()));
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  if (Archiver* archiver = engine_.archiver()) archiver->Modified(id, superseded);
  return Status::Ok();
}

void FsCore::Settle(EntryId id) {
  {
    // A writer still has it open: its next writes would not make a new
    // version, so archiving now could mark half-written data dual. Its last
    // close settles it.
    std::lock_guard<std::mutex> l(write_mu_);
    auto it = writers_.find(id);
    if (it != writers_.end()) {
      it->second.dirty = true;
      return;
    }
  }
  if (Archiver* archiver = engine_.archiver()) return archiver->Closed(id);
  // No engine runs jobs here (hsmctl put): make the copy durable and queue the
  // job now; whichever engine runs next archives it.
  auto e = GetEntry(static_cast<uint64_t>(id));
  if (!e.ok()) return;
  if (!e->is_dir()) {
    const int fd = ::open(engine_.cache().PathOf(id).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  RecordBookkeeping(
      "E-BOOK-06", "the archive job of " + e->display(),
      "the next engine that runs jobs archives it when it starts", engine_.clock(),
      [&]() -> Status {
        HSMFS_ASSIGN_OR_RETURN(auto session, engine_.catalog().Acquire());
        return catalog::JobQueue::EnqueueArchive(session, *e, engine_.clock().WallNanos()).status();
      });
}

Result<OpenFile> FsCore::OpenForWrite(const Entry& e, int flags) {
  const EntryId id = e.id;
  int fd;
  bool modified = false;
  if (!e.cached) {
    // Only for O_TRUNC: the new data starts empty.
    HSMFS_ASSIGN_OR_RETURN(fd, engine_.cache().CreateCopy(id));
    if (Status s = BeginModify(id, /*cached=*/true); !s.ok()) {
      ::close(fd);
      return s;
    }
    modified = true;
  } else {
    const auto path = engine_.cache().PathOf(id);
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return NotFoundError("the cached copy of " + e.name + " is gone");
      return AtSite("E-CACHE-01", ErrnoToStatus(errno, "open cached copy " + path.string()));
    }
    if (flags & O_TRUNC) {
      if (Status s = BeginModify(id, true); !s.ok()) {
        ::close(fd);
        return s;
      }
      if (::ftruncate(fd, 0) != 0) {
        const int err = errno;
        ::close(fd);
        return ErrnoToStatus(err, "truncate " + path.string());
      }
      engine_.cache().Shrunk(id, 0);
      modified = true;
    }
  }
  engine_.cache().Opened(id);
  std::lock_guard<std::mutex> l(write_mu_);
  handle_modified_[fd] = modified;
  Writers& w = writers_[id];
  ++w.count;
  w.dirty = w.dirty || modified;
  ++open_count_[id];
  return OpenFile{fd, true, true};
}

void FsCore::Release(uint64_t ino, const OpenFile& file) {
  const EntryId id = static_cast<EntryId>(ino);
  bool settle = false;
  bool unlinked = false;
  bool drop_copy = false;
  {
    std::lock_guard<std::mutex> l(write_mu_);
    // A writer is whoever registered the descriptor, not whoever asked for
    // write access: create registers one whatever the flags (O_CREAT|O_RDONLY).
    if (handle_modified_.erase(file.fd) != 0) {
      auto it = writers_.find(id);
      if (it != writers_.end() && --it->second.count <= 0) {
        settle = it->second.dirty;
        writers_.erase(it);
      }
    }
    unlinked = unlinked_.count(id) != 0;
    auto open = open_count_.find(id);
    if (open != open_count_.end() && --open->second <= 0) {
      open_count_.erase(open);
      drop_copy = unlinked_.erase(id) != 0;
    }
  }
  if (unlinked) settle = false;  // nothing refers to its data any more
  if (settle) {
    // The last writer closed: record the size and start the settle time.
    struct stat st;
    if (::fstat(file.fd, &st) == 0) {
      RecordBookkeeping("E-BOOK-05", "the size at close of entry " + std::to_string(id),
                        "it shows its last recorded size until it settles (the archive takes "
                        "the size of its cached copy)",
                        engine_.clock(), [&]() -> Status {
                          HSMFS_ASSIGN_OR_RETURN(auto session, engine_.catalog().Acquire());
                          return session.SetLocalAttrs(id, static_cast<uint64_t>(st.st_size),
                                                       MtimeNs(st));
                        });
    }
    engine_.cache().SizeRecorded(id);
  }
  ::close(file.fd);
  engine_.cache().Closed(id);
  if (drop_copy) engine_.cache().RemoveCopyOf(id);
  if (settle) Settle(id);
}

Result<std::pair<Attr, OpenFile>> FsCore::Create(uint64_t parent, std::string_view name,
                                                 uint32_t mode, int flags,
                                                 const catalog::Requester& who) {
  HSMFS_ASSIGN_OR_RETURN(Entry e,
                         AddLocalEntry(parent, name, catalog::EntryType::kFile, mode, who));
  auto fd = engine_.cache().CreateCopy(e.id);
  if (!fd.ok()) {
    RecordBookkeeping("E-BOOK-07", "the removal of " + e.display() + " (its copy failed)",
                      "the name stays, empty: remove it", engine_.clock(), [&]() -> Status {
                        HSMFS_ASSIGN_OR_RETURN(auto session, engine_.catalog().Acquire());
                        return session.Remove(e.id);
                      });
    return AtSite("E-CACHE-01", fd.status());
  }
  engine_.cache().Opened(e.id);
  {
    std::lock_guard<std::mutex> l(write_mu_);
    handle_modified_[*fd] = true;
    Writers& w = writers_[e.id];
    ++w.count;
    w.dirty = true;
    ++open_count_[e.id];
  }
  static_cast<void>(flags);
  return std::make_pair(ToAttr(e), OpenFile{*fd, true, true});
}

Result<Entry> FsCore::AddLocalEntry(uint64_t parent, std::string_view name, catalog::EntryType type,
                                    uint32_t mode, const catalog::Requester& who,
                                    std::string_view link_target) {
  HSMFS_ASSIGN_OR_RETURN(Entry dir, GetEntry(parent));
  if (!dir.is_dir()) return Status(Code::kNotDirectory, dir.name + ": not a directory");
  HSMFS_RETURN_IF_ERROR(CheckName(dir.backend, name));
  const std::string path = Join(dir.backend_path, name);
  HSMFS_RETURN_IF_ERROR(CheckWritable(dir.backend, path));
  const int64_t now = engine_.clock().WallNanos();
  Entry e;
  e.parent = dir.id;
  e.name = std::string(name);
  e.type = type;
  e.mode = mode & 07777;
  e.uid = who.uid;
  e.gid = who.gid;
  if (dir.mode & S_ISGID) {
    // As on a local disk: a setgid directory gives its group to what is made
    // in it, and its setgid bit to new directories. (The kernel already took
    // S_ISGID off `mode` of a file made by someone outside that group.)
    e.gid = OwnerOf(dir).second;
    if (type == catalog::EntryType::kDir) e.mode |= S_ISGID;
  }
  e.mtime_ns = now;
  e.ctime_ns = now;
  e.local_mtime = type == catalog::EntryType::kDir;  // the backend's differs by its archive time
  e.backend = dir.backend;
  e.backend_path = path;
  e.state = FileState::kOnline;                  // not on the backend yet
  e.cached = type == catalog::EntryType::kFile;  // its data is the cache copy
  e.on_backend = false;
  e.version = 1;
  e.seen_gen = now;
  e.link_target = std::string(link_target);
  e.size = link_target.size();
  if (type == catalog::EntryType::kFile && !options_.incomplete_error.empty()) {
    e.state = FileState::kFailed;  // in the insert itself: no instant looks complete
    e.error = options_.incomplete_error;
  }
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  auto created = s.Create(e);
  if (!created.ok() && created.status().code() != Code::kAlreadyExists) {
    return AtSite("E-CAT-01", created.status());
  }
  if (!created.ok()) return created;
  HSMFS_RETURN_IF_ERROR(s.DirChanged(dir.id, now));
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  return created;
}

Result<Attr> FsCore::MakeDir(uint64_t parent, std::string_view name, uint32_t mode,
                             const catalog::Requester& who) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, AddLocalEntry(parent, name, catalog::EntryType::kDir, mode, who));
  Settle(e.id);  // the archiver makes it on the backend
  return ToAttr(e);
}

Result<Attr> FsCore::Symlink(uint64_t parent, std::string_view name, std::string_view target,
                             const catalog::Requester& who) {
  // symlink(2) never passes an empty target; a catalog row without one would
  // read as a file's NULL column.
  if (target.empty()) return NotFoundError("a symlink needs a target");
  HSMFS_ASSIGN_OR_RETURN(Entry dir, GetEntry(parent));
  if (dir.is_dir() && dir.id != catalog::kRootId) {
    const BackendConfig* b = engine_.config().FindBackend(dir.backend);
    if (b && !backends::StoresSymlinks(*b) &&
        CheckWritable(dir.backend, Join(dir.backend_path, name)).ok()) {
      return NotPermittedError(dir.backend + " (" + b->type + ") cannot store symbolic links; " +
                               std::string(name) + " not created (docs/SEMANTICS.md)");
    }
  }
  HSMFS_ASSIGN_OR_RETURN(
      Entry e, AddLocalEntry(parent, name, catalog::EntryType::kSymlink, 0777, who, target));
  Settle(e.id);  // the archiver stores it on the backend
  return ToAttr(e);
}

Result<std::string> FsCore::ReadLink(uint64_t ino) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, GetEntry(ino));
  if (!e.is_symlink()) return InvalidArgumentError(e.name + ": not a symbolic link");
  return e.link_target;
}

Status FsCore::Link(uint64_t ino, uint64_t /*new_parent*/, std::string_view new_name) {
  return NotPermittedError("hard links are not supported (inode " + std::to_string(ino) + " as " +
                           std::string(new_name) + "): an archive holds one path per file");
}

Result<Attr> FsCore::SetSymlinkAttr(const Entry& e, const AttrChange& change) {
  if (change.size) return InvalidArgumentError(e.name + ": cannot truncate a symbolic link");
  // Linux has no lchmod: a mode change never reaches a symlink. A new mtime
  // (lutimes: cp -a, tar -x) is a new version, stored again on the backend.
  if (!change.mtime_ns) return ToAttr(e);
  HSMFS_RETURN_IF_ERROR(CheckWritable(e.backend, e.backend_path));
  HSMFS_RETURN_IF_ERROR(BeginModify(e.id, /*cached=*/false));
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_RETURN_IF_ERROR(s.SetMtime(e.id, *change.mtime_ns));
  }
  Settle(e.id);
  return GetAttr(static_cast<uint64_t>(e.id));
}

Status FsCore::DeleteEntry(const Entry& e) {
  const BackendConfig* b = engine_.config().FindBackend(e.backend);
  if (!e.is_dir() && e.on_backend && (!b || !b->allow_delete)) {
    return NotPermittedError(e.display() +
                             " is archived; deleting it needs allow_delete = true "
                             "on backend " +
                             e.backend);
  }
  std::vector<int64_t> superseded;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(superseded,
                           catalog::JobQueue::Supersede(s, e.id, engine_.clock().WallNanos()));
  }
  if (Archiver* archiver = engine_.archiver()) archiver->Modified(e.id, superseded);
  // Before the backend changes and again after the catalog did: a listing
  // overlapping either step must not undo the removal (NamesChanging).
  engine_.sync().NamesChanging(e.parent);
  if (e.on_backend) {
    backends::Backend* backend = engine_.backend(e.backend);
    if (!backend) return FailedPreconditionError("backend " + e.backend + " is not configured");
    Status s = backend->Remove(e.backend_path);
    if (!s.ok() && s.code() != Code::kNotFound) {
      return s.Annotate("removing " + e.display() + " from the backend");
    }
  }
  // An archive job that was running may have put the entry on the backend
  // since `e` was read: the catalog says so, in the transaction that deletes.
  // (If the job records after this, it finds the entry gone and removes what
  // it put.)
  bool archived_meanwhile = false;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    auto now = s.Get(e.id);
    if (now.ok() && !e.on_backend && now->on_backend) {
      if (!now->is_dir() && (!b || !b->allow_delete)) {
        return NotPermittedError(e.display() +
                                 " was archived meanwhile; deleting it needs "
                                 "allow_delete = true on backend " +
                                 e.backend);
      }
      archived_meanwhile = true;
    }
    HSMFS_RETURN_IF_ERROR(s.Remove(e.id));
    HSMFS_RETURN_IF_ERROR(s.DirChanged(e.parent, engine_.clock().WallNanos()));
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  engine_.sync().NamesChanging(e.parent);
  if (archived_meanwhile) {
    backends::Backend* backend = engine_.backend(e.backend);
    Status s = backend ? backend->Remove(e.backend_path) : Status::Ok();
    if (!s.ok() && s.code() != Code::kNotFound) {
      // The entry is gone; a later listing shows the backend copy again.
      spdlog::warn("cannot remove {} from the backend: {}", e.display(), s.message());
    }
  }
  if (!e.is_dir()) {
    // Open descriptors keep the file as on a local disk: its copy stays until
    // the last close (Release drops it), and GetAttr answers from it.
    Attr attr = ToAttr(e);
    attr.nlink = 0;
    bool open;
    {
      std::lock_guard<std::mutex> l(write_mu_);
      open = open_count_.count(e.id) != 0;
      if (open) unlinked_[e.id] = attr;
    }
    if (!open) engine_.cache().RemoveCopyOf(e.id);
  }
  spdlog::debug("deleted {}", e.display());
  return Status::Ok();
}

Status FsCore::Unlink(uint64_t parent, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, LookupChild(parent, name));
  if (e.is_dir()) return Status(Code::kIsDirectory, e.name + ": is a directory");
  HSMFS_RETURN_IF_ERROR(CheckWritable(e.backend, e.backend_path));
  return DeleteEntry(e);
}

Status FsCore::RemoveDir(uint64_t parent, std::string_view name) {
  HSMFS_ASSIGN_OR_RETURN(Entry e, LookupChild(parent, name));
  if (!e.is_dir()) return Status(Code::kNotDirectory, e.name + ": not a directory");
  HSMFS_RETURN_IF_ERROR(CheckWritable(e.backend, e.backend_path));
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(bool children, s.HasChildren(e.id));
    if (children) return Status(Code::kNotEmpty, e.name + ": directory not empty");
  }
  return DeleteEntry(e);
}

Status FsCore::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, unsigned flags) {
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) {
    return InvalidArgumentError("rename flags other than RENAME_NOREPLACE are not supported");
  }
  HSMFS_ASSIGN_OR_RETURN(Entry src, LookupChild(parent, name));
  HSMFS_ASSIGN_OR_RETURN(Entry dir, GetEntry(new_parent));
  if (!dir.is_dir()) return Status(Code::kNotDirectory, dir.name + ": not a directory");
  HSMFS_RETURN_IF_ERROR(CheckName(dir.backend, new_name));
  if (src.backend != dir.backend) {
    return Status(Code::kCrossDevice,
                  "rename across backends (" + src.backend + " to " + dir.backend + ")");
  }
  const std::string new_path = Join(dir.backend_path, new_name);
  HSMFS_RETURN_IF_ERROR(CheckWritable(src.backend, src.backend_path));
  HSMFS_RETURN_IF_ERROR(CheckWritable(dir.backend, new_path));
  if (src.is_dir() && new_path.rfind(src.backend_path + "/", 0) == 0) {
    return InvalidArgumentError("cannot move " + src.display() + " into itself");
  }
  auto existing = LookupChild(new_parent, new_name);
  if (existing.ok()) {
    if (existing->id == src.id) return Status::Ok();
    if (flags & RENAME_NOREPLACE) return AlreadyExistsError(std::string(new_name) + ": exists");
    if (existing->is_dir()) {
      if (!src.is_dir()) return Status(Code::kIsDirectory, existing->name + ": is a directory");
      HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
      HSMFS_ASSIGN_OR_RETURN(bool children, s.HasChildren(existing->id));
      if (children) return Status(Code::kNotEmpty, existing->name + ": directory not empty");
    } else if (src.is_dir()) {
      return Status(Code::kNotDirectory, existing->name + ": not a directory");
    }
    HSMFS_RETURN_IF_ERROR(DeleteEntry(*existing));
  } else if (existing.status().code() != Code::kNotFound) {
    return existing.status();
  }

  // Archive jobs of what moves would put data under the old names: stop them
  // and settle the files again once they have their new names.
  std::vector<std::pair<EntryId, int64_t>> stopped;
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_ASSIGN_OR_RETURN(stopped, catalog::JobQueue::ActiveArchivesBelow(s, src.id));
    for (const auto& [entry, job] : stopped) {
      HSMFS_RETURN_IF_ERROR(
          catalog::JobQueue::Cancel(s, job, engine_.clock().WallNanos()).status());
    }
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  if (Archiver* archiver = engine_.archiver()) {
    for (const auto& [entry, job] : stopped) archiver->Modified(entry, {job});
  }
  // Whether the backend holds it is read after the jobs stopped, so that an
  // archive finishing meanwhile is moved too.
  HSMFS_ASSIGN_OR_RETURN(src, GetEntry(static_cast<uint64_t>(src.id)));
  if (src.on_backend) {
    backends::Backend* backend = engine_.backend(src.backend);
    if (!backend) return FailedPreconditionError("backend " + src.backend + " is not configured");
    // Before the backend changes and again after the catalog did (NamesChanging).
    engine_.sync().NamesChanging(src.parent);
    engine_.sync().NamesChanging(dir.id);
    Status s = backend->Rename(src.backend_path, new_path);
    if (!s.ok() && s.code() != Code::kNotFound) {
      return s.Annotate("renaming " + src.display() + " on the backend");
    }
  }
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    HSMFS_RETURN_IF_ERROR(s.Move(src.id, dir.id, new_name, new_path));
    const int64_t now = engine_.clock().WallNanos();
    HSMFS_RETURN_IF_ERROR(s.SetCtime(src.id, now));
    HSMFS_RETURN_IF_ERROR(s.DirChanged(src.parent, now));
    if (dir.id != src.parent) HSMFS_RETURN_IF_ERROR(s.DirChanged(dir.id, now));
    HSMFS_RETURN_IF_ERROR(tx.Commit());
  }
  engine_.sync().NamesChanging(src.parent);
  engine_.sync().NamesChanging(dir.id);
  for (const auto& [entry, job] : stopped) Settle(entry);
  return Status::Ok();
}

Result<size_t> FsCore::Write(uint64_t ino, const OpenFile& file, const char* data, size_t size,
                             uint64_t offset) {
  const EntryId id = static_cast<EntryId>(ino);
  bool first;
  {
    std::lock_guard<std::mutex> l(write_mu_);
    auto it = handle_modified_.find(file.fd);
    if (it == handle_modified_.end()) {
      return InvalidArgumentError("the file is not open for writing");
    }
    first = !it->second;
  }
  if (first) {
    // The first write through a descriptor makes the file a new version. A
    // file unlinked while open has no entry any more: its data just goes to
    // the unlinked copy, as on a local disk.
    if (Status s = BeginModify(id, true); !s.ok() && s.code() != Code::kNotFound) return s;
    std::lock_guard<std::mutex> l(write_mu_);
    handle_modified_[file.fd] = true;
    writers_[id].dirty = true;
  }
  struct stat st;
  if (::fstat(file.fd, &st) != 0) return ErrnoToStatus(errno, "stat the cached copy");
  HSMFS_RETURN_IF_ERROR(engine_.cache().Grow(id, static_cast<uint64_t>(st.st_size), offset + size,
                                             engine_.config().cache.write_wait));
  size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pwrite(file.fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return AtSite("E-CACHE-03", ErrnoToStatus(errno, "write to the cache"));
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

Status FsCore::Fsync(uint64_t ino, const OpenFile& file) {
  if (::fsync(file.fd) != 0) return AtSite("E-CACHE-03", ErrnoToStatus(errno, "fsync"));
  {
    std::lock_guard<std::mutex> l(write_mu_);
    if (handle_modified_.count(file.fd) == 0) return Status::Ok();  // not a writer
  }
  struct stat st;
  if (::fstat(file.fd, &st) != 0) return ErrnoToStatus(errno, "stat the cached copy");
  {
    HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
    HSMFS_RETURN_IF_ERROR(
        s.SetLocalAttrs(static_cast<EntryId>(ino), static_cast<uint64_t>(st.st_size), MtimeNs(st)));
  }
  engine_.cache().SizeRecorded(static_cast<EntryId>(ino));
  return Status::Ok();
}

Status FsCore::Truncate(catalog::EntryId id, const OpenFile* file, uint64_t size, bool* modified) {
  const auto path = engine_.cache().PathOf(id);
  const int fd = file ? file->fd : ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return AtSite("E-CACHE-01", ErrnoToStatus(errno, "open " + path.string()));
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = ErrnoToStatus(errno, "stat " + path.string());
  } else if (size > static_cast<uint64_t>(st.st_size)) {
    // Before anything changes: a size that cannot fit leaves the file as it was.
    s = engine_.cache().Grow(id, static_cast<uint64_t>(st.st_size), size,
                             engine_.config().cache.write_wait);
  }
  if (s.ok() && modified) {
    s = BeginModify(id, true);
    *modified = s.ok();
  }
  if (s.ok()) {
    if (size <= static_cast<uint64_t>(st.st_size)) engine_.cache().Shrunk(id, size);
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = ErrnoToStatus(errno, "truncate " + path.string());
    }
  }
  if (!file) ::close(fd);
  return s;
}

Result<Attr> FsCore::SetUnlinkedAttr(EntryId id, const OpenFile* file, const AttrChange& change) {
  if (change.size) HSMFS_RETURN_IF_ERROR(Truncate(id, file, *change.size, nullptr));
  if (change.mtime_ns) {
    const struct timespec times[2] = {
        {0, UTIME_OMIT}, {*change.mtime_ns / 1'000'000'000, *change.mtime_ns % 1'000'000'000}};
    ::utimensat(AT_FDCWD, engine_.cache().PathOf(id).c_str(), times, 0);
  }
  if (change.mode) {
    std::lock_guard<std::mutex> l(write_mu_);
    auto it = unlinked_.find(id);
    if (it != unlinked_.end())
      it->second.mode = (it->second.mode & S_IFMT) | (*change.mode & 07777);
  }
  auto attr = UnlinkedAttr(id);
  if (!attr) return NotFoundError("the file was closed meanwhile");
  return *attr;
}

void FsCore::SetAttr(uint64_t ino, const OpenFile* file, const AttrChange& requested,
                     const catalog::Requester& who, std::function<void(Result<Attr>)> done) {
  auto got = GetEntry(ino);
  if (!got.ok() && got.status().code() == Code::kNotFound &&
      UnlinkedAttr(static_cast<EntryId>(ino))) {
    // Unlinked while open: only its cached copy is left to change.
    return done(SetUnlinkedAttr(static_cast<EntryId>(ino), file, requested));
  }
  if (!got.ok()) return done(got.status());
  const Entry e = std::move(got).value();
  AttrChange change = requested;
  const bool chown = change.uid || change.gid;
  if (!change.mode && !change.size && !change.mtime_ns && !chown) return done(ToAttr(e));
  if (Status s = CheckWritable(e.backend, e.backend_path); !s.ok()) return done(s);
  if (chown) {
    // Only the catalog keeps owners: no backend call, no recall, no new version.
    {
      auto s = engine_.catalog().Acquire();
      if (!s.ok()) return done(AtSite("E-CAT-01", s.status()));
      Status set = s->SetOwner(e.id, change.uid ? int64_t{*change.uid} : -1,
                               change.gid ? int64_t{*change.gid} : -1);
      if (!set.ok()) return done(AtSite("E-CAT-01", set));
      set = s->SetCtime(e.id, engine_.clock().WallNanos());
      if (!set.ok()) return done(AtSite("E-CAT-01", set));
    }
    // As Linux does on chown, even root's: a file loses setuid, and setgid
    // where it means set-group-ID (group execute set).
    const uint32_t mode = change.mode.value_or(e.mode);
    const uint32_t kill = S_ISUID | ((mode & S_IXGRP) ? S_ISGID : 0);
    if (!e.is_dir() && !e.is_symlink() && (mode & kill)) change.mode = mode & ~kill;
    if (!change.mode && !change.size && !change.mtime_ns) return done(GetAttr(ino));
  }
  if (e.is_symlink()) return done(SetSymlinkAttr(e, change));
  if (change.size && e.is_dir())
    return done(Status(Code::kIsDirectory, e.name + ": is a directory"));
  const OpenFile file_copy = file ? *file : OpenFile{};
  const bool has_file = file != nullptr;
  // Applies the change to a file whose data is in the cache (or a directory).
  auto apply = [this, ino, change, file_copy, has_file]() -> Result<Attr> {
    HSMFS_ASSIGN_OR_RETURN(Entry now, GetEntry(ino));
    Status changed;
    bool modified = false;  // a new version: it must settle, even if the change failed
    if (!now.is_dir()) {
      // Data or metadata of a file changes: a new version, archived again.
      if (change.size) {
        changed = Truncate(now.id, has_file ? &file_copy : nullptr, *change.size, &modified);
      } else {
        changed = BeginModify(now.id, true);
        modified = changed.ok();
      }
    } else if (change.mode || change.mtime_ns) {
      // A new version of the directory: its archive job carries the mode and
      // time to the backend, and one already running with the old ones is
      // superseded (it would otherwise end `dual` with them).
      changed = BeginModify(now.id, now.cached);
    }
    if (changed.ok()) {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
      if (change.mode) HSMFS_RETURN_IF_ERROR(s.SetMode(now.id, *change.mode));
      if (change.mtime_ns) HSMFS_RETURN_IF_ERROR(s.SetMtime(now.id, *change.mtime_ns));
      HSMFS_RETURN_IF_ERROR(s.SetCtime(now.id, engine_.clock().WallNanos()));
    }
    // A directory job carries the mode and time to backends that keep them.
    if (now.is_dir() && (change.mtime_ns || change.mode)) Settle(now.id);
    if (modified) {
      const auto path = engine_.cache().PathOf(now.id);
      if (changed.ok() && change.mtime_ns) {
        const struct timespec times[2] = {
            {0, UTIME_OMIT}, {*change.mtime_ns / 1'000'000'000, *change.mtime_ns % 1'000'000'000}};
        ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
      }
      bool open_for_writing;
      {
        std::lock_guard<std::mutex> l(write_mu_);
        auto it = writers_.find(now.id);
        open_for_writing = it != writers_.end();
        if (open_for_writing) it->second.dirty = true;
      }
      if (!open_for_writing) {
        // Nobody writes it: record the attributes and settle now.
        struct stat st;
        if (::stat(path.c_str(), &st) == 0) {
          HSMFS_ASSIGN_OR_RETURN(catalog::Session s, engine_.catalog().Acquire());
          HSMFS_RETURN_IF_ERROR(
              s.SetLocalAttrs(now.id, static_cast<uint64_t>(st.st_size), MtimeNs(st)));
        }
        engine_.cache().SizeRecorded(now.id);
        Settle(now.id);
      }
    }
    HSMFS_RETURN_IF_ERROR(changed);
    return GetAttr(ino);
  };
  if (e.is_dir() || e.cached ||
      (change.size && *change.size == 0 && !change.mode && !change.mtime_ns)) {
    if (!e.is_dir() && !e.cached) {
      // Truncating an offline file to nothing needs no recall.
      auto fd = engine_.cache().CreateCopy(e.id);
      if (!fd.ok()) return done(fd.status());
      ::close(*fd);
      if (Status s = BeginModify(e.id, true); !s.ok()) return done(s);
    }
    return done(apply());
  }
  // The file is offline: recall it first, then change it.
  if (DeniedRecall(who)) {
    return done(PermissionDeniedError(who.command + " may not recall " + e.display()));
  }
  Stager* stager = engine_.stager();
  if (!stager) return done(UnavailableError("this engine does not run recalls"));
  auto job = stager->Request(e, who);
  if (!job.ok()) return done(job.status());
  if (!*job) return done(apply());
  WaitForRecall(e, [apply, done = std::move(done)](Status s) {
    if (!s.ok()) return done(s);
    done(apply());
  });
}

}  // namespace hsmfs::fs
