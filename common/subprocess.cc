#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

extern char** environ;

namespace hsmfs {
namespace {

constexpr size_t kMaxStderr = 64 * 1024;
// Cancellation is polled between waits of this length.
constexpr int kSliceMs = 50;

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Writes to a pipe whose reader may be gone without raising SIGPIPE in the
// process: the signal is blocked for this thread and a pending one consumed.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t len) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t n = ::write(fd, data, len);
  const int saved = errno;
  if (n < 0 && saved == EPIPE) {
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return n;
}

std::vector<std::string> MergedEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> order;
  const auto add = [&](const std::string& entry) {
    const size_t eq = entry.find('=');
    const std::string name = entry.substr(0, eq);
    if (!vars.count(name)) order.push_back(name);
    vars[name] = entry;
  };
  for (char** e = environ; e && *e; ++e) add(*e);
  for (const std::string& e : extra) add(e);
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const std::string& name : order) out.push_back(vars[name]);
  return out;
}

}  // namespace

Result<std::filesystem::path> FindProgram(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("empty program name");
  if (name.find('/') != std::string_view::npos) {
    if (::access(std::string(name).c_str(), X_OK) != 0) {
      return ErrnoToStatus(errno, "program " + std::string(name));
    }
    return std::filesystem::path(name);
  }
  const char* path_env = std::getenv("PATH");
  std::string_view dirs = path_env ? path_env : "/usr/bin:/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return NotFoundError("program \"" + std::string(name) + "\" not found in $PATH");
}

Result<std::unique_ptr<Subprocess>> Subprocess::Start(const SubprocessOptions& options) {
  if (options.argv.empty()) return InvalidArgumentError("subprocess: empty argv");
  HSMFS_ASSIGN_OR_RETURN(const std::filesystem::path program, FindProgram(options.argv[0]));

  // Everything the child needs is prepared before fork: between fork and exec
  // only async-signal-safe calls are allowed (other threads may hold malloc locks).
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env_strings = MergedEnv(options.env);
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string prog = program.string();
  const std::string cwd = options.cwd.string();

  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  const auto close_all = [&] {
    for (int* p : {in_pipe, out_pipe, err_pipe}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      (!options.merge_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0)) {
    const int err = errno;
    close_all();
    return ErrnoToStatus(err, "subprocess: pipe");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    close_all();
    return ErrnoToStatus(err, "subprocess: fork");
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(options.merge_stderr ? out_pipe[1] : err_pipe[1], 2);
    // No other descriptor of ours (/dev/fuse, the catalog) may live on in a
    // long-lived child: it would keep a mount or a file busy after we exit.
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    // Restore default signal handling: the parent may ignore SIGPIPE.
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(prog.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  // Also set from the parent, so the group exists before we might kill it.
  ::setpgid(pid, pid);
  CloseFd(in_pipe[0]);
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->pid_ = pid;
  p->in_fd_ = in_pipe[1];
  p->out_fd_ = out_pipe[0];
  p->err_fd_ = err_pipe[0];
  if (!options.keep_stdin && options.stdin_data.empty()) CloseFd(p->in_fd_);
  return p;
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    Kill();
    Reap(true);
  }
  CloseFd(in_fd_);
  CloseFd(out_fd_);
  CloseFd(err_fd_);
}

void Subprocess::Kill() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }
}

int Subprocess::Reap(bool block) {
  if (pid_ <= 0) return status_;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    signal_ = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    status_ = signal_ ? 128 + signal_ : exit_code_;
    pid_ = -1;
    return status_;
  }
  return -1;
}

