// LocalSource and SshSource against a real OpenSSH sshd on 127.0.0.1.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "sources/local_source.h"
#include "sources/ssh_source.h"
#include "tests/unit/sources/sshd_fixture.h"

namespace hsmfs::hsmtape {

void PrintTo(const SourceEntry& e, std::ostream* os) {
  *os << "{" << e.path << " type=" << static_cast<int>(e.type) << " size=" << e.size
      << " mtime=" << e.mtime << " mode=" << std::oct << e.mode << std::dec
      << " target=" << e.target << "}";
}

namespace {

namespace fs = std::filesystem;
using sshtest::CurrentUser;
using sshtest::ReadFile;
using sshtest::WriteFile;

constexpr uint64_t kBigSize = 20 * 1024 * 1024;
const char kOddName[] = "name with spaces ünïcødé ✓.txt";

Result<std::vector<SourceEntry>> WalkAll(FileSource& source, const std::string& root) {
  std::vector<SourceEntry> out;
  Status s = source.Walk(
      root,
      [&](const SourceEntry& e) {
        out.push_back(e);
        return Status::Ok();
      },
      CancelToken::None());
  if (!s.ok()) return s;
  return out;
}

// Streams `path` through `source` in tar-writer-sized reads; returns the
// checksum the reader computed and sets *bytes to what it delivered.
Result<std::string> Stream(FileSource& source, const std::string& path, uint64_t* bytes,
                           std::string* data = nullptr) {
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<FileReader> reader, source.Open(path, ChecksumAlgo::kMd5));
  std::vector<char> buf(10240);  // libarchive's default tar block
  *bytes = 0;
  while (true) {
    HSMFS_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
    if (n == 0) break;
    *bytes += n;
    if (data != nullptr) data->append(buf.data(), n);
  }
  if (*bytes != reader->size()) return InternalError("size mismatch");
  return reader->Checksum();
}

// Builds the test tree: nested directories, an empty file, a 20 MiB file, a
// name with spaces and unicode, a symlink, an empty directory, odd modes.
void MakeTree(const fs::path& root) {
  fs::create_directories(root / "a" / "b" / "c");
  fs::create_directories(root / "emptydir");
  WriteFile(root / "a" / "b" / "c" / "deep.txt", "deep down\n");
  WriteFile(root / "a" / "one.txt", "one\n");
  WriteFile(root / "empty", "");
  WriteFile(root / kOddName, "spaces and unicode\n");
  std::string big(kBigSize, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(big.data() + i, &v, 8);
  }
  WriteFile(root / "big.bin", big);
  // 300001 bytes: not a multiple of any request size, so the last answer is short.
  WriteFile(root / "a" / "odd_size.bin", big.substr(0, 300001));
  ::chmod((root / "a" / "one.txt").c_str(), 0600);
  ::chmod((root / "a" / "b").c_str(), 0750);
  fs::create_symlink("a/b", root / "link_to_dir");
  fs::create_symlink("/nonexistent/target", root / "dangling");
}

class SshSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sshtest::HaveSshd()) GTEST_SKIP() << sshtest::kSshd << " is missing";
    std::string err = sshd_.Start();
    ASSERT_EQ(err, "");
    known_hosts_ = sshd_.dir() / "known_hosts";
    WriteFile(known_hosts_, sshd_.KnownHostsLine());
    target_.host = "127.0.0.1";
    target_.port = sshd_.port();
    target_.user = CurrentUser();
    target_.key_file = sshd_.user_key().string();
    target_.known_hosts = known_hosts_.string();
    target_.connect_timeout = std::chrono::seconds(5);
  }

  sshtest::Sshd sshd_;
  fs::path known_hosts_;
  SshTarget target_;
};

