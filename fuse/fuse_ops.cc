#include "fuse/fuse_ops.h"

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/process.h"
#include "common/thread.h"
#include "fuse/errno_map.h"

namespace hsmfs::fs {
namespace {

FsCore& Core(fuse_req_t req) { return *static_cast<FsCore*>(fuse_req_userdata(req)); }

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// Logs a failed request once, at a level chosen by how unusual it is, and replies.
void ReplyError(fuse_req_t req, const Status& s, const char* op, uint64_t ino) {
  const int err = ToErrno(s);
  spdlog::level::level_enum level = spdlog::level::warn;
  switch (s.code()) {
    case Code::kNotFound:
    case Code::kNotResident:
    case Code::kCancelled:
    case Code::kUnimplemented:
      level = spdlog::level::debug;
      break;
    case Code::kBusy:
    case Code::kReadOnly:
    case Code::kNotPermitted:
    case Code::kPermissionDenied:
    case Code::kAlreadyExists:
    case Code::kNotEmpty:
    case Code::kIsDirectory:
    case Code::kNotDirectory:
    case Code::kInvalidArgument:
    case Code::kNameTooLong:
    case Code::kFileTooLarge:
      level = spdlog::level::info;
      break;
    default:
      break;
  }
  spdlog::log(level, "{} (inode {}): {} -> {}", op, ino, s.message(), std::strerror(err));
  fuse_reply_err(req, err);
}

// Shared by a handler and the callback that replies for it: the first to
// claim replies, so a handler that throws after its callback ran (or before
// the callback, which then runs later) still replies exactly once.
class ReplyOnce {
 public:
  bool Claim() { return !done_.exchange(true); }

 private:
  std::atomic<bool> done_{false};
};

// Ends a handler whose body threw (call inside its catch): logs what was
// caught (E-FUSE-01) and replies EIO, unless `once` says a reply was sent.
void ReplyCaught(fuse_req_t req, const char* op, uint64_t ino, ReplyOnce* once = nullptr) {
  const int err = ErrnoForCaughtException(op, ino);
  if (!once || once->Claim()) fuse_reply_err(req, err);
}

void FillStat(const Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blocks = static_cast<blkcnt_t>(a.blocks);
  st->st_blksize = 1 << 20;
  st->st_mtim.tv_sec = a.mtime_ns / 1'000'000'000;
  st->st_mtim.tv_nsec = a.mtime_ns % 1'000'000'000;
  st->st_atim = st->st_mtim;
  st->st_ctim.tv_sec = a.ctime_ns / 1'000'000'000;
  st->st_ctim.tv_nsec = a.ctime_ns % 1'000'000'000;
}

fuse_entry_param ToEntryParam(const FsCore& core, const Attr& a) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = a.ino;
  e.generation = 1;  // ids are never reused (AUTOINCREMENT), so one generation suffices
  FillStat(a, &e.attr);
  e.entry_timeout = Seconds(core.entry_timeout());
  e.attr_timeout = Seconds(core.attr_timeout());
  return e;
}

class FuseDirSink final : public DirSink {
 public:
  FuseDirSink(fuse_req_t req, fuse_ino_t ino, size_t size, bool plus)
      : req_(req), ino_(ino), plus_(plus), buf_(size) {}

  bool Add(std::string_view name, const Attr& attr, uint64_t next_offset) override {
    const std::string cname(name);
    const size_t room = buf_.size() - used_;
    size_t need;
    if (plus_) {
      const fuse_entry_param e = ToEntryParam(Core(req_), attr);
      need = fuse_add_direntry_plus(req_, buf_.data() + used_, room, cname.c_str(), &e,
                                    static_cast<off_t>(next_offset));
    } else {
      struct stat st;
      FillStat(attr, &st);
      need = fuse_add_direntry(req_, buf_.data() + used_, room, cname.c_str(), &st,
                               static_cast<off_t>(next_offset));
    }
    if (need > room) return false;
    used_ += need;
    return true;
  }

