#pragma once

// The Backend operations, for call counting and fault injection in tests.

#include <string_view>

namespace hsmfs::backends {

enum class Op { kStat, kList, kStage, kRead, kPut, kRemove, kRename, kMakeDir };
inline constexpr int kOpCount = 8;

inline std::string_view OpName(Op op) {
  constexpr std::string_view kNames[] = {"stat", "list",   "stage",  "read",
                                         "put",  "remove", "rename", "mkdir"};
  return kNames[static_cast<int>(op)];
}

}  // namespace hsmfs::backends
