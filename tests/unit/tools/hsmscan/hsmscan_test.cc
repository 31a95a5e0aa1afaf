#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "backends/hpss/hpss_backend.h"
#include "common/clock.h"
#include "tools/hsmscan/hpss_lister.h"
#include "tools/hsmscan/log.h"
#include "tools/hsmscan/missing.h"
#include "tools/hsmscan/plan.h"
#include "tools/hsmscan/process.h"
#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {
namespace {

std::string Sub(const std::string& pattern, const std::string& repl, const std::string& s) {
  auto re = PyRegex::Compile(pattern);
  EXPECT_TRUE(re.ok()) << re.status().ToString();
  auto t = (*re)->ParseTemplate(repl);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return (*re)->Sub(*t, s);
}

TEST(PyRegexTest, MatchIsAnchoredAtStartOnly) {
  auto re = PyRegex::Compile("d1/[^/]+\\.txt");
  ASSERT_TRUE(re.ok());
  EXPECT_TRUE((*re)->Match("d1/a.txt"));
  EXPECT_TRUE((*re)->Match("d1/a.txt.gz"));  // re.match does not anchor the end
  EXPECT_FALSE((*re)->Match("x/d1/a.txt"));
}

TEST(PyRegexTest, SubReplacesEveryMatchAndKeepsTheRest) {
  EXPECT_EQ(Sub("d1/([^/]+\\.txt)$", "d1/\\1", "d1/a.txt"), "d1/a.txt");
  EXPECT_EQ(Sub("foo/(.*)\\.fits", "foo/\\1.tar", "foo/a.fits.gz"), "foo/a.tar.gz");
  EXPECT_EQ(Sub("a", "b", "aXa"), "bXb");
  // Python 3.7+ empty-match rule: re.sub('x*', '-', 'abxd') == '-a-b--d-'.
  EXPECT_EQ(Sub("x*", "-", "abxd"), "-a-b--d-");
}

TEST(PyRegexTest, TemplateSyntaxIsPythons) {
  EXPECT_EQ(Sub("(?P<v>[a-z]+)/([0-9]+)", "\\g<v>_\\2_\\g<1>", "ab/12"), "ab_12_ab");
  EXPECT_EQ(Sub("(a)|(b)", "[\\2]", "a"), "[]");  // unmatched group -> ""
  EXPECT_EQ(Sub("(a)", "\\1\\n\\.", "a"), "a\n\\.");
  auto re = PyRegex::Compile("(a)");
  ASSERT_TRUE(re.ok());
  EXPECT_FALSE((*re)->ParseTemplate("\\2").ok());
  EXPECT_FALSE((*re)->ParseTemplate("\\q").ok());
  EXPECT_FALSE((*re)->ParseTemplate("\\g<nope>").ok());
}

TEST(PyRegexTest, PythonSpellingsAreTranslated) {
  auto re = PyRegex::Compile("x{,2}y\\Z");
  ASSERT_TRUE(re.ok());
  EXPECT_TRUE((*re)->Match("xxy"));
  EXPECT_FALSE((*re)->Match("xxxy"));
  EXPECT_FALSE((*re)->Match("xy\n"));  // \Z is the absolute end; $ would accept
  auto dollar = PyRegex::Compile("xy$");
  ASSERT_TRUE(dollar.ok());
  EXPECT_TRUE((*dollar)->Match("xy\n"));
  EXPECT_FALSE(PyRegex::Compile("a(b").ok());
}

constexpr const char* kConfig = R"({
  "__config__": {"root": "/r", "hpss_root": "/h", "physical_disks": ["r"]},
  "sec": {
    "__exclude__": ["README.html"],
    "__top__": {"[^/]+$": "sec_files.tar"},
    "d1": {
      "d1/batch/.*$": "d1/batch.tar",
      "d1/([^/]+\\.txt)$": "d1/\\1",
      "d1/templates/[^/]+$": "d1/templates/templates_files.tar",
      "d1/pre/.*$": "EXCLUDE",
      "d1/auto/.*$": "AUTOMATED",
      "d1/(both)/.*$": "d1/d1_\\1.tar",
      "d1/bo(th)/.*$": "d1/other.tar",
      "d1/never/.*$": "d1/never.tar"
    },
    "d2": {}
  },
  "other": {"__exclude__": [], "x": {"x/a$": "x.tar"}}
})";

