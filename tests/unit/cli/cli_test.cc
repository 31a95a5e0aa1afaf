#include <gtest/gtest.h>

#include "cli/names.h"
#include "cli/paths.h"
#include "cli/progress.h"

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

TEST(PathsTest, ArchivePathsAreNormalised) {
  EXPECT_EQ(*ToCatalogPath("vault//act6/./run42/"), "vault/act6/run42");
  EXPECT_EQ(*ToCatalogPath("vault/act6/../incoming/"), "vault/incoming");
  EXPECT_EQ(*ToCatalogPath("vault/.."), "");
  auto above = ToCatalogPath("vault/../../x");
  ASSERT_FALSE(above.ok());
  EXPECT_EQ(above.status().code(), Code::kInvalidArgument);
}

TEST(NamesTest, ControlCharactersAreEscapedLikeLsB) {
  EXPECT_EQ(EscapeName("plain name.dat"), "plain name.dat");
  EXPECT_EQ(EscapeName("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeName("\x1b[31mred"), "\\e[31mred");
  EXPECT_EQ(EscapeName("tab\there\x01\x7f"), "tab\\there\\001\\177");
  EXPECT_EQ(EscapeName("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeName("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 stays
  EXPECT_EQ(EscapeName("caf\xe9"), "caf\\351");         // Latin-1 does not
}

TEST(NamesTest, JsonKeepsEveryByteReversibly) {
  const nlohmann::json v = {{"path", "vault/caf\xe9"},
                            {"ok", "caf\xc3\xa9"},
                            {"plane16", "\xf4\x8f\xbc\x80"},
                            {"list", {"\xff"}}};
  const std::string text = DumpJson(v);
  // Invalid bytes (and our sentinel range) as lone surrogates \udcXX.
  EXPECT_NE(text.find("\"vault/caf\\udce9\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"caf\xc3\xa9\""), std::string::npos) << text;
  EXPECT_NE(text.find("\\udcf4\\udc8f\\udcbc\\udc80"), std::string::npos) << text;
  EXPECT_NE(text.find("[\"\\udcff\"]"), std::string::npos) << text;
  // Python's json.load reads lone surrogates and os.fsencode gives the bytes
  // back; tests/integration/test_cli_paths.sh checks that end to end.
}

}  // namespace
}  // namespace hsmfs::cli
