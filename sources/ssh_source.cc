#include "sources/ssh_source.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

namespace hsmfs::hsmtape {
namespace {

// SshTarget::read_request_bytes is a first guess, not an assumption: a shorter
// answer that is not at the end of the file makes the reader shrink its
// requests to what the server gave (see SftpReader::Fill).
// Requests kept in flight: 4 MiB at 128 KiB, enough to fill a 1 Gb/s link
// with a 30 ms round trip.
constexpr size_t kRequestsInFlight = 32;

std::string SftpErrorText(int code) {
  switch (code) {
    case SSH_FX_EOF:
      return "end of file";
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
      return "No such file or directory";
    case SSH_FX_PERMISSION_DENIED:
      return "Permission denied";
    case SSH_FX_NO_CONNECTION:
    case SSH_FX_CONNECTION_LOST:
      return "connection lost";
    case SSH_FX_OP_UNSUPPORTED:
      return "operation not supported by the server";
    default:
      return "sftp error " + std::to_string(code);
  }
}

// The Status for a failed SFTP call. The transport is checked first because
// sftp_get_error() keeps the last *server* status, which is stale when the
// connection itself broke.
Status SftpStatus(ssh_session session, sftp_session sftp, const std::string& prefix,
                  const std::string& what) {
  if (ssh_is_connected(session) == 0 || ssh_get_error_code(session) == SSH_FATAL) {
    return UnavailableError(prefix + what + ": connection lost: " + ssh_get_error(session));
  }
  int code = sftp_get_error(sftp);
  std::string msg = prefix + what + ": " + SftpErrorText(code);
  switch (code) {
    case SSH_FX_NO_SUCH_FILE:
    case SSH_FX_NO_SUCH_PATH:
      return NotFoundError(msg);
    case SSH_FX_PERMISSION_DENIED:
      return PermissionDeniedError(msg);
    case SSH_FX_NO_CONNECTION:
    case SSH_FX_CONNECTION_LOST:
      return UnavailableError(msg);
    default:
      return InternalError(msg);
  }
}

EntryType TypeOf(const sftp_attributes_struct& a) {
  // Protocol v3 (OpenSSH) has no type field on the wire; libssh derives it from
  // the permission bits, which we read directly when they are present.
  if (a.flags & SSH_FILEXFER_ATTR_PERMISSIONS) {
    switch (a.permissions & S_IFMT) {
      case S_IFREG:
        return EntryType::kFile;
      case S_IFDIR:
        return EntryType::kDir;
      case S_IFLNK:
        return EntryType::kSymlink;
      default:
        return EntryType::kOther;
    }
  }
  switch (a.type) {
    case SSH_FILEXFER_TYPE_REGULAR:
      return EntryType::kFile;
    case SSH_FILEXFER_TYPE_DIRECTORY:
      return EntryType::kDir;
    case SSH_FILEXFER_TYPE_SYMLINK:
      return EntryType::kSymlink;
    default:
      return EntryType::kOther;
  }
}

int64_t MtimeOf(const sftp_attributes_struct& a) {
  return a.mtime64 != 0 ? static_cast<int64_t>(a.mtime64) : static_cast<int64_t>(a.mtime);
}

struct AttrFree {
  void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using Attrs = std::unique_ptr<sftp_attributes_struct, AttrFree>;

// "ssh-ed25519 SHA256:..." of the server's host key, or "" if unavailable.
std::string HostKeyText(ssh_session session) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(session, &key) != SSH_OK) return "";
  unsigned char* hash = nullptr;
  size_t hash_len = 0;
  std::string out = ssh_key_type_to_char(ssh_key_type(key));
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == SSH_OK) {
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
    if (fp != nullptr) {
      out += " ";
      out += fp;
      ssh_string_free_char(fp);
    }
    ssh_clean_pubkey_hash(&hash);
  }
  ssh_key_free(key);
  return out;
}

