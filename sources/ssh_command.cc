#include "sources/ssh_command.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <utility>
#include <vector>

namespace hsmfs::hsmtape {
namespace {

Status Bad(std::string message) { return InvalidArgumentError(std::move(message)); }

std::string HomeDir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  if (const struct passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_dir;
  return "/";
}

std::string LocalUser() {
  if (const struct passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_name;
  if (const char* user = std::getenv("USER"); user != nullptr) return user;
  return "";
}

std::string ExpandHome(const std::string& path) {
  if (path == "~") return HomeDir();
  if (path.rfind("~/", 0) == 0) return HomeDir() + path.substr(1);
  return path;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits like a POSIX shell does for the simple cases an ssh_command holds:
// blanks separate words; single quotes, double quotes and backslashes protect
// blanks (so a key path may contain spaces).
Result<std::vector<std::string>> SplitWords(std::string_view s, std::string_view what) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      size_t end = s.find(c, i + 1);
      if (end == std::string_view::npos) {
        return Bad(std::string(what) + ": unterminated " + (c == '"' ? "double" : "single") +
                   " quote");
      }
      cur.append(s.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur.push_back(s[++i]);
      in_word = true;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

Result<int> ParsePort(std::string_view text, std::string_view what) {
  int port = 0;
  bool digits = !text.empty() && text.size() <= 5;
  for (char c : text) {
    if (c < '0' || c > '9') digits = false;
  }
  if (digits) port = std::stoi(std::string(text));
  if (!digits || port < 1 || port > 65535) {
    return Bad(std::string(what) + ": '" + std::string(text) + "' is not a port (1-65535)");
  }
  return port;
}

Status SetUser(SshTarget& t, const std::string& user, std::string_view what) {
  if (user.empty()) return Bad(std::string(what) + ": empty user name");
  if (!t.user.empty() && t.user != user) {
    return Bad(std::string(what) + ": user given twice ('" + t.user + "' and '" + user + "')");
  }
  t.user = user;
  return Status::Ok();
}

// One "-o Key=Value" (or "Key Value") option.
Status ApplyOption(SshTarget& t, const std::string& opt) {
  size_t sep = opt.find_first_of("= ");
  if (sep == std::string::npos) {
    return Bad("ssh_command: option '-o " + opt + "' has no value (want -o Key=Value)");
  }
  std::string key = Lower(opt.substr(0, sep));
  size_t value_start = opt.find_first_not_of("= ", sep);
  if (value_start == std::string::npos) {
    return Bad("ssh_command: option '-o " + opt + "' has no value (want -o Key=Value)");
  }
  std::string value = opt.substr(value_start);
  std::string lvalue = Lower(value);
  if (key == "stricthostkeychecking") {
    if (lvalue == "yes" || lvalue == "ask") {
      t.accept_unknown_host = false;
    } else if (lvalue == "no" || lvalue == "off" || lvalue == "accept-new") {
      // Even "no" only accepts unknown keys here: a changed key is never trusted.
      t.accept_unknown_host = true;
    } else {
      return Bad("ssh_command: unsupported value in '-o " + opt +
                 "' (want yes, ask, accept-new or no)");
    }
  } else if (key == "userknownhostsfile") {
    t.known_hosts = ExpandHome(value);
  } else if (key == "identityfile") {
    t.key_file = ExpandHome(value);
  } else if (key == "port") {
    HSMFS_ASSIGN_OR_RETURN(t.port, ParsePort(value, "ssh_command: -o " + opt));
  } else if (key == "user") {
    return SetUser(t, value, "ssh_command");
  } else if (key == "connecttimeout") {
    bool digits = !value.empty() && value.size() <= 6;
    for (char c : value) {
      if (c < '0' || c > '9') digits = false;
    }
    if (!digits || std::stoi(value) == 0) {
      return Bad("ssh_command: '-o " + opt + "' wants a number of seconds");
    }
    t.connect_timeout = std::chrono::seconds(std::stoi(value));
  } else if (key == "batchmode") {
    // hsmtape never prompts, which is what BatchMode=yes asks for.
  } else {
    return Bad("ssh_command: unsupported option '-o " + opt +
               "' (hsmtape understands StrictHostKeyChecking, UserKnownHostsFile, "
               "IdentityFile, Port, User, ConnectTimeout, BatchMode)");
  }
  return Status::Ok();
}

Status SetDestination(SshTarget& t, const std::string& dest) {
  if (!t.host.empty()) {
    return Bad("ssh_command: unexpected '" + dest + "' after the host '" + t.host +
               "' (hsmtape runs no remote command)");
  }
  std::string host = dest;
  if (size_t at = dest.rfind('@'); at != std::string::npos) {
    HSMFS_RETURN_IF_ERROR(SetUser(t, dest.substr(0, at), "ssh_command"));
    host = dest.substr(at + 1);
  }
  if (host.empty()) return Bad("ssh_command: no host in '" + dest + "'");
  t.host = host;
  return Status::Ok();
}

}  // namespace

std::string SshTarget::Describe() const { return user + "@" + host + ":" + std::to_string(port); }

Result<SshTarget> ParseSshCommand(std::string_view command) {
  HSMFS_ASSIGN_OR_RETURN(std::vector<std::string> words, SplitWords(command, "ssh_command"));
  if (words.empty()) return Bad("ssh_command: empty");
  const std::string& prog = words[0];
  if (prog != "ssh" && !(prog.size() > 4 && prog.compare(prog.size() - 4, 4, "/ssh") == 0)) {
    return Bad("ssh_command: must start with 'ssh', not '" + prog + "'");
  }
  SshTarget t;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.size() < 2 || w[0] != '-') {
      HSMFS_RETURN_IF_ERROR(SetDestination(t, w));
      continue;
    }
    char flag = w[1];
    if (flag == 'i' || flag == 'p' || flag == 'l' || flag == 'o') {
      std::string arg;
      if (w.size() > 2) {
        arg = w.substr(2);
      } else if (i + 1 < words.size()) {
        arg = words[++i];
      } else {
        return Bad("ssh_command: option '" + w + "' needs a value");
      }
      if (flag == 'i') {
        t.key_file = ExpandHome(arg);
      } else if (flag == 'p') {
        HSMFS_ASSIGN_OR_RETURN(t.port, ParsePort(arg, "ssh_command: -p"));
      } else if (flag == 'l') {
        HSMFS_RETURN_IF_ERROR(SetUser(t, arg, "ssh_command"));
      } else {
        HSMFS_RETURN_IF_ERROR(ApplyOption(t, arg));
      }
    } else if (w == "-q" || w == "-T" || w == "-x") {
      // Quiet, no tty, no X11: meaningless without the ssh program.
    } else {
      return Bad("ssh_command: unsupported option '" + w +
                 "' (hsmtape understands -i, -p, -l, -o, -q, -T, -x)");
    }
  }
  if (t.host.empty()) return Bad("ssh_command: no host (want 'ssh user@host -i KEY')");
  if (t.user.empty()) t.user = LocalUser();
  return t;
}

Result<std::optional<SshTarget>> SshTargetFromConfig(
    const std::map<std::string, std::string>& section) {
  static constexpr std::array<std::string_view, 4> kKeys = {"ssh_host", "ssh_user", "ssh_key",
                                                            "ssh_port"};
  auto get = [&](std::string_view key) -> const std::string* {
    auto it = section.find(std::string(key));
    return it == section.end() ? nullptr : &it->second;
  };
  const std::string* command = get("ssh_command");
  std::string first_key;
  for (std::string_view key : kKeys) {
    if (get(key) != nullptr && first_key.empty()) first_key = key;
  }
  if (command != nullptr && !first_key.empty()) {
    return Bad("ssh_command and " + first_key + " are both set; give one or the other");
  }
  if (command != nullptr) {
    HSMFS_ASSIGN_OR_RETURN(SshTarget t, ParseSshCommand(*command));
    return std::optional<SshTarget>(std::move(t));
  }
  if (first_key.empty()) return std::optional<SshTarget>();
  SshTarget t;
  const std::string* host = get("ssh_host");
  if (host == nullptr || host->empty())
    return Bad("ssh_host: missing (needed by " + first_key + ")");
  t.host = *host;
  if (const std::string* user = get("ssh_user")) {
    if (user->empty()) return Bad("ssh_user: empty");
    t.user = *user;
  } else {
    t.user = LocalUser();
  }
  if (const std::string* key = get("ssh_key")) {
    if (key->empty()) return Bad("ssh_key: empty");
    t.key_file = ExpandHome(*key);
  }
  if (const std::string* port = get("ssh_port")) {
    HSMFS_ASSIGN_OR_RETURN(t.port, ParsePort(*port, "ssh_port"));
  }
  return std::optional<SshTarget>(std::move(t));
}

std::string DefaultKnownHostsFile() { return HomeDir() + "/.ssh/known_hosts"; }

}  // namespace hsmfs::hsmtape
