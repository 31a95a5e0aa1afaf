#include "common/config.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hsmfs