TEST_F(SshSourceTest, WalkAndStreamMatchLocal) {
  const fs::path root = sshd_.dir() / "tree";
  MakeTree(root);
  auto ssh = SshSource::Connect(target_);
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString() << "\n" << ReadFile(sshd_.log_path());
  LocalSource local;

  auto remote_entries = WalkAll(**ssh, root.string());
  ASSERT_TRUE(remote_entries.ok()) << remote_entries.status().ToString();
  auto local_entries = WalkAll(local, root.string());
  ASSERT_TRUE(local_entries.ok()) << local_entries.status().ToString();
  EXPECT_EQ(*remote_entries, *local_entries);

  // Depth first, sorted by name, directories before their contents.
  std::vector<std::string> paths;
  for (const SourceEntry& e : *remote_entries) paths.push_back(e.path);
  std::vector<std::string> want = {
      "a",       "a/b",      "a/b/c", "a/b/c/deep.txt", "a/odd_size.bin", "a/one.txt",
      "big.bin", "dangling", "empty", "emptydir",       "link_to_dir",    kOddName};
  EXPECT_EQ(paths, want);

  for (const SourceEntry& e : *remote_entries) {
    const std::string abs = root.string() + "/" + e.path;
    struct stat st;
    ASSERT_EQ(::lstat(abs.c_str(), &st), 0) << abs;
    EXPECT_EQ(e.mode, st.st_mode & 07777) << e.path;
    EXPECT_EQ(e.mtime, st.st_mtim.tv_sec) << e.path;
    if (e.path == "link_to_dir") {
      EXPECT_EQ(e.type, EntryType::kSymlink);
      EXPECT_EQ(e.target, "a/b");
    } else if (e.path == "dangling") {
      EXPECT_EQ(e.type, EntryType::kSymlink);
      EXPECT_EQ(e.target, "/nonexistent/target");
    }
    if (e.type != EntryType::kFile) continue;
    EXPECT_EQ(e.size, static_cast<uint64_t>(st.st_size)) << e.path;
    auto want_md5 = ChecksumFile(abs, ChecksumAlgo::kMd5);
    ASSERT_TRUE(want_md5.ok());
    uint64_t remote_bytes = 0;
    uint64_t local_bytes = 0;
    std::string remote_data;
    auto t0 = std::chrono::steady_clock::now();
    auto remote_md5 =
        Stream(**ssh, abs, &remote_bytes, e.size < (1 << 20) ? &remote_data : nullptr);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto local_md5 = Stream(local, abs, &local_bytes);
    ASSERT_TRUE(remote_md5.ok()) << e.path << ": " << remote_md5.status().ToString();
    ASSERT_TRUE(local_md5.ok()) << e.path << ": " << local_md5.status().ToString();
    EXPECT_EQ(*remote_md5, *want_md5) << e.path;
    EXPECT_EQ(*local_md5, *want_md5) << e.path;
    EXPECT_EQ(remote_bytes, e.size) << e.path;
    EXPECT_EQ(local_bytes, e.size) << e.path;
    if (e.size < (1 << 20)) {
      EXPECT_EQ(remote_data, ReadFile(abs)) << e.path;
    }
    if (e.size == kBigSize) {
      std::printf("[ measured ] SFTP stream of 20 MiB: %.3f s, %.1f MiB/s\n", secs, 20.0 / secs);
    }
  }
}

TEST_F(SshSourceTest, ChecksumFileReadsWholeFile) {
  const fs::path root = sshd_.dir() / "tree";
  MakeTree(root);
  auto ssh = SshSource::Connect(target_);
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString();
  const std::string big = (root / "big.bin").string();
  auto got = (*ssh)->ChecksumFile(big, ChecksumAlgo::kMd5, CancelToken::None());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, *ChecksumFile(big, ChecksumAlgo::kMd5));
  auto empty =
      (*ssh)->ChecksumFile((root / "empty").string(), ChecksumAlgo::kMd5, CancelToken::None());
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "md5:d41d8cd98f00b204e9800998ecf8427e");

  CancelToken cancel;
  cancel.Cancel();
  EXPECT_EQ((*ssh)->ChecksumFile(big, ChecksumAlgo::kMd5, cancel).status().code(),
            Code::kCancelled);
}

// OpenSSH's sftp-server answers at most 255 KiB per read: asking for 1 MiB
// makes every answer short, as an old server capping at 64 KiB would. The
// reader must notice the gaps, seek back and still deliver every byte.
TEST_F(SshSourceTest, ServerCappedReadsStillDeliverEveryByte) {
  const fs::path root = sshd_.dir() / "tree";
  MakeTree(root);
  target_.read_request_bytes = 1024 * 1024;
  auto ssh = SshSource::Connect(target_);
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString();
  for (const fs::path& p : {root / "big.bin", root / "a" / "odd_size.bin"}) {
    uint64_t bytes = 0;
    auto md5 = Stream(**ssh, p.string(), &bytes);
    ASSERT_TRUE(md5.ok()) << p << ": " << md5.status().ToString();
    EXPECT_EQ(bytes, fs::file_size(p)) << p;
    EXPECT_EQ(*md5, *ChecksumFile(p, ChecksumAlgo::kMd5)) << p;
  }
}

