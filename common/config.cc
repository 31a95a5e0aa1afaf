#include "common/config.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

#include "common/checksum.h"
#include "common/logging.h"
#include "common/units.h"

namespace hsmfs {
namespace {

namespace fs = std::filesystem;

// Control bytes (a NUL, a newline) in a value or key a message quotes are
// escaped, so that every error stays one line.
std::string EscapeControls(std::string_view text) {
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// "FILE:LINE: WHAT: PROBLEM" (no LINE when the value is not in the file).
Status ConfigError(const fs::path& file, const toml::node* node, std::string_view what,
                   std::string_view problem) {
  std::string where = file.string();
  if (node && node->source().begin.line > 0) {
    where += ":" + std::to_string(node->source().begin.line);
  }
  return InvalidArgumentError(
      EscapeControls(where + ": " + std::string(what) + ": " + std::string(problem)));
}

// Reads typed keys from one TOML table and remembers which keys were read, so
// that whatever is left over can be reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string label, const fs::path& file)
      : table_(table), label_(std::move(label)), file_(file) {}

  Status String(std::string_view key, std::string* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    if (!node->is_string()) return Error(node, key, "expected a string");
    // A NUL ends the string for every system call: "dir\0x" would be "dir".
    if (node->as_string()->get().find('\0') != std::string::npos) {
      return Error(node, key, "must not contain a NUL byte");
    }
    *out = node->as_string()->get();
    return Status::Ok();
  }

  Status Path(std::string_view key, fs::path* out) {
    std::string text;
    const toml::node* node = table_.get(key);
    HSMFS_RETURN_IF_ERROR(String(key, &text));
    if (!node) return Status::Ok();
    if (text.empty()) return Error(node, key, "must not be empty");
    fs::path p(text);
    if (p.is_relative()) p = file_.parent_path() / p;
    *out = p.lexically_normal();
    return Status::Ok();
  }

  Status Bool(std::string_view key, bool* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    if (!node->is_boolean()) return Error(node, key, "expected true or false");
    *out = node->as_boolean()->get();
    return Status::Ok();
  }

  Status Int(std::string_view key, int* out, int min, int max) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    if (!node->is_integer()) return Error(node, key, "expected an integer");
    const int64_t v = node->as_integer()->get();
    if (v < min || v > max) {
      return Error(node, key,
                   "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  }

  Status Fraction(std::string_view key, double* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    double v;
    if (node->is_floating_point()) {
      v = node->as_floating_point()->get();
    } else if (node->is_integer()) {
      v = static_cast<double>(node->as_integer()->get());
    } else {
      return Error(node, key, "expected a number between 0 and 1");
    }
    if (!(v > 0 && v <= 1)) return Error(node, key, "must be between 0 (exclusive) and 1");
    *out = v;
    return Status::Ok();
  }

  // A size: "50GiB" or an integer number of bytes; at most kMaxSize.
  Status Size(std::string_view key, uint64_t* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    if (node->is_integer()) {
      const int64_t v = node->as_integer()->get();
      if (v < 0) return Error(node, key, "must not be negative");
      if (static_cast<uint64_t>(v) > kMaxSize) {
        return Error(node, key, "is too large (at most " + FormatSizeExact(kMaxSize) + ")");
      }
      *out = static_cast<uint64_t>(v);
      return Status::Ok();
    }
    if (!node->is_string()) return Error(node, key, "expected a size such as \"50GiB\"");
    auto parsed = ParseSize(node->as_string()->get());
    if (!parsed.ok()) return Error(node, key, parsed.status().message());
    *out = *parsed;
    return Status::Ok();
  }

  // A duration: "1h30m", "200ms" or an integer number of seconds; at most
  // kMaxDuration (in seconds, 10000000000 would wrap as nanoseconds).
  Status Dur(std::string_view key, Duration* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    if (node->is_integer()) {
      const int64_t v = node->as_integer()->get();
      if (v < 0) return Error(node, key, "must not be negative");
      if (v > std::chrono::duration_cast<std::chrono::seconds>(kMaxDuration).count()) {
        return Error(node, key, "is too long (at most " + FormatDurationExact(kMaxDuration) + ")");
      }
      *out = std::chrono::seconds(v);
      return Status::Ok();
    }
    if (!node->is_string()) return Error(node, key, "expected a duration such as \"30s\"");
    auto parsed = ParseDuration(node->as_string()->get());
    if (!parsed.ok()) return Error(node, key, parsed.status().message());
    *out = *parsed;
    return Status::Ok();
  }

  Status StringList(std::string_view key, std::vector<std::string>* out) {
    const toml::node* node = Take(key);
    if (!node) return Status::Ok();
    const toml::array* arr = node->as_array();
    if (!arr) return Error(node, key, "expected an array of strings");
    out->clear();
    for (const toml::node& item : *arr) {
      if (!item.is_string()) return Error(&item, key, "expected an array of strings");
      if (item.as_string()->get().find('\0') != std::string::npos) {
        return Error(&item, key, "must not contain a NUL byte");
      }
      out->push_back(item.as_string()->get());
    }
    return Status::Ok();
  }

  void MarkKnown(std::string_view key) { used_.emplace(key); }
  const fs::path& file() const { return file_; }

  // Fails on the first key present in the table but never read.
  Status CheckNoUnknownKeys() const {
    for (const auto& [key, node] : table_) {
      if (!used_.count(std::string(key.str()))) {
        return Error(&node, key.str(), "unknown key");
      }
    }
    return Status::Ok();
  }

  Status Error(const toml::node* node, std::string_view key, std::string_view problem) const {
    return ConfigError(file_, node, label_ + (label_.empty() ? "" : " ") + std::string(key),
                       problem);
  }

 private:
  const toml::node* Take(std::string_view key) {
    used_.emplace(key);
    return table_.get(key);
  }

  const toml::table& table_;
  std::string label_;
  const fs::path& file_;
  std::set<std::string, std::less<>> used_;
};

}  // namespace

class BackendTable::Impl {
 public:
  const toml::table& table;
  TableReader& reader;
};

class BackendRender::Impl {
 public:
  toml::table& table;
};

namespace {

// Normalises a writable entry: a directory strictly inside the backend, no
// "..", no trailing slash. "", "." and "/" are refused: they would make the
// whole backend writable by accident (an empty string from a template, a "/"
// meant as "the top").
Result<std::string> NormaliseRelative(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  if (!text.empty() && text.front() == '/') {
    return InvalidArgumentError(quoted + " must be relative to the backend");
  }
  // Checked before normalising, which would turn "a/../.." into "..", but
  // "a/../b" into "b": a ".." anywhere is a mistake.
  for (const auto& part : fs::path(text)) {
    if (part == "..") return InvalidArgumentError(quoted + " must not contain \"..\"");
  }
  std::string s = fs::path(text).lexically_normal().generic_string();
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (s.empty() || s == ".") {
    return InvalidArgumentError(quoted +
                                " is the whole backend; name a directory inside it (\"incoming\")");
  }
  return s;
}

// "0644", as file_mode/dir_mode are written.
std::string FormatModeBits(int mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

// `uid`/`gid`: a number, or a user or group name of this host.
Status ReadOwnerId(const toml::table& table, TableReader& r, std::string_view key, bool group,
                   int64_t* out) {
  const toml::node* node = table.get(key);
  r.MarkKnown(key);
  if (!node) return Status::Ok();
  const std::string what = group ? "group" : "user";
  if (node->is_integer()) {
    const int64_t v = node->as_integer()->get();
    // (uid_t)-1 means "no change" to chown(2); it cannot own anything.
    if (v < 0 || v >= int64_t{0xffffffff}) {
      return r.Error(node, key, "must be a " + what + " id between 0 and 4294967294");
    }
    *out = v;
    return Status::Ok();
  }
  if (!node->is_string() || node->as_string()->get().empty()) {
    return r.Error(node, key, "expected a " + what + " id or name");
  }
  const std::string name = node->as_string()->get();
  if (group) {
    const struct group* g = ::getgrnam(name.c_str());
    if (!g) return r.Error(node, key, "no group \"" + name + "\" on this host");
    *out = g->gr_gid;
  } else {
    const struct passwd* p = ::getpwnam(name.c_str());
    if (!p) return r.Error(node, key, "no user \"" + name + "\" on this host");
    *out = p->pw_uid;
  }
  return Status::Ok();
}

// `file_mode`/`dir_mode`: octal permission bits, as a string ("0640") or a
// TOML octal integer (0o640); a decimal 640 is refused, not misread.
Status ReadModeBits(const toml::table& table, TableReader& r, std::string_view key, int* out) {
  const toml::node* node = table.get(key);
  r.MarkKnown(key);
  if (!node) return Status::Ok();
  const std::string problem = "expected octal permission bits such as \"0644\" (at most 07777)";
  int64_t v = -1;
  if (node->is_integer()) {
    if (node->as_integer()->flags() != toml::value_flags::format_as_octal) {
      return r.Error(node, key, problem + "; a bare number is decimal in TOML, write 0o644");
    }
    v = node->as_integer()->get();
  } else if (node->is_string()) {
    const std::string& text = node->as_string()->get();
    if (text.empty() || text.size() > 5 ||
        text.find_first_not_of("01234567") != std::string::npos) {
      return r.Error(node, key, problem);
    }
    v = std::stoll(text, nullptr, 8);
  } else {
    return r.Error(node, key, problem);
  }
  if (v < 0 || v > 07777) return r.Error(node, key, problem);
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status ReadBackend(const toml::table& table, int index, const fs::path& file, BackendConfig* out) {
  std::string label = "[[backend]] #" + std::to_string(index + 1);
  if (const toml::node* name = table.get("name"); name && name->is_string()) {
    label = "[[backend]] \"" + name->as_string()->get() + "\"";
  }
  TableReader r(table, label, file);
  HSMFS_RETURN_IF_ERROR(r.String("name", &out->name));
  if (out->name.empty()) return r.Error(&table, "name", "missing required key");
  if (out->name.find('/') != std::string::npos || out->name == "." || out->name == "..") {
    return r.Error(table.get("name"), "name", "must be a plain directory name");
  }
  HSMFS_RETURN_IF_ERROR(r.String("type", &out->type));
  if (out->type.empty()) return r.Error(&table, "type", "missing required key");
  const BackendConfigType* type = FindBackendConfigType(out->type);
  if (!type) {
    return r.Error(
        table.get("type"), "type",
        "unknown backend type \"" + out->type + "\" (use " + BackendConfigTypeList() + ")");
  }
  std::vector<std::string> writable;
  HSMFS_RETURN_IF_ERROR(r.StringList("writable", &writable));
  for (const std::string& w : writable) {
    auto norm = NormaliseRelative(w);
    if (!norm.ok()) return r.Error(table.get("writable"), "writable", norm.status().message());
    out->writable.push_back(*norm);
  }
  HSMFS_RETURN_IF_ERROR(r.Bool("allow_delete", &out->allow_delete));
  HSMFS_RETURN_IF_ERROR(r.Dur("list_ttl", &out->list_ttl));
  HSMFS_RETURN_IF_ERROR(r.Int("stage_workers", &out->stage_workers, 1, 1024));
  HSMFS_RETURN_IF_ERROR(r.Int("archive_workers", &out->archive_workers, 1, 1024));
  HSMFS_RETURN_IF_ERROR(ReadOwnerId(table, r, "uid", false, &out->uid));
  HSMFS_RETURN_IF_ERROR(ReadOwnerId(table, r, "gid", true, &out->gid));
  HSMFS_RETURN_IF_ERROR(ReadModeBits(table, r, "file_mode", &out->file_mode));
  HSMFS_RETURN_IF_ERROR(ReadModeBits(table, r, "dir_mode", &out->dir_mode));
  BackendTable::Impl impl{table, r};
  BackendTable typed(impl);
  HSMFS_RETURN_IF_ERROR(type->parse(typed, out));
  return r.CheckNoUnknownKeys();
}

// A local path hsmfs writes, rewrites or deletes in, as a key names it.
struct Place {
  // kInput: read only (never written, so not part of the overlap checks).
  enum Kind { kDir, kFile, kCatalog, kInput };
  std::string key;  // "[cache] dir", "[[backend]] \"vault\" root"
  fs::path path;    // as configured (absolute, normalised)
  Kind kind;
  const toml::node* node;  // where the key is set; null for a default
  fs::path real{};         // symbolic links resolved, for comparison
  bool shared = false;     // kDir that backends may share (a tape library)
  // What stat(2) said of `path`; unset if it does not exist or did not
  // answer in time (a hung file system: see ResolvePlaces).
  std::optional<struct stat> st{};
};

// How long reading a config waits for one path to resolve. A stat of a hung
// file system (an NFS server gone, a frozen FUSE backend) never returns; the
// config of a mount whose backend root hangs must still load, so that the
// mount starts and reports the backend's outage (docs/SEMANTICS.md) rather
// than hang before it logs anything.
constexpr auto kResolveLimit = std::chrono::seconds(2);

// Resolves each place (its symbolic links, then stat) in a child process,
// waiting at most kResolveLimit for all of them. A path that does not answer
// in time is compared as written (lexically) and its type is not checked: the
// component that uses it reports the outage when it first needs it. A child,
// not a thread: a thread stuck in the kernel cannot be taken back (and stops
// LeakSanitizer's exit check for good), while a child is killed (FUSE and NFS
// waits end on SIGKILL). Called while the program is still single-threaded
// (config loading), so the child may allocate.
void ResolvePlaces(std::vector<Place>& places) {
  for (Place& p : places) p.real = p.path.lexically_normal();
  // One record per place, in order: stat result, stat, length, resolved path.
  struct Header {
    int32_t stat_ok;
    uint32_t len;
    struct stat st;
  };
  int fds[2] = {-1, -1};
  pid_t pid = -1;
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      for (const Place& p : places) {
        Header h{};
        std::error_code ec;
        fs::path real = fs::weakly_canonical(p.path, ec);
        if (ec) real = p.path.lexically_normal();
        h.stat_ok = ::stat(p.path.c_str(), &h.st) == 0;
        const std::string& r = real.native();
        h.len = static_cast<uint32_t>(r.size());
        std::string record(reinterpret_cast<const char*>(&h), sizeof h);
        record += r;
        for (size_t off = 0; off < record.size();) {
          const ssize_t n = ::write(fds[1], record.data() + off, record.size() - off);
          if (n <= 0 && errno != EINTR) ::_exit(1);
          if (n > 0) off += static_cast<size_t>(n);
        }
      }
      ::_exit(0);
    }
    ::close(fds[1]);
  }
  if (pid <= 0) {  // no pipe or no fork: resolve here (and block if it must)
    if (pid < 0 && fds[0] >= 0) ::close(fds[0]);
    for (Place& p : places) {
      std::error_code ec;
      p.real = fs::weakly_canonical(p.path, ec);
      if (ec) p.real = p.path.lexically_normal();
      struct stat st;
      if (::stat(p.path.c_str(), &st) == 0) p.st = st;
      if (!p.real.has_filename() && p.real.has_relative_path()) p.real = p.real.parent_path();
    }
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + kResolveLimit;
  std::string got;
  size_t done = 0;
  bool eof = false;
  while (done < places.size() && !eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd pfd {
      fds[0], POLLIN, 0
    };
    const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[8192];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) eof = true;
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    // Every complete record is an answer.
    while (done < places.size() && got.size() >= sizeof(Header)) {
      Header h;
      std::memcpy(&h, got.data(), sizeof h);
      if (got.size() < sizeof h + h.len) break;
      Place& p = places[done++];
      p.real = fs::path(got.substr(sizeof h, h.len));
      if (h.stat_ok) p.st = h.st;
      got.erase(0, sizeof h + h.len);
    }
  }
  ::close(fds[0]);
  if (done < places.size()) ::kill(pid, SIGKILL);
  // Reaped now if it has ended; one killed in a hung call is left to end
  // (an unreaped child costs a process-table slot until we exit).
  int status;
  ::waitpid(pid, &status, done < places.size() ? WNOHANG : 0);
  for (Place& p : places) {
    if (!p.real.has_filename() && p.real.has_relative_path()) p.real = p.real.parent_path();
  }
}

const toml::node* NodeAt(const toml::table* root, std::string_view table, std::string_view key) {
  const toml::table* t = root ? root->get_as<toml::table>(table) : nullptr;
  return t ? t->get(key) : nullptr;
}

const toml::node* BackendNodeAt(const toml::table* root, size_t index, std::string_view key) {
  const toml::array* arr = root ? root->get_as<toml::array>("backend") : nullptr;
  const toml::table* t = arr && index < arr->size() ? arr->get_as<toml::table>(index) : nullptr;
  return t ? t->get(key) : nullptr;
}

// True if `inner` is `outer` or lies below it (whole components: /a/bc is not in /a/b).
bool Within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing "/" of `outer`
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// The checks that keep a mistyped path from costing data (docs/CONFIG.md,
// "Paths"): the cache, the catalog, the log and every local backend directory
// are pairwise apart (the cache deletes what it does not know, an archive
// writes into a backend root, the catalog and log are rewritten in place), a
// catalog is a regular file and a directory key a directory. `root` gives
// line numbers; it is null for a config changed after parsing (-o log_file=).
// Every local path of `c`, its symbolic links resolved.
std::vector<Place> CollectPlaces(const Config& c, const toml::table* root) {
  std::vector<Place> places;
  places.push_back(
      {"[catalog] path", c.catalog.path, Place::kCatalog, NodeAt(root, "catalog", "path")});
  places.push_back({"[cache] dir", c.cache.dir, Place::kDir, NodeAt(root, "cache", "dir")});
  places.push_back({"[log] file", c.log.file, Place::kFile, NodeAt(root, "log", "file")});
  for (size_t i = 0; i < c.backends.size(); ++i) {
    const BackendConfig& b = c.backends[i];
    const BackendConfigType* type = FindBackendConfigType(b.type);
    if (!type || !type->places) continue;
    // Each place named after its key in the backend's table.
    class Sink final : public BackendPlaces {
     public:
      Sink(std::vector<Place>& places, const toml::table* root, size_t index, std::string label)
          : places_(places), root_(root), index_(index), label_(std::move(label)) {}
      void Dir(std::string_view key, const fs::path& path) override {
        Add(key, path, Place::kDir, false);
      }
      void Catalog(std::string_view key, const fs::path& path) override {
        Add(key, path, Place::kCatalog, false);
      }
      void SharedDir(std::string_view key, const fs::path& path) override {
        Add(key, path, Place::kDir, true);
      }
      void Input(std::string_view key, const fs::path& path) override {
        Add(key, path, Place::kInput, false);
      }

     private:
      void Add(std::string_view key, const fs::path& path, Place::Kind kind, bool shared) {
        Place p{label_ + std::string(key), path, kind, BackendNodeAt(root_, index_, key)};
        p.shared = shared;
        places_.push_back(std::move(p));
      }
      std::vector<Place>& places_;
      const toml::table* root_;
      size_t index_;
      std::string label_;
    } sink(places, root, i, "[[backend]] \"" + b.name + "\" ");
    type->places(b, sink);
  }
  ResolvePlaces(places);
  return places;
}

Status CheckPlaces(const Config& c, const toml::table* root) {
  const std::vector<Place> places = CollectPlaces(c, root);
  for (size_t j = 1; j < places.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (places[i].kind == Place::kInput || places[j].kind == Place::kInput) continue;
      // Say it from the side set in the file (the later one when both are).
      const Place* named = places[j].node || !places[i].node ? &places[j] : &places[i];
      const Place* other = named == &places[j] ? &places[i] : &places[j];
      std::string relation;
      if (named->real == other->real) {
        // The tape tables in the hsmfs catalog (the default), or two tape
        // backends with drives of one library (a shared place): used twice
        // on purpose.
        if (named->kind == other->kind && named->kind != Place::kFile &&
            (named->kind == Place::kCatalog || (named->shared && other->shared))) {
          continue;
        }
        relation = "is also";
      } else if (Within(named->real, other->real)) {
        relation = "lies inside";
      } else if (Within(other->real, named->real)) {
        relation = "contains";
      } else {
        continue;
      }
      return ConfigError(c.file, named->node, named->key,
                         named->path.string() + " " + relation + " " + other->key + " (" +
                             other->path.string() + "); they must be kept apart");
    }
  }
  for (const Place& p : places) {
    // Not there (created when first needed), or not answering.
    if (!p.st) continue;
    const struct stat& st = *p.st;
    if (p.kind == Place::kDir && !S_ISDIR(st.st_mode)) {
      return ConfigError(c.file, p.node, p.key, p.path.string() + " is not a directory");
    }
    // SQLite on a device or a FIFO would write its pages into it; reading
    // rules or a password from a FIFO would wait for a writer.
    if ((p.kind == Place::kCatalog || p.kind == Place::kInput) && !S_ISREG(st.st_mode)) {
      return ConfigError(c.file, p.node, p.key, p.path.string() + " is not a regular file");
    }
    if (p.kind == Place::kFile && S_ISDIR(st.st_mode)) {
      return ConfigError(c.file, p.node, p.key, p.path.string() + " is a directory");
    }
  }
  return Status::Ok();
}

Status ReadConfig(const toml::table& root, const fs::path& file, Config* c) {
  const fs::path dir = file.parent_path();
  c->file = file;
  c->catalog.path = dir / "catalog.db";
  c->cache.dir = dir / "cache";
  c->log.file = dir / "hsmfs.log";

  TableReader top(root, "", file);
  const auto section = [&](std::string_view name, auto&& read) -> Status {
    const toml::node* node = root.get(name);
    top.MarkKnown(name);
    if (!node) return Status::Ok();
    if (!node->is_table())
      return top.Error(node, name, "expected a [" + std::string(name) + "] table");
    TableReader r(*node->as_table(), "[" + std::string(name) + "]", file);
    HSMFS_RETURN_IF_ERROR(read(r));
    return r.CheckNoUnknownKeys();
  };
  HSMFS_RETURN_IF_ERROR(
      section("catalog", [&](TableReader& r) { return r.Path("path", &c->catalog.path); }));
  HSMFS_RETURN_IF_ERROR(section("cache", [&](TableReader& r) -> Status {
    HSMFS_RETURN_IF_ERROR(r.Path("dir", &c->cache.dir));
    HSMFS_RETURN_IF_ERROR(r.Size("size", &c->cache.size));
    HSMFS_RETURN_IF_ERROR(r.Fraction("high_watermark", &c->cache.high_watermark));
    HSMFS_RETURN_IF_ERROR(r.Fraction("low_watermark", &c->cache.low_watermark));
    if (c->cache.low_watermark > c->cache.high_watermark) {
      return r.Error(nullptr, "low_watermark", "must not be above high_watermark");
    }
    HSMFS_RETURN_IF_ERROR(r.Dur("write_wait", &c->cache.write_wait));
    return r.Dur("stage_timeout", &c->cache.stage_timeout);
  }));
  HSMFS_RETURN_IF_ERROR(section("archive", [&](TableReader& r) -> Status {
    HSMFS_RETURN_IF_ERROR(r.Int("workers", &c->archive.workers, 1, 1024));
    HSMFS_RETURN_IF_ERROR(r.Dur("settle", &c->archive.settle));
    HSMFS_RETURN_IF_ERROR(r.String("checksum", &c->archive.checksum));
    if (Status s = ParseChecksumAlgo(c->archive.checksum).status(); !s.ok()) {
      return r.Error(nullptr, "checksum", s.message());
    }
    std::string verify = std::string(VerifyName(c->archive.verify));
    HSMFS_RETURN_IF_ERROR(r.String("verify", &verify));
    if (verify == "readback") {
      c->archive.verify = ArchiveConfig::Verify::kReadback;
    } else if (verify == "backend") {
      c->archive.verify = ArchiveConfig::Verify::kBackend;
    } else if (verify == "none") {
      c->archive.verify = ArchiveConfig::Verify::kNone;
    } else {
      return r.Error(nullptr, "verify",
                     "unknown value \"" + verify + "\" (use readback, backend or none)");
    }
    HSMFS_RETURN_IF_ERROR(r.Int("max_attempts", &c->archive.max_attempts, 1, 1000));
    HSMFS_RETURN_IF_ERROR(r.Dur("retry_delay", &c->archive.retry_delay));
    HSMFS_RETURN_IF_ERROR(r.Dur("retry_horizon", &c->archive.retry_horizon));
    if (c->archive.retry_horizon > std::chrono::hours(24 * 365)) {
      return r.Error(nullptr, "retry_horizon", "must be at most a year (8760h)");
    }
    return Status::Ok();
  }));
  HSMFS_RETURN_IF_ERROR(section("stage", [&](TableReader& r) -> Status {
    HSMFS_RETURN_IF_ERROR(r.Int("workers", &c->stage.workers, 1, 1024));
    HSMFS_RETURN_IF_ERROR(r.Dur("coalesce", &c->stage.coalesce));
    HSMFS_RETURN_IF_ERROR(r.Int("max_attempts", &c->stage.max_attempts, 1, 1000));
    HSMFS_RETURN_IF_ERROR(r.Dur("retry_delay", &c->stage.retry_delay));
    return r.StringList("deny_recall_from", &c->stage.deny_recall_from);
  }));
  HSMFS_RETURN_IF_ERROR(section("mount", [&](TableReader& r) -> Status {
    HSMFS_RETURN_IF_ERROR(r.Dur("entry_timeout", &c->mount.entry_timeout));
    HSMFS_RETURN_IF_ERROR(r.Dur("attr_timeout", &c->mount.attr_timeout));
    HSMFS_RETURN_IF_ERROR(r.Dur("list_timeout", &c->mount.list_timeout));
    HSMFS_RETURN_IF_ERROR(r.Dur("list_ttl", &c->mount.list_ttl));
    return r.Int("sync_workers", &c->mount.sync_workers, 1, 256);
  }));
  HSMFS_RETURN_IF_ERROR(section("log", [&](TableReader& r) -> Status {
    HSMFS_RETURN_IF_ERROR(r.String("level", &c->log.level));
    if (Status s = ValidateLogLevel(c->log.level); !s.ok()) {
      return r.Error(nullptr, "level", s.message());
    }
    return r.Path("file", &c->log.file);
  }));

  const toml::node* backends = root.get("backend");
  top.MarkKnown("backend");
  if (!backends) return top.Error(nullptr, "backend", "no [[backend]] is configured");
  const toml::array* arr = backends->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    return top.Error(backends, "backend", "expected [[backend]] tables");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < arr->size(); ++i) {
    BackendConfig b;
    HSMFS_RETURN_IF_ERROR(ReadBackend(*arr->get(i)->as_table(), static_cast<int>(i), file, &b));
    if (!names.insert(b.name).second) {
      return top.Error(arr->get(i), "backend", "name \"" + b.name + "\" is used twice");
    }
    c->backends.push_back(std::move(b));
  }
  HSMFS_RETURN_IF_ERROR(top.CheckNoUnknownKeys());
  for (BackendConfig& b : c->backends) {
    const BackendConfigType* type = FindBackendConfigType(b.type);
    if (type && type->complete) type->complete(*c, &b);
  }
  return CheckPlaces(*c, &root);
}

}  // namespace

Status BackendTable::String(std::string_view key, std::string* out) {
  return impl_.reader.String(key, out);
}
Status BackendTable::Path(std::string_view key, fs::path* out) {
  return impl_.reader.Path(key, out);
}
Status BackendTable::Bool(std::string_view key, bool* out) { return impl_.reader.Bool(key, out); }
Status BackendTable::Int(std::string_view key, int* out, int min, int max) {
  return impl_.reader.Int(key, out, min, max);
}
Status BackendTable::Size(std::string_view key, uint64_t* out) {
  return impl_.reader.Size(key, out);
}
Status BackendTable::Dur(std::string_view key, Duration* out) { return impl_.reader.Dur(key, out); }
Status BackendTable::StringList(std::string_view key, std::vector<std::string>* out) {
  return impl_.reader.StringList(key, out);
}

Status BackendTable::IntList(std::string_view key, std::vector<int>* out, bool (*ok)(int64_t),
                             std::string_view problem) {
  const toml::node* node = impl_.table.get(key);
  impl_.reader.MarkKnown(key);
  if (!node) return Status::Ok();
  const toml::array* arr = node->as_array();
  if (!arr) return impl_.reader.Error(node, key, problem);
  out->clear();
  for (const toml::node& item : *arr) {
    if (!item.is_integer() || item.as_integer()->get() < std::numeric_limits<int>::min() ||
        item.as_integer()->get() > std::numeric_limits<int>::max() ||
        !ok(item.as_integer()->get())) {
      return impl_.reader.Error(&item, key, problem);
    }
    out->push_back(static_cast<int>(item.as_integer()->get()));
  }
  return Status::Ok();
}

Status BackendTable::RemotePath(std::string_view key, std::string_view what, std::string* out) {
  HSMFS_RETURN_IF_ERROR(impl_.reader.String(key, out));
  if (out->empty()) return Status::Ok();
  if (out->front() != '/') {
    return impl_.reader.Error(impl_.table.get(key), key,
                              "must be an absolute " + std::string(what) + " path");
  }
  while (out->size() > 1 && out->back() == '/') out->pop_back();
  return Status::Ok();
}

std::optional<std::string> BackendTable::Peek(std::string_view key) const {
  const toml::node* node = impl_.table.get(key);
  if (!node || !node->is_string()) return std::nullopt;
  return node->as_string()->get();
}

const fs::path& BackendTable::file() const { return impl_.reader.file(); }

Status BackendTable::Error(std::string_view key, std::string_view problem) const {
  return impl_.reader.Error(impl_.table.get(key), key, problem);
}

Status BackendTable::TableError(std::string_view key, std::string_view problem) const {
  return impl_.reader.Error(&impl_.table, key, problem);
}

void BackendRender::Set(std::string_view key, std::string_view value) {
  impl_.table.insert_or_assign(key, std::string(value));
}
void BackendRender::Set(std::string_view key, int64_t value) {
  impl_.table.insert_or_assign(key, value);
}
void BackendRender::Set(std::string_view key, bool value) {
  impl_.table.insert_or_assign(key, value);
}
void BackendRender::Set(std::string_view key, const std::vector<std::string>& values) {
  toml::array arr;
  for (const std::string& v : values) arr.push_back(v);
  impl_.table.insert_or_assign(key, std::move(arr));
}
void BackendRender::Set(std::string_view key, const std::vector<int>& values) {
  toml::array arr;
  for (int v : values) arr.push_back(v);
  impl_.table.insert_or_assign(key, std::move(arr));
}

std::string_view VerifyName(ArchiveConfig::Verify v) {
  switch (v) {
    case ArchiveConfig::Verify::kReadback:
      return "readback";
    case ArchiveConfig::Verify::kBackend:
      return "backend";
    case ArchiveConfig::Verify::kNone:
      return "none";
  }
  return "readback";
}

std::vector<std::string> StageConfig::DefaultDenyRecallFrom() {
  // Names as the kernel keeps them (/proc/PID/comm: at most 15 characters).
  return {"updatedb",   "updatedb.mlocat", "updatedb.ploca",  "mlocate",
          "plocate",    "locate",          "tracker-miner-f", "tracker-extract",
          "baloo_file", "baloo_file_extr", "recollindex",     "zeitgeist-fts",
          "beagled",    "trackerd",        "clamscan",        "clamd",
          "aide",       "rkhunter"};
}

std::filesystem::path DefaultHpssTool(std::string_view name) {
  const char* dir = std::getenv("HPSS_DIR");
  if (dir && *dir) return fs::path(dir) / "bin" / name;
  return fs::path(name);
}

const BackendConfig* Config::FindBackend(std::string_view name) const {
  for (const BackendConfig& b : backends) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

Result<Config> ParseConfig(std::string_view text, const fs::path& file) {
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    // toml++ quotes the offending text, which may hold a newline or a NUL.
    return InvalidArgumentError(EscapeControls(file.string() + ":" +
                                               std::to_string(e.source().begin.line) + ": " +
                                               std::string(e.description())));
  }
  Config config;
  HSMFS_RETURN_IF_ERROR(ReadConfig(root, fs::absolute(file), &config));
  return config;
}

Result<std::string> ReadConfigFile(const fs::path& file, std::string_view what) {
  const std::string cannot = file.string() + ": cannot read " + std::string(what);
  if (file.native().find('\0') != std::string::npos) {
    return InvalidArgumentError(EscapeControls(file.string()) + ": a NUL byte in the file name");
  }
  const auto check_type = [&](const struct stat& st) -> Status {
    if (S_ISDIR(st.st_mode)) {
      return InvalidArgumentError(file.string() + ": is a directory, not a " + std::string(what));
    }
    if (!S_ISREG(st.st_mode)) {
      return InvalidArgumentError(file.string() + ": is not a regular file (a " +
                                  std::string(what) + " must be one)");
    }
    return Status::Ok();
  };
  // Looked at before it is opened: opening a device (a tape drive) can act
  // on it, and opening a FIFO for reading waits for a writer.
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return ErrnoToStatus(errno, cannot);
  HSMFS_RETURN_IF_ERROR(check_type(st));
  // O_NONBLOCK and the second look: it may have been swapped for a FIFO since.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return ErrnoToStatus(errno, cannot);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, cannot);
  HSMFS_RETURN_IF_ERROR(check_type(st));
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigFileSize) {
    return InvalidArgumentError(file.string() + ": is too large for a " + std::string(what) +
                                " (at most " + FormatSizeExact(kMaxConfigFileSize) + ")");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, cannot);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileSize) {
      return InvalidArgumentError(file.string() + ": is too large for a " + std::string(what) +
                                  " (at most " + FormatSizeExact(kMaxConfigFileSize) + ")");
    }
  }
  return text;
}

