// Parsers of hsi/htar output, on golden files (tests/testdata/hpss).

#include "backends/hpss/hsi_output_parser.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

namespace hsmfs::backends::hpss {
namespace {

std::string Golden(const std::string& name) {
  std::ifstream in(std::string(HSMFS_SOURCE_DIR) + "/tests/testdata/hpss/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> GoldenLines(const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(Golden(name));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class HsiOutputParserTest : public ::testing::Test {
 protected:
  // hsi prints local time; pin the zone so the expected instants are fixed.
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    if (tz) saved_tz_ = tz;
    had_tz_ = tz != nullptr;
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  void TearDown() override {
    if (had_tz_) {
      ::setenv("TZ", saved_tz_.c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  std::string saved_tz_;
  bool had_tz_ = false;
};

constexpr int64_t kSec = 1'000'000'000;

TEST_F(HsiOutputParserTest, LsDRecursiveListing) {
  auto r = ParseLsD(Golden("ls_D_recursive.txt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 6u);
  const LsEntry& f = (*r)[0];
  EXPECT_EQ(f.dir, "/home/elvis/nova");
  EXPECT_EQ(f.name, "sn1987a");
  EXPECT_EQ(f.type, ObjectType::kFile);
  EXPECT_EQ(f.mode, 0644u);
  EXPECT_EQ(f.size, 9331200u);
  EXPECT_EQ(f.mtime_ns, 1285338255 * kSec);  // 2010-09-24 14:24:15 UTC
  EXPECT_EQ((*r)[1].type, ObjectType::kDir);
  EXPECT_EQ((*r)[1].name, "remnants");
  EXPECT_EQ((*r)[2].mode, 0640u);
  EXPECT_EQ((*r)[4].name, "light curve 2.txt");  // spaces survive
  EXPECT_EQ((*r)[4].size, 0u);
  EXPECT_EQ((*r)[4].mtime_ns, 1583020799 * kSec);  // leap day, 23:59:59
  EXPECT_EQ((*r)[5].dir, "/home/elvis/nova/remnants");
  EXPECT_EQ((*r)[5].name, "crab");
  EXPECT_EQ((*r)[5].mode, 05750u);  // s = setuid + x, T = sticky without x
}

TEST_F(HsiOutputParserTest, LsDSymlinkLinesGiveNameAndTarget) {
  auto r = ParseLsD(
      "lrwxrwxrwx    1 elvis     elvis                7 Fri Sep 24 14:24:15 2010 latest -> "
      "sn1987a\n"
      "lrwxrwxrwx    1 elvis     elvis               14 Fri Sep 24 14:24:15 2010 old run -> "
      "../runs/run 1\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE((*r)[0].is_link);
  EXPECT_EQ((*r)[0].name, "latest");
  EXPECT_EQ((*r)[0].link_target, "sn1987a");
  EXPECT_EQ((*r)[1].name, "old run");
  EXPECT_EQ((*r)[1].link_target, "../runs/run 1");
}

TEST_F(HsiOutputParserTest, LsDFollowsTheTimeZone) {
  ::setenv("TZ", "America/Los_Angeles", 1);
  ::tzset();
  auto r = ParseLsD("-rw-r--r--    1 u  g  1 Fri Sep 24 14:24:15 2010 x\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].mtime_ns, (1285338255 + 7 * 3600) * kSec);  // PDT is UTC-7
}

TEST_F(HsiOutputParserTest, LsDRejectsStrayLines) {
  auto r = ParseLsD("-rw-r--r--    1 u  g  1 Fri Sep 24 14:24:15 2010 x\nsomething odd\n");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("something odd"), std::string::npos);
  EXPECT_FALSE(ParseLsD("-rw-r--r--    1 u  g  12x Fri Sep 24 14:24:15 2010 x\n").ok());
}

TEST_F(HsiOutputParserTest, LsPTapeVolumesAndPositions) {
  auto r = ParseLsP(Golden("ls_P.txt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].path, "/home/elvis/nova/sn1987a");
  EXPECT_EQ((*r)[0].size, 9331200u);
  EXPECT_EQ((*r)[0].volume, "EM000000");
  EXPECT_EQ((*r)[0].section, 3);
  EXPECT_EQ((*r)[0].offset, 0);
  EXPECT_EQ((*r)[1].type, ObjectType::kDir);
  EXPECT_EQ((*r)[1].path, "/home/elvis/nova/remnants");
  EXPECT_EQ((*r)[2].path, "/home/elvis/nova/light curve 2.txt");
  EXPECT_EQ((*r)[2].volume, "BA019100");
  EXPECT_EQ((*r)[2].section, 4812);
  EXPECT_EQ((*r)[2].offset, 1536);
  EXPECT_FALSE(ParseLsP("FILE\t/x\t1\t1\tnotapos\tVOL\n").ok());
}

TEST_F(HsiOutputParserTest, ErrorLinesMapToCodes) {
  const Status enoent = HsiCommandStatus(GoldenLines("error_enoent.txt"), "stat x");
  EXPECT_EQ(enoent.code(), Code::kNotFound);
  EXPECT_NE(enoent.message().find("/home/elvis/nosuch"), std::string::npos);
  EXPECT_EQ(HsiCommandStatus(GoldenLines("error_enotempty.txt"), "rmdir").code(), Code::kNotEmpty);
  EXPECT_EQ(HsiCommandStatus(GoldenLines("error_eio.txt"), "get").code(), Code::kUnavailable);
  EXPECT_EQ(HsiCommandStatus({"*** hpss_Mkdir: File exists [-17: HPSS_EEXIST]"}, "m").code(),
            Code::kAlreadyExists);
  EXPECT_EQ(HsiCommandStatus({"*** hpss_Open: Permission denied [-13: HPSS_EACCES]"}, "g").code(),
            Code::kPermissionDenied);
  EXPECT_EQ(HsiCommandStatus({"*** get: Error -5 on transfer: hash mismatch"}, "g").code(),
            Code::kDataLoss);
  EXPECT_TRUE(HsiCommandStatus({"get  'a' : '/b' (2010/09/24 14:24:15 1 bytes)"}, "g").ok());
  EXPECT_TRUE(HsiSessionBroken({"*** hpss_Connect: connection refused [-50: HPSS_ECONN]"}));
  EXPECT_FALSE(HsiSessionBroken(GoldenLines("error_enoent.txt")));
}

TEST_F(HsiOutputParserTest, HtarListingSkipsTheConsistencyFile) {
  auto r = ParseHtarList(Golden("htar_t.txt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].name, "nova");
  EXPECT_EQ((*r)[0].type, ObjectType::kDir);
  EXPECT_EQ((*r)[1].name, "nova/sn1987a");
  EXPECT_EQ((*r)[1].size, 9331200u);
  EXPECT_EQ((*r)[1].mtime_ns, 1285338240 * kSec);  // minute precision
  EXPECT_EQ((*r)[2].name, "notes, draft.txt");
  EXPECT_EQ(ParseHtarList("HTAR: HTAR FAILED\n").status().code(), Code::kUnavailable);
}

TEST_F(HsiOutputParserTest, HtarExtractReportsMembers) {
  auto r = ParseHtarExtract(Golden("htar_xv.txt"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "nova/sn1987a");
  EXPECT_EQ((*r)[0].size, 9331200u);
  EXPECT_EQ(ParseHtarExtract(Golden("htar_x_missing.txt")).status().code(), Code::kNotFound);
  // Success claimed but no member named: an empty list the caller must reject.
  auto none = ParseHtarExtract("HTAR: HTAR SUCCESSFUL\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace hsmfs::backends::hpss
