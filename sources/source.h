#pragma once

// FileSource: where `hsmtape import` and `archive` find a target directory's
// files: this machine (LocalSource) or a remote host over ssh (SshSource).
//
// Contract (tests/unit/sources/source_test.cc runs the same checks over
// both implementations and requires identical results):
//  - Paths given to a source are absolute paths on that source's host. Entries
//    reported by Walk carry paths relative to the walked root, '/'-separated.
//  - Walk visits the tree depth first, each directory's entries sorted by name
//    (bytewise), a directory reported before its contents. Symlinks are
//    reported as kSymlink with their target text and never followed, so a link
//    to "/" cannot pull a whole file system into a tape unit; the root itself
//    is resolved if it is a link (the import list names the directory it
//    means). Sockets, fifos and devices are reported as kOther so the caller
//    can warn; they have no data to save.
//  - A directory that cannot be listed fails the whole walk: an import must not
//    silently miss files.
//  - A FileReader streams one file sequentially and hashes every byte it hands
//    out; Checksum() is the digest of exactly the bytes returned by Read.
//  - Errors: kNotFound (no such file or directory), kPermissionDenied (access
//    denied, or ssh authentication refused), kUnavailable (the host cannot be
//    reached or the connection dropped: retry later), kNotDirectory (a walked
//    root that is not a directory), kIsDirectory (opening a directory),
//    kFailedPrecondition (host key unknown or changed; opening a special file),
//    kCancelled (the CancelToken fired), kInternal (anything else). Messages
//    name the host (for remote sources) and the path.
//  - Not thread-safe: use a source, and the readers it opened, from one thread
//    at a time. Readers must be destroyed before their source.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cancel.h"
#include "common/checksum.h"
#include "common/result.h"

namespace hsmfs::hsmtape {

enum class EntryType { kFile, kDir, kSymlink, kOther };

struct SourceEntry {
  std::string path;  // relative to the walked root, '/'-separated, never empty
  EntryType type = EntryType::kFile;
  uint64_t size = 0;   // bytes for kFile; 0 for directories and others
  int64_t mtime = 0;   // seconds since the epoch (SFTP v3 carries no finer time)
  uint32_t mode = 0;   // permission bits only (07777)
  std::string target;  // kSymlink: the link's text, as readlink(2) gives it

  bool operator==(const SourceEntry&) const = default;
};

// Receives each entry as the walk finds it. Returning an error stops the walk
// with that error.
using WalkSink = std::function<Status(const SourceEntry& entry)>;

// Lists the directory `rel` ("" for the root) of a walk: its entries with
// paths relative to the root, in any order.
using ListDirFn = std::function<Result<std::vector<SourceEntry>>(const std::string& rel)>;

// The walk order of the contract (depth first, sorted by name, a directory
// before its contents), shared by the implementations so that they agree.
// Iterative: a deep tree costs heap, not stack.
inline Status WalkSorted(const ListDirFn& list, const WalkSink& sink, const CancelToken& cancel,
                         const std::string& what) {
  struct Frame {
    std::vector<SourceEntry> entries;
    size_t next = 0;
  };
  auto sorted_list = [&](const std::string& rel) -> Result<Frame> {
    if (cancel.cancelled()) return CancelledError("walk of " + what + " cancelled");
    HSMFS_ASSIGN_OR_RETURN(std::vector<SourceEntry> entries, list(rel));
    std::sort(entries.begin(), entries.end(),
              [](const SourceEntry& a, const SourceEntry& b) { return a.path < b.path; });
    return Frame{std::move(entries), 0};
  };
  std::vector<Frame> stack;
  HSMFS_ASSIGN_OR_RETURN(Frame top, sorted_list(""));
  stack.push_back(std::move(top));
  while (!stack.empty()) {
    Frame& frame = stack.back();
    if (frame.next == frame.entries.size()) {
      stack.pop_back();
      continue;
    }
    SourceEntry entry = std::move(frame.entries[frame.next++]);
    HSMFS_RETURN_IF_ERROR(sink(entry));
    if (entry.type == EntryType::kDir) {
      HSMFS_ASSIGN_OR_RETURN(Frame sub, sorted_list(entry.path));
      stack.push_back(std::move(sub));  // `frame` is not used past this point
    }
  }
  return Status::Ok();
}

// One open file, read from its start to its end.
class FileReader {
 public:
  virtual ~FileReader() = default;
  // Reads up to `len` bytes into `buf`; 0 means end of file. REQUIRES: len > 0.
  virtual Result<size_t> Read(void* buf, size_t len) = 0;
  // The file's size when it was opened (a tar header needs it before the data).
  virtual uint64_t size() const = 0;
  // "<algo>:<hex>" of the bytes read so far.
  // REQUIRES: Read returned 0 (the whole file was read), else kFailedPrecondition.
  virtual Result<std::string> Checksum() = 0;
};

class FileSource {
 public:
  virtual ~FileSource() = default;

  // For messages: "local" or "user@host:port".
  virtual std::string Describe() const = 0;

  // Walks the directory `root` (see the contract above).
  virtual Status Walk(const std::string& root, const WalkSink& sink, const CancelToken& cancel) = 0;

  // Opens the regular file `path` for streaming, hashing with `algo`.
  virtual Result<std::unique_ptr<FileReader>> Open(const std::string& path, ChecksumAlgo algo) = 0;

  // Reads `path` to its end and returns its "<algo>:<hex>" checksum, keeping
  // none of the data (for `hsmtape confirm` and import's checksum pass).
  Result<std::string> ChecksumFile(const std::string& path, ChecksumAlgo algo,
                                   const CancelToken& cancel) {
    HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<FileReader> reader, Open(path, algo));
    std::vector<char> buf(kChecksumChunk);
    while (true) {
      if (cancel.cancelled()) return CancelledError("checksum of " + path + " cancelled");
      HSMFS_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
      if (n == 0) break;
    }
    return reader->Checksum();
  }

 private:
  static constexpr size_t kChecksumChunk = 1 << 20;
};

}  // namespace hsmfs::hsmtape
