#include "common/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace hsmfs {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kFile = "/etc/hsmfs/hsmfs.toml";

constexpr char kMinimal[] = R"(
[[backend]]
name = "vault"
type = "posix"
root = "/srv/vault"
)";

Status ErrorOf(std::string_view text) { return ParseConfig(text, kFile).status(); }

TEST(ConfigTest, DefaultsAreFilledIn) {
  auto c = ParseConfig(kMinimal, kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->catalog.path, "/etc/hsmfs/catalog.db");
  EXPECT_EQ(c->cache.dir, "/etc/hsmfs/cache");
  EXPECT_EQ(c->cache.size, uint64_t{50} << 30);
  EXPECT_EQ(c->cache.stage_timeout, Duration(1h));
  EXPECT_EQ(c->mount.list_timeout, Duration(10s));
  ASSERT_EQ(c->backends.size(), 1u);
  EXPECT_EQ(c->backends[0].root, "/srv/vault");
  EXPECT_EQ(c->backends[0].stage_delay, Duration(0));
  EXPECT_FALSE(c->backends[0].allow_delete);
}

TEST(ConfigTest, ReadsTheDesignExample) {
  auto c = ParseConfig(R"(
[catalog]
path = "catalog.db"            # SQLite file; relative paths are relative to this file

[cache]
dir = "cache"
size = "50GiB"
stage_timeout = "1h"

[[backend]]
name = "vault"
type = "posix"
root = "vault-root"
writable = ["incoming", "results/"]
stage_delay = "2s"
allow_delete = true
)",
                       "/data/hsm/hsmfs.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->catalog.path, "/data/hsm/catalog.db");
  EXPECT_EQ(c->backends[0].root, "/data/hsm/vault-root");
  EXPECT_EQ(c->backends[0].writable, (std::vector<std::string>{"incoming", "results"}));
  EXPECT_EQ(c->backends[0].stage_delay, Duration(2s));
  EXPECT_TRUE(c->backends[0].allow_delete);
}

TEST(ConfigTest, UnknownKeyIsNamedWithFileAndLine) {
  Status s = ErrorOf(std::string("[cache]\nsize = \"1GiB\"\nsise = 3\n") + kMinimal);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "/etc/hsmfs/hsmfs.toml:3: [cache] sise: unknown key");
}

TEST(ConfigTest, UnknownTopLevelTableIsAnError) {
  Status s = ErrorOf(std::string("[cahce]\nsize = 1\n") + kMinimal);
  EXPECT_NE(s.message().find("cahce: unknown key"), std::string::npos) << s.message();
}

TEST(ConfigTest, UnknownBackendKeyNamesTheBackend) {
  Status s = ErrorOf(std::string(kMinimal) + "stage_dealy = \"1s\"\n");
  EXPECT_NE(s.message().find("[[backend]] \"vault\" stage_dealy: unknown key"), std::string::npos)
      << s.message();
}

TEST(ConfigTest, WrongTypes) {
  EXPECT_NE(ErrorOf(std::string("[cache]\nsize = true\n") + kMinimal)
                .message()
                .find("[cache] size: expected a size"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string("[cache]\nstage_timeout = \"soon\"\n") + kMinimal)
                .message()
                .find("[cache] stage_timeout: \"soon\" is not a duration"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "writable = \"incoming\"\n")
                .message()
                .find("writable: expected an array of strings"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "allow_delete = \"yes\"\n")
                .message()
                .find("allow_delete: expected true or false"),
            std::string::npos);
}

TEST(ConfigTest, MissingRootAndType) {
  Status s = ErrorOf("[[backend]]\nname = \"vault\"\ntype = \"posix\"\n");
  EXPECT_NE(s.message().find("root: missing required key for type posix"), std::string::npos)
      << s.message();
  s = ErrorOf("[[backend]]\nname = \"vault\"\n");
  EXPECT_NE(s.message().find("type: missing required key"), std::string::npos) << s.message();
  s = ErrorOf("[[backend]]\nname = \"vault\"\ntype = \"ftp\"\n");
  EXPECT_NE(s.message().find("unknown backend type \"ftp\""), std::string::npos) << s.message();
}

