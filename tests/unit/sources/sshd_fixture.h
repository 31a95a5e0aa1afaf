#pragma once

// A real OpenSSH sshd on 127.0.0.1, for tests of SshSource: a throwaway host
// key and user key made with ssh-keygen in a temp dir, a free port, the sftp
// subsystem in-process (internal-sftp). Start() runs `sshd -D -e` as a child;
// the destructor kills it and removes the temp dir. Its log is in log_path().

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hsmfs::hsmtape::sshtest {

inline constexpr char kSshd[] = "/usr/sbin/sshd";

inline bool HaveSshd() { return ::access(kSshd, X_OK) == 0; }

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// Runs argv to completion with output to /dev/null; returns the exit status.
inline int Run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Makes an unencrypted ed25519 key pair at `path` and `path`.pub.
inline bool MakeKey(const std::filesystem::path& path) {
  return Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hsmfs-test", "-f",
              path.string()}) == 0;
}

// A port on 127.0.0.1 that nothing listens on (the kernel picked it free).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

inline std::string CurrentUser() {
  const struct passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

class Sshd {
 public:
  Sshd() = default;
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;
  ~Sshd() {
    Stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Returns "" on success, else what went wrong (with the sshd log).
  std::string Start() {
    char tmpl[] = "/tmp/hsmfs_sshd_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    // sshd refuses to start without its privilege separation directory, which
    // only exists on a machine where the ssh service has run.
    ::mkdir("/run/sshd", 0755);
    if (!MakeKey(dir_ / "host_key")) return "ssh-keygen (host key) failed";
    if (!MakeKey(dir_ / "user_key")) return "ssh-keygen (user key) failed";
    WriteFile(dir_ / "authorized_keys", ReadFile(dir_ / "user_key.pub"));
    port_ = FreePort();
    std::ostringstream conf;
    conf << "Port " << port_ << "\n"
         << "ListenAddress 127.0.0.1\n"
         << "HostKey " << (dir_ / "host_key").string() << "\n"
         << "AuthorizedKeysFile " << (dir_ / "authorized_keys").string() << "\n"
         << "PidFile " << (dir_ / "sshd.pid").string() << "\n"
         << "StrictModes no\n"
         << "UsePAM no\n"
         << "PermitRootLogin prohibit-password\n"
         << "PubkeyAuthentication yes\n"
         << "PasswordAuthentication no\n"
         << "KbdInteractiveAuthentication no\n"
         << "Subsystem sftp internal-sftp\n"
         << "LogLevel VERBOSE\n";
    WriteFile(dir_ / "sshd_config", conf.str());
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::string config = (dir_ / "sshd_config").string();
      ::execl(kSshd, kSshd, "-D", "-e", "-f", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (PortAccepts(port_)) return "";
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "sshd exited at start: " + ReadFile(log_path());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "sshd did not listen on port " + std::to_string(port_) + ": " + ReadFile(log_path());
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  const std::filesystem::path& dir() const { return dir_; }
  int port() const { return port_; }
  std::filesystem::path user_key() const { return dir_ / "user_key"; }
  std::filesystem::path host_key_pub() const { return dir_ / "host_key.pub"; }
  std::filesystem::path log_path() const { return dir_ / "sshd.log"; }

  // The known_hosts line that trusts this server's host key.
  std::string KnownHostsLine() const {
    std::string pub = ReadFile(host_key_pub());
    // "ssh-ed25519 AAAA... comment\n": keep type and key.
    std::istringstream in(pub);
    std::string type, key;
    in >> type >> key;
    return "[127.0.0.1]:" + std::to_string(port_) + " " + type + " " + key + "\n";
  }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace hsmfs::hsmtape::sshtest
