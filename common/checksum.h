#pragma once

// Streaming checksums, printed as "<algo>:<lowercase hex>" (e.g. "md5:d41d8c...").
// md5 is the default because users compare it with md5sum; sha256 and xxh3
// (XXH3 64-bit, for speed) are available. A Hasher is not thread-safe; use one
// per stream.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/cancel.h"
#include "common/result.h"

namespace hsmfs {

enum class ChecksumAlgo { kMd5, kSha256, kXxh3 };

std::string_view ChecksumAlgoName(ChecksumAlgo algo);
Result<ChecksumAlgo> ParseChecksumAlgo(std::string_view name);

class Hasher {
 public:
  virtual ~Hasher() = default;
  virtual void Update(const void* data, size_t len) = 0;
  // Returns "<algo>:<hex>". The hasher may not be used afterwards.
  virtual std::string Finish() = 0;

  static std::unique_ptr<Hasher> Create(ChecksumAlgo algo);
};

// Reads `path` to the end and returns its "<algo>:<hex>" checksum.
Result<std::string> ChecksumFile(const std::filesystem::path& path, ChecksumAlgo algo,
                                 const CancelToken& cancel = CancelToken::None());

// The algorithm named in a "<algo>:<hex>" string, if any.
Result<ChecksumAlgo> AlgoOfChecksum(std::string_view checksum);

}  // namespace hsmfs
