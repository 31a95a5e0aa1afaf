#pragma once

// Bookkeeping writes: the catalog writes the engine makes to record what
// already happened (an attempt requeued, a job failed or cancelled, a file's
// size at its last close, an archive job for a settled file). Their callers
// have nobody to return an error to, so a failure is neither returned nor
// dropped: the write is retried a few times (a catalog busy with another
// writer, SQLITE_BUSY, is kUnavailable) and, if it still fails, logged once at
// error under its own site id and counted (docs/ERRORS.md, E-BOOK-01 ...).
// Each site's entry there says what is left behind and what repairs it.
//
// Thread-safe (each call is independent).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/status.h"

namespace hsmfs::fs {

struct BookkeepingRetry {
  int attempts = 3;                                   // in all, the first included
  Duration backoff = std::chrono::milliseconds(100);  // before the 2nd; doubles
};

// Whether a failed bookkeeping write is worth trying again at once.
bool BookkeepingRetryable(Code code);

// Runs `write` (one catalog transaction) until it succeeds, at most
// `retry.attempts` times while it fails with a retryable code, sleeping the
// back-off on `clock` in between. A failure left after that is logged
// ("<site>: cannot record <what> after N attempt(s): <error>; <consequence>")
// and its site counted. Returns whether the write was recorded; callers need
// do nothing more about a failure. Under a FakeClock the back-off waits for
// Advance (a test that makes the catalog busy drives the clock meanwhile).
bool RecordBookkeeping(std::string_view site, std::string_view what, std::string_view consequence,
                       Clock& clock, const std::function<Status()>& write,
                       const BookkeepingRetry& retry = BookkeepingRetry());

// A progress callback for a backend transfer (ReadOptions/PutOptions::
// progress) that records job `job_id`'s bytes done at most once a second.
// Not a bookkeeping write: a failure is not retried (the next report, a
// second later, says more) and is logged at debug as "<what>: progress not
// recorded".
std::function<void(uint64_t)> JobProgressRecorder(catalog::Catalog& catalog, Clock& clock,
                                                  int64_t job_id, std::string what);

}  // namespace hsmfs::fs
