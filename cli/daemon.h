#pragma once

// Running a program in the background the way users expect of a daemon: the
// command returns only once the background process is up (exit 0), or prints
// why it could not start (with its exit code) on the user's terminal.

#include <string>
#include <string_view>

namespace hsmfs::cli {

// How start-up went, told to the waiting parent (or, in the foreground, to
// stderr). Each of Ok/Fail at most once.
class StartupReport {
 public:
  StartupReport(std::string program, int fd) : program_(std::move(program)), fd_(fd) {}
  // Logs and reports `message`; returns `code`.
  int Fail(const std::string& message, int code);
  void Ok();

 private:
  std::string program_;
  int fd_;
};

// Forks. In the child (which carries on) returns -1 and sets `*report_fd`;
// the parent waits for the child's report, prints `on_success` if it started,
// and returns the exit code it should exit with.
int Daemonise(std::string_view program, int* report_fd, const std::string& on_success);

// Points stdin, stdout and stderr at /dev/null (after start-up succeeded).
void DetachStdio();

}  // namespace hsmfs::cli
