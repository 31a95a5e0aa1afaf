#pragma once

// HpssBackend: an HPSS directory (`root`) reached through the site's `hsi` and
// `htar` clients, run as subprocesses (common/subprocess: argv, no shell,
// timeouts, stderr captured). docs/HPSS.md describes the commands it sends.
//
//  - hsi: one long-lived session per calling thread (HsiSession), so that a
//    stage worker sends all its recalls through one sign-in, in the order the
//    stager hands them out (tape volume, then position: List fills
//    ObjectInfo.volume/position from `hsi ls -P`). Sessions idle longer than
//    `session_idle` are closed.
//  - htar archives: a file X.tar with its index X.tar.idx is shown as a
//    read-only directory of its members (from `htar -t`); X.tar.idx is hidden.
//    Reading a member extracts only that member (`htar -xvf X.tar member`).
//    Put/Remove/Rename/MakeDir inside an archive fail with kReadOnly.
//  - Bundled writes (optional, hpss_bundles.cc): a written file that an HPSSPy
//    rule maps to an htar archive waits in that archive's pending bundle; the
//    bundle is written with one htar run when it reaches bundle_max_size or
//    nothing joined it for bundle_quiet, read back whole, and recorded in the
//    BundleIndex, so the file stays at the path it was written to.
//  - Symlinks: listed from `hsi ls -D` ("name -> target"), never followed;
//    Put of one runs `hsi ln -s -f TARGET PATH`, or, where a bundle rule
//    matches, adds a tar symlink member to the bundle (target in the index).
//  - Errors: a "***" line or a non-zero exit is a failure, never success.
//    HPSS_ENOENT -> kNotFound, HPSS_EACCES -> kPermissionDenied, timeouts,
//    lost sessions and I/O errors -> kUnavailable (the engine retries), a
//    missing hsi/htar program -> kFailedPrecondition.
// Thread-safe.

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/hpss/bundle_index.h"
#include "backends/hpss/hpsspy/scan_config.h"
#include "backends/hpss/hsi_output_parser.h"
#include "backends/hpss/hsi_session.h"

namespace hsmfs::backends::hpss {

struct HpssOptions {
  std::string root;  // absolute HPSS directory shown as the backend
  std::filesystem::path hsi = "hsi";
  std::filesystem::path htar = "htar";
  std::vector<std::string> hsi_args;  // extra options before the commands (e.g. "-s", "site")
  Duration command_timeout = std::chrono::hours(1);
  Duration session_idle = std::chrono::minutes(5);
  bool checksum = false;  // put/get with "-c on" (HPSS-side md5)
  Duration archive_list_ttl = std::chrono::minutes(1);

  // Bundled writes (docs/HPSS.md "Bundled writes"). Without rules every write
  // is an hsi put. The rules' section directory (hpss_root/section) must lie
  // below `root`.
  std::shared_ptr<const hpsspy::ScanConfig> bundle_rules;
  uint64_t bundle_max_size = uint64_t{8} << 30;
  Duration bundle_quiet = std::chrono::seconds(30);
  // The archive workers that can wait in Put at once: when that many wait,
  // no other file can join, so the bundles are written without waiting for
  // bundle_quiet. 0: unknown.
  int bundle_workers = 0;
  std::shared_ptr<BundleStore> bundle_store;  // the index's store (the engine's); null: none
  std::filesystem::path bundle_spool;         // where bundles are assembled (hard links)
};

class HpssBackend final : public Backend {
 public:
  HpssBackend(HpssOptions options, Clock& clock);
  ~HpssBackend() override;
  HpssBackend(const HpssBackend&) = delete;
  HpssBackend& operator=(const HpssBackend&) = delete;

