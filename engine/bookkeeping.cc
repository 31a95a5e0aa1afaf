#include "engine/bookkeeping.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "catalog/job_queue.h"
#include "common/logging.h"

namespace hsmfs::fs {

bool BookkeepingRetryable(Code code) {
  // Busy or locked (another writer past the busy timeout), or a transaction
  // that lost a race: the same write may well succeed a moment later. Others
  // (a full disk, a corrupt file, a row gone) would fail the same way again.
  return code == Code::kUnavailable || code == Code::kAborted || code == Code::kDeadlineExceeded;
}

bool RecordBookkeeping(std::string_view site, std::string_view what, std::string_view consequence,
                       Clock& clock, const std::function<Status()>& write,
                       const BookkeepingRetry& retry) {
  Duration backoff = retry.backoff;
  int attempt = 1;
  Status s = write();
  while (!s.ok() && BookkeepingRetryable(s.code()) && attempt < retry.attempts) {
    spdlog::warn("{}: cannot record {} (attempt {} of {}): {}; retrying in {}", site, what, attempt,
                 retry.attempts, s.message(), FormatDuration(backoff));
    clock.SleepFor(backoff);
    backoff *= 2;
    ++attempt;
    s = write();
  }
  if (s.ok()) return true;
  CountErrorSite(site);
  spdlog::error("{}: cannot record {} after {} attempt(s): {}; {}", site, what, attempt,
                s.message(), consequence);
  return false;
}

std::function<void(uint64_t)> JobProgressRecorder(catalog::Catalog& catalog, Clock& clock,
                                                  int64_t job_id, std::string what) {
  auto last = std::make_shared<TimePoint>(clock.Now());
  return [&catalog, &clock, job_id, what = std::move(what), last](uint64_t done) {
    const TimePoint now = clock.Now();
    if (now - *last < std::chrono::seconds(1)) return;
    *last = now;
    auto session = catalog.Acquire();
    const Status s = session.ok()
                         ? catalog::JobQueue::Progress(*session, job_id, done, clock.WallNanos())
                         : session.status();
    if (!s.ok()) spdlog::debug("{}: progress not recorded: {}", what, s.message());
  };
}

}  // namespace hsmfs::fs
