// Fuzzes the two config readers in-process: thousands of mutations of valid
// hsmfs configs (ParseConfig) and tape.confs (LoadTapeConf): random bytes, NUL
// bytes, huge and negative numbers, wrong types, duplicate keys and lines,
// deep nesting, truncation and splices. Every input must either load or be
// refused with one line of kInvalidArgument: under ASan/UBSan a crash, a
// throw, an overflow or a leak fails the test. A config that loads must also
// print (--print-config) as a config that loads again to the same text.
//
// Deterministic; HSMFS_FUZZ_SEED and HSMFS_FUZZ_ROUNDS explore further.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/config.h"
#include "tools/hsmtape/tape_conf.h"

namespace hsmfs {
namespace {

namespace fs = std::filesystem;

const char* const kConfigSeeds[] = {
    R"([catalog]
path = "catalog.db"
[cache]
dir = "cache"
size = "50GiB"
stage_timeout = "1h"
high_watermark = 0.9
low_watermark = 0.8
write_wait = "1m"
[archive]
workers = 2
settle = "5s"
checksum = "md5"
verify = "readback"
max_attempts = 5
retry_delay = "2s"
[stage]
workers = 4
coalesce = "200ms"
deny_recall_from = ["updatedb", "baloo_file"]
[mount]
entry_timeout = 30
attr_timeout = "30s"
list_timeout = "10s"
list_ttl = "10m"
sync_workers = 4
[log]
level = "info"
file = "hsmfs.log"
[[backend]]
name = "vault"
type = "posix"
root = "vault-root"
writable = ["incoming", "results/"]
stage_delay = "2s"
allow_delete = true
list_ttl = "1m"
stage_workers = 3
archive_workers = 2
)",
    R"([[backend]]
name = "hpss"
type = "hpss"
root = "/home/u/archive"
hsi = "hsi"
htar = "/opt/hpss/bin/htar"
hsi_args = ["-s", "archive"]
command_timeout = "1h"
session_idle = "5m"
checksum = true
bundle_rules = "rules.json"
bundle_section = "incoming"
bundle_max_size = "8GiB"
bundle_quiet = "30s"
writable = ["incoming"]
)",
    R"([cache]
size = 1073741824
[[backend]]
name = "tape"
type = "tape"
library = "vtl:lib#1"
tape_catalog = "tape.db"
strip_prefix = "/mnt"
unit_size = "1GiB"
unit_quiet = "2s"
writable = ["incoming"]
[[backend]]
name = "st"
type = "tape"
drives = ["/dev/nst0", "/dev/nst1"]
)",
    R"([[backend]]
name = "irods"
type = "irods"
host = "127.0.0.1"
port = 1247
zone = "tempZone"
user = "rods"
root = "/tempZone/home/rods"
password_file = "irodsA"
auth = "auto"
tls = "require"
ca_file = "ca.pem"
verify_server = false
connections = 8
connect_timeout = "10s"
io_timeout = "60s"
dmf_lookup = "rule"
dmf_attr = "SURF-DMF"
dmf_state_rule = "msiGetDmfObject"
stage_rule = "msiDmfStage"
offline_codes = [-1089000, -1]
stage_poll = "1s"
)",
};

const char* const kTapeConfSeeds[] = {
    "[default]\ndatabase_file = run1.sqlite\ntape_device = vtl:library\n",
    "[default]\n# the catalog\ndatabase_file = /nonexistent-fuzz/c.db\ntape_device = /dev/nst0\n"
    "ssh_command = ssh user@host -i /home/user/.ssh/key -p 2222 -o ConnectTimeout=10\n"
    "known_hosts = kh\naccept_unknown_host = yes\nblock_size = 256KiB\ncapacity = 1.5TiB\n",
    "[default]\ndatabase_file = c.db\ntape_device = vtl:lib#0\nssh_host = h\nssh_user = u\n"
    "ssh_key = k\nssh_port = 22\n",
};

