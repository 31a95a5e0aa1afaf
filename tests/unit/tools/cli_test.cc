#include <gtest/gtest.h>

#include "tools/cli/paths.h"
#include "tools/cli/progress.h"

namespace hsmfs::cli {
namespace {

TEST(ProgressTest, RendersCountsRateAndEta) {
  Progress p("stage", "files");
  const std::string line = p.Render(5, 10, uint64_t{512} << 20, uint64_t{1} << 30, "", 10.0, true);
  EXPECT_NE(line.find("[############............]"), std::string::npos) << line;
  EXPECT_NE(line.find("5/10 files"), std::string::npos) << line;
  EXPECT_NE(line.find("512 MiB/1.0 GiB"), std::string::npos) << line;
  EXPECT_NE(line.find("51 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:10"), std::string::npos) << line;
}

TEST(ProgressTest, UnknownTotalsShowARate) {
  Progress p("sync vault", "entries");
  const std::string line = p.Render(20000, 0, 0, 0, "30 dirs", 2.0, true);
  EXPECT_EQ(line, "sync vault: 20,000 entries, 30 dirs, 10,000 entries/s");
}

TEST(ProgressTest, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(1234567), "1,234,567");
  EXPECT_EQ(Thousands(-1234), "-1,234");
}

TEST(PathsTest, ArchivePathsPassThrough) {
  EXPECT_EQ(*ToCatalogPath("vault/act6/"), "vault/act6");
  EXPECT_EQ(*ToCatalogPath("no-such-dir-here/x"), "no-such-dir-here/x");
}

TEST(PathsTest, LocalPathsOutsideAMountAreRejected) {
  auto r = ToCatalogPath("/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not inside an hsmfs mount"), std::string::npos);
}

}  // namespace
}  // namespace hsmfs::cli
