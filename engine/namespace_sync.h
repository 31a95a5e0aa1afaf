#pragma once

// NamespaceSync: keeps the catalog's view of backend directories fresh.
//
// The mount answers every lookup and readdir from the catalog. A directory
// that was never listed is listed on first use, and the caller waits for that
// listing at most `list_timeout`; past that it is told the listing is
// incomplete (kDeadlineExceeded: what the catalog has may be partial or
// empty) until the listing finishes in the background. The backend is then
// taken for hung: further first listings on it are answered incomplete at
// once, without a wait, until one of its listings finishes. A directory listed
// longer than its backend's `list_ttl` ago is answered at once and refreshed in
// the background. A failed refresh keeps the catalog as it was (a backend that
// is down never empties the tree); a failed first listing is reported to the
// waiters.
//
// Thread-safe. Listings run on the injected Executor; deadlines on the
// TimerQueue; callbacks run on whichever thread completes them (the caller's
// own, a sync worker, or the timer thread) and must not hold a catalog Session
// when WhenListed is called.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "backends/backend.h"
#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/executor.h"
#include "common/timer_queue.h"
#include "engine/kernel_notifier.h"

namespace hsmfs::fs {

using BackendMap = std::map<std::string, backends::Backend*, std::less<>>;

struct SyncOptions {
  Duration list_timeout = std::chrono::seconds(10);
  Duration list_ttl = std::chrono::minutes(10);
  std::map<std::string, Duration, std::less<>> list_ttl_by_backend;
  // A backend's file_mode/dir_mode (config), for objects it lists: the bits
  // of entries the catalog learns of (known entries keep theirs).
  struct ListedModes {
    int file_mode = -1;  // -1: the backend's own bits
    int dir_mode = -1;
  };
  std::map<std::string, ListedModes, std::less<>> modes_by_backend;
  std::string listed_by = "hsmfs";
  // How long a failed listing is not retried.
  Duration retry_after_failure = std::chrono::seconds(5);
  // Asked before every listing: a backend whose root is not the catalog's
  // (RootGuard::Check) is not listed, and the listing fails with its error.
  std::function<Status(std::string_view backend)> root_check;
};

// Counters a long sync reports as it goes.
struct SyncProgress {
  int64_t dirs = 0;
  int64_t entries = 0;
};

class NamespaceSync {
 public:
  NamespaceSync(catalog::Catalog& catalog, const BackendMap& backends, Executor& executor,
                TimerQueue& timers, Clock& clock, SyncOptions options, KernelNotifier* notifier);
  ~NamespaceSync();
  NamespaceSync(const NamespaceSync&) = delete;
  NamespaceSync& operator=(const NamespaceSync&) = delete;

  // Calls `ready` exactly once, when `dir` may be answered from the catalog (see
  // the class comment). `ready` gets an error only when the first listing of
  // `dir` failed, or is incomplete (kDeadlineExceeded). REQUIRES: the caller
  // holds no Session of the catalog.
  void WhenListed(const catalog::Entry& dir, std::function<void(Status)> ready);
  // Why `dir` has no complete listing (its first listing failed or is
  // incomplete), as last told to a WhenListed caller; "" otherwise.
  std::string ListingProblem(catalog::EntryId dir);

  // Lists `dir` from its backend now, on the calling thread, and records it.
  // A suspect listing (one that would remove most of the directory, see
  // catalog::kSuspectMinKnown) removes nothing and fails with kUnavailable
  // (E-LIST-03) unless `confirmed` (hsmctl sync --force).
  Status ListNow(const catalog::Entry& dir, const CancelToken& cancel,
                 SyncProgress* progress = nullptr, bool confirmed = false);
  // Lists `dir` and every directory below it (hsmctl sync). `on_progress` is
  // called after each directory.
  Status SyncTree(const catalog::Entry& dir, const CancelToken& cancel,
                  const std::function<void(const SyncProgress&)>& on_progress,
                  bool confirmed = false);

  // Resolves "backend/dir/file" like the mount would: every directory on the way
  // that was never listed is listed first (on the calling thread).
  Result<catalog::Entry> Resolve(std::string_view path, const CancelToken& cancel);
  // Lists `dir` now unless the catalog already has a listing of it.
  Status EnsureListedNow(const catalog::Entry& dir, const CancelToken& cancel);

  // Cancels running listings and stops starting new ones. Waiters still get
  // their callback.
  void Shutdown();

  // The mount is about to remove or rename names in `dir` itself. A listing
  // of `dir` that overlaps the change may have seen the backend before it and
  // would undo it (bring a removed name back, drop a renamed entry as unseen),
  // so such a listing only updates the attributes of names the catalog has,
  // and runs again (up to three times) before it may add or drop names.
  void NamesChanging(catalog::EntryId dir);

 private:
  struct Waiter;
  struct DirState {
    bool loaded = false;           // sync record read from the catalog
    bool listed = false;           // a complete listing exists
    TimePoint fresh_until;         // refresh in the background after this
    bool running = false;          // a listing is in flight
    bool first_wait_over = false;  // first-listing waiters already timed out
    TimePoint first_deadline;
    TimePoint retry_after;  // no new listing before this after a failure
    Status last_error;
    std::string problem;  // see ListingProblem
    std::vector<std::shared_ptr<Waiter>> waiters;
  };

  Duration TtlFor(const std::string& backend) const;
  Status Incomplete(const catalog::Entry& dir) const;
  // Starts a listing of `dir` on the executor. REQUIRES: mu_ held, !running.
  void StartListingLocked(const catalog::Entry& dir, DirState& st);
  void FinishListing(const catalog::Entry& dir, const Status& s);
  uint64_t NameChanges(catalog::EntryId dir);
  // One listing; `overlapped` tells whether names changed while it ran.
  Status ListOnce(const catalog::Entry& dir, const CancelToken& cancel, SyncProgress* progress,
                  bool* overlapped, bool confirmed);

  catalog::Catalog& catalog_;
  const BackendMap& backends_;
  Executor& executor_;
  TimerQueue& timers_;
  Clock& clock_;
  const SyncOptions options_;
  KernelNotifier* const notifier_;
  CancelToken shutdown_;

  std::mutex mu_;                                        // Acquire after no other lock of ours.
  std::unordered_map<catalog::EntryId, DirState> dirs_;  // GUARDED_BY(mu_)
  std::unordered_map<catalog::EntryId, uint64_t> name_changes_;  // GUARDED_BY(mu_)
  // Backends with a first listing that outlasted list_timeout and no listing
  // finished since. GUARDED_BY(mu_)
  std::set<std::string, std::less<>> hung_;
};

}  // namespace hsmfs::fs