// Values that have broken parsers: sizes and durations out of range, NULs,
// paths that name everything, every TOML type.
const char* const kValues[] = {
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
    "\"9999999999999999999999999999999999999999999999999999999999999999999999999999\"",
    "9223372036854775807",
    "-9223372036854775808",
    "10000000000",
    "18446744073709551616",
    "-1",
    "0",
    "1",
    "1e400",
    "-inf",
    "nan",
    "1.5",
    "\"1e999GiB\"",
    "\"18446744073709551616\"",
    "\"3650d1ns\"",
    "\"3650d\"",
    "\"1024PiB\"",
    "\"1025PiB\"",
    "\"0.5\"",
    "\".5s\"",
    "\".\"",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"\"",
    "\"/\"",
    "\"..\"",
    "\"/dev/null\"",
    "\"/tmp\"",
    "[\"/\"]",
    "[\"\"]",
    "[\".\"]",
    "[\"..\"]",
    "[1, \"a\"]",
    "[]",
    "{a = 1}",
    "true",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "\"vtl:\"",
    "\"vtl:x#99999999999999999999\"",
    "\"-5s\"",
    "\"1h-1s\"",
    "\"5 fortnights\"",
    "\"1.5.5GiB\"",
    "\"\\t1GiB \"",
    "0x7fffffffffffffff",
    "0o777",
    "0b1",
    "+1",
    "\"\\uD800\"",
    "'literal'",
    "\"\"\"multi\nline\"\"\"",
};

const char kInteresting[] = {'\0', '\n', '"', '\'', '[', ']',  '=', '.',  '#', '\\',  '{',
                             '}',  ',',  '-', '9',  ' ', '\t', 'e', '\r', 'u', '\x7f'};

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  size_t Below(size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  char Byte() {
    if (Below(3) == 0) return static_cast<char>(Below(256));
    return kInteresting[Below(sizeof kInteresting)];
  }

  std::string Mutate(std::string s, const std::vector<std::string>& seeds) {
    // Mostly one change, so that many inputs still load and go on to the
    // print-and-reload check; sometimes several.
    const size_t rounds = Below(4) == 0 ? 2 + Below(3) : 1;
    for (size_t r = 0; r < rounds; ++r) {
      switch (Below(10)) {
        case 0:  // overwrite a byte
          if (!s.empty()) s[Below(s.size())] = Byte();
          break;
        case 1: {  // insert a few bytes
          std::string bytes;
          for (size_t i = 0, n = 1 + Below(8); i < n; ++i) bytes += Byte();
          s.insert(Below(s.size() + 1), bytes);
          break;
        }
        case 2: {  // delete a range
          const size_t at = Below(s.size() + 1);
          s.erase(at, Below(16));
          break;
        }
        case 3:
        case 4: {  // a value replaced by one that has broken parsers
          std::vector<size_t> eqs;
          for (size_t i = s.find('='); i != std::string::npos; i = s.find('=', i + 1)) {
            eqs.push_back(i);
          }
          if (eqs.empty()) break;
          const size_t eq = eqs[Below(eqs.size())];
          size_t end = s.find('\n', eq);
          if (end == std::string::npos) end = s.size();
          s.replace(eq + 1, end - eq - 1, std::string(" ") + kValues[Below(std::size(kValues))]);
          break;
        }
        case 5: {  // a line repeated elsewhere: duplicate keys and tables
          std::vector<std::string> lines = Lines(s);
          if (lines.empty()) break;
          const std::string line = lines[Below(lines.size())];
          lines.insert(lines.begin() + static_cast<long>(Below(lines.size() + 1)), line);
          s = Join(lines);
          break;
        }
        case 6: {  // deep nesting
          const size_t depth = 1 + Below(3000);
          std::string deep;
          switch (Below(3)) {
            case 0:
              deep = "x = " + std::string(depth, '[') + std::string(depth, ']');
              break;
            case 1:
              deep = "[";
              for (size_t i = 0; i < depth; ++i) deep += "a.";
              deep += "b]\nk = 1";
              break;
            default:
              for (size_t i = 0; i < depth; ++i) deep += "{a = ";
              deep = "y = " + deep + "1" + std::string(depth, '}');
              break;
          }
          s.insert(Below(2) ? s.size() : 0, deep + "\n");
          break;
        }
        case 7:  // truncated
          s.resize(Below(s.size() + 1));
          break;
        case 8: {  // spliced with another seed
          const std::string& other = seeds[Below(seeds.size())];
          s = s.substr(0, Below(s.size() + 1)) + other.substr(Below(other.size() + 1));
          break;
        }
        default: {  // a huge value: a long string or a long number
          const size_t n = 100 + Below(5000);
          s += Below(2) ? "\nbig = \"" + std::string(n, 'x') + "\"\n"
                        : "\nbig = " + std::string(n, '7') + "\n";
          break;
        }
      }
    }
    return s;
  }

 private:
  static std::vector<std::string> Lines(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
      size_t nl = s.find('\n', start);
      if (nl == std::string::npos) nl = s.size();
      out.push_back(s.substr(start, nl - start));
      start = nl + 1;
    }
    return out;
  }
  static std::string Join(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
  }

  std::mt19937_64 rng_;
};

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return end && *end == '\0' ? n : fallback;
}