// libssh waits for SFTP answers without a time limit, so a host that vanished
// (power cut, network gone) would hang an import forever; TCP keepalive turns
// that into a read error after about two minutes. A live server that is merely
// slow (a spun-down disk) is never cut off.
void EnableKeepalive(int fd) {
  if (fd < 0) return;
  int on = 1;
  int idle = 60;
  int interval = 10;
  int count = 6;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

// How known_hosts and ssh-keygen -R spell the host: "[host]:port" unless 22.
std::string KnownHostsName(const SshTarget& t) {
  if (t.port == 22) return t.host;
  return "[" + t.host + "]:" + std::to_string(t.port);
}

// Owns a half-built connection until SshSource takes it over.
struct SessionGuard {
  ssh_session session = nullptr;
  sftp_session sftp = nullptr;
  ~SessionGuard() {
    if (sftp != nullptr) sftp_free(sftp);
    if (session != nullptr) {
      ssh_disconnect(session);
      ssh_free(session);
    }
  }
};

Status CheckHostKey(const SshTarget& t, ssh_session session, const std::string& known_hosts,
                    const std::string& prefix, const std::string& host_key, bool* added) {
  *added = false;
  enum ssh_known_hosts_e state = ssh_session_is_known_server(session);
  switch (state) {
    case SSH_KNOWN_HOSTS_OK:
      return Status::Ok();
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      return FailedPreconditionError(
          prefix + "host key CHANGED: the server offers " + host_key + ", but " + known_hosts +
          " holds a different key for " + KnownHostsName(t) +
          "; refusing to connect (the connection may be intercepted). If the host was "
          "reinstalled, check the new key with its admin and remove the old one with: "
          "ssh-keygen -f " +
          known_hosts + " -R '" + KnownHostsName(t) + "'");
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      break;
    case SSH_KNOWN_HOSTS_ERROR:
      return FailedPreconditionError(prefix + "cannot check the host key against " + known_hosts +
                                     ": " + ssh_get_error(session));
  }
  if (!t.accept_unknown_host) {
    return FailedPreconditionError(
        prefix + "unknown host: " + KnownHostsName(t) + " is not in " + known_hosts +
        " (its key is " + host_key +
        "); check that key with the host's admin, then accept it with the accept_unknown_host "
        "option (-o StrictHostKeyChecking=accept-new in ssh_command), or connect once with: "
        "ssh -p " +
        std::to_string(t.port) + " " + t.user + "@" + t.host);
  }
  // libssh appends to the file but does not create its directory.
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(known_hosts).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (!ec) ::chmod(parent.c_str(), 0700);
  }
  if (ssh_session_update_known_hosts(session) != SSH_OK) {
    return FailedPreconditionError(prefix + "cannot add the host key to " + known_hosts + ": " +
                                   ssh_get_error(session));
  }
  *added = true;
  return Status::Ok();
}

Status Authenticate(const SshTarget& t, ssh_session session, const std::string& prefix) {
  int rc;
  std::string with;
  if (t.key_file.empty()) {
    rc = ssh_userauth_publickey_auto(session, nullptr, nullptr);
    with = "ssh-agent and ~/.ssh/id_* keys";
  } else {
    std::error_code ec;
    if (!std::filesystem::exists(t.key_file, ec)) {
      return NotFoundError(prefix + "key file " + t.key_file + ": No such file");
    }
    ssh_key key = nullptr;
    if (ssh_pki_import_privkey_file(t.key_file.c_str(), nullptr, nullptr, nullptr, &key) !=
        SSH_OK) {
      return FailedPreconditionError(prefix + "cannot load the private key " + t.key_file +
                                     " (unreadable, not a key, or passphrase-protected: "
                                     "hsmtape needs an unlocked key)");
    }
    rc = ssh_userauth_publickey(session, nullptr, key);
    ssh_key_free(key);
    with = "key " + t.key_file;
  }
  switch (rc) {
    case SSH_AUTH_SUCCESS:
      return Status::Ok();
    case SSH_AUTH_DENIED:
      return PermissionDeniedError(prefix + "authentication refused for user " + t.user + " with " +
                                   with);
    case SSH_AUTH_PARTIAL:
      return PermissionDeniedError(prefix + "the server wants more than a public key (" + with +
                                   " accepted); hsmtape cannot answer further prompts");
    default:
      return UnavailableError(prefix + "authentication failed: " + ssh_get_error(session));
  }
}

