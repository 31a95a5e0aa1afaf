#pragma once

// FileCache: the local copies of archived files, one file per catalog entry
// under <dir>/data/<xx>/<id>.
//
// Fills are transactions (in the manner of CernVM-FS): data is written to
// <dir>/tmp, then Commit() fsyncs it and renames it into place; only after that
// does the caller mark the entry cached in the catalog. A crash therefore
// leaves at worst a temporary file or an unreferenced copy, which Recover()
// cleans up; a half-written file is never served. Recover deletes a copy only
// where the catalog proves the backend holds that entry's current data; any
// other file no entry owns goes to <dir>/lost+found, never deleted.
//
// Space: usage is the catalog's sum of cached sizes plus fills in progress.
// When a fill would take usage above the high watermark, least recently used
// `dual` copies are evicted until usage is below the low watermark. Eviction
// never touches a copy that is open, pinned, or not yet archived (its state is
// not `dual`). If no room can be made the fill fails with kResourceExhausted.
//
// Thread-safe.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "engine/kernel_notifier.h"

namespace hsmfs::fs {

class FileCache {
 public:
  struct Options {
    std::filesystem::path dir;
    uint64_t size = uint64_t{50} << 30;
    double high_watermark = 0.9;
    double low_watermark = 0.8;
  };

  FileCache(Options options, catalog::Catalog& catalog, Clock& clock, KernelNotifier* notifier);
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // Creates the layout and cleans up after a crash: removes temporary files
  // and superseded copies of archived data, moves every other file no entry
  // owns to lost+found, and marks entries whose copy is missing as no longer
  // cached. REQUIRES: no fills are running.
  Status Recover();
  // Where Recover puts files it cannot prove are superseded (hsmctl fsck lists them).
  std::filesystem::path lost_found_dir() const { return options_.dir / "lost+found"; }

  std::filesystem::path PathOf(catalog::EntryId id) const;
  // For short-lived files of others (read-back checks); emptied by Recover.
  std::filesystem::path scratch_dir() const { return options_.dir / "tmp"; }

  // A fill in progress. Destroying it without Commit removes the data and
  // gives the reserved space back.
  class Fill {
   public:
    ~Fill();
    Fill(const Fill&) = delete;
    Fill& operator=(const Fill&) = delete;
    const std::filesystem::path& tmp_path() const { return tmp_; }
    // Makes the data the entry's cached copy (fsync, rename, fsync dir).
    Status Commit();

   private:
    friend class FileCache;
    Fill(FileCache* cache, catalog::EntryId id, uint64_t bytes, std::filesystem::path tmp)
        : cache_(cache), id_(id), bytes_(bytes), tmp_(std::move(tmp)) {}
    FileCache* cache_;
    catalog::EntryId id_;
    uint64_t bytes_;
    std::filesystem::path tmp_;
    bool committed_ = false;
  };

  // Reserves `bytes` for entry `id`, evicting if needed, and starts a fill.
  // kResourceExhausted when the cache cannot make room now; kFailedPrecondition
  // when `bytes` exceeds the whole cache.
  Result<std::unique_ptr<Fill>> BeginFill(catalog::EntryId id, uint64_t bytes);

  // Open handles protect copies from eviction and release.
  void Opened(catalog::EntryId id);
  void Closed(catalog::EntryId id);
  bool IsOpen(catalog::EntryId id) const;
  // Notes a use of the copy, for LRU order (written to the catalog in batches
  // by FlushTouches).
  void Touch(catalog::EntryId id);
  // Uses not written are kept for the next call.
  Status FlushTouches();

  // Drops the cached copy of a `dual` file. kBusy if it is open,
  // kNotPermitted if it holds data that is not archived. OK if not cached.
  Status Release(catalog::EntryId id);

  // The write path. Creates (or truncates) the copy of `id` and opens it
  // read-write; returns the descriptor.
  Result<int> CreateCopy(catalog::EntryId id);
  // Makes room for a write that grows the copy of `id` (now `current_size`
  // bytes) to `new_size`: evicts dual copies, then waits up to `wait` for
  // archiving to make some evictable. kResourceExhausted (ENOSPC) if none comes;
  // kFileTooLarge (EFBIG) at once if `new_size` exceeds the whole cache.
  Status Grow(catalog::EntryId id, uint64_t current_size, uint64_t new_size, Duration wait);
  // The copy of `id` was truncated to `new_size`.
  void Shrunk(catalog::EntryId id, uint64_t new_size);
  // The catalog now records the size of `id`'s copy (after a close or fsync).
  void SizeRecorded(catalog::EntryId id);
  // Removes the copy of a deleted entry (open readers keep their descriptor).
  void RemoveCopyOf(catalog::EntryId id);
  // Evicts until usage is below the low watermark, if it is above the high one.
  Status EvictIfNeeded();
  // Bytes in the cache, counting fills in progress.
  Result<uint64_t> Usage();
  uint64_t limit() const { return options_.size; }
  const std::filesystem::path& dir() const { return options_.dir; }

 private:
  // Evicts LRU dual copies until usage + `incoming` <= `target`. Returns usage.
  Result<uint64_t> EvictDownTo(uint64_t target, uint64_t incoming);
  Status RemoveCopy(const catalog::Entry& e);
  Status MoveToLostFound(const std::filesystem::path& p);
  void Unreserve(uint64_t bytes);
  void InvalidateUsage();

  const Options options_;
  catalog::Catalog& catalog_;
  Clock& clock_;
  KernelNotifier* const notifier_;

  mutable std::mutex mu_;  // Never held across catalog or file system calls.
  std::unordered_map<catalog::EntryId, int> open_;  // GUARDED_BY(mu_)
  // Copies being written: their size as we know it, and how much of it the
  // catalog's size does not count yet.
  struct Writing {
    uint64_t known_size = 0;
    int64_t growth = 0;
  };
  std::unordered_map<catalog::EntryId, Writing> writing_;  // GUARDED_BY(mu_)
  // The catalog's sum of cached sizes, re-read at most once a second: writes
  // check for room on every call.
  uint64_t cached_sum_ = 0;                       // GUARDED_BY(mu_)
  TimePoint cached_sum_at_;                       // GUARDED_BY(mu_)
  bool cached_sum_valid_ = false;                 // GUARDED_BY(mu_)
  std::unordered_set<catalog::EntryId> touched_;  // GUARDED_BY(mu_)
  uint64_t reserved_ = 0;                         // GUARDED_BY(mu_)
  uint64_t fill_serial_ = 0;                      // GUARDED_BY(mu_)
  std::mutex evict_mu_;                           // one evictor at a time; acquire before mu_
};

}  // namespace hsmfs::fs
