#pragma once

// The hsmfs configuration (TOML, see shared DESIGN.md section 3 and
// docs/CONFIG.md). Loading is strict: an unknown key, a wrong type or a bad
// value is an error whose message names the file, the line and the key, so that
// programs can print it as one line and exit 2. Relative paths are resolved
// against the directory of the config file. Plain data; no thread-safety needed.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
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

// One [[backend]] table. The generic keys (name to dir_mode) are read here;
// the rest belong to the backend's type, whose row in backends/registry.cc
// reads, checks and renders them (BackendConfigType below). The keys of the
// first four types are fields of this struct, as the programs and tests that
// read a loaded config know them; a type added since keeps its keys in
// `options`, so that adding one touches nothing here.
// A backend type's own keys held in a struct of its own (docs/DEVELOPMENT.md
// "Adding a backend type"): its parser makes one, its constructor and
// renderer read it back with BackendConfig::Options<T>(). Immutable once
// parsed, so copies of a BackendConfig share it.
struct BackendOptions {
  virtual ~BackendOptions() = default;
};

struct BackendConfig {
  std::string name;                   // directory name under the mount root
  std::string type;                   // a row of backends/registry.cc: posix | tape | hpss | irods
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

  // The keys of a type added since (none above): see BackendOptions.
  std::shared_ptr<const BackendOptions> options;
  // `options` as the type's struct T; null when it holds none or another type's.
  template <typename T>
  const T* Options() const {
    return dynamic_cast<const T*>(options.get());
  }
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

// One [[backend]] table as its type's parser reads it (backends/*/..._type.cc):
// typed keys with the messages every key of the config gets ("FILE:LINE:
// [[backend]] \"NAME\" KEY: PROBLEM"). A key never read is reported as
// unknown after the type's parser returns. Lives only during ParseConfig.
class BackendTable {
 public:
  class Impl;
  explicit BackendTable(Impl& impl) : impl_(impl) {}
  BackendTable(const BackendTable&) = delete;
  BackendTable& operator=(const BackendTable&) = delete;

  // Each leaves `out` as it is when the key is absent, and fails with the
  // key's line when it has the wrong type or is out of range.
  Status String(std::string_view key, std::string* out);
  Status Path(std::string_view key, std::filesystem::path* out);  // relative to the config file
  Status Bool(std::string_view key, bool* out);
  Status Int(std::string_view key, int* out, int min, int max);
  Status Size(std::string_view key, uint64_t* out);  // "8GiB" or bytes
  Status Dur(std::string_view key, Duration* out);   // "30s" or seconds
  Status StringList(std::string_view key, std::vector<std::string>* out);
  // An array of integers each accepted by `ok`; else `problem` at the item's line.
  Status IntList(std::string_view key, std::vector<int>* out, bool (*ok)(int64_t),
                 std::string_view problem);
  // An absolute '/'-separated path outside the local file system (HPSS,
  // iRODS), never resolved against the config file; trailing slashes dropped.
  // `what` names it in the message ("HPSS", "iRODS collection").
  Status RemotePath(std::string_view key, std::string_view what, std::string* out);
  // The value of `key` if it is a string, without reading it.
  std::optional<std::string> Peek(std::string_view key) const;
  // The config file (relative paths are relative to its directory).
  const std::filesystem::path& file() const;

  // `problem` about `key`, at its line (no line when it is absent).
  Status Error(std::string_view key, std::string_view problem) const;
  // `problem` about `key`, at the table's line (a missing or conflicting key).
  Status TableError(std::string_view key, std::string_view problem) const;

 private:
  Impl& impl_;
};

// A backend type's keys as `RenderConfig` shows them. Keys are sorted by name.
class BackendRender {
 public:
  class Impl;
  explicit BackendRender(Impl& impl) : impl_(impl) {}
  BackendRender(const BackendRender&) = delete;
  BackendRender& operator=(const BackendRender&) = delete;

  void Set(std::string_view key, std::string_view value);
  void Set(std::string_view key, const char* value) { Set(key, std::string_view(value)); }
  void Set(std::string_view key, int64_t value);
  void Set(std::string_view key, int value) { Set(key, int64_t{value}); }
  void Set(std::string_view key, bool value);
  void Set(std::string_view key, const std::vector<std::string>& values);
  void Set(std::string_view key, const std::vector<int>& values);

 private:
  Impl& impl_;
};

// The local paths a backend type writes or reads, for the overlap and kind
// checks of LoadConfig and CheckMountpoint (docs/CONFIG.md, "Paths"). `key`
// is the TOML key that sets the path (it names the place in messages).
class BackendPlaces {
 public:
  virtual ~BackendPlaces() = default;
  virtual void Dir(std::string_view key, const std::filesystem::path& path) = 0;
  // A SQLite file: may be shared with another catalog place on purpose.
  virtual void Catalog(std::string_view key, const std::filesystem::path& path) = 0;
  // A directory that several backends may share on purpose (a tape library).
  virtual void SharedDir(std::string_view key, const std::filesystem::path& path) = 0;
  // A file only read (rules, a password): a regular file, free to overlap.
  virtual void Input(std::string_view key, const std::filesystem::path& path) = 0;
};

// A backend type's share of the config, one row of the table in
// backends/registry.cc (which adds its constructor). Plain function pointers:
// the rows are constant data, found by FindBackendConfigType.
struct BackendConfigType {
  std::string_view name;  // the `type` value
  // Reads the type's keys into `out`, whose generic keys are already read;
  // may default stage_workers/archive_workers when they are still 0.
  Status (*parse)(BackendTable& table, BackendConfig* out) = nullptr;
  // After the whole file is read: what defaults to another section (the tape
  // tables' file to [catalog] path). May be null.
  void (*complete)(const Config& config, BackendConfig* out) = nullptr;
  void (*render)(const BackendConfig& backend, BackendRender& out) = nullptr;
  void (*places)(const BackendConfig& backend, BackendPlaces& out) = nullptr;  // may be null
};

// The row of `type`, or null. Defined by backends/registry.cc: the one place
// that lists the backend types this program provides.
const BackendConfigType* FindBackendConfigType(std::string_view type);
// "posix, tape, hpss or irods": the types, for a message.
std::string BackendConfigTypeList();

// True if `rel` (a backend-relative path, "" for the backend root) lies in one of
// `backend.writable`'s directories (or is one of them).
bool IsWritablePath(const BackendConfig& backend, std::string_view rel);

}  // namespace hsmfs
