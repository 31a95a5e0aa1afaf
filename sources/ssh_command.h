#pragma once

// Where an SshSource connects, and how `tape.conf` says it.
//
// tapeop ran its remote commands through `ssh_command`, e.g.
//   ssh_command = ssh user@data-host -i /home/user/.ssh/unlocked_key
// hsmtape speaks SSH itself (libssh), so it does not run that command: it
// parses it into an SshTarget. Only options whose meaning hsmtape can honour
// are accepted; anything else is an error naming the token, never silently
// dropped, because a dropped option (a jump host, a proxy) would connect
// somewhere else than the admin intended. tape.conf may instead give the
// parts as separate keys: ssh_host, ssh_user, ssh_key, ssh_port.
//
// Errors are kInvalidArgument with one line naming the key or token at fault;
// the caller adds the file name. Pure functions apart from reading $HOME (for
// "~/") and the user name (for a missing user): thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace hsmfs::hsmtape {

struct SshTarget {
  std::string host;
  std::string user;      // never empty after parsing: defaults to the local user
  std::string key_file;  // private key; empty: ssh-agent, then ~/.ssh/id_*
  int port = 22;
  // OpenSSH format; empty means ~/.ssh/known_hosts (DefaultKnownHostsFile()).
  std::string known_hosts;
  // Unknown host keys are refused unless this is set (then they are appended to
  // known_hosts, like ssh's StrictHostKeyChecking=accept-new). A changed key
  // is refused whatever this says.
  bool accept_unknown_host = false;
  // Bounds connecting, key exchange and authentication (not later reads).
  std::chrono::seconds connect_timeout{15};
  // Bytes asked for per SFTP read request (32 are kept in flight). OpenSSH
  // answers up to 255 KiB, older servers 64 KiB; the reader shrinks its
  // requests to what the server gives. 0 means 128 KiB; at most 1 MiB.
  uint32_t read_request_bytes = 128 * 1024;

  // "user@host:port", for messages.
  std::string Describe() const;
};

// Parses `ssh [options] [user@]host`. Options: -i KEY, -p PORT, -l USER,
// -o KEY=VALUE with KEY one of StrictHostKeyChecking, UserKnownHostsFile,
// IdentityFile, Port, User, ConnectTimeout, BatchMode; -q, -T and -x are
// accepted and change nothing (they only concern the ssh program's terminal).
// Options may come before or after the destination; a remote command may not.
Result<SshTarget> ParseSshCommand(std::string_view command);

// The target named by a tape.conf [default] section: its ssh_command, or its
// ssh_host (required), ssh_user, ssh_key and ssh_port keys. std::nullopt when
// none of them is present (files are local). Giving ssh_command together with
// any ssh_* key is an error, since it would be unclear which one wins.
Result<std::optional<SshTarget>> SshTargetFromConfig(
    const std::map<std::string, std::string>& section);

// $HOME/.ssh/known_hosts (falling back to the passwd entry's home).
std::string DefaultKnownHostsFile();

}  // namespace hsmfs::hsmtape