TEST(ConfigTest, NoBackendsAndDuplicates) {
  EXPECT_NE(ErrorOf("[cache]\nsize = \"1G\"\n").message().find("no [[backend]] is configured"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + kMinimal).message().find("\"vault\" is used twice"),
            std::string::npos);
  EXPECT_NE(ErrorOf("[[backend]]\nname = \"a/b\"\ntype = \"posix\"\nroot = \"/x\"\n")
                .message()
                .find("plain directory name"),
            std::string::npos);
}

TEST(ConfigTest, WritableMustStayInsideTheBackend) {
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "writable = [\"../etc\"]\n").message().find(".."),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "writable = [\"/abs\"]\n").message().find("relative"),
            std::string::npos);
}

TEST(ConfigTest, SyntaxErrorNamesLine) {
  Status s = ErrorOf("[cache\nsize = 1\n");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("/etc/hsmfs/hsmfs.toml:1: ", 0), 0u) << s.message();
}

TEST(ConfigTest, UnreadableFiles) {
  auto missing = LoadConfig("/nonexistent/hsmfs.toml");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/hsmfs.toml"), std::string::npos);
  auto dir = LoadConfig("/tmp");
  EXPECT_EQ(dir.status().code(), Code::kInvalidArgument);
}

TEST(ConfigTest, RenderRoundTrips) {
  auto c =
      ParseConfig(std::string(kMinimal) + "writable = [\"in\"]\nstage_delay = \"250ms\"\n", kFile);
  ASSERT_TRUE(c.ok());
  const std::string text = RenderConfig(*c);
  auto again = ParseConfig(text, kFile);
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << text;
  EXPECT_EQ(again->cache.size, c->cache.size);
  EXPECT_EQ(again->mount.list_ttl, c->mount.list_ttl);
  EXPECT_EQ(again->backends[0].stage_delay, Duration(250ms));
  EXPECT_EQ(again->backends[0].writable, c->backends[0].writable);
  EXPECT_EQ(again->catalog.path, c->catalog.path);
}

TEST(ConfigTest, OwnerAndModeKeys) {
  auto c = ParseConfig(std::string(kMinimal) +
                           "uid = 1234\ngid = \"root\"\nfile_mode = \"0640\"\ndir_mode = 0o2750\n",
                       kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backends[0].uid, 1234);
  EXPECT_EQ(c->backends[0].gid, 0);
  EXPECT_EQ(c->backends[0].file_mode, 0640);
  EXPECT_EQ(c->backends[0].dir_mode, 02750);
  const std::string text = RenderConfig(*c);
  EXPECT_NE(text.find("file_mode = \"0640\""), std::string::npos) << text;
  EXPECT_NE(text.find("dir_mode = \"2750\""), std::string::npos) << text;
  auto again = ParseConfig(text, kFile);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->backends[0].dir_mode, 02750);
  EXPECT_EQ(again->backends[0].uid, 1234);
  // Defaults: unset (the mount's user and group, the backend's own bits).
  auto d = ParseConfig(kMinimal, kFile);
  EXPECT_EQ(d->backends[0].uid, -1);
  EXPECT_EQ(d->backends[0].file_mode, -1);
  const std::pair<std::string, std::string> cases[] = {
      {"uid = -1\n", "uid: must be a user id between 0 and 4294967294"},
      {"gid = 4294967295\n", "gid: must be a group id between 0 and 4294967294"},
      {"uid = \"no-such-user-hsmfs\"\n", "uid: no user \"no-such-user-hsmfs\" on this host"},
      {"gid = true\n", "gid: expected a group id or name"},
      {"file_mode = 644\n", "file_mode: expected octal permission bits"},
      {"file_mode = \"0984\"\n", "file_mode: expected octal permission bits"},
      {"dir_mode = \"17777\"\n", "dir_mode: expected octal permission bits"},
      {"dir_mode = 0o17777\n", "dir_mode: expected octal permission bits"},
  };
  for (const auto& [extra, want] : cases) {
    Status s = ErrorOf(std::string(kMinimal) + extra);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << extra;
    EXPECT_NE(s.message().find(want), std::string::npos) << extra << ": " << s.message();
  }
}

