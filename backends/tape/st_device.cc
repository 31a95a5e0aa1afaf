#include "backends/tape/st_device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

namespace hsmfs::tape {
namespace {

class PosixStDevice final : public StDevice {
 public:
  PosixStDevice() = default;
  PosixStDevice(const PosixStDevice&) = delete;
  PosixStDevice& operator=(const PosixStDevice&) = delete;
  ~PosixStDevice() override {
    if (fd_ >= 0) ::close(fd_);
  }

  int Open(const std::string& path, int flags) override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path.c_str(), flags | O_CLOEXEC);
    return fd_ >= 0 ? 0 : -errno;
  }
  ssize_t Read(void* buf, size_t len) override {
    ssize_t n;
    do {
      n = ::read(fd_, buf, len);
    } while (n < 0 && errno == EINTR);
    return n >= 0 ? n : -errno;
  }
  ssize_t Write(const void* buf, size_t len) override {
    ssize_t n;
    do {
      n = ::write(fd_, buf, len);
    } while (n < 0 && errno == EINTR);
    return n >= 0 ? n : -errno;
  }
  int Ioctl(unsigned long request, void* arg) override {
    int r;
    do {
      r = ::ioctl(fd_, request, arg);
    } while (r < 0 && errno == EINTR);
    return r >= 0 ? r : -errno;
  }

 private:
  int fd_ = -1;
};

}  // namespace

std::unique_ptr<StDevice> StDevice::Posix() { return std::make_unique<PosixStDevice>(); }

}  // namespace hsmfs::tape