TEST(ScanConfigTest, RulesKeepFileOrderAndKinds) {
  auto cfg = ParseScanConfig(kConfig, "c.json", "sec");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->root, "/r");
  const auto* d1 = cfg->rules.Find("d1");
  ASSERT_NE(d1, nullptr);
  ASSERT_EQ(d1->size(), 8u);
  EXPECT_EQ((*d1)[0].re->pattern(), "d1/batch/.*$");
  EXPECT_EQ((*d1)[3].kind, Rule::Kind::kExclude);
  EXPECT_EQ((*d1)[4].kind, Rule::Kind::kAutomated);
  EXPECT_EQ(cfg->rules.exclude.count("README.html"), 1u);
  EXPECT_EQ(MissingFinder::TargetFor(cfg->rules, "d1/notes.txt"), "d1/notes.txt");
  EXPECT_EQ(MissingFinder::TargetFor(cfg->rules, "d1/batch/x/y"), "d1/batch.tar");
  EXPECT_EQ(MissingFinder::TargetFor(cfg->rules, "top.txt"), "sec_files.tar");
  EXPECT_EQ(MissingFinder::TargetFor(cfg->rules, "d1/pre/a"), "");
}

TEST(ScanConfigTest, BadConfigsNameTheProblem) {
  auto bad_json = ParseScanConfig("{", "c.json", "sec");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.status().message().find("not valid JSON"), std::string::npos);
  auto no_config = ParseScanConfig(R"({"sec": {}})", "c.json", "sec");
  ASSERT_FALSE(no_config.ok());
  EXPECT_NE(no_config.status().message().find("__config__"), std::string::npos);
  std::string other_bad = kConfig;
  other_bad.replace(other_bad.find("x/a$"), 4, "x/(a");
  auto bad_re = ParseScanConfig(other_bad, "c.json", "sec");  // bad regex in another section
  ASSERT_FALSE(bad_re.ok());
  EXPECT_NE(bad_re.status().message().find("section 'other'"), std::string::npos);
  EXPECT_NE(bad_re.status().message().find("x/(a"), std::string::npos);
  EXPECT_FALSE(ParseScanConfig(kConfig, "c.json", "nosuch").ok());
  EXPECT_EQ(bad_re.status().code(), Code::kInvalidArgument);
}

TEST(ScanConfigTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  // Opening a FIFO for reading used to wait for a writer, forever.
  const std::filesystem::path fifo =
      std::filesystem::temp_directory_path() / ("hsmscan_test_fifo_" + std::to_string(::getpid()));
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto cfg = LoadScanConfig(fifo.string(), "sec");
  std::filesystem::remove(fifo);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), Code::kInvalidArgument);
  EXPECT_NE(cfg.status().message().find("is not a regular file"), std::string::npos)
      << cfg.status().message();
  EXPECT_NE(LoadScanConfig("/nonexistent/c.json", "sec").status().message().find("cannot be read"),
            std::string::npos);
}

