#include "backends/tape/cost_model.h"

#include <chrono>
#include <cmath>

namespace hsmfs::tape {
namespace {

Duration Seconds(double s) {
  if (!(s > 0)) return Duration{0};
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

constexpr double kGB = 1e9;
constexpr double kMB = 1e6;

}  // namespace

Duration CostModel::Load() const { return Seconds(load_seconds); }
Duration CostModel::Unload() const { return Seconds(unload_seconds); }

Duration CostModel::Locate(uint64_t distance_bytes) const {
  if (distance_bytes == 0) return Duration{0};
  return Seconds(locate_base_seconds +
                 locate_seconds_per_gb * static_cast<double>(distance_bytes) / kGB);
}

Duration CostModel::Rewind(uint64_t from_position_bytes) const {
  if (from_position_bytes == 0) return Duration{0};
  return Seconds(rewind_base_seconds +
                 rewind_seconds_per_gb * static_cast<double>(from_position_bytes) / kGB);
}

Duration CostModel::Read(uint64_t bytes) const {
  if (read_mb_per_s <= 0) return Duration{0};
  return Seconds(static_cast<double>(bytes) / kMB / read_mb_per_s);
}

Duration CostModel::Write(uint64_t bytes) const {
  if (write_mb_per_s <= 0) return Duration{0};
  return Seconds(static_cast<double>(bytes) / kMB / write_mb_per_s);
}

Duration CostModel::FileMarks(int64_t count) const {
  return Seconds(filemark_seconds * static_cast<double>(count));
}

TapeCounters& TapeCounters::operator+=(const TapeCounters& o) {
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  records_read += o.records_read;
  records_written += o.records_written;
  filemarks_written += o.filemarks_written;
  locates += o.locates;
  locate_distance_bytes += o.locate_distance_bytes;
  loads += o.loads;
  unloads += o.unloads;
  simulated += o.simulated;
  return *this;
}

double TapeCounters::simulated_seconds() const {
  return std::chrono::duration<double>(simulated).count();
}

CostMeter::CostMeter(CostModel model, Clock* sleep_clock, double time_scale)
    : model_(model), sleep_clock_(sleep_clock), time_scale_(time_scale) {}

Duration CostMeter::Charge(Op op, uint64_t amount) {
  Duration cost{0};
  {
    std::lock_guard<std::mutex> l(mu_);
    switch (op) {
      case Op::kRead:
        cost = model_.Read(amount);
        counters_.bytes_read += amount;
        ++counters_.records_read;
        break;
      case Op::kWrite:
        cost = model_.Write(amount);
        counters_.bytes_written += amount;
        ++counters_.records_written;
        break;
      case Op::kFileMarks:
        cost = model_.FileMarks(static_cast<int64_t>(amount));
        counters_.filemarks_written += amount;
        break;
      case Op::kLocate:
        cost = model_.Locate(amount);
        ++counters_.locates;
        counters_.locate_distance_bytes += amount;
        break;
      case Op::kRewind:
        cost = model_.Rewind(amount);
        ++counters_.locates;
        counters_.locate_distance_bytes += amount;
        break;
      case Op::kLoad:
        cost = model_.Load();
        ++counters_.loads;
        break;
      case Op::kUnload:
        cost = model_.Unload();
        ++counters_.unloads;
        break;
    }
    counters_.simulated += cost;
  }
  if (sleep_clock_ != nullptr && time_scale_ > 0 && cost > Duration{0}) {
    sleep_clock_->SleepFor(std::chrono::duration_cast<Duration>(cost * time_scale_));
  }
  return cost;
}

TapeCounters CostMeter::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}

}  // namespace hsmfs::tape
