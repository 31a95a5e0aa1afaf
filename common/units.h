#pragma once

// Parsing and printing of the human units used in config files and tool output:
// sizes ("50GiB", "1.5T", "4096") and durations ("1h", "200ms", "1h30m", "0s").

#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace hsmfs {

// The largest size and the longest duration any config key, tape.conf key or
// option accepts (docs/CONFIG.md): past them a value is refused, never wrapped.
// 2^60 bytes leaves room for sums and fractions of a size in 64 bits; 3650
// days keeps every deadline (now + duration, in int64 nanoseconds) far from
// overflow.
inline constexpr uint64_t kMaxSize = uint64_t{1} << 60;
inline constexpr Duration kMaxDuration = std::chrono::hours(24 * 3650);

// Sizes: a number followed by an optional unit. B; K/KiB/M/MiB/G/GiB/T/TiB/P/PiB
// are powers of 1024 (as df -h prints them); KB/MB/GB/TB/PB are powers of 1000.
// Units are case-insensitive. Fractions are allowed ("1.5GiB"). Never throws:
// any text gives a size <= kMaxSize or kInvalidArgument.
Result<uint64_t> ParseSize(std::string_view text);
// Exact, shortest spelling that ParseSize reads back: 53687091200 -> "50GiB".
std::string FormatSizeExact(uint64_t bytes);
// Rounded for people: "1.2 GiB", "512 B".
std::string FormatSizeHuman(uint64_t bytes);

// Durations: one or more <number><unit> parts, units ns, us, ms, s, m, h, d
// ("1h30m"). A bare number is seconds. Never throws: any text gives a duration
// between 0 and kMaxDuration or kInvalidArgument.
Result<Duration> ParseDuration(std::string_view text);
// Exact spelling that ParseDuration reads back: 5400s -> "1h30m" (a negative
// duration, which ParseDuration never returns, is shown with a "-").
std::string FormatDurationExact(Duration d);

}  // namespace hsmfs