TEST(MissingFinderTest, TestModeChecks) {
  auto cfg = ParseScanConfig(kConfig, "c.json", "sec");
  ASSERT_TRUE(cfg.ok());
  HpssIndex hpss;
  hpss["d1/batch.tar"] = {10, 1000};
  Log log(Level::kCritical);
  MissingFinder f(cfg->rules, hpss, log);
  uint64_t row = 0;
  f.Add("README.html", 1, 1, row++);      // __exclude__
  f.Add("top.txt", 5, 1, row++);          // __top__
  f.Add("d1/batch/a", 3, 999, row++);     // exists, older
  f.Add("d1/templates/t1", 7, 1, row++);  // _files.tar
  f.Add("d1/templates/t2", 8, 1, row++);
  f.Add("d1/pre/p", 1, 1, row++);       // EXCLUDE
  f.Add("d1/auto/q", 1, 1, row++);      // AUTOMATED
  f.Add("d1/both/z", 1, 1, row++);      // two rules
  f.Add("d1/unmapped/z", 1, 1, row++);  // no rule
  f.Add("d2/x", 1, 1, row++);           // empty key
  f.Add("d9/x", 1, 1, row++);           // undescribed key
  FindSummary s = f.Finish(1024);
  EXPECT_EQ(s.files, 11);
  EXPECT_EQ(s.excluded, 1);
  EXPECT_EQ(s.unmapped, 1);
  EXPECT_EQ(s.multiple, 1);
  EXPECT_EQ(s.undescribed, 2);
  EXPECT_EQ(s.unused_rules, 2);  // d1/never and the .txt rule
  std::vector<std::string> names;
  for (const Archive* a : s.missing) names.push_back(a->name);
  EXPECT_EQ(names, (std::vector<std::string>{"sec_files.tar", "d1/templates/templates_files.tar",
                                             "d1/d1_both.tar", "d1/other.tar"}));
  EXPECT_EQ(s.missing[1]->size, 15);
  EXPECT_EQ(s.missing[1]->rows, (std::vector<uint64_t>{3, 4}));
}

TEST(MissingFinderTest, NewerFileAndSizeLimit) {
  auto cfg = ParseScanConfig(kConfig, "c.json", "sec");
  ASSERT_TRUE(cfg.ok());
  HpssIndex hpss;
  hpss["d1/batch.tar"] = {10, 1000};
  Log log(Level::kCritical);
  MissingFinder f(cfg->rules, hpss, log);
  f.Add("d1/batch/a", 3, 999, 0);
  f.Add("d1/batch/b", 3, 1001, 1);  // newer than the archive
  f.Add("d1/big.txt", int64_t{2} << 30, 1, 2);
  FindSummary s = f.Finish(1.0);
  ASSERT_EQ(s.missing.size(), 1u);
  EXPECT_EQ(s.missing[0]->name, "d1/batch.tar");
  EXPECT_TRUE(s.missing[0]->newer);
  EXPECT_TRUE(s.missing[0]->exists);
  EXPECT_EQ(s.too_large, 1);
}

TEST(PlanTest, DirectoryNameExtraction) {
  EXPECT_EQ(ExtractDirectoryName("batch.tar"), "batch");
  EXPECT_EQ(ExtractDirectoryName("d1/batch.tar"), "batch");
  EXPECT_EQ(ExtractDirectoryName("d1/data_d1_batch.tar"), "batch");
  EXPECT_EQ(ExtractDirectoryName("d2/d2_my_dir.tar"), "my_dir");
  EXPECT_EQ(ExtractDirectoryName("d1/foo/ab/d1_foo_ab_xy.tar"), "xy");
  EXPECT_EQ(ExtractDirectoryName("d1/foo/ab/foo_ab_xy.tar"), "xy");
}

