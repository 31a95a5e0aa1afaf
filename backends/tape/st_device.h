#pragma once

// StDevice: the four system calls StDrive makes on a Linux st device node,
// behind a seam so that unit tests run StDrive against a fake device that
// records the exact ioctl sequence and returns scripted results
// (tests/unit/backends/tape/fake_st_device.h).
//
// Calls return what the system call returns, errno-style: >= 0 on success,
// -errno on failure. Decoding errors into Status is StDrive's job, so the
// decoding is what the tests exercise. Not thread-safe.

#include <sys/types.h>

#include <memory>
#include <string>

namespace hsmfs::tape {

class StDevice {
 public:
  virtual ~StDevice() = default;
  // open(2) of `path` with `flags`; 0 or -errno. The device closes on destruction.
  virtual int Open(const std::string& path, int flags) = 0;
  virtual ssize_t Read(void* buf, size_t len) = 0;
  virtual ssize_t Write(const void* buf, size_t len) = 0;
  // ioctl(2) with MTIOCTOP (arg: mtop*), MTIOCGET (mtget*) or MTIOCPOS (mtpos*).
  virtual int Ioctl(unsigned long request, void* arg) = 0;

  // The real device: open(2), read(2), write(2), ioctl(2) on a file descriptor.
  static std::unique_ptr<StDevice> Posix();
};

}  // namespace hsmfs::tape
