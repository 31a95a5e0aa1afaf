#pragma once

// Progress display for long operations (DESIGN.md section 2): on a terminal a
// bar redrawn in place with rate and ETA; otherwise a plain line every few
// seconds, so that logs of batch jobs stay readable. Writes to stderr.
// Not thread-safe: one thread drives it.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace hsmfs::cli {

class Progress {
 public:
  // `unit` names the counted items ("files", "entries").
  Progress(std::string label, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports the state; totals of 0 mean unknown. Cheap to call often: output is
  // throttled. `extra` is appended as is ("1,234 dirs").
  void Update(int64_t items, int64_t items_total, uint64_t bytes, uint64_t bytes_total,
              std::string_view extra = {});
  // Prints the final state on its own line.
  void Finish();

  // Renders one line for the given state (exposed for tests).
  std::string Render(int64_t items, int64_t items_total, uint64_t bytes, uint64_t bytes_total,
                     std::string_view extra, double elapsed_s, bool bar) const;

 private:
  void Draw(bool final);

  const std::string label_;
  const std::string unit_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t items_ = 0, items_total_ = 0;
  uint64_t bytes_ = 0, bytes_total_ = 0;
  std::string extra_;
  bool drawn_ = false;
  bool finished_ = false;
};

// 1234567 -> "1,234,567".
std::string Thousands(int64_t n);

}  // namespace hsmfs::cli