TEST(PlanTest, XWildcardFilesTarAndPut) {
  const std::string root = ::testing::TempDir() + "/hsmscan_plan";
  std::filesystem::remove_all(root);
  for (const char* d : {"d3/100", "d3/101", "d3/199", "d3/200", "d3/1xx_file"}) {
    std::filesystem::create_directories(root + "/" + d);
  }
  Planner p(root, "/h/sec");
  ArchivePlan x = p.Plan("d3/d3_1XX.tar", {"d3/100/a"});
  EXPECT_EQ(x.kind, ArchivePlan::Kind::kHtarDirectories);
  EXPECT_EQ(x.members, (std::vector<std::string>{"100", "101", "199"}));
  EXPECT_EQ(x.hpss_mkdir, "/h/sec/d3");
  ArchivePlan l = p.Plan("d3/d3_files.tar", {"d3/a", "d3/b"});
  EXPECT_EQ(l.kind, ArchivePlan::Kind::kHtarFileList);
  EXPECT_EQ(l.members, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(l.hpss_mkdir, "");  // created once
  ArchivePlan put = p.Plan("d3/readme.txt", {"d3/readme.txt"});
  EXPECT_EQ(put.kind, ArchivePlan::Kind::kPut);
  EXPECT_EQ(put.members.front(), root + "/d3/readme.txt");
  EXPECT_EQ(put.hpss_path, "/h/sec/d3/readme.txt");
  ArchivePlan none = p.Plan("d3/d3_nosuch.tar", {"d3/x"});
  EXPECT_FALSE(none.error.empty());
  std::filesystem::remove_all(root);
}

TEST(JsonTest, EscapesLikePythonJsonDumps) {
  std::string out;
  AppendJsonString(out, "a\"b\\c\n\x7f\xc3\xa9\xf0\x9f\x98\x80\xff");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u007f\\u00e9\\ud83d\\ude00\\udcff\"");
}

TEST(PhysicalDisksTest, HpssPyRules) {
  ScanConfig cfg;
  cfg.root = "/global/proj";
  EXPECT_EQ(PhysicalDisks("/global/proj/sec", cfg), (std::vector<std::string>{"/global/proj/sec"}));
  cfg.physical_disks = {"proj"};
  EXPECT_EQ(PhysicalDisks("/global/proj/sec", cfg), (std::vector<std::string>{"/global/proj/sec"}));
  cfg.physical_disks = {"proj", "proj2"};
  EXPECT_EQ(PhysicalDisks("/global/proj/sec", cfg),
            (std::vector<std::string>{"/global/proj/sec", "/global/proj2/sec"}));
  cfg.physical_disks = {"/d1", "/d2"};
  EXPECT_EQ(PhysicalDisks("/global/proj/sec", cfg),
            (std::vector<std::string>{"/d1/sec", "/d2/sec"}));
}

TEST(HpssListerTest, CacheEntriesAreHpssPysScanHpss) {
  backends::hpss::LsEntry e;
  e.dir = "/hpss/s/d1";
  e.name = "batch.tar";
  std::string name;
  ASSERT_TRUE(HpssCacheEntry(e, "/hpss/s", name));
  EXPECT_EQ(name, "d1/batch.tar");
  e.name = "batch.tar.idx";
  EXPECT_FALSE(HpssCacheEntry(e, "/hpss/s", name));
  e.name = "sub";
  e.type = backends::ObjectType::kDir;
  EXPECT_FALSE(HpssCacheEntry(e, "/hpss/s", name));
  e.type = backends::ObjectType::kFile;
  e.is_link = true;
  e.name = "l@";
  ASSERT_TRUE(HpssCacheEntry(e, "/hpss/s", name));
  EXPECT_EQ(name, "d1/l");
}

// Through the HPSS emulator (tests/emulators/hpss): the real hsi/htar formats.
class EmulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hsmscan-emu-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/hpss");
    ::setenv("HPSS_EMU_ROOT", (dir_ + "/hpss").c_str(), 1);
    ::setenv("HPSS_EMU_STATE", (dir_ + "/state").c_str(), 1);
    ::unsetenv("HPSS_EMU_FAULTS");
    const std::string emu = std::string(HSMFS_SOURCE_DIR) + "/tests/emulators/hpss/";
    backends::hpss::HpssOptions o;
    o.root = "/arch/sec";
    o.hsi = emu + "hsi";
    o.htar = emu + "htar";
    hpss_ = std::make_unique<backends::hpss::HpssBackend>(o, Clock::Real());
  }
  void TearDown() override {
    hpss_.reset();
    ::unsetenv("HPSS_EMU_FAULTS");
    std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& rel, size_t size) {
    const std::string p = dir_ + "/disk/" + rel;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    FILE* f = std::fopen(p.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (size_t i = 0; i < size; ++i) std::fputc('x', f);
    std::fclose(f);
  }
  std::string dir_;
  std::unique_ptr<backends::hpss::HpssBackend> hpss_;
  Log log_{Level::kCritical};
};

