#include "cli/daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/cli.h"

namespace hsmfs::cli {

int StartupReport::Fail(const std::string& message, int code) {
  spdlog::error("{}", message);
  if (fd_ < 0) return cli::Fail(program_, message, code);
  const std::string line = std::to_string(code) + "\n" + message;
  static_cast<void>(::write(fd_, line.data(), line.size()));
  ::close(fd_);
  fd_ = -1;
  return code;
}

void StartupReport::Ok() {
  if (fd_ < 0) return;
  static_cast<void>(::write(fd_, "0\n", 2));
  ::close(fd_);
  fd_ = -1;
}

int Daemonise(std::string_view program, int* report_fd, const std::string& on_success) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Fail(program, std::string("pipe: ") + std::strerror(errno), kExitFailed);
  }
  const pid_t pid = ::fork();
  if (pid < 0) return Fail(program, std::string("fork: ") + std::strerror(errno), kExitFailed);
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    if (::chdir("/") != 0) {
      // Not fatal: every path was made absolute before forking.
    }
    *report_fd = fds[1];
    return -1;
  }
  ::close(fds[1]);
  std::string reply;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (reply.empty()) {
    return Fail(program, "the background process exited during start-up (see its log)",
                kExitFailed);
  }
  const size_t nl = reply.find('\n');
  const int code = std::atoi(reply.substr(0, nl).c_str());
  if (code != 0) return Fail(program, reply.substr(nl + 1), code);
  if (!on_success.empty()) std::cout << on_success << std::flush;
  return kExitOk;
}

void DetachStdio() {
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  ::dup2(null, STDIN_FILENO);
  ::dup2(null, STDOUT_FILENO);
  ::dup2(null, STDERR_FILENO);
  ::close(null);
}

}  // namespace hsmfs::cli