TEST_F(SshSourceTest, AbandonedReaderLeavesSessionUsable) {
  const fs::path root = sshd_.dir() / "tree";
  MakeTree(root);
  auto ssh = SshSource::Connect(target_);
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString();
  {
    auto reader = (*ssh)->Open((root / "big.bin").string(), ChecksumAlgo::kMd5);
    ASSERT_TRUE(reader.ok());
    std::vector<char> buf(4096);
    ASSERT_TRUE((*reader)->Read(buf.data(), buf.size()).ok());
    // Not at the end: no checksum yet.
    EXPECT_EQ((*reader)->Checksum().status().code(), Code::kFailedPrecondition);
  }  // destroyed with requests in flight
  uint64_t bytes = 0;
  auto md5 = Stream(**ssh, (root / "a" / "one.txt").string(), &bytes);
  ASSERT_TRUE(md5.ok()) << md5.status().ToString();
  EXPECT_EQ(*md5, *ChecksumFile(root / "a" / "one.txt", ChecksumAlgo::kMd5));
}

TEST_F(SshSourceTest, MissingPathsAreNotFoundAndNameHostAndPath) {
  const fs::path root = sshd_.dir() / "tree";
  MakeTree(root);
  auto ssh = SshSource::Connect(target_);
  ASSERT_TRUE(ssh.ok()) << ssh.status().ToString();
  const std::string host = "127.0.0.1:" + std::to_string(sshd_.port());
  const std::string missing = (root / "no_such_dir").string();

  auto walk = WalkAll(**ssh, missing);
  ASSERT_EQ(walk.status().code(), Code::kNotFound) << walk.status().ToString();
  EXPECT_NE(walk.status().message().find(host), std::string::npos);
  EXPECT_NE(walk.status().message().find(missing), std::string::npos);

  auto open = (*ssh)->Open(missing, ChecksumAlgo::kMd5);
  ASSERT_EQ(open.status().code(), Code::kNotFound) << open.status().ToString();
  EXPECT_NE(open.status().message().find(host), std::string::npos);
  EXPECT_NE(open.status().message().find(missing), std::string::npos);

  EXPECT_EQ((*ssh)->Open((root / "a").string(), ChecksumAlgo::kMd5).status().code(),
            Code::kIsDirectory);
  EXPECT_EQ(WalkAll(**ssh, (root / "empty").string()).status().code(), Code::kNotDirectory);

  LocalSource local;
  EXPECT_EQ(WalkAll(local, missing).status().code(), Code::kNotFound);
  EXPECT_EQ(local.Open(missing, ChecksumAlgo::kMd5).status().code(), Code::kNotFound);
  EXPECT_EQ(local.Open((root / "a").string(), ChecksumAlgo::kMd5).status().code(),
            Code::kIsDirectory);
  EXPECT_EQ(WalkAll(local, (root / "empty").string()).status().code(), Code::kNotDirectory);
}

