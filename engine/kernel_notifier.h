#pragma once

// KernelNotifier: how the core tells the kernel that cached names or attributes
// went stale (a background listing changed them). Implemented over FUSE's
// notify_inval_* by fs/fuse_ops.cc; the core only sees this interface. Calls
// must not block (the FUSE implementation queues them to its own thread, since
// an invalidation issued while the kernel waits on our reply can deadlock).

#include <cstdint>
#include <string>

namespace hsmfs::fs {

class KernelNotifier {
 public:
  virtual ~KernelNotifier() = default;
  virtual void InvalidateInode(uint64_t ino) = 0;
  virtual void InvalidateEntry(uint64_t parent, std::string name) = 0;
};

}  // namespace hsmfs::fs