constexpr char kIrods[] = R"(
[[backend]]
name = "irods"
type = "irods"
host = "127.0.0.1"
zone = "tempZone"
user = "rods"
password_file = "irodsA"
)";

TEST(ConfigTest, IrodsDefaultsAndRoot) {
  auto c = ParseConfig(kIrods, kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const BackendConfig& b = c->backends[0];
  EXPECT_EQ(b.root, "/tempZone/home/rods");
  EXPECT_EQ(b.port, 1247);
  EXPECT_EQ(b.password_file, "/etc/hsmfs/irodsA");
  EXPECT_EQ(b.tls, "dont_care");
  EXPECT_EQ(b.dmf_lookup, "avu");
  EXPECT_EQ(b.dmf_attr, "SURF-DMF");
  EXPECT_EQ(b.stage_rule, "msiDmfStage");
  EXPECT_EQ(b.offline_codes, (std::vector<int>{-1089000, -1101000}));
  c = ParseConfig(std::string(kIrods) +
                      "root = \"/tempZone/archive/\"\noffline_codes = [-1]\ntls = \"require\"\n",
                  kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backends[0].root, "/tempZone/archive");
  EXPECT_EQ(c->backends[0].offline_codes, std::vector<int>{-1});
  EXPECT_EQ(c->backends[0].tls, "require");
}

TEST(ConfigTest, IrodsBadKeysAreNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"root = \"rel/coll\"\n", "root: must be an absolute iRODS collection path"},
      {"password = \"x\"\n", "exactly one of password_file"},
      {"tls = \"maybe\"\n", "tls: unknown value \"maybe\" (use none, refuse, dont_care, require)"},
      {"auth = \"pam\"\n", "auth: unknown value \"pam\""},
      {"port = 70000\n", "port: must be between 1 and 65535"},
      {"offline_codes = [5]\n", "offline_codes: expected an array of negative integers"},
      {"stage_rule = \"x; y\"\n", "stage_rule: must be a microservice or rule name"},
      {"dmf_lookup = \"rule\"\ndmf_state_rule = \"\"\n", "dmf_state_rule: must not be empty"},
      {"io_timeout = \"0s\"\n", "io_timeout: must be positive"},
      {"colour = 1\n", "colour: unknown key"},
  };
  for (const auto& [extra, want] : cases) {
    Status s = ErrorOf(std::string(kIrods) + extra);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << extra;
    EXPECT_NE(s.message().find(want), std::string::npos) << extra << ": " << s.message();
  }
  Status s = ErrorOf("[[backend]]\nname = \"i\"\ntype = \"irods\"\nhost = \"h\"\nuser = \"u\"\n");
  EXPECT_NE(s.message().find("zone: missing required key for type irods"), std::string::npos)
      << s.message();
}

TEST(ConfigTest, IrodsPasswordIsNeverRendered) {
  auto c = ParseConfig(R"(
[[backend]]
name = "irods"
type = "irods"
host = "127.0.0.1"
zone = "tempZone"
user = "rods"
password = "s3cret-pw"
)",
                       kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backends[0].password, "s3cret-pw");
  const std::string text = RenderConfig(*c);
  EXPECT_EQ(text.find("s3cret-pw"), std::string::npos) << text;
  EXPECT_NE(text.find("password = \"(set)\""), std::string::npos) << text;
}