TEST_F(SshSourceTest, UnknownHostRefusedUnlessAccepted) {
  WriteFile(known_hosts_, "");
  auto refused = SshSource::Connect(target_);
  ASSERT_FALSE(refused.ok());
  const Status& s = refused.status();
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  const std::string name = "[127.0.0.1]:" + std::to_string(sshd_.port());
  EXPECT_NE(s.message().find("unknown host"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(name), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(known_hosts_.string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("accept_unknown_host"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("SHA256:"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_EQ(ReadFile(known_hosts_), "");

  target_.accept_unknown_host = true;
  auto accepted = SshSource::Connect(target_);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_TRUE((*accepted)->host_key_added());
  EXPECT_NE(ReadFile(known_hosts_).find(name), std::string::npos);

  // Now known: a strict connection succeeds and adds nothing.
  target_.accept_unknown_host = false;
  auto again = SshSource::Connect(target_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE((*again)->host_key_added());
}

TEST_F(SshSourceTest, MissingKnownHostsFileIsCreatedInDefaultPlace) {
  const fs::path home = sshd_.dir() / "home";
  fs::create_directories(home);
  const char* old_home = std::getenv("HOME");
  std::string saved = old_home != nullptr ? old_home : "";
  ::setenv("HOME", home.c_str(), 1);
  EXPECT_EQ(DefaultKnownHostsFile(), (home / ".ssh" / "known_hosts").string());
  target_.known_hosts.clear();
  auto refused = SshSource::Connect(target_);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  target_.accept_unknown_host = true;
  auto accepted = SshSource::Connect(target_);
  if (old_home != nullptr) {
    ::setenv("HOME", saved.c_str(), 1);
  } else {
    ::unsetenv("HOME");
  }
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_NE(ReadFile(home / ".ssh" / "known_hosts").find(std::to_string(sshd_.port())),
            std::string::npos);
}

TEST_F(SshSourceTest, ChangedHostKeyAlwaysRefused) {
  ASSERT_TRUE(sshtest::MakeKey(sshd_.dir() / "other_host_key"));
  std::string pub = ReadFile(sshd_.dir() / "other_host_key.pub");
  const std::string line =
      "[127.0.0.1]:" + std::to_string(sshd_.port()) + " " + pub.substr(0, pub.rfind(' ')) + "\n";
  WriteFile(known_hosts_, line);
  target_.accept_unknown_host = true;  // must not matter
  auto r = SshSource::Connect(target_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("CHANGED"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("ssh-keygen -f " + known_hosts_.string() + " -R"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(ReadFile(known_hosts_), line);
}

TEST_F(SshSourceTest, WrongKeyIsPermissionDenied) {
  ASSERT_TRUE(sshtest::MakeKey(sshd_.dir() / "stranger_key"));
  target_.key_file = (sshd_.dir() / "stranger_key").string();
  auto r = SshSource::Connect(target_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(sshd_.port())),
            std::string::npos);
  EXPECT_NE(r.status().message().find(target_.key_file), std::string::npos);

  target_.key_file = (sshd_.dir() / "no_such_key").string();
  auto missing = SshSource::Connect(target_);
  EXPECT_EQ(missing.status().code(), Code::kNotFound) << missing.status().ToString();

  WriteFile(sshd_.dir() / "not_a_key", "garbage\n");
  target_.key_file = (sshd_.dir() / "not_a_key").string();
  auto garbage = SshSource::Connect(target_);
  EXPECT_EQ(garbage.status().code(), Code::kFailedPrecondition) << garbage.status().ToString();
}

// Runs without sshd: the walk contract on LocalSource alone.
TEST(LocalSourceTest, WalkStopsOnSinkErrorAndCancel) {
  char tmpl[] = "/tmp/hsmfs_local_source_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path root = tmpl;
  MakeTree(root);
  LocalSource local;
  auto all = WalkAll(local, root.string());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 12u);
  EXPECT_EQ(all->front().path, "a");
  EXPECT_EQ(all->back().path, kOddName);

  int seen = 0;
  Status stopped = local.Walk(
      root.string(),
      [&](const SourceEntry&) { return ++seen == 3 ? AbortedError("enough") : Status::Ok(); },
      CancelToken::None());
  EXPECT_EQ(stopped.code(), Code::kAborted);
  EXPECT_EQ(seen, 3);

  CancelToken cancel;
  cancel.Cancel();
  Status cancelled = local.Walk(
      root.string(), [](const SourceEntry&) { return Status::Ok(); }, cancel);
  EXPECT_EQ(cancelled.code(), Code::kCancelled);

  // The reader's checksum covers exactly what it delivered, and needs the end.
  auto reader = local.Open((root / "a" / "one.txt").string(), ChecksumAlgo::kMd5);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->size(), 4u);
  EXPECT_EQ((*reader)->Checksum().status().code(), Code::kFailedPrecondition);
  char buf[2];
  std::string got;
  while (true) {
    auto n = (*reader)->Read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  EXPECT_EQ(got, "one\n");
  EXPECT_EQ(*(*reader)->Checksum(), *ChecksumFile(root / "a" / "one.txt", ChecksumAlgo::kMd5));
  std::error_code ec;
  fs::remove_all(root, ec);
}

TEST(SshSourceConnectTest, ClosedPortIsUnavailableQuickly) {
  SshTarget t;
  t.host = "127.0.0.1";
  t.port = sshtest::FreePort();
  t.user = CurrentUser();
  t.known_hosts = "/dev/null";
  auto t0 = std::chrono::steady_clock::now();
  auto r = SshSource::Connect(t);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(t.port)), std::string::npos)
      << r.status().message();
  EXPECT_LT(secs, 2.0);
}

}  // namespace
}  // namespace hsmfs::hsmtape
