#pragma once

// The FUSE low-level adapter: the only code that sees <fuse_lowlevel.h>. Each
// request handler unpacks its arguments, calls one FsCore method, and replies
// exactly once (possibly later, from the thread that completes the work).
//
// FuseMount owns the FUSE session: it mounts in Create, serves requests in Run
// until the file system is unmounted (fusermount3 -u, umount) or a SIGTERM,
// SIGINT or SIGHUP arrives, and unmounts in its destructor.

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/kernel_notifier.h"
#include "fuse/fs_core.h"

struct fuse_session;

namespace hsmfs::fs {

// Sends invalidations to the kernel from a thread of its own (an invalidation
// sent from a request handler can deadlock against the kernel's locks).
// Until Attach, and after Detach, notifications are dropped.
class FuseNotifier final : public KernelNotifier {
 public:
  FuseNotifier();
  ~FuseNotifier() override;
  FuseNotifier(const FuseNotifier&) = delete;
  FuseNotifier& operator=(const FuseNotifier&) = delete;

  void Attach(fuse_session* se);
  void Detach();
  void InvalidateInode(uint64_t ino) override;
  void InvalidateEntry(uint64_t parent, std::string name) override;

 private:
  struct Item {
    uint64_t ino;      // the inode, or the parent for an entry
    std::string name;  // empty: inode invalidation
  };
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;      // GUARDED_BY(mu_)
  fuse_session* se_ = nullptr;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  bool in_flight_ = false;      // GUARDED_BY(mu_): a notification is being sent
  std::thread thread_;
};

struct MountOptions {
  std::filesystem::path mountpoint;
  // Options for the kernel and libfuse (-o allow_other, ro, fsname=... ).
  std::vector<std::string> fuse_options;
  bool fuse_debug = false;  // libfuse prints every request
  int max_threads = 16;
};

class FuseMount {
 public:
  static Result<std::unique_ptr<FuseMount>> Create(FsCore& core, FuseNotifier& notifier,
                                                   const MountOptions& options);
  // Whether libfuse accepts `options.fuse_options` (a session is made and
  // dropped; nothing is mounted). kInvalidArgument with libfuse's complaint.
  static Status CheckOptions(const MountOptions& options);
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // Serves requests until unmounted or signalled.
  Status Run();
  // Asks Run to return (thread-safe; used by tests and signal-less shutdown).
  void Exit();
  // Whether the session was asked to end: a signal, an unmount, Exit.
  // Thread-safe.
  bool Exiting() const;
  // For a process that exits next (_exit) while threads it cannot wait for
  // are stuck in a backend: unmounts now, lazily, and closes the session's
  // device, so that new accesses no longer reach this process and the kernel
  // fails those queued for it. Safe while Run is running; nothing but _exit
  // may follow, not even the destructor.
  void Abandon();

 private:
  FuseMount(fuse_session* se, FuseNotifier& notifier, int max_threads)
      : se_(se), notifier_(notifier), max_threads_(max_threads) {}
  fuse_session* se_;
  FuseNotifier& notifier_;
  int max_threads_;
  bool signals_installed_ = false;
};

}  // namespace hsmfs::fs
