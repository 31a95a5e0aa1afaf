#include "backends/hpss/hsi_session.h"

#include <spdlog/spdlog.h>

#include "backends/backend.h"
#include "backends/hpss/hsi_output_parser.h"

namespace hsmfs::backends::hpss {
namespace {

constexpr std::string_view kMarker = "pwd0: ";

}  // namespace

HsiSession::HsiSession(std::vector<std::string> argv) : argv_(std::move(argv)) {}

HsiSession::~HsiSession() { Close(); }

void HsiSession::Close() {
  if (!proc_) return;
  proc_->Write("quit\n").IgnoreError();
  proc_->Finish(std::chrono::seconds(5));
  proc_.reset();
}

Status HsiSession::EnsureStarted() {
  if (proc_ && proc_->running()) return Status::Ok();
  proc_.reset();
  SubprocessOptions o;
  o.argv = argv_;
  o.merge_stderr = true;
  o.keep_stdin = true;
  auto started = Subprocess::Start(o);
  if (!started.ok()) {
    // A missing hsi is a configuration problem, not a transient one.
    if (started.status().code() == Code::kNotFound) {
      return FailedPreconditionError("cannot start hsi: " + started.status().message());
    }
    return UnavailableError("cannot start hsi: " + started.status().message());
  }
  proc_ = std::move(*started);
  ++starts_;
  spdlog::debug("hpss: hsi session started (pid {})", proc_->pid());
  return Status::Ok();
}

Result<std::vector<std::string>> HsiSession::Run(const std::string& command, Duration timeout,
                                                 const CancelToken& cancel) {
  if (cancel.cancelled()) return CancelledError("hsi " + command + ": cancelled");
  HSMFS_RETURN_IF_ERROR(EnsureStarted());
  Status w = proc_->Write(command + "\npwd\n");
  if (!w.ok()) {
    proc_.reset();
    return UnavailableError("hsi session lost before \"" + command + "\": " + w.message());
  }
  auto lines = proc_->ReadLinesUntil(
      [](std::string_view line) { return line.rfind(kMarker, 0) == 0; }, timeout, cancel);
  if (!lines.ok()) {
    // The session is in an unknown state: its answer may still arrive.
    proc_.reset();
    const Status& s = lines.status();
    if (s.code() == Code::kCancelled) return s;
    // A timeout is reported as Unavailable so that the engine retries the call.
    return UnavailableError("hsi " + command + ": " + s.message());
  }
  lines->pop_back();  // the marker
  if (HsiSessionBroken(*lines)) proc_.reset();
  return std::move(*lines);
}

Result<std::string> HsiQuote(const std::string& path) {
  if (path.find_first_of(kHsiUnquotableChars) != std::string::npos) {
    return InvalidArgumentError("path \"" + path + "\" holds a character hsi cannot take");
  }
  if (path.find_first_of(" \t'") == std::string::npos) return path;
  return "\"" + path + "\"";
}

}  // namespace hsmfs::backends::hpss
