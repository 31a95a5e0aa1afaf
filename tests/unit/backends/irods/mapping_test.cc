// The pure iRODS <-> hsmfs translations of backends/irods/mapping.h.

#include "backends/irods/mapping.h"

#include <gtest/gtest.h>

namespace hsmfs::irods {
namespace {

using backends::Residency;

TEST(IrodsMappingTest, DmfStatesToResidency) {
  for (const char* s : {"OFL", "UNM", "PAR"}) EXPECT_EQ(ResidencyOfDmfState(s), Residency::kTape);
  for (const char* s : {"REG", "MIG", "DUL", "NMG"}) {
    EXPECT_EQ(ResidencyOfDmfState(s), Residency::kDisk) << s;
  }
  for (const char* s : {"", "INV", "dul", "XYZ"}) {
    EXPECT_EQ(ResidencyOfDmfState(s), Residency::kUnknown) << s;
  }
}

TEST(IrodsMappingTest, Checksums) {
  // sha256("hello world\n") as iRODS writes it and as we do.
  EXPECT_EQ(HsmChecksum("sha2:qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc="),
            "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
  EXPECT_EQ(HsmChecksum("6F5902AC237024BDD0C176CB93063DC4"),
            "md5:6f5902ac237024bdd0c176cb93063dc4");
  EXPECT_EQ(HsmChecksum(""), "");
  // Not decodable as a sha256, or another scheme: kept as the server said.
  EXPECT_EQ(HsmChecksum("sha2:!!!"), "sha2:!!!");
  EXPECT_EQ(HsmChecksum("sha2:AAAA"), "sha2:AAAA");
  EXPECT_EQ(HsmChecksum("sha512:xyz"), "sha512:xyz");
}

TEST(IrodsMappingTest, Times) {
  EXPECT_EQ(IrodsTimeToNanos("01700000000"), 1'700'000'000'000'000'000);
  EXPECT_EQ(IrodsTimeToNanos(""), 0);
  EXPECT_EQ(IrodsTimeToNanos("12x"), 0);
  // Overflowed int64 nanoseconds (UB, an abort under UBSan) before.
  EXPECT_EQ(IrodsTimeToNanos("9223372036854775807"), 0);
  EXPECT_EQ(IrodsTimeToNanos("-9223372036854775807"), 0);
}

TEST(IrodsMappingTest, MtimeRecordedAtPut) {
  EXPECT_EQ(MtimeAvuValue(1'600'000'000'123'000'000, "01700000000"),
            "1600000000123000000 1700000000");
  // Shown while the object's modify time is the recorded one.
  EXPECT_EQ(ResolveMtime("1600000000123000000 1700000000", "01700000000"),
            1'600'000'000'123'000'000);
  // Changed since (someone else wrote it): the iRODS time.
  EXPECT_EQ(ResolveMtime("1600000000123000000 1700000000", "01700000005"),
            1'700'000'005'000'000'000);
  for (const char* bad : {"", "garbage", "12x 1700000000", "1600000000 "}) {
    EXPECT_EQ(ResolveMtime(bad, "01700000000"), 1'700'000'000'000'000'000) << bad;
  }
}

TEST(IrodsMappingTest, Conditions) {
  EXPECT_EQ(EqualsCondition("/z/home"), "= '/z/home'");
  EXPECT_EQ(InCondition({"a", "b c"}), "in ('a','b c')");
}

TEST(IrodsMappingTest, RuleTexts) {
  EXPECT_EQ(DmfRuleText("msiDmfStage", false),
            "@external\nhsmfs_dmf { msiDmfStage(*paths); *hsmfsLen = str(strlen(*paths)); }");
  EXPECT_EQ(DmfRuleText("msiGetDmfObject", true),
            "@external\nhsmfs_dmf { msiGetDmfObject(*paths, *out); *hsmfsLen = "
            "str(strlen(*paths)); }");
  // A full rule text is used as it is.
  EXPECT_EQ(DmfRuleText("site { dmget(*paths); }", false), "site { dmget(*paths); }");
  EXPECT_EQ(DmfRulePathsParam({"/z/a", "/z/b\"c", "/z/d\\e"}), "\"/z/a\n/z/b\\\"c\n/z/d\\\\e\"");
  // '*' and '$' would start a variable inside a rule string.
  EXPECT_EQ(DmfRulePathsParam({"/z/*x$y"}), "\"/z/\\*x\\$y\"");
  EXPECT_EQ(DmfRulePathsParam({}), "\"\"");
  EXPECT_EQ(DmfRulePathsLength({"/z/a", "/z/bc"}), 10u);
  EXPECT_EQ(DmfRulePathsLength({}), 0u);
}

// Undoes DmfRulePathsParam as the server's rule parser does: each literal,
// then their concatenation. Fails on a literal over kMaxRuleLiteral.
std::string EvalPathsParam(std::string_view expr) {
  std::string out;
  size_t i = 0;
  while (i < expr.size()) {
    if (expr[i] == ' ' || expr.substr(i, 2) == "++") {
      i += expr[i] == ' ' ? 1 : 2;
      continue;
    }
    EXPECT_EQ(expr[i], '"') << "at " << i;
    const size_t start = i++;
    while (i < expr.size() && expr[i] != '"') {
      if (expr[i] == '\\') ++i;
      out += expr[i++];
    }
    EXPECT_LE(i + 1 - start, kMaxRuleLiteral);
    ++i;
  }
  return out;
}

TEST(IrodsMappingTest, RulePathsStayUnderTheServersTokenLimit) {
  // 500 paths of about 110 bytes, some with characters that are escaped.
  std::vector<std::string> paths;
  std::string joined;
  for (int i = 0; i < 500; ++i) {
    std::string p = "/tempZone/home/rods/projects/climate-model-2026/ensemble_run_" +
                    std::to_string(i % 17) + "/output/\"quoted\"*$\\/timestep_" +
                    std::to_string(i) + ".nc";
    joined += (i > 0 ? "\n" : "") + p;
    paths.push_back(std::move(p));
  }
  const std::string expr = DmfRulePathsParam(paths);
  EXPECT_GT(expr.size(), 50 * kMaxRuleLiteral);
  EXPECT_EQ(EvalPathsParam(expr), joined);
  EXPECT_EQ(DmfRulePathsLength(paths), joined.size());
  // One path longer than a literal is split across two.
  const std::string long_path = "/z/" + std::string(2500, 'a');
  EXPECT_EQ(EvalPathsParam(DmfRulePathsParam({long_path})), long_path);
}

TEST(IrodsMappingTest, StateLines) {
  auto m = ParseDmfStateLines("OFL /z/a b\nDUL /z/c\r\n\nbad\n /z/x\nlower /z/y\nINV /z/gone");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m["/z/a b"], "OFL");
  EXPECT_EQ(m["/z/c"], "DUL");
  EXPECT_EQ(m["/z/gone"], "INV");
  EXPECT_TRUE(ParseDmfStateLines("").empty());
}

TEST(IrodsMappingTest, PathParts) {
  EXPECT_EQ(LastComponent("/z/a/b"), "b");
  EXPECT_EQ(LastComponent("/z"), "z");
  EXPECT_EQ(LastComponent(""), "");
  EXPECT_EQ(ParentCollection("/z/a/b"), "/z/a");
  EXPECT_EQ(ParentCollection("/z"), "/");
}

}  // namespace
}  // namespace hsmfs::irods
