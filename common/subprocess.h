#pragma once

// Subprocess: runs an external program (hsi, htar, ...) from an argv vector,
// never through a shell, in its own process group so that a timeout or a
// cancellation kills it and everything it started.
//
// Two ways to use it:
//  - RunSubprocess(): run to completion with a timeout; stdout and stderr are
//    captured (optionally merged into one stream, in the order written).
//  - Subprocess::Start() with keep_stdin: a long-lived child fed through its
//    stdin (an hsi session); the caller writes commands and reads stdout up to
//    a line it recognises.
//
// Errors: kNotFound when the program does not exist, kDeadlineExceeded on a
// timeout, kCancelled when the CancelToken fired, kUnavailable when a session
// child exited or closed its output, kInternal for failed system calls. A
// non-zero exit is not an error of RunSubprocess: callers judge the exit code.
// A Subprocess object is not thread-safe (one owner at a time); different
// objects may be used from different threads. The destructor kills the
// process group and reaps the child.

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/result.h"

namespace hsmfs {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is a path, or a name searched in $PATH
  std::filesystem::path cwd;      // empty: the caller's working directory
  std::vector<std::string> env;   // extra "NAME=value" entries over the inherited environment
  bool merge_stderr = false;      // stderr goes to the stdout pipe (one ordered stream)
  bool keep_stdin = false;        // Start(): keep a stdin pipe for Write()
  std::string stdin_data;         // RunSubprocess(): written to stdin, which is then closed
};

struct SubprocessResult {
  int exit_code = -1;  // when the child exited normally
  int signal = 0;      // when a signal ended it
  std::string out;
  std::string err;  // empty when merge_stderr
  bool ok() const { return signal == 0 && exit_code == 0; }
};

// Resolves a program name the way execvp would ($PATH when it has no '/').
Result<std::filesystem::path> FindProgram(std::string_view name);

// Runs to completion. `timeout` (<= 0: none) and `cancel` kill the process group.
Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options, Duration timeout,
                                       const CancelToken& cancel = CancelToken::None());

class Subprocess {
 public:
  static Result<std::unique_ptr<Subprocess>> Start(const SubprocessOptions& options);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Writes all of `data` to the child's stdin. REQUIRES: keep_stdin.
  Status Write(std::string_view data);
  // Returns the stdout lines (without '\n') read up to and including the first
  // line for which `last` is true. Bytes after that line stay buffered for the
  // next call. On a timeout or cancellation the child is killed.
  Result<std::vector<std::string>> ReadLinesUntil(
      const std::function<bool(std::string_view line)>& last, Duration timeout,
      const CancelToken& cancel = CancelToken::None());
  // Closes stdin and waits up to `timeout` for a clean exit, then kills.
  // Returns the exit code (or 128 + signal).
  int Finish(Duration timeout);
  // Kills the whole process group at once.
  void Kill();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // What the child wrote to stderr so far (when not merged), at most 64 KiB.
  std::string TakeStderr();

 private:
  Subprocess() = default;
  friend Result<SubprocessResult> RunSubprocess(const SubprocessOptions&, Duration,
                                                const CancelToken&);
  // Reads what is available on the pipes, waiting up to `wait_ms`. Returns false
  // once stdout is closed.
  bool Pump(int wait_ms);
  int Reap(bool block);

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_buf_;
  std::string err_buf_;
  int status_ = 0;
  int exit_code_ = -1;
  int signal_ = 0;
};

}  // namespace hsmfs
