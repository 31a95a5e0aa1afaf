#include "tools/hsmtape/tape_conf.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "common/config.h"
#include "common/units.h"

namespace hsmfs::hsmtape {
namespace {

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

namespace {

Result<TapeConf> FromHsmfsConfig(const std::filesystem::path& path, const std::string& backend) {
  auto loaded = LoadConfig(path);
  // Whatever is wrong with the file (missing, unreadable, bad) is a usage error.
  if (!loaded.ok()) return InvalidArgumentError(loaded.status().message());
  const Config& config = *loaded;
  const BackendConfig* tape = nullptr;
  for (const auto& b : config.backends) {
    if (b.type != "tape" || (!backend.empty() && b.name != backend)) continue;
    if (tape) {
      return InvalidArgumentError(path.string() +
                                  ": several tape backends; name one with --backend");
    }
    tape = &b;
  }
  if (!tape) {
    return InvalidArgumentError(path.string() + ": no [[backend]] with type = \"tape\"" +
                                (backend.empty() ? "" : " named " + backend));
  }
  TapeConf conf;
  conf.file = path;
  conf.database_file = tape->tape_catalog;
  auto device = tape::ParseDeviceSpec(tape->library.empty() ? tape->drives.front() : tape->library);
  if (!device.ok()) return InvalidArgumentError(path.string() + ": " + device.status().message());
  conf.device = *device;
  return conf;
}

}  // namespace

Result<TapeConf> LoadTapeConf(const std::filesystem::path& path, const std::string& backend) {
  if (path.extension() == ".toml") return FromHsmfsConfig(path, backend);
  if (!backend.empty()) return InvalidArgumentError("--backend needs an hsmfs config (*.toml)");
  // Refuses a FIFO or device without blocking on it, and anything huge.
  auto text = ReadConfigFile(path, "tape.conf");
  if (!text.ok()) return InvalidArgumentError(text.status().message());
  std::istringstream in(*text);
  const std::string where = path.string() + ":";
  std::map<std::string, std::string> keys;
  std::map<std::string, int> lines;
  std::string section, line;
  for (int no = 1; std::getline(in, line); ++no) {
    const std::string at = where + std::to_string(no) + ": ";
    // A NUL would end a path early for the kernel (database_file = "x\0y" is "x").
    if (line.find('\0') != std::string::npos) return InvalidArgumentError(at + "a NUL byte");
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return InvalidArgumentError(at + "bad section header " + line);
      section = Trim(line.substr(1, line.size() - 2));
      if (section != "default") {
        return InvalidArgumentError(at + "unknown section [" + section +
                                    "] (tape.conf has only [default])");
      }
      continue;
    }
    if (section.empty()) return InvalidArgumentError(at + "keys must follow [default]");
    const auto eq = line.find_first_of("=:");
    if (eq == std::string::npos) return InvalidArgumentError(at + "expected KEY = VALUE");
    const std::string key = Trim(line.substr(0, eq));
    static const char* const kKnown[] = {
        "database_file", "tape_device",         "ssh_command", "ssh_host",   "ssh_user", "ssh_key",
        "ssh_port",      "accept_unknown_host", "known_hosts", "block_size", "capacity"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return InvalidArgumentError(at + "unknown key '" + key + "'");
    }
    // The last one winning silently would hide a mistake (two database_files).
    if (lines.count(key)) {
      return InvalidArgumentError(at + key + ": given twice (first on line " +
                                  std::to_string(lines[key]) + ")");
    }
    keys[key] = Trim(line.substr(eq + 1));
    lines[key] = no;
  }
  auto at = [&](const std::string& key) {
    return where + std::to_string(lines[key]) + ": " + key + ": ";
  };
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  TapeConf conf;
  conf.file = path;
  if (!keys.count("database_file")) {
    return InvalidArgumentError(where + " missing key 'database_file' in [default]");
  }
  if (keys["database_file"].empty()) {
    return InvalidArgumentError(at("database_file") + "must not be empty");
  }
  conf.database_file = keys["database_file"];
  if (conf.database_file.is_relative()) conf.database_file = base / conf.database_file;
  conf.database_file = conf.database_file.lexically_normal();
  if (struct stat st; ::stat(conf.database_file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    // SQLite on a device or a FIFO would write its pages into it.
    return InvalidArgumentError(at("database_file") + conf.database_file.string() +
                                " is not a regular file");
  }
  if (!keys.count("tape_device")) {
    return InvalidArgumentError(where + " missing key 'tape_device' in [default]");
  }
  auto device = tape::ParseDeviceSpec(keys["tape_device"], base);
  if (!device.ok()) return InvalidArgumentError(at("tape_device") + device.status().message());
  conf.device = *device;
  if (conf.device.kind == tape::DeviceSpec::Kind::kVirtualLibrary) {
    // The library's tape files are rewritten in place: the catalog apart from them.
    const std::string lib = conf.device.path.lexically_normal().string();
    const std::string db = conf.database_file.string();
    if (db == lib || db.rfind(lib + "/", 0) == 0 || (lib.back() == '/' && db.rfind(lib, 0) == 0)) {
      return InvalidArgumentError(at("database_file") + db + " lies inside the library " + lib +
                                  "; they must be kept apart");
    }
  }
  if (keys.count("block_size")) {
    auto bs = ParseSize(keys["block_size"]);
    if (!bs.ok() || *bs < 512 || *bs > 16 * 1024 * 1024 || *bs % 512 != 0) {
      return InvalidArgumentError(at("block_size") +
                                  "must be a multiple of 512 bytes between 512 and 16MiB");
    }
    conf.block_size = static_cast<uint32_t>(*bs);
  }
  if (keys.count("capacity")) {
    auto cap = ParseSize(keys["capacity"]);
    if (!cap.ok()) return InvalidArgumentError(at("capacity") + cap.status().message());
    conf.capacity = *cap;
  }
  std::map<std::string, std::string> ssh_keys;
  for (const auto& [k, v] : keys) {
    if (k.rfind("ssh_", 0) == 0) ssh_keys[k] = v;
  }
  auto ssh = SshTargetFromConfig(ssh_keys);
  if (!ssh.ok()) return InvalidArgumentError(where + " " + ssh.status().message());
  conf.ssh = *ssh;
  for (const char* key : {"known_hosts", "accept_unknown_host"}) {
    if (keys.count(key) && !conf.ssh) {
      return InvalidArgumentError(at(key) + "given without ssh_command or ssh_host");
    }
  }
  if (keys.count("known_hosts")) {
    std::filesystem::path kh = keys["known_hosts"];
    conf.ssh->known_hosts = (kh.is_relative() ? base / kh : kh).string();
  }
  if (keys.count("accept_unknown_host")) {
    const std::string& v = keys["accept_unknown_host"];
    if (v != "true" && v != "false" && v != "yes" && v != "no") {
      return InvalidArgumentError(at("accept_unknown_host") + "must be true or false");
    }
    conf.ssh->accept_unknown_host = v == "true" || v == "yes";
  }
  return conf;
}

}  // namespace hsmfs::hsmtape