// The input as C++ could spell it, for a failure message.
std::string Printable(const std::string& s) {
  std::string out;
  for (char ch : s.substr(0, 2000)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// Refused as one line of kInvalidArgument that begins with the file's name.
void ExpectOneLineError(const Status& s, const std::string& file, const std::string& input) {
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString() << "\n" << Printable(input);
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\0'), std::string::npos) << Printable(s.message());
  EXPECT_EQ(s.message().rfind(file, 0), 0u) << s.message();
}

TEST(ConfigFuzzTest, MutatedConfigsLoadOrAreOneLineErrors) {
  const uint64_t seed = EnvNumber("HSMFS_FUZZ_SEED", 15);
  const uint64_t rounds = EnvNumber("HSMFS_FUZZ_ROUNDS", 3000);
  // Never created: relative paths resolve below it, and nothing is found there.
  const fs::path file = "/nonexistent-hsmfs-fuzz/conf/hsmfs.toml";
  const std::vector<std::string> seeds(std::begin(kConfigSeeds), std::end(kConfigSeeds));
  for (const std::string& s : seeds) ASSERT_TRUE(ParseConfig(s, file).ok()) << s;
  Mutator m(seed);
  int loaded = 0, refused = 0;
  for (uint64_t i = 0; i < rounds; ++i) {
    const std::string input = m.Mutate(seeds[m.Below(seeds.size())], seeds);
    try {
      auto c = ParseConfig(input, file);
      if (!c.ok()) {
        ++refused;
        ExpectOneLineError(c.status(), file.string(), input);
        continue;
      }
      ++loaded;
      const std::string printed = RenderConfig(*c);
      auto again = ParseConfig(printed, file);
      ASSERT_TRUE(again.ok()) << again.status().ToString() << "\ninput:\n"
                              << Printable(input) << "\nprinted:\n"
                              << printed;
      EXPECT_EQ(RenderConfig(*again), printed) << Printable(input);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw " << e.what() << " on:\n" << Printable(input);
    }
    if (HasFailure()) {
      ADD_FAILURE() << "round " << i << " of seed " << seed;
      return;
    }
  }
  // Both outcomes are exercised, not only the refusals.
  EXPECT_GT(loaded, static_cast<int>(rounds / 20));
  EXPECT_GT(refused, static_cast<int>(rounds / 4));
  std::printf("%d loaded, %d refused\n", loaded, refused);
}

TEST(ConfigFuzzTest, MutatedTapeConfsLoadOrAreOneLineErrors) {
  const uint64_t seed = EnvNumber("HSMFS_FUZZ_SEED", 15);
  const uint64_t rounds = EnvNumber("HSMFS_FUZZ_ROUNDS", 3000) / 2;
  std::string tmpl = (fs::temp_directory_path() / "config_fuzz.XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  const std::vector<std::string> seeds(std::begin(kTapeConfSeeds), std::end(kTapeConfSeeds));
  Mutator m(seed);
  int loaded = 0, refused = 0;
  for (uint64_t i = 0; i < rounds && !HasFailure(); ++i) {
    // Mostly tape.conf; sometimes an hsmfs config read as a tape config.
    const bool toml = m.Below(8) == 0;
    const std::vector<std::string> pool = toml ? std::vector<std::string>{kConfigSeeds[2]} : seeds;
    const std::string input = m.Mutate(pool[m.Below(pool.size())], pool);
    const fs::path file = dir / (toml ? "hsmfs.toml" : "tape.conf");
    std::ofstream(file, std::ios::binary | std::ios::trunc) << input;
    try {
      auto conf = hsmtape::LoadTapeConf(file);
      if (conf.ok()) {
        ++loaded;
      } else {
        ++refused;
        ExpectOneLineError(conf.status(), file.string(), input);
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw " << e.what() << " on:\n" << Printable(input);
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  EXPECT_GT(loaded, static_cast<int>(rounds / 20));
  EXPECT_GT(refused, static_cast<int>(rounds / 4));
  std::printf("%d loaded, %d refused\n", loaded, refused);
}

}  // namespace
}  // namespace hsmfs
