#pragma once

// The tape cost model: how long a real LTO drive and library would take for
// what a virtual tape does, so that benchmarks and the recall scheduler can
// compare schedules by simulated seconds instead of wall time.
//
//   load      robot move from slot + thread + load to ready        load_seconds
//   unload    rewind-to-BOT is charged separately; eject + robot    unload_seconds
//   locate    0 if already there, else                              locate_base_seconds
//             (also space ops)                                      + locate_seconds_per_gb *
//             |distance| GB
//   rewind    0 at BOT, else                                        rewind_base_seconds
//                                                                   + rewind_seconds_per_gb *
//                                                                   position GB
//   read      bytes / read_mb_per_s (MB = 10^6 bytes)
//   write     bytes / write_mb_per_s
//   file mark filemark_seconds each (a file mark flushes the drive buffer)
//
// Distances are in payload bytes along the tape (GB = 10^9 bytes). Real
// drives write serpentine wraps, so locate time is not truly linear in
// logical distance; the linear model keeps the property schedules rely on:
// near is cheaper than far, and a load costs as much as a long locate.
//
// The defaults are LTO-8-like (12 TB native, 360 MB/s native; a full-length
// locate or rewind takes about 100 s; load to ready about 15 s plus a robot
// move). Sources and caveats are in docs/TAPE.md.

#include <cstdint>
#include <mutex>

#include "common/clock.h"

namespace hsmfs::tape {

struct CostModel {
  double load_seconds = 20.0;
  double unload_seconds = 20.0;
  double locate_base_seconds = 2.0;
  double locate_seconds_per_gb = 0.008;
  double rewind_base_seconds = 2.0;
  double rewind_seconds_per_gb = 0.008;
  double read_mb_per_s = 300.0;
  double write_mb_per_s = 300.0;
  double filemark_seconds = 0.5;

  Duration Load() const;
  Duration Unload() const;
  Duration Locate(uint64_t distance_bytes) const;
  Duration Rewind(uint64_t from_position_bytes) const;
  Duration Read(uint64_t bytes) const;
  Duration Write(uint64_t bytes) const;
  Duration FileMarks(int64_t count) const;
};

// What a tape, a drive or a library has done, and its simulated cost.
struct TapeCounters {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t records_read = 0;
  uint64_t records_written = 0;
  uint64_t filemarks_written = 0;
  uint64_t locates = 0;  // head movements that cost a locate: Locate, Space, Rewind
  uint64_t locate_distance_bytes = 0;
  uint64_t loads = 0;
  uint64_t unloads = 0;
  Duration simulated{0};

  TapeCounters& operator+=(const TapeCounters& o);
  double simulated_seconds() const;
};

// Accumulates counters and simulated time. Shared by the tapes and the
// library that belong together (one per VirtualLibrary). Thread-safe.
//
// If a `sleep_clock` and a `time_scale` > 0 are given, each charge also
// sleeps cost * time_scale on that clock, so that a demo or an integration
// test can feel the latency (e.g. 0.001: a 20 s load takes 20 ms).
class CostMeter {
 public:
  enum class Op { kRead, kWrite, kFileMarks, kLocate, kRewind, kLoad, kUnload };

  explicit CostMeter(CostModel model = {}, Clock* sleep_clock = nullptr, double time_scale = 0);
  CostMeter(const CostMeter&) = delete;
  CostMeter& operator=(const CostMeter&) = delete;

  // Charges one operation. `amount` is bytes for kRead/kWrite, the count for
  // kFileMarks, the distance in bytes for kLocate, the position in bytes for
  // kRewind, ignored for kLoad/kUnload. Returns the simulated cost.
  Duration Charge(Op op, uint64_t amount);
  TapeCounters Snapshot() const;
  const CostModel& model() const { return model_; }

 private:
  const CostModel model_;
  Clock* const sleep_clock_;
  const double time_scale_;
  mutable std::mutex mu_;
  TapeCounters counters_;  // GUARDED_BY(mu_)
};

}  // namespace hsmfs::tape