uint32_t RequestBytes(const SshTarget& t) {
  if (t.read_request_bytes == 0) return 128 * 1024;
  return std::clamp<uint32_t>(t.read_request_bytes, 4096, 1024 * 1024);
}

// Streams one remote file with pipelined SFTP reads.
//
// Invariant: the requests in `inflight_` cover consecutive byte ranges starting
// at `expected_` (the offset of the next byte to hand out), unless `restart_`
// is set after a short answer, in which case they are stale and discarded.
class SftpReader final : public FileReader {
 public:
  SftpReader(ssh_session session, sftp_session sftp, sftp_file file, uint64_t size,
             uint32_t* request_bytes, std::string prefix, std::string path, ChecksumAlgo algo)
      : session_(session),
        sftp_(sftp),
        file_(file),
        size_(size),
        prefix_(std::move(prefix)),
        path_(std::move(path)),
        hasher_(Hasher::Create(algo)),
        chunk_(*request_bytes),
        max_chunk_(*request_bytes),
        learned_request_bytes_(request_bytes) {}
  ~SftpReader() override {
    // Every request must be answered and collected, or libssh keeps the
    // answers (and a later read with the same handle would be confused).
    Drain();
    sftp_close(file_);
  }
  SftpReader(const SftpReader&) = delete;
  SftpReader& operator=(const SftpReader&) = delete;

  Result<size_t> Read(void* buf, size_t len) override {
    if (pos_ == data_.size() && !at_end_) HSMFS_RETURN_IF_ERROR(Fill());
    size_t n = std::min(len, data_.size() - pos_);
    std::copy_n(data_.data() + pos_, n, static_cast<char*>(buf));
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return size_; }
  Result<std::string> Checksum() override {
    if (!at_end_ || pos_ != data_.size()) {
      return FailedPreconditionError(prefix_ + "checksum of " + path_ + " before its end");
    }
    if (digest_.empty()) digest_ = hasher_->Finish();
    return digest_;
  }

 private:
  struct Request {
    uint32_t id;
    uint64_t offset;
    uint32_t len;
  };

  Status Failed(const std::string& what) {
    broken_ = true;
    return SftpStatus(session_, sftp_, prefix_, what + " " + path_);
  }

  void Drain() {
    std::vector<char> sink(max_chunk_);
    while (!broken_ && !inflight_.empty()) {
      Request r = inflight_.front();
      inflight_.pop_front();
      if (sftp_async_read(file_, sink.data(), r.len, r.id) < 0) broken_ = true;
    }
    inflight_.clear();
  }

  Status TopUp() {
    // Read ahead while inside the size seen at open; past it, one request at a
    // time until the server says end of file (the file may have grown).
    while (inflight_.size() < kRequestsInFlight && (inflight_.empty() || next_offset_ < size_)) {
      int id = sftp_async_read_begin(file_, chunk_);
      if (id < 0) return Failed("reading");
      inflight_.push_back(Request{static_cast<uint32_t>(id), next_offset_, chunk_});
      next_offset_ += chunk_;
    }
    return Status::Ok();
  }

  // Makes the next bytes available in data_, or sets at_end_.
  Status Fill() {
    if (broken_) return InternalError(prefix_ + "reading " + path_ + " after an error");
    if (finish_) {
      at_end_ = true;
      Drain();
      data_.clear();
      pos_ = 0;
      return Status::Ok();
    }
    if (restart_) {
      Drain();
      if (broken_) return Failed("reading");
      if (sftp_seek64(file_, expected_) < 0) return Failed("seeking in");
      next_offset_ = expected_;
      restart_ = false;
    }
    HSMFS_RETURN_IF_ERROR(TopUp());
    Request r = inflight_.front();
    inflight_.pop_front();
    data_.resize(r.len);
    int n = sftp_async_read(file_, data_.data(), r.len, r.id);
    if (n < 0) {
      data_.clear();
      pos_ = 0;
      return Failed("reading");
    }
    data_.resize(static_cast<size_t>(n));
    pos_ = 0;
    if (n == 0) {
      at_end_ = true;
      Drain();
      return Status::Ok();
    }
    hasher_->Update(data_.data(), data_.size());
    expected_ += static_cast<uint64_t>(n);
    if (static_cast<uint32_t>(n) < r.len) {
      // A short answer leaves a gap before the requests behind it. Inside the
      // file it means the server caps requests: ask for what it gives. At the
      // size seen at open it is the end of the file (servers answer a read of a
      // regular file in full otherwise), which spares a round trip per file.
      if (expected_ >= size_) {
        finish_ = true;
      } else {
        chunk_ = std::max<uint32_t>(static_cast<uint32_t>(n), 4096);
        *learned_request_bytes_ = chunk_;
        restart_ = true;
      }
    }
    return Status::Ok();
  }

