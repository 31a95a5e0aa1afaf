#pragma once

// HsiSession: one long-lived `hsi` process fed commands through its stdin, so
// that many operations cost one sign-in (every hsi start authenticates).
//
// End of a command: hsi prints nothing that marks the end of a command read
// from stdin, and its listings and errors go to stderr. So stderr is merged
// into stdout (one ordered stream) and every command is followed by `pwd`,
// whose answer "pwd0: /dir" cannot be the start of any other output line
// (listing lines start with a mode, "FILE"/"DIRECTORY" or a header ending in
// ':', messages with the command name or "***"). Everything before that line
// is the command's output.
//
// A session that timed out, was cancelled, lost its process or reported a
// broken connection is killed; the next Run starts a new one. Not
// thread-safe: one owner (a worker thread) at a time.

#include <memory>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/result.h"
#include "common/subprocess.h"

namespace hsmfs::backends::hpss {

class HsiSession {
 public:
  // `argv`: the hsi program and its options (e.g. {"/opt/hpss/bin/hsi", "-q"}).
  explicit HsiSession(std::vector<std::string> argv);
  ~HsiSession();
  HsiSession(const HsiSession&) = delete;
  HsiSession& operator=(const HsiSession&) = delete;

  // Runs one hsi command line and returns its output lines. The Status of the
  // command itself (its "***" lines) is for the caller to judge; errors here
  // are of the session: kDeadlineExceeded/kUnavailable (retry), kCancelled.
  Result<std::vector<std::string>> Run(const std::string& command, Duration timeout,
                                       const CancelToken& cancel = CancelToken::None());
  // Ends the hsi process politely (quit), if there is one.
  void Close();
  bool running() const { return proc_ != nullptr; }
  // How many hsi processes this session started (sign-ins).
  int starts() const { return starts_; }

 private:
  Status EnsureStarted();

  const std::vector<std::string> argv_;
  std::unique_ptr<Subprocess> proc_;
  int starts_ = 0;
};

// Quotes an HPSS or local path for an hsi command line when it holds spaces.
// kInvalidArgument for characters hsi cannot take in a path (newline, ';', '"').
Result<std::string> HsiQuote(const std::string& path);

}  // namespace hsmfs::backends::hpss
