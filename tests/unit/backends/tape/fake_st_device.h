#pragma once

// FakeStDevice: an StDevice that records every call as a line of text (the
// exact ioctl sequence StDrive issues) and answers from scripts, so that
// StDrive's decoding of st results is tested without a tape drive.
//
// Unscripted calls succeed: open 0, write writes everything, read returns 0,
// MTIOCTOP 0, MTIOCGET an all-zero mtget, MTIOCPOS block 0.

#include <fcntl.h>
#include <sys/mtio.h>

#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "backends/tape/st_device.h"

namespace hsmfs::tape::testing {

struct FakeStScript {
  std::vector<std::string> calls;
  std::deque<int> open_results;
  std::deque<ssize_t> write_results;
  std::deque<std::string> read_results;  // payload returned by read
  std::deque<int> read_errors;           // if non-empty, read returns -front() (popped first)
  std::deque<int> op_results;            // MTIOCTOP return values (0 or -errno)
  std::deque<struct mtget> get_results;
  std::deque<long> pos_results;
};

inline const char* MtOpName(short op) {
  switch (op) {
    case MTREW:
      return "MTREW";
    case MTWEOF:
      return "MTWEOF";
    case MTFSF:
      return "MTFSF";
    case MTBSF:
      return "MTBSF";
    case MTFSR:
      return "MTFSR";
    case MTBSR:
      return "MTBSR";
    case MTEOM:
      return "MTEOM";
    case MTSEEK:
      return "MTSEEK";
    case MTSETBLK:
      return "MTSETBLK";
    default:
      return "MT?";
  }
}

class FakeStDevice final : public StDevice {
 public:
  // `script` is shared with the test, which keeps reading calls after the
  // device moved into the StDrive.
  explicit FakeStDevice(std::shared_ptr<FakeStScript> script) : s_(std::move(script)) {}

  int Open(const std::string& path, int flags) override {
    s_->calls.push_back("open " + path + ((flags & O_ACCMODE) == O_RDWR ? " rw" : " ro"));
    return Pop(s_->open_results, 0);
  }
  ssize_t Read(void* buf, size_t len) override {
    s_->calls.push_back("read " + std::to_string(len));
    if (!s_->read_errors.empty()) {
      int err = s_->read_errors.front();
      s_->read_errors.pop_front();
      if (err != 0) return -err;
    }
    std::string data = Pop(s_->read_results, std::string());
    size_t n = std::min(len, data.size());
    std::memcpy(buf, data.data(), n);
    return static_cast<ssize_t>(n);
  }
  ssize_t Write(const void*, size_t len) override {
    s_->calls.push_back("write " + std::to_string(len));
    return Pop(s_->write_results, static_cast<ssize_t>(len));
  }
  int Ioctl(unsigned long request, void* arg) override {
    if (request == MTIOCTOP) {
      auto* op = static_cast<struct mtop*>(arg);
      s_->calls.push_back(std::string(MtOpName(op->mt_op)) + " " + std::to_string(op->mt_count));
      return Pop(s_->op_results, 0);
    }
    if (request == MTIOCGET) {
      s_->calls.push_back("MTIOCGET");
      struct mtget zero = {};
      *static_cast<struct mtget*>(arg) = Pop(s_->get_results, zero);
      return 0;
    }
    if (request == MTIOCPOS) {
      s_->calls.push_back("MTIOCPOS");
      static_cast<struct mtpos*>(arg)->mt_blkno = Pop(s_->pos_results, 0L);
      return 0;
    }
    s_->calls.push_back("ioctl ?");
    return -EINVAL;
  }

 private:
  template <typename T>
  static T Pop(std::deque<T>& q, T fallback) {
    if (q.empty()) return fallback;
    T v = std::move(q.front());
    q.pop_front();
    return v;
  }
  std::shared_ptr<FakeStScript> s_;
};

inline struct mtget MakeMtget(long gstat, long fileno, long blkno, long blksize = 0) {
  struct mtget g = {};
  g.mt_gstat = gstat;
  g.mt_fileno = fileno;
  g.mt_blkno = blkno;
  g.mt_dsreg = (blksize << MT_ST_BLKSIZE_SHIFT) & MT_ST_BLKSIZE_MASK;
  return g;
}

}  // namespace hsmfs::tape::testing