  void Finish(Status status) override {
    if (!once_.Claim()) return;
    if (!status.ok() && used_ == 0) return ReplyError(req_, status, "readdir", ino_);
    fuse_reply_buf(req_, buf_.data(), used_);
  }
  // For the handler's catch: Finish has not replied and now never will.
  ReplyOnce& once() { return once_; }

 private:
  fuse_req_t req_;
  fuse_ino_t ino_;
  bool plus_;
  std::vector<char> buf_;
  size_t used_ = 0;
  ReplyOnce once_;
};

catalog::Requester RequesterOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return catalog::Requester{ctx->uid, ctx->pid, ProcessName(ctx->pid), ctx->gid};
}

// An open that may be answered later, from another thread. FsCore may finish
// it while we are still registering the interrupt callback (which libfuse can
// call from inside fuse_req_interrupt_func); replying then would free the
// request under libfuse's feet, so the answer is held until Arm().
class PendingOpen {
 public:
  PendingOpen(fuse_req_t req, fuse_ino_t ino, const fuse_file_info& fi)
      : req_(req), ino_(ino), core_(&Core(req)), fi_(fi) {}

  void Complete(Result<OpenFile> r) {
    bool abandoned;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!armed_) {
        early_.emplace(std::move(r));
        return;
      }
      abandoned = answered_;
      answered_ = true;
    }
    if (!abandoned) return Reply(std::move(r));
    // The handler threw and replied EIO: nobody will use or release it.
    if (r.ok()) core_->Release(ino_, *r);
  }

  void Arm() {
    std::optional<Result<OpenFile>> early;
    {
      std::lock_guard<std::mutex> l(mu_);
      armed_ = true;
      early.swap(early_);
      if (early) answered_ = true;
    }
    if (early) Reply(std::move(*early));
  }

  // For the handler's catch: replies EIO (logged, E-FUSE-01) unless the open
  // was answered; an answer that comes later only releases its file.
  void Abandon() {
    std::optional<Result<OpenFile>> early;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (answered_) {
        ErrnoForCaughtException("open", ino_);
        return;
      }
      armed_ = true;
      answered_ = true;
      early.swap(early_);
    }
    ReplyCaught(req_, "open", ino_);
    if (early && early->ok()) core_->Release(ino_, **early);
  }

 private:
  void Reply(Result<OpenFile> r) {
    if (!r.ok()) return ReplyError(req_, r.status(), "open", ino_);
    fi_.fh = static_cast<uint64_t>(r->fd);
    fi_.keep_cache = r->keep_cache;
    if (fuse_reply_open(req_, &fi_) != 0) {
      // The opener is gone (interrupted and killed): nobody will release it.
      core_->Release(ino_, *r);
    }
  }

  fuse_req_t req_;
  fuse_ino_t ino_;
  FsCore* core_;  // the request is freed by the reply; the core is not
  fuse_file_info fi_;
  std::mutex mu_;
  bool armed_ = false;     // GUARDED_BY(mu_)
  bool answered_ = false;  // GUARDED_BY(mu_): the request has its reply
  std::optional<Result<OpenFile>> early_;
};

void OnInterrupt(fuse_req_t req, void* data) {
  Core(req).Interrupt(reinterpret_cast<uintptr_t>(data));
}