Status Subprocess::Write(std::string_view data) {
  if (in_fd_ < 0) return FailedPreconditionError("subprocess: stdin is closed");
  while (!data.empty()) {
    const ssize_t n = WriteNoSigpipe(in_fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return UnavailableError(std::string("subprocess: writing to stdin: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

bool Subprocess::Pump(int wait_ms) {
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) return false;
  const int r = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
  if (r <= 0) return out_fd_ >= 0;
  char buf[65536];
  for (int i = 0; i < n; ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    const bool is_out = fds[i].fd == out_fd_;
    if (got <= 0) {
      CloseFd(is_out ? out_fd_ : err_fd_);
      continue;
    }
    if (is_out) {
      out_buf_.append(buf, static_cast<size_t>(got));
    } else if (err_buf_.size() < kMaxStderr) {
      err_buf_.append(buf, std::min(static_cast<size_t>(got), kMaxStderr - err_buf_.size()));
    }
  }
  return out_fd_ >= 0;
}

Result<std::vector<std::string>> Subprocess::ReadLinesUntil(
    const std::function<bool(std::string_view line)>& last, Duration timeout,
    const CancelToken& cancel) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    size_t nl;
    while ((nl = out_buf_.find('\n', start)) != std::string::npos) {
      std::string line = out_buf_.substr(start, nl - start);
      start = nl + 1;
      const bool done = last(line);
      lines.push_back(std::move(line));
      if (done) {
        out_buf_.erase(0, start);
        return lines;
      }
    }
    out_buf_.erase(0, start);
    start = 0;
    if (cancel.cancelled()) {
      Kill();
      return CancelledError("subprocess: cancelled");
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      Kill();
      return DeadlineExceededError("subprocess: no answer within " + FormatDuration(timeout));
    }
    if (!Pump(static_cast<int>(std::min<int64_t>(left.count(), kSliceMs)))) {
      const int code = Reap(false);
      // Its last words (an error, a traceback's last line) say why.
      std::string words = !out_buf_.empty() ? out_buf_ : !lines.empty() ? lines.back() : "";
      if (words.size() > 200) words = words.substr(0, 200) + "...";
      return UnavailableError("subprocess: the program closed its output" +
                              (code >= 0 ? " (exit " + std::to_string(code) + ")" : "") +
                              (words.empty() ? "" : "; its last output: " + words));
    }
  }
}

std::string Subprocess::TakeStderr() {
  std::string out;
  out.swap(err_buf_);
  return out;
}

int Subprocess::Finish(Duration timeout) {
  CloseFd(in_fd_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    if (Reap(false) >= 0) break;
    if (out_fd_ >= 0 || err_fd_ >= 0) {
      Pump(kSliceMs);
      out_buf_.clear();
    } else {
      ::usleep(kSliceMs * 1000);
    }
  }
  if (pid_ > 0) {
    Kill();
    Reap(true);
  }
  return status_;
}

Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options, Duration timeout,
                                       const CancelToken& cancel) {
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> p, Subprocess::Start(options));
  const bool has_deadline = timeout.count() > 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string_view to_write = options.stdin_data;
  if (to_write.empty()) CloseFd(p->in_fd_);
  if (p->in_fd_ >= 0) ::fcntl(p->in_fd_, F_SETFL, O_NONBLOCK);
  while (p->out_fd_ >= 0 || p->err_fd_ >= 0 || p->in_fd_ >= 0) {
    if (cancel.cancelled()) {
      p->Kill();
      return CancelledError("subprocess " + options.argv[0] + ": cancelled");
    }
    if (has_deadline && std::chrono::steady_clock::now() >= deadline) {
      p->Kill();
      return DeadlineExceededError(options.argv[0] + " did not finish within " +
                                   FormatDuration(timeout));
    }
    if (p->in_fd_ >= 0) {
      const ssize_t n = WriteNoSigpipe(p->in_fd_, to_write.data(), to_write.size());
      if (n > 0) to_write.remove_prefix(static_cast<size_t>(n));
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || to_write.empty()) CloseFd(p->in_fd_);
    }
    if (p->out_fd_ >= 0 || p->err_fd_ >= 0) {
      p->Pump(p->in_fd_ >= 0 ? 5 : kSliceMs);
    }
  }
  // Output closed: the child is exiting (or handed its pipes to a daemon).
  while (p->pid_ > 0) {
    if (p->Reap(false) >= 0) break;
    if (cancel.cancelled() || (has_deadline && std::chrono::steady_clock::now() >= deadline)) {
      p->Kill();
      return cancel.cancelled() ? CancelledError("subprocess: cancelled")
                                : DeadlineExceededError(options.argv[0] + " did not exit within " +
                                                        FormatDuration(timeout));
    }
    ::usleep(10 * 1000);
  }
  SubprocessResult result;
  result.out = std::move(p->out_buf_);
  result.err = std::move(p->err_buf_);
  result.exit_code = p->exit_code_;
  result.signal = p->signal_;
  return result;
}

}  // namespace hsmfs