  ssh_session session_;
  sftp_session sftp_;
  sftp_file file_;
  uint64_t size_;
  std::string prefix_;
  std::string path_;
  std::unique_ptr<Hasher> hasher_;
  uint32_t chunk_;
  const uint32_t max_chunk_;
  // The source's request size, lowered for the files opened after this one
  // when the server turns out to cap requests.
  uint32_t* learned_request_bytes_;
  std::deque<Request> inflight_;
  uint64_t next_offset_ = 0;
  uint64_t expected_ = 0;
  std::vector<char> data_;
  size_t pos_ = 0;
  bool restart_ = false;
  bool finish_ = false;
  bool at_end_ = false;
  bool broken_ = false;
  std::string digest_;
};

}  // namespace

SshSource::SshSource(SshTarget target, ssh_session_struct* session, sftp_session_struct* sftp,
                     std::string host_key, bool host_key_added)
    : target_(std::move(target)),
      session_(session),
      sftp_(sftp),
      host_key_(std::move(host_key)),
      host_key_added_(host_key_added),
      request_bytes_(RequestBytes(target_)) {}

SshSource::~SshSource() {
  sftp_free(sftp_);
  ssh_disconnect(session_);
  ssh_free(session_);
}

Result<std::unique_ptr<SshSource>> SshSource::Connect(const SshTarget& target) {
  const std::string prefix = "ssh " + target.Describe() + ": ";
  if (target.host.empty()) return InvalidArgumentError("ssh: no host given");
  SessionGuard g;
  g.session = ssh_new();
  if (g.session == nullptr) return InternalError(prefix + "cannot create an ssh session");
  const std::string known_hosts =
      target.known_hosts.empty() ? DefaultKnownHostsFile() : target.known_hosts;
  // Not reading ~/.ssh/config keeps the connection exactly what tape.conf says.
  int process_config = 0;
  int port = target.port;
  long timeout = static_cast<long>(target.connect_timeout.count());  // NOLINT(google-runtime-int)
  if (ssh_options_set(g.session, SSH_OPTIONS_PROCESS_CONFIG, &process_config) != SSH_OK ||
      ssh_options_set(g.session, SSH_OPTIONS_HOST, target.host.c_str()) != SSH_OK ||
      ssh_options_set(g.session, SSH_OPTIONS_PORT, &port) != SSH_OK ||
      ssh_options_set(g.session, SSH_OPTIONS_USER, target.user.c_str()) != SSH_OK ||
      ssh_options_set(g.session, SSH_OPTIONS_KNOWNHOSTS, known_hosts.c_str()) != SSH_OK ||
      ssh_options_set(g.session, SSH_OPTIONS_TIMEOUT, &timeout) != SSH_OK) {
    return InvalidArgumentError(prefix + "bad option: " + ssh_get_error(g.session));
  }
  if (ssh_connect(g.session) != SSH_OK) {
    // Refused, timed out, unreachable or unresolvable: all may heal by
    // themselves, so the caller may retry later.
    return UnavailableError(prefix + "cannot connect: " + ssh_get_error(g.session));
  }
  EnableKeepalive(ssh_get_fd(g.session));
  const std::string host_key = HostKeyText(g.session);
  bool added = false;
  HSMFS_RETURN_IF_ERROR(CheckHostKey(target, g.session, known_hosts, prefix, host_key, &added));
  HSMFS_RETURN_IF_ERROR(Authenticate(target, g.session, prefix));
  g.sftp = sftp_new(g.session);
  if (g.sftp == nullptr) {
    return FailedPreconditionError(prefix + "cannot start sftp: " + ssh_get_error(g.session));
  }
  if (sftp_init(g.sftp) != SSH_OK) {
    return FailedPreconditionError(prefix +
                                   "cannot start sftp (does the server have the sftp "
                                   "subsystem?): " +
                                   ssh_get_error(g.session));
  }
  std::unique_ptr<SshSource> source(
      new SshSource(target, g.session, g.sftp, host_key, added));  // private constructor
  g.session = nullptr;
  g.sftp = nullptr;
  return source;
}