Result<Config> LoadConfig(const fs::path& file) {
  HSMFS_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(file, "config"));
  return ParseConfig(text, file);
}

Status CheckConfigPaths(const Config& config) { return CheckPlaces(config, nullptr); }

Status CheckMountpoint(const Config& config, const fs::path& mountpoint) {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(mountpoint, ec);
  if (ec) real = fs::absolute(mountpoint).lexically_normal();
  for (const Place& p : CollectPlaces(config, nullptr)) {
    if (p.kind == Place::kInput) continue;
    std::string relation;
    if (real == p.real) {
      relation = "is";
    } else if (Within(real, p.real)) {
      relation = "lies inside";
    } else if (Within(p.real, real)) {
      relation = "contains";
    } else {
      continue;
    }
    return InvalidArgumentError(EscapeControls("mountpoint " + mountpoint.string() + " " +
                                               relation + " " + p.key + " (" + p.path.string() +
                                               "): the mount would hide it or list itself"));
  }
  return Status::Ok();
}

std::string RenderConfig(const Config& c) {
  toml::table root;
  root.insert("catalog", toml::table{{"path", c.catalog.path.string()}});
  root.insert("cache", toml::table{{"dir", c.cache.dir.string()},
                                   {"size", FormatSizeExact(c.cache.size)},
                                   {"stage_timeout", FormatDurationExact(c.cache.stage_timeout)},
                                   {"high_watermark", c.cache.high_watermark},
                                   {"low_watermark", c.cache.low_watermark},
                                   {"write_wait", FormatDurationExact(c.cache.write_wait)}});
  root.insert("archive",
              toml::table{{"workers", c.archive.workers},
                          {"settle", FormatDurationExact(c.archive.settle)},
                          {"checksum", c.archive.checksum},
                          {"verify", VerifyName(c.archive.verify)},
                          {"max_attempts", c.archive.max_attempts},
                          {"retry_delay", FormatDurationExact(c.archive.retry_delay)},
                          {"retry_horizon", FormatDurationExact(c.archive.retry_horizon)}});
  toml::array deny;
  for (const std::string& d : c.stage.deny_recall_from) deny.push_back(d);
  root.insert("stage", toml::table{{"workers", c.stage.workers},
                                   {"coalesce", FormatDurationExact(c.stage.coalesce)},
                                   {"max_attempts", c.stage.max_attempts},
                                   {"retry_delay", FormatDurationExact(c.stage.retry_delay)},
                                   {"deny_recall_from", deny}});
  root.insert("mount", toml::table{{"entry_timeout", FormatDurationExact(c.mount.entry_timeout)},
                                   {"attr_timeout", FormatDurationExact(c.mount.attr_timeout)},
                                   {"list_timeout", FormatDurationExact(c.mount.list_timeout)},
                                   {"list_ttl", FormatDurationExact(c.mount.list_ttl)},
                                   {"sync_workers", c.mount.sync_workers}});
  root.insert("log", toml::table{{"level", c.log.level}, {"file", c.log.file.string()}});
  toml::array backends;
  for (const BackendConfig& b : c.backends) {
    toml::table t{{"name", b.name}, {"type", b.type}};
    toml::array writable;
    for (const std::string& w : b.writable) writable.push_back(w);
    t.insert("writable", writable);
    t.insert("allow_delete", b.allow_delete);
    t.insert("list_ttl",
             FormatDurationExact(b.list_ttl.count() >= 0 ? b.list_ttl : c.mount.list_ttl));
    t.insert("stage_workers", b.stage_workers > 0 ? b.stage_workers : c.stage.workers);
    t.insert("archive_workers", b.archive_workers > 0 ? b.archive_workers : c.archive.workers);
    t.insert("uid", b.uid >= 0 ? b.uid : int64_t{::getuid()});
    t.insert("gid", b.gid >= 0 ? b.gid : int64_t{::getgid()});
    // Unset: the backend's own bits (nothing to show).
    if (b.file_mode >= 0) t.insert("file_mode", FormatModeBits(b.file_mode));
    if (b.dir_mode >= 0) t.insert("dir_mode", FormatModeBits(b.dir_mode));
    if (const BackendConfigType* type = FindBackendConfigType(b.type); type && type->render) {
      BackendRender::Impl impl{t};
      BackendRender render(impl);
      type->render(b, render);
    }
    backends.push_back(std::move(t));
  }
  root.insert("backend", std::move(backends));
  std::ostringstream out;
  out << "# effective configuration";
  if (!c.file.empty()) out << " of " << c.file.string();
  // Double-quoted strings, as people write them in hsmfs.toml.
  out << "\n"
      << toml::toml_formatter(
             root, toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings)
      << "\n";
  return out.str();
}

bool IsWritablePath(const BackendConfig& backend, std::string_view rel) {
  for (const std::string& w : backend.writable) {
    if (w.empty()) return true;
    if (rel.size() >= w.size() && rel.compare(0, w.size(), w) == 0 &&
        (rel.size() == w.size() || rel[w.size()] == '/')) {
      return true;
    }
  }
  return false;
}

}  // namespace hsmfs
