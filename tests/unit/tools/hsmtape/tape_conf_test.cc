// tape.conf as hsmtape reads it: what must be refused (as one line naming the
// file, line and key), and what must never block or crash.

#include "tools/hsmtape/tape_conf.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace hsmfs::hsmtape {
namespace {

namespace fs = std::filesystem;

class TapeConfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tape_conf_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `text` as DIR/tape.conf and reads it.
  Result<TapeConf> Load(const std::string& text) {
    const fs::path p = dir_ / "tape.conf";
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    return LoadTapeConf(p);
  }

  // The error of `text`, which must be a one-line kInvalidArgument containing `want`.
  void ExpectBad(const std::string& text, const std::string& want) {
    auto r = Load(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(want), std::string::npos)
        << want << "\n got: " << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  }

  fs::path dir_;
};

constexpr char kGood[] = "[default]\ndatabase_file = catalog.db\ntape_device = vtl:library\n";

TEST_F(TapeConfTest, ReadsAGoodFile) {
  auto r = Load(std::string(kGood) + "block_size = 64KiB\ncapacity = 1.5TiB\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->database_file, dir_ / "catalog.db");
  EXPECT_EQ(r->block_size, 64u * 1024);
  EXPECT_EQ(r->capacity, uint64_t{3} << 39);
}

TEST_F(TapeConfTest, DuplicateKeysAreRefusedNamingKeyAndLine) {
  ExpectBad(std::string(kGood) + "database_file = other.db\n",
            "tape.conf:4: database_file: given twice (first on line 2)");
  ExpectBad(std::string(kGood) + "block_size = 64KiB\n[default]\nblock_size = 128KiB\n",
            "tape.conf:6: block_size: given twice (first on line 4)");
}

TEST_F(TapeConfTest, AFifoIsRefusedWithoutBlocking) {
  const fs::path fifo = dir_ / "fifo.conf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = LoadTapeConf(fifo);  // blocked forever in open() before
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            fifo.string() + ": is not a regular file (a tape.conf must be one)");
  // The same through the hsmfs-config path (*.toml).
  const fs::path toml = dir_ / "fifo.toml";
  ASSERT_EQ(::mkfifo(toml.c_str(), 0600), 0);
  r = LoadTapeConf(toml);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadTapeConf("/dev/zero").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadTapeConf(dir_).status().code(), Code::kInvalidArgument);
}

TEST_F(TapeConfTest, NulBytesAreRefused) {
  ExpectBad(std::string("[default]\ndatabase_file = x") + '\0' + "y\ntape_device = vtl:lib\n",
            "tape.conf:2: a NUL byte");
  ExpectBad(std::string(kGood) + "capacity = 1" + '\0' + "\n", "tape.conf:4: a NUL byte");
}

TEST_F(TapeConfTest, CatalogPathsThatCannotBeCatalogsAreRefused) {
  ExpectBad("[default]\ndatabase_file = /dev/null\ntape_device = vtl:library\n",
            "tape.conf:2: database_file: /dev/null is not a regular file");
  ExpectBad("[default]\ndatabase_file = .\ntape_device = vtl:library\n",
            "database_file: " + dir_.string() + "/ is not a regular file");
  ExpectBad("[default]\ndatabase_file =\ntape_device = vtl:library\n",
            "tape.conf:2: database_file: must not be empty");
  ExpectBad("[default]\ndatabase_file = library/cat.db\ntape_device = vtl:library\n",
            "database_file: " + (dir_ / "library/cat.db").string() + " lies inside the library");
  ExpectBad("[default]\ndatabase_file = library\ntape_device = vtl:library\n",
            "lies inside the library");
}

TEST_F(TapeConfTest, HugeAndNegativeNumbersAreErrors) {
  const std::string digits400(400, '9');
  ExpectBad(std::string(kGood) + "capacity = " + digits400 + "\n",
            "tape.conf:4: capacity: size \"9999");
  ExpectBad(std::string(kGood) + "capacity = " + digits400 + "TiB\n", "is too large");
  ExpectBad(std::string(kGood) + "block_size = " + digits400 + "\n", "tape.conf:4: block_size:");
  ExpectBad(std::string(kGood) + "block_size = -512\n", "tape.conf:4: block_size:");
  ExpectBad(std::string(kGood) + "capacity = -1\n", "tape.conf:4: capacity:");
  ExpectBad("[default]\ndatabase_file = c.db\ntape_device = vtl:lib#" + digits400 + "\n",
            "tape.conf:3: tape_device:");
  ExpectBad(std::string(kGood) + "ssh_host = h\nssh_port = " + digits400 + "\n", "ssh_port");
  ExpectBad(std::string(kGood) + "ssh_command = ssh h -o ConnectTimeout=" + digits400 + "\n",
            "ConnectTimeout");
}

}  // namespace
}  // namespace hsmfs::hsmtape
