#pragma once

// Shared conventions of every hsmfs program (DESIGN.md section 2): --help and
// --version; exit 0 on success, 1 on a failed operation, 2 on bad usage or bad
// config, with one line on stderr naming what is at fault.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace hsmfs::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Parses argv into `app`. Returns an exit code when the program should stop now
// (after --help, --version or a usage error, already reported), else nullopt.
std::optional<int> Parse(CLI::App& app, int argc, char** argv);

// Prints "<program>: <message>" on stderr and returns `code`.
int Fail(std::string_view program, std::string_view message, int code);
// Exit code for a failed Status: 2 for bad input (kInvalidArgument), else 1.
int ExitCodeFor(const Status& s);

// The config file to use when none is given: $HSMFS_CONFIG, else
// /etc/hsmfs/hsmfs.toml.
std::string DefaultConfigPath();

// The path of a sibling program installed next to this one (for hints), or its
// bare name when none is there.
std::string SiblingProgram(std::string_view name);

}  // namespace hsmfs::cli