  Result<ObjectInfo> Stat(const ObjectPath& path) override;
  Status List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) override;
  Status Stage(const ObjectPath& path, Deadline deadline) override;
  // Bundled files of one archive recalled together are extracted by one
  // htar run in the background; their Reads then take the extracted copies.
  Status StageMany(const std::vector<ObjectPath>& paths, Deadline deadline) override;
  Status Read(const ObjectPath& path, const std::filesystem::path& dest,
              const ReadOptions& options) override;
  Result<ObjectInfo> Put(const std::filesystem::path& src, const ObjectPath& path,
                         const PutOptions& options) override;
  Status Remove(const ObjectPath& path) override;
  Status Rename(const ObjectPath& from, const ObjectPath& to) override;
  Status MakeDir(const ObjectPath& path, uint32_t mode) override;
  // The mode only (hsi chmod); directory times stay in the catalog.
  Status SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) override;

  // Total hsi processes started (sign-ins), for tests and status displays.
  int SessionStarts() const;

  // Administration beyond the Backend interface, for hsmscan -p
  // (tools/hsmscan, HPSSPy's process_missing) and tools like it.

  // `mkdir -p -m MODE` (as HPSSPy's makedirs); "" is the root itself.
  Status MakeDirs(const ObjectPath& path, uint32_t mode);
  // Runs `htar -cvf ARCHIVE [extra_args...] [-L list_file] [members...]` in
  // `cwd`, then lists the new archive (`htar -t`) and returns its members
  // (htar's consistency file left out). A run that does not exit 0 with
  // "HTAR SUCCESSFUL" is a failure; comparing the members with what was
  // meant to go in is the caller's job.
  struct HtarCreate {
    std::filesystem::path cwd;
    std::vector<std::string> extra_args;  // e.g. {"-H", "crc:verify=all"}
    std::filesystem::path list_file;      // -L: one member per line (empty: none)
    std::vector<std::string> members;
  };
  Result<std::vector<HtarMember>> CreateArchive(const ObjectPath& archive, const HtarCreate& spec);
  // Every entry below `dir` from one `hsi ls -R -D` (HPSSPy's format), in
  // this thread's session. LsEntry.dir is the absolute directory.
  Status ListTree(const ObjectPath& dir, const std::function<void(const LsEntry&)>& sink);

 private:
  struct Slot {
    std::unique_ptr<HsiSession> session;
    TimePoint last_used;
    bool busy = false;
  };
  class Lease;
  // Gives a local file the mode and (if non-zero) mtime a Put is to store,
  // since `hsi put -p` and htar take them from the file; gives the file its
  // own back when destroyed.
  class LocalAttrs {
   public:
    LocalAttrs(std::filesystem::path file, int64_t mtime_ns, uint32_t mode);
    ~LocalAttrs();
    LocalAttrs(const LocalAttrs&) = delete;
    LocalAttrs& operator=(const LocalAttrs&) = delete;

   private:
    std::filesystem::path file_;
    struct timespec mtime_ {};
    struct timespec atime_ {};
    uint32_t mode_ = 0;
    bool restore_ = false;
  };
  // Where a path lies relative to htar archives.
  struct Split {
    std::string archive;   // ObjectPath of X.tar; empty when not inside an archive
    std::string member;    // path inside the archive ("" = the archive itself)
    bool bundled = false;  // a file written into a bundle (found in the index)
  };
  struct ArchiveListing {
    std::vector<HtarMember> members;
    TimePoint fetched;
  };
  // Bundled writes (hpss_bundles.cc).
  struct PendingPut;
  using PendingList = std::vector<std::shared_ptr<PendingPut>>;
  struct OpenBundle {
    PendingList files;
    uint64_t bytes = 0;
    TimePoint last_join;
  };
  // One background `htar -x` of several bundled members (StageMany).
  struct Prefetch {
    std::string archive;                                       // absolute HPSS path
    std::vector<std::pair<std::string, std::string>> members;  // written path (full), member
    std::filesystem::path dir;                                 // where they were extracted
    size_t left = 0;                                           // not yet taken by a Read
    bool done = false;
    Status status;
    TimePoint finished;
  };
  struct BundleTarget {
    std::string archive;  // absolute HPSS path of the archive the rules name
    std::string member;   // the file's name in it (relative to the archive's directory)
  };

  std::string Full(const ObjectPath& path) const;
  // Runs one hsi command in this thread's session; returns its output lines or
  // the failure it reports.
  Result<std::vector<std::string>> Hsi(const std::string& command, std::string_view what,
                                       const CancelToken& cancel = CancelToken::None());
  Result<bool> IsArchive(const ObjectPath& path);
  Result<Split> SplitArchive(const ObjectPath& path);
  // Where `path`'s data is: a bundled file's member (the index), else as
  // SplitArchive says.
  Result<Split> Locate(const ObjectPath& path);
  Result<std::vector<HtarMember>> ArchiveMembers(const ObjectPath& archive);
  Result<ObjectInfo> StatPlain(const ObjectPath& path);
  // Put of a symlink (options.symlink_target): `hsi ln -s -f TARGET PATH`.
  Result<ObjectInfo> PutSymlink(const ObjectPath& path, const PutOptions& options);
  Result<ObjectInfo> StatMember(const Split& split);
  Status ListArchive(const Split& split, const ListSink& sink);
  Status ReadMember(const Split& split, const std::filesystem::path& dest,
                    const ReadOptions& options);
  // `htar -xvf ARCHIVE [members...]` in `cwd` (no members: all of them).
  Result<std::vector<HtarExtracted>> ExtractMembers(const ObjectPath& archive,
                                                    const std::vector<std::string>& members,
                                                    const std::filesystem::path& cwd,
                                                    const CancelToken& cancel);
  void FillTape(ObjectInfo& info, const TapeEntry& tape) const;
  // `full` as an ObjectPath of this backend; kNotFound when outside `root`.
  Result<ObjectPath> Rel(const std::string& full) const;

  std::optional<BundleTarget> BundleFor(const ObjectPath& path, uint64_t size) const;
  Result<ObjectInfo> PutBundled(const std::filesystem::path& src, uint64_t size,
                                const ObjectPath& path, const BundleTarget& target,
                                const PutOptions& options);
  void WriterLoop();
  void WriteBundle(const std::string& archive, const PendingList& files);
  Status WriteBundleTo(const std::string& archive, const PendingList& files);
  Result<std::string> FreeArchiveName(const std::string& archive);
  Result<ObjectInfo> StatBundled(const ObjectPath& path, const BundledFile& f) const;
  void StopWriter();
  void PrefetchLoop();
  void RunPrefetch(Prefetch& pf);
  // Moves the prefetched copy of `full` (member `member`) to `dest`, waiting
  // for its htar run; nullopt when none was prefetched or it failed (the
  // caller extracts the member itself).
  std::optional<Status> TakePrefetched(const std::string& full, const std::string& member,
                                       const std::filesystem::path& dest,
                                       const CancelToken& cancel);
  void DropPrefetchedLocked(const std::shared_ptr<Prefetch>& pf);

  const HpssOptions options_;
  Clock& clock_;

  mutable std::mutex mu_;
  std::map<std::thread::id, Slot> sessions_;        // GUARDED_BY(mu_)
  int closed_starts_ = 0;                           // GUARDED_BY(mu_)
  std::set<std::string> archives_;                  // GUARDED_BY(mu_): known htar archives
  std::map<std::string, ArchiveListing> listings_;  // GUARDED_BY(mu_)

  BundleIndex index_;
  std::mutex bmu_;
  std::condition_variable bcv_;
  std::map<std::string, OpenBundle> open_;                // GUARDED_BY(bmu_): by archive
  std::deque<std::pair<std::string, PendingList>> full_;  // GUARDED_BY(bmu_): ready to write
  bool stop_ = false;                                     // GUARDED_BY(bmu_)
  std::thread writer_;                                    // started by the first bundled Put

  std::mutex pmu_;
  std::condition_variable pcv_;
  std::map<std::string, std::shared_ptr<Prefetch>> prefetched_;  // GUARDED_BY(pmu_): by path
  std::deque<std::shared_ptr<Prefetch>> prefetch_queue_;         // GUARDED_BY(pmu_)
  bool prefetch_stop_ = false;                                   // GUARDED_BY(pmu_)
  CancelToken prefetch_cancel_;
  std::thread prefetcher_;  // started by the first StageMany with work
};

}  // namespace hsmfs::backends::hpss
