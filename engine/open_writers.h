#pragma once

// OpenWriters: which files some front end has open for writing right now, and
// whether any of those writers changed the data. The engine owns the one
// registry; every front end that writes (the mount's FsCore, hsmctl put
// through engine::Service) registers its writers here, and the archiver asks
// it before queueing a job: a file still open for writing is never archived
// under its writer (its next writes would not make a new version, so the job
// could mark half-written data dual). The last writer's close settles it.
//
// Thread-safe. Its mutex is a leaf: held only inside these methods, which
// call nothing else (the archiver asks it inside a catalog transaction).

#include <mutex>
#include <unordered_map>

#include "catalog/catalog.h"

namespace hsmfs::fs {

class OpenWriters {
 public:
  OpenWriters() = default;
  OpenWriters(const OpenWriters&) = delete;
  OpenWriters& operator=(const OpenWriters&) = delete;

  // One more writer of `id`; `dirty`: it changed the data already (create, O_TRUNC).
  void Opened(catalog::EntryId id, bool dirty);
  // A writer of `id` changed its data, or `id` was to settle now: true if it is
  // open for writing (then its last close settles it), false if nobody has it open.
  bool MarkDirty(catalog::EntryId id);
  // A writer of `id` closed. True if it was the last one and the data changed
  // while it was open: the file must settle now.
  bool Closed(catalog::EntryId id);

 private:
  struct Writers {
    int count = 0;
    bool dirty = false;
  };
  std::mutex mu_;
  std::unordered_map<catalog::EntryId, Writers> writers_;  // GUARDED_BY(mu_)
};

}  // namespace hsmfs::fs
