#pragma once

// The hsmfs configuration (TOML, see shared DESIGN.md section 3 and
// docs/CONFIG.md). Loading is strict: an unknown key, a wrong type or a bad
// value is an error whose message names the file, the line and the key, so that
// programs can print it as one line and exit 2. Relative paths are resolved
// against the directory of the config file. Plain data; no thread-safety needed.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace hsmfs {

struct CatalogConfig {
  std::filesystem::path path;  // SQLite file
};

struct CacheConfig {
  std::filesystem::path dir;
  uint64_t size = uint64_t{50} << 30;
  Duration stage_timeout = std::chrono::hours(1);
  double high_watermark = 0.9;  // eviction starts above this fraction of size
  double low_watermark = 0.8;   // and stops below this one
  // A writer that needs room in a cache full of unarchived data waits this
  // long for archiving to free some, then gets ENOSPC.
  Duration write_wait = std::chrono::minutes(1);
};

// The archive engine.
struct ArchiveConfig {
  enum class Verify { kReadback, kBackend, kNone };
  int workers = 2;                            // concurrent archives per backend
  Duration settle = std::chrono::seconds(5);  // quiet time after the last close
  std::string checksum = "md5";               // md5 | sha256 | xxh3
  Verify verify = Verify::kReadback;
  int max_attempts = 5;
  Duration retry_delay = std::chrono::seconds(2);  // first back-off; doubles per attempt
  // A backend that does not answer is retried past max_attempts until the
  // back-off adds up to this; then `failed`, retried when it answers again.
  Duration retry_horizon = std::chrono::hours(6);
};
std::string_view VerifyName(ArchiveConfig::Verify v);

// The recall engine.
struct StageConfig {
  int workers = 4;  // concurrent recalls per backend
  Duration coalesce = std::chrono::milliseconds(200);
  int max_attempts = 5;
  Duration retry_delay = std::chrono::seconds(2);  // first back-off; doubles per attempt
  // Processes (by name, as in /proc/PID/comm) whose reads never trigger a
  // recall: file indexers and scanners that would otherwise recall everything.
  std::vector<std::string> deny_recall_from = DefaultDenyRecallFrom();

  static std::vector<std::string> DefaultDenyRecallFrom();
};

// How the mount presents the catalog to the kernel and keeps it fresh.
struct MountConfig {
  Duration entry_timeout = std::chrono::seconds(30);  // kernel dentry cache
  Duration attr_timeout = std::chrono::seconds(30);   // kernel attribute cache
  Duration list_timeout = std::chrono::seconds(10);   // first listing waits at most this
  Duration list_ttl = std::chrono::minutes(10);       // older listings refresh in background
  int sync_workers = 4;                               // threads that list backends
};

struct LogConfig {
  std::string level = "info";
  std::filesystem::path file;  // log of the daemonised mount
};

struct BackendConfig {
  std::string name;                   // directory name under the mount root
  std::string type;                   // posix | tape | hpss | irods
  std::filesystem::path root;         // posix: the archive tier directory; hpss: the HPSS directory
  std::vector<std::string> writable;  // backend-relative directories that accept writes
  Duration stage_delay{0};            // posix: simulated recall latency per file
  bool allow_delete = false;          // unlink of archived files
  Duration list_ttl{-1};              // overrides [mount] list_ttl when >= 0
  int stage_workers = 0;              // overrides [stage] workers when > 0
  int archive_workers = 0;            // overrides [archive] workers when > 0
  // Owner and permission bits of what the backend lists without its own
  // (hpss, irods, tape: every entry; posix: only its top directory): -1 is
  // the default, the mount's user and group, and the backend's own bits
  // (docs/CONFIG.md, docs/SEMANTICS.md "Permissions").
  int64_t uid = -1;
  int64_t gid = -1;
  int file_mode = -1;
  int dir_mode = -1;

  // hpss only (docs/HPSS.md).
  std::filesystem::path hsi;          // the hsi client; default $HPSS_DIR/bin/hsi, else $PATH
  std::filesystem::path htar;         // the htar client; found the same way
  std::vector<std::string> hsi_args;  // extra hsi options, e.g. ["-s", "archive"]
  Duration command_timeout = std::chrono::hours(1);  // one hsi command or htar run
  Duration session_idle = std::chrono::minutes(5);   // idle hsi sessions are closed after this
  bool checksum = false;                             // put/get with "-c on" (HPSS-side md5)
  // Bundling of writes into htar archives by HPSSPy rules (docs/HPSS.md
  // "Bundled writes"): off while bundle_rules is empty.
  std::filesystem::path bundle_rules;                // an HPSSPy JSON config (missing_from_hpss's)
  std::string bundle_section;                        // its section describing a writable directory
  uint64_t bundle_max_size = uint64_t{8} << 30;      // a bundle is written when it reaches this
  Duration bundle_quiet = std::chrono::seconds(30);  // ... or nothing joined it for this
  // Not keys: where the index of bundled files lives (the [catalog] file), and
  // where bundles are assembled (the cache's tmp directory, so hard links work).
  std::filesystem::path bundle_catalog;
  std::filesystem::path bundle_spool;

