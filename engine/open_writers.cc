#include "engine/open_writers.h"

namespace hsmfs::fs {

void OpenWriters::Opened(catalog::EntryId id, bool dirty) {
  std::lock_guard<std::mutex> l(mu_);
  Writers& w = writers_[id];
  ++w.count;
  w.dirty = w.dirty || dirty;
}

bool OpenWriters::MarkDirty(catalog::EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = writers_.find(id);
  if (it == writers_.end()) return false;
  it->second.dirty = true;
  return true;
}

bool OpenWriters::Closed(catalog::EntryId id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = writers_.find(id);
  if (it == writers_.end() || --it->second.count > 0) return false;
  const bool dirty = it->second.dirty;
  writers_.erase(it);
  return dirty;
}

}  // namespace hsmfs::fs