Status SshSource::Walk(const std::string& root, const WalkSink& sink, const CancelToken& cancel) {
  const std::string prefix = "ssh " + target_.Describe() + ": ";
  Attrs attrs(sftp_stat(sftp_, root.c_str()));
  if (attrs == nullptr) return SftpStatus(session_, sftp_, prefix, "target " + root);
  if (TypeOf(*attrs) != EntryType::kDir) {
    return Status(Code::kNotDirectory, prefix + "target " + root + " is not a directory");
  }
  return WalkSorted([&](const std::string& rel) { return ListDir(root, rel); }, sink, cancel,
                    Describe() + ":" + root);
}

Result<std::vector<SourceEntry>> SshSource::ListDir(const std::string& root,
                                                    const std::string& rel) {
  const std::string prefix = "ssh " + target_.Describe() + ": ";
  const std::string abs_dir = rel.empty() ? root : root + "/" + rel;
  sftp_dir dir = sftp_opendir(sftp_, abs_dir.c_str());
  if (dir == nullptr) return SftpStatus(session_, sftp_, prefix, "listing " + abs_dir);
  std::vector<SourceEntry> entries;
  while (true) {
    // OpenSSH's server answers READDIR with lstat data: links are not followed.
    Attrs a(sftp_readdir(sftp_, dir));
    if (a == nullptr) break;
    std::string name = a->name != nullptr ? a->name : "";
    if (name.empty() || name == "." || name == "..") continue;
    SourceEntry e;
    if (!rel.empty()) {
      e.path.reserve(rel.size() + 1 + name.size());
      e.path.append(rel).append("/");
    }
    e.path += name;
    e.type = TypeOf(*a);
    e.size = e.type == EntryType::kFile ? a->size : 0;
    e.mtime = MtimeOf(*a);
    e.mode = a->permissions & 07777;
    entries.push_back(std::move(e));
  }
  bool complete = sftp_dir_eof(dir) != 0;
  sftp_closedir(dir);
  if (!complete) return SftpStatus(session_, sftp_, prefix, "listing " + abs_dir);
  for (SourceEntry& e : entries) {
    if (e.type != EntryType::kSymlink) continue;
    const std::string link = root + "/" + e.path;
    char* target = sftp_readlink(sftp_, link.c_str());
    if (target == nullptr) return SftpStatus(session_, sftp_, prefix, "readlink " + link);
    e.target = target;
    ssh_string_free_char(target);
  }
  return entries;
}

Result<std::unique_ptr<FileReader>> SshSource::Open(const std::string& path, ChecksumAlgo algo) {
  const std::string prefix = "ssh " + target_.Describe() + ": ";
  sftp_file file = sftp_open(sftp_, path.c_str(), O_RDONLY, 0);
  if (file == nullptr) return SftpStatus(session_, sftp_, prefix, "opening " + path);
  Attrs attrs(sftp_fstat(file));
  if (attrs == nullptr) {
    Status s = SftpStatus(session_, sftp_, prefix, "stat " + path);
    sftp_close(file);
    return s;
  }
  EntryType type = TypeOf(*attrs);
  if (type != EntryType::kFile) {
    sftp_close(file);
    return Status(type == EntryType::kDir ? Code::kIsDirectory : Code::kFailedPrecondition,
                  prefix + "opening " + path + ": not a regular file");
  }
  std::unique_ptr<FileReader> reader = std::make_unique<SftpReader>(
      session_, sftp_, file, attrs->size, &request_bytes_, prefix, path, algo);
  return reader;
}

}  // namespace hsmfs::hsmtape