void OpInit(void* /*userdata*/, fuse_conn_info* conn) noexcept {
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  // Reads are served from cache files: let libfuse splice them to the kernel.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  conn->max_readahead = 1 << 20;
  // open(O_TRUNC) arrives as one open: truncating needs no recall of old data.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  conn->time_gran = 1;
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  std::shared_ptr<PendingOpen> pending;
  try {
    pending = std::make_shared<PendingOpen>(req, ino, *fi);
    const uint64_t wait =
        Core(req).Open(ino, fi->flags, RequesterOf(req),
                       [pending](Result<OpenFile> r) { pending->Complete(std::move(r)); });
    if (wait != 0) fuse_req_interrupt_func(req, OnInterrupt, reinterpret_cast<void*>(wait));
    pending->Arm();
  } catch (...) {
    if (pending) {
      pending->Abandon();
    } else {
      ReplyCaught(req, "open", ino);
    }
  }
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept {
  try {
    // The file handle is the cached copy's descriptor: libfuse splices from it.
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = static_cast<int>(fi->fh);
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
  } catch (...) {
    ReplyCaught(req, "read", ino);
  }
}

// `writable` from the open flags is informational only: FsCore knows its
// writers by descriptor (a file made by create is one even with O_RDONLY).
OpenFile FileOf(const fuse_file_info* fi) {
  return OpenFile{static_cast<int>(fi->fh), true,
                  (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)};
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  int err = 0;
  try {
    Core(req).Release(ino, FileOf(fi));
  } catch (...) {
    // close(2) has returned already (the kernel ignores a release's error):
    // the log line is what is left of it.
    err = ErrnoForCaughtException("release", ino);
  }
  fuse_reply_err(req, err);
}

void ReplyStatus(fuse_req_t req, const Status& s, const char* op, uint64_t ino) {
  if (!s.ok()) return ReplyError(req, s, op, ino);
  fuse_reply_err(req, 0);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) noexcept {
  try {
    auto r = Core(req).Create(parent, name, mode, fi->flags, RequesterOf(req));
    if (!r.ok()) return ReplyError(req, r.status(), "create", parent);
    const fuse_entry_param e = ToEntryParam(Core(req), r->first);
    fi->fh = static_cast<uint64_t>(r->second.fd);
    fi->keep_cache = r->second.keep_cache;
    if (fuse_reply_create(req, &e, fi) != 0) {
      // Replied (the creator is gone): an exception here must not reply again.
      try {
        Core(req).Release(e.ino, r->second);
      } catch (...) {
        ErrnoForCaughtException("create", parent);
      }
    }
  } catch (...) {
    ReplyCaught(req, "create", parent);
  }
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
             dev_t /*rdev*/) noexcept {
  try {
    // Only regular files are archive objects (mknod is how some tools create them).
    if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
    auto r = Core(req).Create(parent, name, mode, O_WRONLY, RequesterOf(req));
    if (!r.ok()) return ReplyError(req, r.status(), "mknod", parent);
    Core(req).Release(r->first.ino, r->second);
    const fuse_entry_param e = ToEntryParam(Core(req), r->first);
    fuse_reply_entry(req, &e);
  } catch (...) {
    ReplyCaught(req, "mknod", parent);
  }
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  try {
    auto r = Core(req).MakeDir(parent, name, mode, RequesterOf(req));
    if (!r.ok()) return ReplyError(req, r.status(), "mkdir", parent);
    const fuse_entry_param e = ToEntryParam(Core(req), *r);
    fuse_reply_entry(req, &e);
  } catch (...) {
    ReplyCaught(req, "mkdir", parent);
  }
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) noexcept {
  try {
    auto r = Core(req).Symlink(parent, name, link, RequesterOf(req));
    if (!r.ok()) return ReplyError(req, r.status(), "symlink", parent);
    const fuse_entry_param e = ToEntryParam(Core(req), *r);
    fuse_reply_entry(req, &e);
  } catch (...) {
    ReplyCaught(req, "symlink", parent);
  }
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) noexcept {
  try {
    auto r = Core(req).ReadLink(ino);
    if (!r.ok()) return ReplyError(req, r.status(), "readlink", ino);
    fuse_reply_readlink(req, r->c_str());
  } catch (...) {
    ReplyCaught(req, "readlink", ino);
  }
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) noexcept {
  try {
    ReplyStatus(req, Core(req).Link(ino, newparent, newname), "link", ino);
  } catch (...) {
    ReplyCaught(req, "link", ino);
  }
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  try {
    ReplyStatus(req, Core(req).Unlink(parent, name), "unlink", parent);
  } catch (...) {
    ReplyCaught(req, "unlink", parent);
  }
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  try {
    ReplyStatus(req, Core(req).RemoveDir(parent, name), "rmdir", parent);
  } catch (...) {
    ReplyCaught(req, "rmdir", parent);
  }
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) noexcept {
  try {
    ReplyStatus(req, Core(req).Rename(parent, name, newparent, newname, flags), "rename", parent);
  } catch (...) {
    ReplyCaught(req, "rename", parent);
  }
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) noexcept {
  try {
    auto r = Core(req).Write(ino, FileOf(fi), buf, size, static_cast<uint64_t>(off));
    if (!r.ok()) return ReplyError(req, r.status(), "write", ino);
    fuse_reply_write(req, *r);
  } catch (...) {
    ReplyCaught(req, "write", ino);
  }
}

void OpFlush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) noexcept {
  // Data is written through to the cache copy; close() has nothing to flush.
  fuse_reply_err(req, 0);
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int /*datasync*/, fuse_file_info* fi) noexcept {
  try {
    ReplyStatus(req, Core(req).Fsync(ino, FileOf(fi)), "fsync", ino);
  } catch (...) {
    ReplyCaught(req, "fsync", ino);
  }
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* fi) noexcept {
  std::shared_ptr<ReplyOnce> once;
  try {
    AttrChange change;
    if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_SIZE) change.size = static_cast<uint64_t>(attr->st_size);
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      change.mtime_ns = int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      change.mtime_ns = int64_t{attr->st_mtim.tv_sec} * 1'000'000'000 + attr->st_mtim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
    const OpenFile file = fi ? FileOf(fi) : OpenFile{};
    once = std::make_shared<ReplyOnce>();
    Core(req).SetAttr(ino, fi ? &file : nullptr, change, RequesterOf(req),
                      [req, ino, once](Result<Attr> r) {
                        if (!once->Claim()) return;
                        if (!r.ok()) return ReplyError(req, r.status(), "setattr", ino);
                        struct stat st;
                        FillStat(*r, &st);
                        fuse_reply_attr(req, &st, Seconds(Core(req).attr_timeout()));
                      });
  } catch (...) {
    ReplyCaught(req, "setattr", ino, once.get());
  }
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* /*value*/,
                size_t /*size*/, int /*flags*/) noexcept {
  try {
    Status s = Core(req).SetXattr(ino, name, RequesterOf(req));
    if (!s.ok()) return ReplyError(req, s, "setxattr", ino);
    fuse_reply_err(req, 0);
  } catch (...) {
    ReplyCaught(req, "setxattr", ino);
  }
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  std::shared_ptr<ReplyOnce> once;
  try {
    once = std::make_shared<ReplyOnce>();
    Core(req).Lookup(parent, name, [req, parent, once](Result<Attr> r) {
      if (!once->Claim()) return;
      if (!r.ok()) return ReplyError(req, r.status(), "lookup", parent);
      const fuse_entry_param e = ToEntryParam(Core(req), *r);
      fuse_reply_entry(req, &e);
    });
  } catch (...) {
    ReplyCaught(req, "lookup", parent, once.get());
  }
}

