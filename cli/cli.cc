#include "cli/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace hsmfs::cli {

std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": " << e.what() << " (see " << app.get_name() << " --help)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

int Fail(std::string_view program, std::string_view message, int code) {
  std::cerr << program << ": " << message << "\n";
  return code;
}

int ExitCodeFor(const Status& s) {
  return s.code() == Code::kInvalidArgument ? kExitUsage : kExitFailed;
}

std::string DefaultConfigPath() {
  if (const char* env = std::getenv("HSMFS_CONFIG"); env && *env) return env;
  return "/etc/hsmfs/hsmfs.toml";
}

std::string SiblingProgram(std::string_view name) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path sibling = self.parent_path() / name;
    if (::access(sibling.c_str(), X_OK) == 0) return sibling.string();
  }
  return std::string(name);
}

}  // namespace hsmfs::cli