TEST(ConfigTest, TapeUnitKeys) {
  auto c = ParseConfig(R"(
[[backend]]
name = "tape"
type = "tape"
library = "vtl:lib"
writable = ["incoming"]
unit_size = "1GiB"
unit_quiet = "2s"
)",
                       kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backends[0].unit_size, uint64_t{1} << 30);
  EXPECT_EQ(c->backends[0].unit_quiet, Duration(2s));
  EXPECT_EQ(c->backends[0].archive_workers, 64);
  EXPECT_EQ(c->backends[0].writable, std::vector<std::string>{"incoming"});
}

TEST(ConfigTest, WritablePaths) {
  BackendConfig b;
  b.writable = {"incoming", "a/b"};
  EXPECT_TRUE(IsWritablePath(b, "incoming"));
  EXPECT_TRUE(IsWritablePath(b, "incoming/x/y"));
  EXPECT_FALSE(IsWritablePath(b, "incomingx"));
  EXPECT_FALSE(IsWritablePath(b, ""));
  EXPECT_TRUE(IsWritablePath(b, "a/b/c"));
  EXPECT_FALSE(IsWritablePath(b, "a"));
  b.writable = {""};
  EXPECT_TRUE(IsWritablePath(b, "anything"));
}

// A fresh directory under the system temp dir, removed with the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// `[catalog]`, `[cache]` and `[log]` at the given places, one posix backend at `root`.
std::string Layout(std::string_view catalog, std::string_view cache, std::string_view log,
                   std::string_view root) {
  return "[catalog]\npath = \"" + std::string(catalog) + "\"\n[cache]\ndir = \"" +
         std::string(cache) + "\"\n[log]\nfile = \"" + std::string(log) +
         "\"\n[[backend]]\nname = \"vault\"\ntype = \"posix\"\nroot = \"" + std::string(root) +
         "\"\n";
}