void OpForget(fuse_req_t req, fuse_ino_t /*ino*/, uint64_t /*nlookup*/) noexcept {
  // Inodes are catalog rows that outlive kernel references: nothing to free.
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t /*count*/, fuse_forget_data* /*forgets*/) noexcept {
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) noexcept {
  try {
    auto r = Core(req).GetAttr(ino);
    if (!r.ok()) return ReplyError(req, r.status(), "getattr", ino);
    struct stat st;
    FillStat(*r, &st);
    fuse_reply_attr(req, &st, Seconds(Core(req).attr_timeout()));
  } catch (...) {
    ReplyCaught(req, "getattr", ino);
  }
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) noexcept {
  std::shared_ptr<FuseDirSink> sink;
  try {
    sink = std::make_shared<FuseDirSink>(req, ino, size, plus);
    Core(req).ReadDir(ino, static_cast<uint64_t>(off), sink);
  } catch (...) {
    ReplyCaught(req, plus ? "readdirplus" : "readdir", ino, sink ? &sink->once() : nullptr);
  }
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
               fuse_file_info* /*fi*/) noexcept {
  ReadDirCommon(req, ino, size, off, false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* /*fi*/) noexcept {
  ReadDirCommon(req, ino, size, off, true);
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  try {
    auto r = Core(req).GetXattr(ino, name);
    if (!r.ok()) return ReplyError(req, r.status(), "getxattr", ino);
    if (!r->has_value()) return (void)fuse_reply_err(req, ENODATA);
    const std::string& value = **r;
    if (size == 0) return (void)fuse_reply_xattr(req, value.size());
    if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, value.data(), value.size());
  } catch (...) {
    ReplyCaught(req, "getxattr", ino);
  }
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  try {
    auto r = Core(req).ListXattr(ino);
    if (!r.ok()) return ReplyError(req, r.status(), "listxattr", ino);
    std::string names;
    for (const std::string& n : *r) names.append(n).push_back('\0');
    if (size == 0) return (void)fuse_reply_xattr(req, names.size());
    if (size < names.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, names.data(), names.size());
  } catch (...) {
    ReplyCaught(req, "listxattr", ino);
  }
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) noexcept {
  try {
    auto r = Core(req).StatFs();
    if (!r.ok()) return ReplyError(req, r.status(), "statfs", ino);
    struct statvfs st;
    std::memset(&st, 0, sizeof st);
    st.f_bsize = r->block_size;
    st.f_frsize = r->block_size;
    st.f_blocks = r->blocks;
    st.f_bfree = r->blocks_free;
    st.f_bavail = r->blocks_free;
    st.f_files = r->files;
    st.f_ffree = r->files_free;
    st.f_favail = r->files_free;
    st.f_namemax = r->name_max;
    fuse_reply_statfs(req, &st);
  } catch (...) {
    ReplyCaught(req, "statfs", ino);
  }
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.statfs = OpStatfs;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.release = OpRelease;
  ops.setxattr = OpSetxattr;
  ops.create = OpCreate;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.symlink = OpSymlink;
  ops.readlink = OpReadlink;
  ops.link = OpLink;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.rename = OpRename;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.fsync = OpFsync;
  ops.setattr = OpSetattr;
  return ops;
}

}  // namespace

