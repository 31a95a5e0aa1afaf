#pragma once

// The single ETA model of recalls, shared by the stager (user.hsm.eta) and
// engine::Service (hsmctl stage --preview): recalls of one backend take
// `seconds_per_recall` each and `workers` run at once, so the k-th file in
// the queue is done after ceil(k / workers) rounds. Where the seconds come
// from is Service::Recalls::Timing's business.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include "common/clock.h"

namespace hsmfs::fs {

struct RecallTiming {
  double seconds_per_recall = 0;
  int workers = 1;
  std::string basis;  // where seconds_per_recall comes from, for people
};

// Time until the recall at queue place `files_ahead` (1 = next; the count of
// a whole batch) is done. 0: it runs, for `running_seconds` so far.
inline Duration RecallEta(const RecallTiming& timing, int64_t files_ahead,
                          double running_seconds = 0) {
  double seconds;
  if (files_ahead <= 0) {
    seconds = std::max(0.0, timing.seconds_per_recall - running_seconds);
  } else {
    seconds = std::ceil(static_cast<double>(files_ahead) / std::max(1, timing.workers)) *
              timing.seconds_per_recall;
  }
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

}  // namespace hsmfs::fs
