#include "cli/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "common/units.h"

namespace hsmfs::cli {
namespace {

std::string Eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

std::string Thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

Progress::Progress(std::string label, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { Finish(); }

std::string Progress::Render(int64_t items, int64_t items_total, uint64_t bytes,
                             uint64_t bytes_total, std::string_view extra, double elapsed_s,
                             bool bar) const {
  std::string line = label_ + ": ";
  double fraction = -1;
  if (bytes_total > 0) {
    fraction = static_cast<double>(bytes) / static_cast<double>(bytes_total);
  } else if (items_total > 0) {
    fraction = static_cast<double>(items) / static_cast<double>(items_total);
  }
  if (bar && fraction >= 0) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(std::min(1.0, fraction) * kWidth);
    line += "[" + std::string(static_cast<size_t>(filled), '#') +
            std::string(static_cast<size_t>(kWidth - filled), '.') + "] ";
  }
  line += Thousands(items);
  if (items_total > 0) line += "/" + Thousands(items_total);
  line += " " + unit_;
  if (bytes > 0 || bytes_total > 0) {
    line += ", " + FormatSizeHuman(bytes);
    if (bytes_total > 0) line += "/" + FormatSizeHuman(bytes_total);
  }
  if (!extra.empty()) line += ", " + std::string(extra);
  if (elapsed_s > 0.05) {
    if (bytes > 0) {
      line += ", " +
              FormatSizeHuman(static_cast<uint64_t>(static_cast<double>(bytes) / elapsed_s)) + "/s";
    } else {
      line += ", " + Thousands(static_cast<int64_t>(static_cast<double>(items) / elapsed_s)) + " " +
              unit_ + "/s";
    }
    if (fraction > 0 && fraction < 1) {
      line += ", ETA " + Eta(elapsed_s * (1 - fraction) / fraction);
    }
  }
  return line;
}

void Progress::Update(int64_t items, int64_t items_total, uint64_t bytes, uint64_t bytes_total,
                      std::string_view extra) {
  items_ = items;
  items_total_ = items_total;
  bytes_ = bytes;
  bytes_total_ = bytes_total;
  extra_ = std::string(extra);
  const auto now = std::chrono::steady_clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
  if (now - last_draw_ >= interval) Draw(false);
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::string line =
      Render(items_, items_total_, bytes_, bytes_total_, extra_, elapsed, tty_);
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace hsmfs::cli