FuseNotifier::FuseNotifier() : thread_(StartThread("hsmfs-notify", [this] { Run(); })) {}

FuseNotifier::~FuseNotifier() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    se_ = nullptr;
  }
  cv_.notify_all();
  thread_.join();
}

void FuseNotifier::Attach(fuse_session* se) {
  std::lock_guard<std::mutex> l(mu_);
  se_ = se;
}

void FuseNotifier::Detach() {
  std::unique_lock<std::mutex> l(mu_);
  se_ = nullptr;
  queue_.clear();
  cv_.wait(l, [&] { return !in_flight_; });
}

void FuseNotifier::InvalidateInode(uint64_t ino) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!se_) return;
    queue_.push_back(Item{ino, {}});
  }
  cv_.notify_one();
}

void FuseNotifier::InvalidateEntry(uint64_t parent, std::string name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!se_) return;
    queue_.push_back(Item{parent, std::move(name)});
  }
  cv_.notify_one();
}

void FuseNotifier::Run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    fuse_session* se = se_;
    if (!se) continue;
    // Not under mu_: the kernel may block an invalidation on a directory lock
    // while producers keep queueing. Detach waits for in_flight_ instead.
    in_flight_ = true;
    l.unlock();
    const int rc = item.name.empty() ? fuse_lowlevel_notify_inval_inode(se, item.ino, 0, 0)
                                     : fuse_lowlevel_notify_inval_entry(
                                           se, item.ino, item.name.c_str(), item.name.size());
    if (rc != 0 && rc != -ENOENT) {
      spdlog::debug("kernel invalidation failed: {}", std::strerror(-rc));
    }
    l.lock();
    in_flight_ = false;
    cv_.notify_all();
  }
}

