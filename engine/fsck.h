#pragma once

// Fsck: checks that the catalog, the cache and the backends agree (hsmctl
// fsck). Read-only unless `repair` is set: it reports problems and changes
// nothing. With `repair` it also fixes what it can fix without losing data
// (see FsckOptions::repair) and says so in each problem's text. One repair
// is always made: temporaries that killed archive copies left in a backend
// root, proven abandoned (hsmfs's own, never user data), are removed and
// listed in FsckReport::repaired.
//
// Checked for every file: a cached copy exists where the catalog says so,
// with the catalog's size once the file is closed; a file the backend should
// hold is there with the catalog's size (and, with `checksums`, the catalog's
// checksum, read back); states agree with the jobs (staging has an active
// recall, queued/archiving an active archive job); and no cache file belongs
// to no entry. Also: entries whose names can never be shown or archived
// (empty, ".", "..", with '/': made by hsmctl put of "dir/" before names were
// checked), files a killed hsmctl put left half-copied, and the cache's
// lost+found (files Recover could not prove superseded).

#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace hsmfs::fs {

struct FsckOptions {
  bool checksums = false;  // also read back archived files and compare checksums
  // Repair: an entry with a bad name is renamed "unnamed-<id>" (its data, and
  // what is below it, archived again under the new name) or, when nothing
  // below it holds unarchived data, dropped from the catalog; a half-copied
  // file of a dead hsmctl put is removed (or, if the backend holds an older
  // version, goes back to that version).
  bool repair = false;
  std::function<void(int64_t entries)> progress;
};

struct FsckProblem {
  std::string path;  // "vault/dir/file", or the cache file
  std::string what;
};

struct FsckReport {
  int64_t entries = 0;
  int64_t cached = 0;
  int64_t on_backend = 0;
  std::vector<FsckProblem> problems;
  // What fsck fixed by itself (temporaries of killed archive copies): shown,
  // but not problems any more.
  std::vector<FsckProblem> repaired;
};

Result<FsckReport> Fsck(Engine& engine, const FsckOptions& options);

// Drops what an unfinished hsmctl put left of `e` (marked with
// catalog::IncompletePutError): the entry and its cached copy, or, when the
// backend holds an older version, only the copy (the entry goes back to
// `offline` and its directory is listed again). REQUIRES: no process writes it.
Status DiscardIncompletePut(Engine& engine, const catalog::Entry& e);
// Whether the hsmctl put that marked `e` incomplete has died (or `e` is not
// marked at all: false).
bool IncompletePutAbandoned(const catalog::Entry& e);

}  // namespace hsmfs::fs