TEST_F(EmulatorTest, ProcessCreatesArchivesAndTheListerSeesThem) {
  Write("d/run1/a.fits", 10);
  Write("d/run1/sub/b.fits", 20);
  Write("d/run2/c.fits", 30);
  Write("d/t1.dat", 5);
  Write("d/t2.dat", 6);
  Write("d/note.txt", 7);
  Planner planner(dir_ + "/disk", "/arch/sec");
  ArchiveMaker maker(*hpss_, dir_, log_);
  const std::vector<std::string> runs = {"d/run1/a.fits", "d/run1/sub/b.fits", "d/run2/c.fits"};
  const std::vector<std::string> list = {"d/t1.dat", "d/t2.dat"};
  const std::vector<std::string> put = {"d/note.txt"};
  EXPECT_TRUE(maker.Make(planner.Plan("d/d_runX.tar", runs), runs).ok());
  EXPECT_TRUE(maker.Make(planner.Plan("d/d_files.tar", list), list).ok());
  EXPECT_TRUE(maker.Make(planner.Plan("d/note.txt", put), put).ok());

  // HPSSPy's hpss_files view: files only, no .idx, relative to the section.
  std::map<std::string, int64_t> seen;
  HsiHpssLister lister(*hpss_);
  ASSERT_TRUE(lister
                  .List("/arch/sec",
                        [&](const std::string& n, int64_t size, int64_t mtime) {
                          seen[n] = size;
                          EXPECT_GT(mtime, 1600000000);
                        })
                  .ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_GT(seen["d/d_runX.tar"], 60);
  EXPECT_GT(seen["d/d_files.tar"], 11);
  EXPECT_EQ(seen["d/note.txt"], 7);

  // A section not yet on HPSS lists as empty.
  backends::hpss::HpssOptions o;
  o.root = "/arch/none";
  o.hsi = std::string(HSMFS_SOURCE_DIR) + "/tests/emulators/hpss/hsi";
  backends::hpss::HpssBackend empty(o, Clock::Real());
  HsiHpssLister none(empty);
  int n = 0;
  EXPECT_TRUE(none.List("/arch/none", [&](const std::string&, int64_t, int64_t) { ++n; }).ok());
  EXPECT_EQ(n, 0);
}

TEST_F(EmulatorTest, ShortHtarIsAFailure) {
  Write("d/t1.dat", 5);
  Write("d/t2.dat", 6);
  ::setenv("HPSS_EMU_FAULTS", "action=short tool=htar match=-c", 1);
  Planner planner(dir_ + "/disk", "/arch/sec");
  ArchiveMaker maker(*hpss_, dir_, log_);
  const std::vector<std::string> list = {"d/t1.dat", "d/t2.dat"};
  const Status s = maker.Make(planner.Plan("d/d_files.tar", list), list);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("lists 1 member(s), planned 2; missing: t2.dat"), std::string::npos)
      << s.message();
}

TEST_F(EmulatorTest, FailedHtarIsAFailure) {
  Write("d/run1/a.fits", 10);
  ::setenv("HPSS_EMU_FAULTS", "action=error tool=htar match=-c", 1);
  Planner planner(dir_ + "/disk", "/arch/sec");
  ArchiveMaker maker(*hpss_, dir_, log_);
  const std::vector<std::string> runs = {"d/run1/a.fits"};
  const Status s = maker.Make(planner.Plan("d/d_run1.tar", runs), runs);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("failed (exit 72)"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace hsmfs::hsmscan