namespace {

std::string* g_fuse_messages = nullptr;  // set only while CheckOptions runs

void CaptureFuseLog(enum fuse_log_level /*level*/, const char* fmt, va_list ap) {
  char line[512];
  std::vsnprintf(line, sizeof line, fmt, ap);
  if (g_fuse_messages) *g_fuse_messages += line;
}

}  // namespace

Status FuseMount::CheckOptions(const MountOptions& options) {
  std::string opts = "fsname=hsmfs,subtype=hsmfs";
  for (const std::string& o : options.fuse_options) opts += "," + o;
  std::vector<std::string> argv_storage = {"hsmfs", "-o", opts};
  std::vector<char*> argv;
  for (std::string& s : argv_storage) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops ops = MakeOps();
  // libfuse prints its complaint itself: catch it, for one line of ours.
  std::string messages;
  g_fuse_messages = &messages;
  fuse_set_log_func(CaptureFuseLog);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  fuse_set_log_func(nullptr);
  g_fuse_messages = nullptr;
  fuse_opt_free_args(&args);
  if (se) {
    fuse_session_destroy(se);
    return Status::Ok();
  }
  if (messages.rfind("fuse: ", 0) == 0) messages.erase(0, 6);
  while (!messages.empty() && (messages.back() == '\n' || messages.back() == ' ')) {
    messages.pop_back();
  }
  for (char& c : messages) {
    if (c == '\n') c = ';';
  }
  return InvalidArgumentError("bad mount option: " + (messages.empty() ? "-o " + opts : messages));
}

Result<std::unique_ptr<FuseMount>> FuseMount::Create(FsCore& core, FuseNotifier& notifier,
                                                     const MountOptions& options) {
  std::vector<std::string> argv_storage = {"hsmfs"};
  if (options.fuse_debug) argv_storage.push_back("-d");
  std::string opts = "fsname=hsmfs,subtype=hsmfs";
  for (const std::string& o : options.fuse_options) opts += "," + o;
  argv_storage.push_back("-o");
  argv_storage.push_back(opts);
  std::vector<char*> argv;
  for (std::string& s : argv_storage) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops ops = MakeOps();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &core);
  fuse_opt_free_args(&args);
  if (!se) {
    return InvalidArgumentError("cannot start FUSE session (bad -o option? options were: " + opts +
                                ")");
  }
  std::unique_ptr<FuseMount> mount(new FuseMount(se, notifier, options.max_threads));
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    mount->se_ = nullptr;
    return UnavailableError("cannot mount on " + options.mountpoint.string() +
                            " (is /dev/fuse available, and the mountpoint an empty directory?)");
  }
  notifier.Attach(se);
  return mount;
}

FuseMount::~FuseMount() {
  if (!se_) return;
  notifier_.Detach();
  if (signals_installed_) fuse_remove_signal_handlers(se_);
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
}

Status FuseMount::Run() {
  if (fuse_set_signal_handlers(se_) == 0) signals_installed_ = true;
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(max_threads_));
  fuse_loop_cfg_set_idle_threads(cfg, static_cast<unsigned>(std::max(2, max_threads_ / 2)));
  const int rc = fuse_session_loop_mt(se_, cfg);
  fuse_loop_cfg_destroy(cfg);
  // A signal-driven exit returns the signal number: that is a clean stop.
  if (rc < 0) return ErrnoToStatus(-rc, "FUSE session loop");
  return Status::Ok();
}

void FuseMount::Exit() { fuse_session_exit(se_); }

bool FuseMount::Exiting() const { return fuse_session_exited(se_) != 0; }

void FuseMount::Abandon() {
  // libfuse unmounts with MNT_DETACH as root and `fusermount3 -u -z`
  // otherwise, and closes the device first, so a busy or dead mount does not
  // block this.
  fuse_session_unmount(se_);
}

}  // namespace hsmfs::fs
