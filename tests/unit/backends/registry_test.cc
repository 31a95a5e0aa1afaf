#include "backends/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace hsmfs::backends {
namespace {

TEST(RegistryTest, EveryTypeRegistersItsParserRendererAndConstructor) {
  std::set<std::string_view> names;
  for (const BackendType* type : BackendTypes()) {
    SCOPED_TRACE(std::string(type->config.name));
    EXPECT_TRUE(names.insert(type->config.name).second) << "registered twice";
    EXPECT_NE(type->config.parse, nullptr);
    EXPECT_NE(type->config.render, nullptr);
    EXPECT_NE(type->create, nullptr);
    EXPECT_EQ(FindBackendType(type->config.name), type);
    // common/config finds the same row.
    EXPECT_EQ(FindBackendConfigType(type->config.name), &type->config);
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"posix", "tape", "hpss", "irods"}));
  EXPECT_EQ(FindBackendType("nope"), nullptr);
  EXPECT_EQ(FindBackendConfigType("nope"), nullptr);
}

TEST(RegistryTest, TheUnknownTypeMessageListsTheRows) {
  EXPECT_EQ(BackendConfigTypeList(), "posix, tape, hpss or irods");
  auto c = ParseConfig("[[backend]]\nname = \"v\"\ntype = \"s3\"\n", "/etc/hsmfs/hsmfs.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "/etc/hsmfs/hsmfs.toml:3: [[backend]] \"v\" type: unknown backend type \"s3\" (use "
            "posix, tape, hpss or irods)");
}

TEST(RegistryTest, SymlinkSupportComesFromTheTypesRow) {
  BackendConfig b;
  for (const char* type : {"posix", "tape", "hpss"}) {
    b.type = type;
    EXPECT_TRUE(StoresSymlinks(b)) << type;
  }
  b.type = "irods";
  EXPECT_FALSE(StoresSymlinks(b));
  b.type = "nope";
  EXPECT_FALSE(StoresSymlinks(b));
}

TEST(RegistryTest, ATypeThisBuildLacksIsNotCreated) {
  BackendConfig b;
  b.name = "v";
  b.type = "s3";
  auto made = CreateBackend(b, Clock::Real());
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(made.status().message(), "backend \"v\": type \"s3\" is not available in this build");
}

TEST(RegistryTest, APosixBackendIsMadeByItsRowWithTheContextsClock) {
  BackendConfig b;
  b.name = "vault";
  b.type = "posix";
  b.root = ::testing::TempDir();
  BackendContext context{Clock::Real()};
  auto made = CreateBackend(b, context);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto root = (*made)->Stat("");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(root->type, ObjectType::kDir);
}

}  // namespace
}  // namespace hsmfs::backends
