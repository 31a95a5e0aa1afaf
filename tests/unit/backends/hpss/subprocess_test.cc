// common/subprocess, driven with /bin/sh snippets.

#include "common/subprocess.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

namespace hsmfs {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SubprocessOptions Sh(const std::string& script) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

TEST(SubprocessTest, CapturesStdoutStderrAndExitCode) {
  auto r = RunSubprocess(Sh("echo out; echo err >&2; exit 3"), seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(SubprocessTest, MergedStreamsKeepTheirOrder) {
  SubprocessOptions o = Sh("echo a; echo b >&2; echo c");
  o.merge_stderr = true;
  auto r = RunSubprocess(o, seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "a\nb\nc\n");
  EXPECT_TRUE(r->ok());
}

TEST(SubprocessTest, ArgumentsAreNotInterpretedByAShell) {
  SubprocessOptions o;
  o.argv = {"/bin/echo", "$HOME; rm -rf /", "*"};
  auto r = RunSubprocess(o, seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "$HOME; rm -rf / *\n");
}

TEST(SubprocessTest, ProgramSearchedInPathAndMissingProgramIsNotFound) {
  SubprocessOptions o;
  o.argv = {"true"};
  auto ok = RunSubprocess(o, seconds(10));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exit_code, 0);
  o.argv = {"hsmfs-no-such-program-xyz"};
  EXPECT_EQ(RunSubprocess(o, seconds(10)).status().code(), Code::kNotFound);
  o.argv = {"/nonexistent/hsi"};
  EXPECT_EQ(RunSubprocess(o, seconds(10)).status().code(), Code::kNotFound);
}

TEST(SubprocessTest, LargeOutputOnBothStreamsDoesNotDeadlock) {
  // 4 MiB on stdout and 1 MiB on stderr, far beyond a pipe buffer.
  auto r = RunSubprocess(
      Sh("head -c 4194304 /dev/zero; head -c 1048576 /dev/zero >&2; head -c 10 /dev/zero"),
      seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 4194304u + 10u);
  EXPECT_EQ(r->err.size(), 65536u);  // stderr is kept up to 64 KiB
}

TEST(SubprocessTest, StdinDataIsFedAndClosed) {
  SubprocessOptions o = Sh("wc -c");
  o.stdin_data = std::string(300000, 'q');
  auto r = RunSubprocess(o, seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::stoi(r->out), 300000);
}

TEST(SubprocessTest, TimeoutKillsTheWholeProcessGroup) {
  // The grandchild writes its pid; after the timeout it must be gone too.
  const std::string pidfile = "/tmp/hsmfs_subprocess_test_" + std::to_string(::getpid());
  const auto start = std::chrono::steady_clock::now();
  auto r = RunSubprocess(Sh("sleep 30 & echo $! > " + pidfile + "; wait"), milliseconds(300));
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  ASSERT_GT(grandchild, 0);
  std::this_thread::sleep_for(milliseconds(100));
  // Reaped by init or a zombie at most; never still sleeping.
  std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
  std::string pid_s, comm, state;
  if (stat >> pid_s >> comm >> state) {
    EXPECT_EQ(state, "Z");
  }
  std::remove(pidfile.c_str());
}

TEST(SubprocessTest, CancellationStopsARun) {
  CancelToken cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(100));
    cancel.Cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = RunSubprocess(Sh("sleep 30"), seconds(60), cancel);
  t.join();
  EXPECT_EQ(r.status().code(), Code::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST(SubprocessTest, OnlyStandardDescriptorsAreInherited) {
  // Deliberately without O_CLOEXEC, and above what ls opens itself.
  const int low = ::open("/dev/null", O_RDONLY);
  const int fd = ::fcntl(low, F_DUPFD, 200);
  ::close(low);
  ASSERT_GE(fd, 200);
  auto r = RunSubprocess(Sh("ls /proc/self/fd"), seconds(10));
  ::close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.find(std::to_string(fd) + "\n"), std::string::npos) << r->out;
  EXPECT_EQ(r->out.rfind("0\n1\n2\n", 0), 0u) << r->out;
}

TEST(SubprocessTest, SignalIsReported) {
  auto r = RunSubprocess(Sh("kill -TERM $$"), seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->signal, SIGTERM);
  EXPECT_FALSE(r->ok());
}

TEST(SubprocessTest, WorkingDirectoryAndEnvironment) {
  SubprocessOptions o = Sh("pwd; echo $HSMFS_SUBPROCESS_TEST");
  o.cwd = "/tmp";
  o.env = {"HSMFS_SUBPROCESS_TEST=value 1"};
  auto r = RunSubprocess(o, seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "/tmp\nvalue 1\n");
}

// A long-lived session: one process answers many commands, each ended by a marker.
TEST(SubprocessTest, StdinSessionAnswersCommandsUntilAMarker) {
  SubprocessOptions o = Sh("while read cmd arg; do echo \"got $arg\"; echo \"@@done $arg\"; done");
  o.keep_stdin = true;
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok());
  const pid_t pid = (*p)->pid();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*p)->Write("cmd " + std::to_string(i) + "\n").ok());
    auto lines = (*p)->ReadLinesUntil([](std::string_view l) { return l.rfind("@@done", 0) == 0; },
                                      seconds(10));
    ASSERT_TRUE(lines.ok()) << lines.status().ToString();
    ASSERT_EQ(lines->size(), 2u);
    EXPECT_EQ((*lines)[0], "got " + std::to_string(i));
  }
  EXPECT_EQ((*p)->pid(), pid);  // the same process throughout
  EXPECT_EQ((*p)->Finish(seconds(5)), 0);
  EXPECT_FALSE((*p)->running());
}

TEST(SubprocessTest, SessionTimeoutKillsAndExitIsUnavailable) {
  SubprocessOptions o = Sh("read x; sleep 30");
  o.keep_stdin = true;
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Write("go\n").ok());
  auto r = (*p)->ReadLinesUntil([](std::string_view) { return true; }, milliseconds(200));
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);

  SubprocessOptions e = Sh("echo partial; exit 4");
  e.keep_stdin = true;
  auto q = Subprocess::Start(e);
  ASSERT_TRUE(q.ok());
  auto lines = (*q)->ReadLinesUntil([](std::string_view l) { return l == "never"; }, seconds(10));
  EXPECT_EQ(lines.status().code(), Code::kUnavailable);
  // Writing to a child that is gone fails cleanly (no SIGPIPE).
  std::this_thread::sleep_for(milliseconds(50));
  Status w = (*q)->Write(std::string(200000, 'x'));
  EXPECT_FALSE(w.ok());
}

}  // namespace
}  // namespace hsmfs
