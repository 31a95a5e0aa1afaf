// [[backend]] type = "hpss": keys, defaults, errors, --print-config, registry.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backends/hpss/hpss_backend.h"
#include "backends/registry.h"
#include "common/config.h"

namespace hsmfs {
namespace {

Result<Config> Parse(const std::string& backend) {
  return ParseConfig("[[backend]]\nname = \"hpss\"\ntype = \"hpss\"\n" + backend,
                     "/etc/hsmfs/hsmfs.toml");
}

TEST(HpssConfigTest, DefaultsFromHpssDir) {
  ::setenv("HPSS_DIR", "/opt/hpss", 1);
  auto c = Parse("root = \"/home/e/elvis/\"\n");
  ::unsetenv("HPSS_DIR");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const BackendConfig& b = c->backends[0];
  EXPECT_EQ(b.root, "/home/e/elvis");
  EXPECT_EQ(b.hsi, "/opt/hpss/bin/hsi");
  EXPECT_EQ(b.htar, "/opt/hpss/bin/htar");
  EXPECT_EQ(b.command_timeout, std::chrono::hours(1));
  EXPECT_EQ(b.session_idle, std::chrono::minutes(5));
  EXPECT_FALSE(b.checksum);
  EXPECT_TRUE(b.hsi_args.empty());
}

TEST(HpssConfigTest, DefaultsFromPathWithoutHpssDir) {
  ::unsetenv("HPSS_DIR");
  auto c = Parse("root = \"/home/e/elvis\"\n");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->backends[0].hsi, "hsi");
  EXPECT_EQ(c->backends[0].htar, "htar");
}

TEST(HpssConfigTest, AllKeys) {
  auto c = Parse(
      "root = \"/home/e/elvis\"\nhsi = \"bin/hsi\"\nhtar = \"htar-8\"\n"
      "hsi_args = [\"-s\", \"archive\"]\ncommand_timeout = \"20m\"\nsession_idle = \"30s\"\n"
      "checksum = true\nwritable = [\"incoming\"]\nallow_delete = true\nstage_workers = 1\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const BackendConfig& b = c->backends[0];
  EXPECT_EQ(b.hsi, "/etc/hsmfs/bin/hsi");  // a path is relative to the config file
  EXPECT_EQ(b.htar, "htar-8");             // a bare name is searched in $PATH
  EXPECT_EQ(b.hsi_args, (std::vector<std::string>{"-s", "archive"}));
  EXPECT_EQ(b.command_timeout, std::chrono::minutes(20));
  EXPECT_EQ(b.session_idle, std::chrono::seconds(30));
  EXPECT_TRUE(b.checksum);
  EXPECT_TRUE(IsWritablePath(b, "incoming/x"));
  EXPECT_EQ(b.stage_workers, 1);
}

TEST(HpssConfigTest, Errors) {
  const auto message = [](const Result<Config>& c) { return c.status().message(); };
  auto missing = Parse("");
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_NE(message(missing).find("root: missing required key for type hpss"), std::string::npos);
  auto relative = Parse("root = \"home/elvis\"\n");
  EXPECT_NE(message(relative).find("must be an absolute HPSS path"), std::string::npos);
  auto unknown = Parse("root = \"/h\"\nstage_delay = \"1s\"\n");
  EXPECT_NE(message(unknown).find("stage_delay: unknown key"), std::string::npos)
      << message(unknown);
  auto typo = Parse("root = \"/h\"\nchecksums = true\n");
  EXPECT_NE(message(typo).find(":5: [[backend]] \"hpss\" checksums: unknown key"),
            std::string::npos)
      << message(typo);
  EXPECT_NE(message(Parse("root = \"/h\"\nchecksum = \"yes\"\n")).find("expected true or false"),
            std::string::npos);
  EXPECT_NE(message(Parse("root = \"/h\"\ncommand_timeout = \"0s\"\n")).find("must be positive"),
            std::string::npos);
  // Posix keeps refusing hpss keys.
  auto posix = ParseConfig(
      "[[backend]]\nname = \"v\"\ntype = \"posix\"\nroot = \"/r\"\n"
      "hsi = \"/x\"\n",
      "/etc/hsmfs/hsmfs.toml");
  EXPECT_NE(posix.status().message().find("hsi: unknown key"), std::string::npos);
}

TEST(HpssConfigTest, PrintConfigShowsEveryHpssKeyAndRoundTrips) {
  auto c = Parse("root = \"/home/e/elvis\"\nhsi = \"/opt/hpss/bin/hsi\"\nchecksum = true\n");
  ASSERT_TRUE(c.ok());
  const std::string text = RenderConfig(*c);
  for (const char* key :
       {"root = \"/home/e/elvis\"", "hsi = \"/opt/hpss/bin/hsi\"",
        "command_timeout = ", "session_idle = ", "checksum = true", "hsi_args = []"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << "\n" << text;
  }
  auto again = ParseConfig(text, "/etc/hsmfs/hsmfs.toml");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->backends[0].root, c->backends[0].root);
  EXPECT_EQ(again->backends[0].checksum, true);
}

TEST(HpssConfigTest, RegistryCreatesAnHpssBackend) {
  auto c = Parse("root = \"/home/e/elvis\"\n");
  ASSERT_TRUE(c.ok());
  auto b = backends::CreateBackend(c->backends[0], Clock::Real());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NE(dynamic_cast<backends::hpss::HpssBackend*>(b->get()), nullptr);
}

TEST(HpssConfigTest, BundleKeysAndTheirErrors) {
  const auto message = [](const Result<Config>& c) { return c.status().message(); };
  auto c = Parse(
      "root = \"/home/e/elvis\"\nbundle_rules = \"rules.json\"\nbundle_section = \"sky\"\n"
      "bundle_max_size = \"64GiB\"\nbundle_quiet = \"5m\"\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const BackendConfig& b = c->backends[0];
  EXPECT_EQ(b.bundle_rules, "/etc/hsmfs/rules.json");
  EXPECT_EQ(b.bundle_section, "sky");
  EXPECT_EQ(b.bundle_max_size, uint64_t{64} << 30);
  EXPECT_EQ(b.bundle_quiet, std::chrono::minutes(5));
  EXPECT_EQ(b.bundle_catalog, c->catalog.path);  // the index lives in the catalog
  EXPECT_EQ(b.bundle_spool, c->cache.dir / "tmp");
  EXPECT_EQ(b.archive_workers, 256);  // a bundle holds at most this many files
  const std::string text = RenderConfig(*c);
  EXPECT_NE(text.find("bundle_max_size = \"64GiB\""), std::string::npos) << text;

  EXPECT_NE(message(Parse("root = \"/h\"\nbundle_rules = \"r.json\"\n"))
                .find("bundle_section: is required when bundling"),
            std::string::npos);
  EXPECT_NE(message(Parse("root = \"/h\"\nbundle_section = \"s\"\n"))
                .find("bundle_rules: is required when bundling"),
            std::string::npos);
  EXPECT_NE(message(Parse("root = \"/h\"\nbundle_rules = \"r\"\nbundle_section = \"s\"\n"
                          "bundle_max_size = \"0\"\n"))
                .find("bundle_max_size: must be positive"),
            std::string::npos);
}

TEST(HpssConfigTest, RegistryLoadsTheBundleRulesAndNamesTheirProblems) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hsmfs_bundle_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto make = [&](const std::string& json, const std::string& root) {
    std::ofstream(dir / "rules.json") << json;
    auto c = Parse("root = \"" + root + "\"\nbundle_rules = \"" + (dir / "rules.json").string() +
                   "\"\nbundle_section = \"sky\"\n");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return backends::CreateBackend(c->backends[0], Clock::Real());
  };
  const std::string good =
      R"({"__config__": {"root": "/d", "hpss_root": "/home/e/elvis"},
          "sky": {"run1": {"run1/.*$": "run1.tar"}}})";
  EXPECT_TRUE(make(good, "/home/e/elvis").ok());
  EXPECT_TRUE(make(good, "/home/e").ok());
  auto outside = make(good, "/home/other");
  EXPECT_EQ(outside.status().code(), Code::kInvalidArgument);
  EXPECT_NE(outside.status().message().find("does not lie below root /home/other"),
            std::string::npos)
      << outside.status().ToString();
  auto bad_regex = make(
      R"({"__config__": {"root": "/d", "hpss_root": "/h"}, "sky": {"run1": {"run1/(.*$": "x.tar"}}})",
      "/h");
  EXPECT_EQ(bad_regex.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_regex.status().message().find("bundle_rules"), std::string::npos);
  auto no_section = make(R"({"__config__": {"root": "/d", "hpss_root": "/h"}})", "/h");
  EXPECT_EQ(no_section.status().code(), Code::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hsmfs