  // tape only (docs/CONFIG.md, docs/TAPE.md). Exactly one of library/drives.
  std::string library;                 // "vtl:DIR[#N]", DIR resolved against the config file
  std::vector<std::string> drives;     // st nodes, e.g. ["/dev/nst0", "/dev/nst1"]
  std::filesystem::path tape_catalog;  // the tape tables' SQLite file; default [catalog] path
  std::string strip_prefix = "/";      // removed from source paths to place units in the tree
  // Writes: files archived together form one unit (tar between file marks),
  // closed when it reaches unit_size or nothing joined it for unit_quiet.
  uint64_t unit_size = uint64_t{8} << 30;
  Duration unit_quiet = std::chrono::seconds(30);

  // irods only (docs/IRODS.md). The collection shown is `root`.
  std::string host;
  int port = 1247;
  std::string zone;
  std::string user;
  std::string password;                 // from the config itself; never logged or rendered
  std::filesystem::path password_file;  // an .irodsA-style scrambled file (iinit's)
  std::string auth = "auto";            // auto | legacy | plugin
  std::string tls = "dont_care";        // none | refuse | dont_care | require
  std::filesystem::path ca_file;        // trust anchors for TLS; empty = the system's
  bool verify_server = true;            // check the server's certificate and name
  int connections = 8;                  // pool size
  Duration connect_timeout = std::chrono::seconds(10);
  Duration io_timeout = std::chrono::seconds(60);  // one send or receive
  // DMF states: read from an AVU ("avu", dmf_attr), from a rule that returns
  // "STATE path" lines ("rule", dmf_state_rule), or not at all ("none").
  std::string dmf_lookup = "avu";
  std::string dmf_attr = "SURF-DMF";
  std::string dmf_state_rule = "msiGetDmfObject";
  std::string stage_rule = "msiDmfStage";                 // called with many paths; "" = none
  std::vector<int> offline_codes = {-1089000, -1101000};  // an open refused while on tape
  Duration stage_poll = std::chrono::seconds(1);          // state polling while staging
};

// The default hsi/htar: $HPSS_DIR/bin/NAME when $HPSS_DIR is set, else NAME
// (searched in $PATH when run).
std::filesystem::path DefaultHpssTool(std::string_view name);

struct Config {
  std::filesystem::path file;  // the file it came from; empty for built-in configs
  CatalogConfig catalog;
  CacheConfig cache;
  MountConfig mount;
  StageConfig stage;
  ArchiveConfig archive;
  LogConfig log;
  std::vector<BackendConfig> backends;

  const BackendConfig* FindBackend(std::string_view name) const;
};

// Reads and validates `file`. Errors are kInvalidArgument (bad content, or not
// a regular file: a FIFO is refused without waiting for a writer) or
// kNotFound/kPermissionDenied (cannot read), with a one-line message naming
// the file. Besides each key's own checks, the local paths (catalog, cache,
// log, posix roots, tape libraries and catalogs) must not overlap, a catalog
// that exists must be a regular file (docs/CONFIG.md, "Paths").
Result<Config> LoadConfig(const std::filesystem::path& file);
// Re-checks the local paths of a config changed after loading (mount option
// -o log_file=): the LoadConfig checks, without line numbers.
Status CheckConfigPaths(const Config& config);
// kInvalidArgument if `mountpoint` is, contains or lies inside one of those
// local paths: a mount over the cache or a backend root hides what hsmfs
// itself reads there, one inside a root makes the backend list the mount.
Status CheckMountpoint(const Config& config, const std::filesystem::path& mountpoint);

// The whole of a small text file read for configuration (`what`: "config",
// "tape.conf"), as LoadConfig reads one: refused unless a regular file of at
// most kMaxConfigFileSize bytes; never blocks on a FIFO.
inline constexpr uint64_t kMaxConfigFileSize = uint64_t{16} << 20;
Result<std::string> ReadConfigFile(const std::filesystem::path& file, std::string_view what);
// Parses TOML text; `file` is used for messages and to resolve relative paths.
Result<Config> ParseConfig(std::string_view text, const std::filesystem::path& file);
// The effective config as TOML, every default filled in (hsmfs --print-config).
std::string RenderConfig(const Config& config);

// True if `rel` (a backend-relative path, "" for the backend root) lies in one of
// `backend.writable`'s directories (or is one of them).
bool IsWritablePath(const BackendConfig& backend, std::string_view rel);

}  // namespace hsmfs
