#pragma once

// LocalSource: a FileSource over this machine's file system, for targets that
// `hsmtape import` finds locally (no ssh_command configured). It follows the
// FileSource contract in source.h; errors come from errno via ErrnoToStatus and
// name the path. Stateless apart from open readers: cheap to create.

#include <memory>
#include <string>

#include "sources/source.h"

namespace hsmfs::hsmtape {

class LocalSource final : public FileSource {
 public:
  LocalSource() = default;
  LocalSource(const LocalSource&) = delete;
  LocalSource& operator=(const LocalSource&) = delete;

  std::string Describe() const override { return "local"; }
  Status Walk(const std::string& root, const WalkSink& sink, const CancelToken& cancel) override;
  Result<std::unique_ptr<FileReader>> Open(const std::string& path, ChecksumAlgo algo) override;
};

}  // namespace hsmfs::hsmtape