TEST(ConfigPathsTest, CacheDirEqualToABackendRootIsRefused) {
  Status s = ErrorOf(Layout("/w/catalog.db", "/w/vault", "/w/hsmfs.log", "/w/vault"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "/etc/hsmfs/hsmfs.toml:10: [[backend]] \"vault\" root: /w/vault is also [cache] dir "
            "(/w/vault); they must be kept apart");
}

TEST(ConfigPathsTest, OverlapsAreRefusedNamingTheKey) {
  const struct {
    std::string text;
    std::string want;
  } cases[] = {
      // One inside the other, either way round.
      {Layout("/w/catalog.db", "/w/vault/cache", "/w/hsmfs.log", "/w/vault"),
       "root: /w/vault contains [cache] dir (/w/vault/cache)"},
      {Layout("/c/catalog.db", "/w", "/c/hsmfs.log", "/w/vault"),
       "root: /w/vault lies inside [cache] dir (/w)"},
      {Layout("/w/catalog.db", "/w", "/var/log/hsmfs.log", "/w/vault"),
       "[cache] dir: /w contains [catalog] path (/w/catalog.db)"},
      {Layout("/w/vault/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault"),
       "root: /w/vault contains [catalog] path (/w/vault/catalog.db)"},
      {Layout("/w/cache/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault"),
       "[cache] dir: /w/cache contains [catalog] path (/w/cache/catalog.db)"},
      {Layout("/w/catalog.db", "/w/cache", "/w/cache/hsmfs.log", "/w/vault"),
       "[log] file: /w/cache/hsmfs.log lies inside [cache] dir (/w/cache)"},
      {Layout("/w/x", "/w/cache", "/w/x", "/w/vault"), "[log] file: /w/x is also [catalog] path"},
      // A root of "/" holds everything else.
      {Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/"), "root: / contains [catalog] path"},
      {Layout("/w/catalog.db", "/", "/w/hsmfs.log", "/w/vault"),
       "[cache] dir: / contains [catalog] path"},
      // Two posix backends over one tree.
      {Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault") +
           "[[backend]]\nname = \"v2\"\ntype = \"posix\"\nroot = \"/w/vault/sub\"\n",
       "[[backend]] \"v2\" root: /w/vault/sub lies inside [[backend]] \"vault\" root (/w/vault)"},
      // A tape library's directory is rewritten in place, like a root.
      {Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault") +
           "[[backend]]\nname = \"t\"\ntype = \"tape\"\nlibrary = \"vtl:/w/cache/lib\"\n",
       "[[backend]] \"t\" library: /w/cache/lib lies inside [cache] dir (/w/cache)"},
      {Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault") +
           "[[backend]]\nname = \"t\"\ntype = \"tape\"\nlibrary = \"vtl:/w/lib\"\n"
           "tape_catalog = \"/w/vault/tape.db\"\n",
       "tape_catalog: /w/vault/tape.db lies inside [[backend]] \"vault\" root"},
      // Lexically different, the same place: "/w/./vault/" is /w/vault.
      {Layout("/w/catalog.db", "/w/./vault/", "/w/hsmfs.log", "/w/vault"),
       "root: /w/vault is also [cache] dir"},
  };
  for (const auto& c : cases) {
    Status s = ErrorOf(c.text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.text;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << c.want << "\n got: " << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  }
}

TEST(ConfigPathsTest, DefaultsAndSharedCatalogsAreNotOverlaps) {
  // The tape tables in the hsmfs catalog (its default), and two tape backends
  // with drives of one library.
  auto c =
      ParseConfig(Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault") +
                      "[[backend]]\nname = \"t0\"\ntype = \"tape\"\nlibrary = \"vtl:/w/lib#0\"\n"
                      "[[backend]]\nname = \"t1\"\ntype = \"tape\"\nlibrary = \"vtl:/w/lib#1\"\n"
                      "tape_catalog = \"/w/catalog.db\"\n",
                  kFile);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  // Names that share a prefix are apart: /w/vault2 is not inside /w/vault.
  c = ParseConfig(Layout("/w/catalog.db", "/w/vault2", "/w/vault.log", "/w/vault"), kFile);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

TEST(ConfigPathsTest, AMountpointOverlappingAPathIsRefused) {
  auto c = ParseConfig(Layout("/w/catalog.db", "/w/cache", "/w/hsmfs.log", "/w/vault"), kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::pair<std::string, std::string> cases[] = {
      {"/w/vault", "mountpoint /w/vault is [[backend]] \"vault\" root (/w/vault)"},
      {"/w/vault/sub/", "mountpoint /w/vault/sub/ lies inside [[backend]] \"vault\" root"},
      {"/w/cache/mnt", "lies inside [cache] dir"},
      {"/w", "mountpoint /w contains [catalog] path (/w/catalog.db)"},
  };
  for (const auto& [mnt, want] : cases) {
    Status s = CheckMountpoint(*c, mnt);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << mnt;
    EXPECT_NE(s.message().find(want), std::string::npos) << want << "\n got: " << s.message();
  }
  EXPECT_TRUE(CheckMountpoint(*c, "/w/mnt").ok());
  EXPECT_TRUE(CheckMountpoint(*c, "/w/vault2").ok());
}

TEST(ConfigPathsTest, ASymlinkToTheRootIsTheRoot) {
  TempDir tmp;
  const auto root = tmp.path() / "vault";
  std::filesystem::create_directory(root);
  std::filesystem::create_directory_symlink(root, tmp.path() / "cache");
  Status s = ErrorOf(Layout((tmp.path() / "catalog.db").string(), (tmp.path() / "cache").string(),
                            (tmp.path() / "hsmfs.log").string(), root.string()));
  EXPECT_NE(s.message().find("root: " + root.string() + " is also [cache] dir"), std::string::npos)
      << s.message();
}

TEST(ConfigPathsTest, NulBytesAreRefused) {
  const std::pair<std::string, std::string> cases[] = {
      {"[cache]\ndir = \"\\u0000\"\n", "[cache] dir: must not contain a NUL byte"},
      {"[cache]\ndir = \"cache\\u0000x\"\n", "[cache] dir: must not contain a NUL byte"},
      {"[catalog]\npath = \"\\u0000\"\n", "[catalog] path: must not contain a NUL byte"},
      {"[log]\nfile = \"a\\u0000\"\n", "[log] file: must not contain a NUL byte"},
  };
  for (const auto& [text, want] : cases) {
    Status s = ErrorOf(text + kMinimal);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\0'), std::string::npos);
  }
  Status s = ErrorOf("[[backend]]\nname = \"v\"\ntype = \"posix\"\nroot = \"/srv\\u0000\"\n");
  EXPECT_NE(s.message().find("root: must not contain a NUL byte"), std::string::npos)
      << s.message();
  s = ErrorOf(std::string(kMinimal) + "writable = [\"in\\u0000coming\"]\n");
  EXPECT_NE(s.message().find("writable: must not contain a NUL byte"), std::string::npos)
      << s.message();
  // An unknown key with a NUL in its name is named with the NUL escaped.
  s = ErrorOf(std::string("[cache]\n\"si\\u0000ze\" = 1\n") + kMinimal);
  EXPECT_NE(s.message().find("si\\x00ze: unknown key"), std::string::npos) << s.message();
}

TEST(ConfigPathsTest, WritableMustNameADirectoryInsideTheBackend) {
  for (const char* w : {"/", "", ".", "./", "..", "../x", "a/../b", "a/..", "/abs", "//"}) {
    Status s = ErrorOf(std::string(kMinimal) + "writable = [\"" + w + "\"]\n");
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << w;
    EXPECT_NE(s.message().find("[[backend]] \"vault\" writable: \"" + std::string(w) + "\""),
              std::string::npos)
        << w << ": " << s.message();
  }
  auto c = ParseConfig(std::string(kMinimal) + "writable = [\"./in/\", \"a//b\"]\n", kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backends[0].writable, (std::vector<std::string>{"in", "a/b"}));
}

TEST(ConfigPathsTest, ACatalogThatIsNotARegularFileIsRefused) {
  Status s = ErrorOf(std::string("[catalog]\npath = \"/dev/null\"\n") + kMinimal);
  EXPECT_EQ(s.message(),
            "/etc/hsmfs/hsmfs.toml:2: [catalog] path: /dev/null is not a regular file");
  s = ErrorOf(std::string("[catalog]\npath = \"/tmp\"\n") + kMinimal);
  EXPECT_NE(s.message().find("[catalog] path: /tmp is not a regular file"), std::string::npos)
      << s.message();
  s = ErrorOf(
      "[[backend]]\nname = \"t\"\ntype = \"tape\"\nlibrary = \"vtl:/w/lib\"\n"
      "tape_catalog = \"/dev/zero\"\n");
  EXPECT_NE(s.message().find("tape_catalog: /dev/zero is not a regular file"), std::string::npos)
      << s.message();
  s = ErrorOf(std::string(kIrods) + "ca_file = \"/dev/null\"\n");
  EXPECT_NE(s.message().find("\"irods\" ca_file: /dev/null is not a regular file"),
            std::string::npos)
      << s.message();
  s = ErrorOf(std::string("[cache]\ndir = \"/dev/null\"\n") + kMinimal);
  EXPECT_NE(s.message().find("[cache] dir: /dev/null is not a directory"), std::string::npos)
      << s.message();
}

TEST(ConfigNumbersTest, OutOfRangeNumbersAreOneLineErrors) {
  const std::string digits400(400, '9');
  const std::pair<std::string, std::string> cases[] = {
      {"[cache]\nsize = \"" + digits400 + "\"\n", "[cache] size: size \"99999"},
      {"[cache]\nsize = \"" + digits400 + "GiB\"\n", "is too large (at most 1024PiB)"},
      {"[cache]\nsize = \"0." + digits400 + "\"\n", ""},  // a fraction of a byte: fine
      {"[cache]\nstage_timeout = \"" + digits400 + "\"\n", "is too long (at most 3650d)"},
      {"[cache]\nstage_timeout = \"" + digits400 + "ms\"\n", "is too long (at most 3650d)"},
      {"[cache]\nstage_timeout = 10000000000\n",
       "[cache] stage_timeout: is too long (at most 3650d)"},
      {"[cache]\nstage_timeout = 9223372036854775807\n", "stage_timeout: is too long"},
      {"[cache]\nsize = 9223372036854775807\n", "[cache] size: is too large (at most 1024PiB)"},
      {"[cache]\nsize = -1\n", "[cache] size: must not be negative"},
      {"[mount]\nlist_ttl = -1\n", "[mount] list_ttl: must not be negative"},
      {"[archive]\nretry_delay = \"3651d\"\n", "is too long (at most 3650d)"},
      {"[archive]\nretry_delay = \"3649d24h1s\"\n", "is too long (at most 3650d)"},
      {"[archive]\nworkers = 9223372036854775807\n", "workers: must be between 1 and 1024"},
  };
  for (const auto& [text, want] : cases) {
    auto c = ParseConfig(text + kMinimal, kFile);
    if (want.empty()) {
      EXPECT_TRUE(c.ok()) << text << ": " << c.status().ToString();
      continue;
    }
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
    EXPECT_NE(c.status().message().find(want), std::string::npos)
        << want << "\n got: " << c.status().message();
    // The value is quoted shortened, not 400 digits long.
    EXPECT_LT(c.status().message().size(), 200u) << c.status().message();
  }
  // The largest values are accepted and read back from --print-config.
  auto c = ParseConfig(std::string("[cache]\nsize = \"1024PiB\"\nstage_timeout = \"3650d\"\n") +
                           "[archive]\nretry_delay = 315360000\n" + kMinimal,
                       kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cache.size, uint64_t{1} << 60);
  EXPECT_EQ(c->cache.stage_timeout, Duration(std::chrono::hours(24 * 3650)));
  const std::string text = RenderConfig(*c);
  EXPECT_NE(text.find("stage_timeout = \"3650d\""), std::string::npos) << text;
  auto again = ParseConfig(text, kFile);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->archive.retry_delay, c->archive.retry_delay);
}

TEST(ConfigFileTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  TempDir tmp;
  const auto fifo = tmp.path() / "hsmfs.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without O_NONBLOCK the open would wait here for a writer, forever.
  auto c = LoadConfig(fifo);
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(c.status().message(), fifo.string() + ": is not a regular file (a config must be one)");
  auto dev = LoadConfig("/dev/zero");
  EXPECT_EQ(dev.status().code(), Code::kInvalidArgument);
}

TEST(ConfigTest, ArchiveRetryHorizon) {
  auto c = ParseConfig(kMinimal, kFile);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->archive.retry_horizon, Duration(6h));
  c = ParseConfig(std::string("[archive]\nretry_horizon = \"30m\"\n") + kMinimal, kFile);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->archive.retry_horizon, Duration(30min));
  EXPECT_NE(RenderConfig(*c).find("retry_horizon = \"30m\""), std::string::npos);
  EXPECT_NE(ErrorOf(std::string("[archive]\nretry_horizon = \"9000h\"\n") + kMinimal)
                .message()
                .find("[archive] retry_horizon: must be at most a year"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string("[archive]\nretry_horizon = \"later\"\n") + kMinimal)
                .message()
                .find("[archive] retry_horizon: \"later\" is not a duration"),
            std::string::npos);
}

}  // namespace
}  // namespace hsmfs
