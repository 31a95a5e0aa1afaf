#pragma once

// SshSource: a FileSource on a remote host, reached with libssh, for
// `hsmtape import` / `archive` / `confirm` of targets named with ssh_command.
//
// Connect() checks the server's host key against known_hosts before any
// credential is sent: an unknown host is refused (kFailedPrecondition, naming
// the host, its key fingerprint and how to accept it) unless
// SshTarget::accept_unknown_host is set, in which case the key is appended to
// known_hosts; a changed key is always refused. Authentication is public-key
// only (the key file, or ssh-agent and ~/.ssh/id_* when none is given), as
// tapeop required an "unlocked key".
//
// Walk and Open use SFTP (docs/SSH.md says why, not an exec channel): no
// remote tool is needed beyond the server's sftp subsystem. Reads are
// pipelined: many requests in flight, so throughput is not bound by the round
// trip time.
//
// Errors: kUnavailable (connection refused, timed out or lost: retry later),
// kPermissionDenied (authentication refused, or a remote file not readable),
// kNotFound (remote path, or the key file), kFailedPrecondition (host key
// unknown or changed, unusable key file, no sftp on the server), plus the
// FileSource contract. Every message starts with "ssh user@host:port:".
// Not thread-safe (one libssh session): see source.h.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sources/source.h"
#include "sources/ssh_command.h"

struct ssh_session_struct;
struct sftp_session_struct;

namespace hsmfs::hsmtape {

class SshSource final : public FileSource {
 public:
  // Connects, verifies the host key, authenticates and starts SFTP.
  static Result<std::unique_ptr<SshSource>> Connect(const SshTarget& target);

  ~SshSource() override;
  SshSource(const SshSource&) = delete;
  SshSource& operator=(const SshSource&) = delete;

  std::string Describe() const override { return target_.Describe(); }
  Status Walk(const std::string& root, const WalkSink& sink, const CancelToken& cancel) override;
  Result<std::unique_ptr<FileReader>> Open(const std::string& path, ChecksumAlgo algo) override;

  // The server's host key, "ssh-ed25519 SHA256:...", for messages.
  const std::string& host_key() const { return host_key_; }
  // True when Connect appended the host key to known_hosts (accept_unknown_host).
  bool host_key_added() const { return host_key_added_; }

 private:
  SshSource(SshTarget target, ssh_session_struct* session, sftp_session_struct* sftp,
            std::string host_key, bool host_key_added);

  // One directory of a walk (see WalkSorted).
  Result<std::vector<SourceEntry>> ListDir(const std::string& root, const std::string& rel);

  SshTarget target_;
  ssh_session_struct* session_;  // owned
  sftp_session_struct* sftp_;    // owned; freed before session_
  std::string host_key_;
  bool host_key_added_;
  // Bytes per SFTP read request; lowered by a reader that finds the server
  // answering less, so that later files start with the right size.
  uint32_t request_bytes_;
};

}  // namespace hsmfs::hsmtape
