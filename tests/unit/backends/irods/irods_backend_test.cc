// IrodsBackend against the iRODS EMULATOR (tests/emulators/irods/irods_emu.py),
// started per test on a free loopback port: authentication (legacy, plugin,
// .irodsA, wrong password), TLS, listing with paging and DMF states, recalls
// of offline objects, batched staging, put with server-side checksums, the
// pool's retries after dropped connections, and the error mapping.

#include "backends/irods/irods_backend.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "backends/irods/auth.h"
#include "common/checksum.h"

namespace hsmfs::irods {
namespace {

namespace stdfs = std::filesystem;
using backends::ObjectInfo;
using backends::ObjectType;
using backends::ReadOptions;
using backends::Residency;
using std::chrono::milliseconds;

const char kPython[] = "/usr/bin/python3";
const stdfs::path kEmulator = stdfs::path(HSMFS_SOURCE_DIR) / "tests/emulators/irods/irods_emu.py";
const std::string kHome = "/tempZone/home/rods";

std::string Slurp(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first `n` objects of the emulator's bulk collection (bulk/obj000000...).
std::vector<std::string> BulkPaths(int n) {
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    char name[32];
    snprintf(name, sizeof name, "bulk/obj%06d", i);
    paths.push_back(name);
  }
  return paths;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

std::string Sha256(const std::string& data) {
  auto h = Hasher::Create(ChecksumAlgo::kSha256);
  h->Update(data.data(), data.size());
  return h->Finish();
}

// The emulator's filler for a seeded object of `size` bytes.
std::string Filler(const std::string& path, size_t size) {
  std::string out;
  while (out.size() < size) out += path + "\n";
  return out.substr(0, size);
}

class IrodsBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
    static int counter = 0;
    dir_ = stdfs::temp_directory_path() /
           ("hsmfs_irods_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
  }
  void TearDown() override {
    backend_.reset();
    StopEmulator();
    stdfs::remove_all(dir_);
  }

  // Starts the emulator with the seed below plus `extra` options.
  void StartEmulator(std::vector<std::string> extra = {}, const std::string& bulk_state = "OFL",
                     int bulk_count = 0) {
    nlohmann_seed_ = SeedJson(bulk_state, bulk_count);
    std::ofstream(dir_ / "seed.json") << nlohmann_seed_;
    std::vector<std::string> args = {kPython,         kEmulator.string(),
                                     "--port",        "0",
                                     "--port-file",   (dir_ / "port").string(),
                                     "--log",         (dir_ / "emu.log").string(),
                                     "--control",     (dir_ / "control.json").string(),
                                     "--seed-json",   (dir_ / "seed.json").string(),
                                     "--stage-delay", "0.4"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      freopen((dir_ / "emu.out").c_str(), "w", stdout);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(kPython, argv.data());
      _exit(127);
    }
    for (int i = 0; i < 300 && !stdfs::exists(dir_ / "port"); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    ASSERT_TRUE(stdfs::exists(dir_ / "port"))
        << "emulator did not start: " << Slurp(dir_ / "emu.out");
    port_ = std::stoi(Slurp(dir_ / "port"));
  }
  void StopEmulator() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 250; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "the emulator ignored SIGTERM for 5 s";
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  static std::string SeedJson(const std::string& bulk_state, int bulk_count) {
    std::string s = R"({"collections": [")" + kHome + R"(/empty"], "objects": [)";
    s += R"({"path": ")" + kHome +
         R"(/data/hello.txt", "data": "hello world\n", "checksum": true},)";
    s += R"({"path": ")" + kHome + R"(/data/sub/deep.txt", "data": "deep"},)";
    s += R"({"path": ")" + kHome +
         R"(/tape/off.bin", "size": 300000, "avus": [["SURF-DMF", "OFL", ""]]},)";
    s += R"({"path": ")" + kHome +
         R"(/tape/dul.bin", "size": 1000, "avus": [["SURF-DMF", "DUL", ""]]},)";
    s += R"({"path": ")" + kHome +
         R"(/tape/reg.bin", "size": 10, "avus": [["SURF-DMF", "REG", ""]]},)";
    s += R"({"path": ")" + kHome +
         R"(/tape/unm.bin", "size": 10, "avus": [["SURF-DMF", "UNM", ""]]},)";
    s += R"({"path": ")" + kHome +
         R"(/tape/nmg.bin", "size": 10, "avus": [["SURF-DMF", "NMG", ""]]},)";
    s +=
        R"({"path": ")" + kHome +
        R"(/repl/two.bin", "data": "0123456789", "replicas": [{"status": "0", "size": 3}, {"status": "1"}]},)";
    s +=
        R"({"path": ")" + kHome +
        R"(/times/kept.txt", "data": "k", "mtime": 1700000000, "avus": [["hsmfs_mtime", "1600000000123000000 1700000000", ""]]},)";
    s +=
        R"({"path": ")" + kHome +
        R"(/times/changed.txt", "data": "c", "mtime": 1700000009, "avus": [["hsmfs_mtime", "1600000000123000000 1700000000", ""]]},)";
    s +=
        R"({"path": ")" + kHome +
        R"(/repl/first.bin", "data": "abc", "replicas": [{"status": "1"}, {"status": "0", "size": 99}]})";
    s += R"(], "bulk": {"collection": ")" + kHome + R"(/bulk", "count": )" +
         std::to_string(bulk_count) + R"(, "prefix": "obj", "state": ")" + bulk_state + R"("}})";
    return s;
  }

  BackendConfig Config() const {
    BackendConfig c;
    c.name = "irods";
    c.type = "irods";
    c.host = "127.0.0.1";
    c.port = port_;
    c.zone = "tempZone";
    c.user = "rods";
    c.password = "rods";
    c.root = kHome;
    c.connections = 4;
    c.connect_timeout = std::chrono::seconds(5);
    c.io_timeout = std::chrono::seconds(10);
    c.stage_poll = milliseconds(100);
    return c;
  }
  void Make(const BackendConfig& c) {
    auto b = IrodsBackend::Create(c, Clock::Real());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(b).value();
  }
  void Make() { Make(Config()); }

  void Control(const std::string& json) {
    // The emulator reloads the file when its mtime changes.
    std::this_thread::sleep_for(milliseconds(20));
    std::ofstream(dir_ / "control.json") << json;
  }
  int CountLog(const std::string& needle) const {
    std::istringstream in(Slurp(dir_ / "emu.log"));
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) ++n;
    }
    return n;
  }

  stdfs::path Local(const std::string& data) {
    const stdfs::path p = dir_ / ("src" + std::to_string(n_++));
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  Result<std::string> ReadAll(const std::string& path, const ReadOptions& o = {}) {
    const stdfs::path dest = dir_ / ("dest" + std::to_string(n_++));
    HSMFS_RETURN_IF_ERROR(backend_->Read(path, dest, o));
    return Slurp(dest);
  }
  std::vector<ObjectInfo> ListAll(const std::string& dir, Status* status = nullptr,
                                  int* batches = nullptr) {
    std::vector<ObjectInfo> all;
    int n = 0;
    Status s = backend_->List(
        dir,
        [&](std::vector<ObjectInfo>&& batch) {
          ++n;
          for (auto& o : batch) all.push_back(std::move(o));
          return Status::Ok();
        },
        CancelToken::None());
    if (status) *status = s;
    if (batches) *batches = n;
    std::sort(all.begin(), all.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return all;
  }
  // Lists `dir` and checks it holds exactly the bulk objects, once each.
  void ExpectBulk(const std::vector<ObjectInfo>& all, int count, const std::string& state) {
    ASSERT_EQ(all.size(), static_cast<size_t>(count));
    std::set<std::string> names;
    for (int i = 0; i < count; ++i) {
      char name[32];
      snprintf(name, sizeof name, "obj%06d", i);
      const ObjectInfo& o = all[static_cast<size_t>(i)];
      ASSERT_EQ(o.name, name);
      EXPECT_EQ(o.type, ObjectType::kFile);
      EXPECT_EQ(o.size, std::to_string(i).size() + 1) << name;
      EXPECT_EQ(o.hsm_state, state) << name;
      EXPECT_EQ(o.mode, 0644u);
      EXPECT_EQ(o.location, "irods:" + kHome + "/bulk/" + name);
      names.insert(o.name);
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(count));
  }

  stdfs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string nlohmann_seed_;
  std::unique_ptr<IrodsBackend> backend_;
  std::atomic<int> n_{0};
};

TEST_F(IrodsBackendTest, PluginAuthOnA5Server) {
  StartEmulator();
  Make();
  EXPECT_EQ(CountLog("auth ok user=rods (plugin)"), 1);
  auto st = backend_->Stat("data/hello.txt");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->size, 12u);
  EXPECT_EQ(st->type, ObjectType::kFile);
  EXPECT_EQ(st->checksum, Sha256("hello world\n"));
  EXPECT_EQ(st->location, "irods:" + kHome + "/data/hello.txt");
  EXPECT_EQ(*ReadAll("data/hello.txt"), "hello world\n");
}

TEST_F(IrodsBackendTest, LegacyAuthOnA42Server) {
  StartEmulator({"--rel-version", "rods4.2.11"});
  Make();
  EXPECT_EQ(CountLog("auth ok user=rods (legacy)"), 1);
  EXPECT_EQ(CountLog("(plugin)"), 0);
  EXPECT_EQ(*ReadAll("data/hello.txt"), "hello world\n");
}

TEST_F(IrodsBackendTest, TlsRequired) {
  StartEmulator({"--tls", "require", "--cert-out", (dir_ / "cert.pem").string()});
  BackendConfig c = Config();
  c.host = "localhost";
  c.tls = "require";
  c.ca_file = dir_ / "cert.pem";
  Make(c);
  const std::string data = RandomBytes(3 << 20, 7);
  auto put = backend_->Put(Local(data), "tls/x.bin", {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*ReadAll("tls/x.bin"), data);

  // The certificate names 127.0.0.1 too: an IP address is checked as one.
  c.host = "127.0.0.1";
  auto by_ip = IrodsBackend::Create(c, Clock::Real());
  ASSERT_TRUE(by_ip.ok()) << by_ip.status().ToString();
  EXPECT_EQ((*by_ip)->Stat("tls/x.bin")->size, data.size());

  // A client that will not do TLS is turned away at Create.
  BackendConfig plain = Config();
  plain.tls = "refuse";
  EXPECT_FALSE(IrodsBackend::Create(plain, Clock::Real()).ok());
  // A certificate we do not trust fails the handshake.
  BackendConfig untrusted = c;
  untrusted.ca_file = kEmulator;  // not a certificate
  EXPECT_FALSE(IrodsBackend::Create(untrusted, Clock::Real()).ok());
}

TEST_F(IrodsBackendTest, WrongPasswordIsPermissionDeniedAndNeverShown) {
  StartEmulator();
  for (const char* auth : {"plugin", "legacy"}) {
    BackendConfig c = Config();
    c.auth = auth;
    c.password = "Secr3t-wrong-pw";
    auto b = IrodsBackend::Create(c, Clock::Real());
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), Code::kPermissionDenied) << b.status().ToString();
    EXPECT_EQ(b.status().ToString().find("Secr3t"), std::string::npos) << b.status().ToString();
  }
  EXPECT_EQ(Slurp(dir_ / "emu.log").find("Secr3t"), std::string::npos);
}

TEST_F(IrodsBackendTest, PasswordFile) {
  StartEmulator();
  BackendConfig c = Config();
  c.password.clear();
  c.password_file = dir_ / ".irodsA";
  std::ofstream(c.password_file) << EncodeIrodsA("rods", getuid(), time(nullptr));
  Make(c);
  EXPECT_TRUE(backend_->Stat("data").ok());

  c.password_file = dir_ / "no-such-irodsA";
  auto missing = IrodsBackend::Create(c, Clock::Real());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("no-such-irodsA"), std::string::npos);

  c.password_file = dir_ / "wrong.irodsA";
  std::ofstream(c.password_file) << EncodeIrodsA("not-the-password", getuid(), time(nullptr));
  auto wrong = IrodsBackend::Create(c, Clock::Real());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(wrong.status().ToString().find("not-the-password"), std::string::npos);
}

TEST_F(IrodsBackendTest, ServerDownAndMissingRootAreReportedAtCreate) {
  StartEmulator();
  BackendConfig c = Config();
  c.root = kHome + "/no/such/collection";
  auto missing = IrodsBackend::Create(c, Clock::Real());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("no/such/collection"), std::string::npos);

  c.root = kHome + "/data/hello.txt";
  EXPECT_EQ(IrodsBackend::Create(c, Clock::Real()).status().code(), Code::kInvalidArgument);

  // A port bound but not listening refuses connections, and nobody else
  // can take it meanwhile (a port freed by a stopped server could be).
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  BackendConfig down_config = Config();
  down_config.port = ntohs(addr.sin_port);
  auto down = IrodsBackend::Create(down_config, Clock::Real());
  close(fd);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable) << down.status().ToString();
  EXPECT_NE(down.status().message().find(std::to_string(down_config.port)), std::string::npos);
}

TEST_F(IrodsBackendTest, StatOfCollectionsAndMissingPaths) {
  StartEmulator();
  Make();
  auto d = backend_->Stat("data");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type, ObjectType::kDir);
  EXPECT_EQ(d->mode, 0755u);
  EXPECT_TRUE(backend_->Stat("").ok());
  EXPECT_EQ(backend_->Stat("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->Stat("data/nope").status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->Stat("../x").status().code(), Code::kInvalidArgument);
}

TEST_F(IrodsBackendTest, ListingOf1600ObjectsWithStatesByAvu) {
  StartEmulator({}, "OFL", 1600);
  Make();
  const int queries_before = CountLog("api 702 ");
  int batches = 0;
  Status s;
  auto all = ListAll("bulk", &s, &batches);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectBulk(all, 1600, "OFL");
  for (const ObjectInfo& o : all) EXPECT_EQ(o.residency, Residency::kTape);
  // Pages of 500: the objects arrive in several batches.
  EXPECT_GE(batches, 4);
  // Collections (1 page) + states (4 pages) + objects (4 pages): not one
  // query per object.
  EXPECT_LE(CountLog("api 702 ") - queries_before, 10);
}

TEST_F(IrodsBackendTest, ListingWithStatesByRule) {
  StartEmulator({}, "OFL", 1600);
  BackendConfig c = Config();
  c.dmf_lookup = "rule";
  // The state rule runs on the listing's own connection: one is enough.
  c.connections = 1;
  Make(c);
  Status s;
  auto all = ListAll("bulk", &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectBulk(all, 1600, "OFL");
  // One state rule per page of 500.
  EXPECT_GE(CountLog("rule msiGetDmfObject"), 4);
  EXPECT_LE(CountLog("api 625 "), 5);
  EXPECT_EQ(backend_->connections_opened(), 1);

  // ObjStat, collections, AVUs (no rows), then the first page of objects
  // breaks (it must not pass for "no rows"), then its state rule breaks:
  // the page is delivered again, on a new connection.
  int drops = 0;
  for (int n : {4, 5}) {
    Control(R"({"drop_after": )" + std::to_string(n) + "}");
    all = ListAll("bulk", &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectBulk(all, 1600, "OFL");
    EXPECT_EQ(CountLog("fault: drop connection"), ++drops);
    EXPECT_EQ(backend_->connections_opened(), 1 + drops);
  }

  auto tape = ListAll("tape");
  ASSERT_EQ(tape.size(), 5u);
  EXPECT_EQ(tape[0].name, "dul.bin");
  EXPECT_EQ(tape[0].hsm_state, "DUL");
}

TEST_F(IrodsBackendTest, ListingShowsStatesResidencyAndSubcollections) {
  StartEmulator();
  BackendConfig none = Config();
  Make();
  auto tape = ListAll("tape");
  ASSERT_EQ(tape.size(), 5u);
  std::map<std::string, std::pair<std::string, Residency>> got;
  for (const ObjectInfo& o : tape) got[o.name] = {o.hsm_state, o.residency};
  EXPECT_EQ(got["dul.bin"], std::make_pair(std::string("DUL"), Residency::kDisk));
  EXPECT_EQ(got["off.bin"], std::make_pair(std::string("OFL"), Residency::kTape));
  EXPECT_EQ(got["reg.bin"], std::make_pair(std::string("REG"), Residency::kDisk));
  EXPECT_EQ(got["unm.bin"], std::make_pair(std::string("UNM"), Residency::kTape));
  EXPECT_EQ(got["nmg.bin"], std::make_pair(std::string("NMG"), Residency::kDisk));
  EXPECT_EQ(tape[2].size, 300000u);

  auto data = ListAll("data");
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0].name, "hello.txt");
  EXPECT_EQ(data[0].checksum, Sha256("hello world\n"));
  EXPECT_EQ(data[1].name, "sub");
  EXPECT_EQ(data[1].type, ObjectType::kDir);
  EXPECT_EQ(data[1].mode, 0755u);

  auto top = ListAll("");
  std::set<std::string> names;
  for (const ObjectInfo& o : top) names.insert(o.name);
  EXPECT_EQ(names, (std::set<std::string>{"data", "empty", "repl", "tape", "times"}));
  EXPECT_TRUE(ListAll("empty").empty());

  none.dmf_lookup = "none";
  Make(none);
  for (const ObjectInfo& o : ListAll("tape")) {
    EXPECT_EQ(o.hsm_state, "");
    EXPECT_EQ(o.residency, Residency::kUnknown);
  }
}

TEST_F(IrodsBackendTest, OneEntryPerObjectPreferringAGoodReplica) {
  StartEmulator();
  Make();
  auto repl = ListAll("repl");
  ASSERT_EQ(repl.size(), 2u);
  EXPECT_EQ(repl[0].name, "first.bin");
  EXPECT_EQ(repl[0].size, 3u);
  EXPECT_EQ(repl[1].name, "two.bin");
  EXPECT_EQ(repl[1].size, 10u);
}

TEST_F(IrodsBackendTest, ListingErrors) {
  StartEmulator();
  Make();
  Status s;
  ListAll("nope", &s);
  EXPECT_EQ(s.code(), Code::kNotFound);
  ListAll("data/hello.txt", &s);
  EXPECT_EQ(s.code(), Code::kNotDirectory);
  // The sink's error stops the listing.
  s = backend_->List(
      "tape", [](std::vector<ObjectInfo>&&) { return Status(Code::kAborted, "enough"); },
      CancelToken::None());
  EXPECT_EQ(s.code(), Code::kAborted);
  CancelToken cancel;
  cancel.Cancel();
  s = backend_->List(
      "tape", [](std::vector<ObjectInfo>&&) { return Status::Ok(); }, cancel);
  EXPECT_EQ(s.code(), Code::kCancelled);
}

TEST_F(IrodsBackendTest, ReadOfAnOfflineObjectRecallsIt) {
  StartEmulator();
  Make();
  EXPECT_EQ(backend_->Stat("tape/off.bin")->hsm_state, "OFL");
  Result<std::string> got = InternalError("not run");
  std::thread reader([&] { got = ReadAll("tape/off.bin"); });
  // The recall shows as UNM while the tape is read.
  bool saw_unm = false;
  for (int i = 0; i < 200 && !saw_unm; ++i) {
    auto st = backend_->Stat("tape/off.bin");
    saw_unm = st.ok() && st->hsm_state == "UNM";
    std::this_thread::sleep_for(milliseconds(10));
  }
  reader.join();
  EXPECT_TRUE(saw_unm);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Filler(kHome + "/tape/off.bin", 300000));
  EXPECT_EQ(CountLog("rule msiDmfStage"), 1);
  EXPECT_EQ(backend_->Stat("tape/off.bin")->hsm_state, "DUL");
  EXPECT_EQ(backend_->Stat("tape/off.bin")->residency, Residency::kDisk);
}

TEST_F(IrodsBackendTest, OfflineRefusalWithStatesByRule) {
  // The open refusal (-1089000 here, as at SURF) leads to a recall; the
  // state rule tells when it is done.
  StartEmulator({"--offline-error", "-1089000"});
  BackendConfig c = Config();
  c.dmf_lookup = "rule";
  c.connections = 1;
  Make(c);
  auto got = ReadAll("tape/off.bin");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Filler(kHome + "/tape/off.bin", 300000));
  EXPECT_GE(CountLog("open refused (DMF OFL)"), 1);
  EXPECT_EQ(CountLog("rule msiDmfStage"), 1);
  EXPECT_GE(CountLog("rule msiGetDmfObject"), 1);
}

TEST_F(IrodsBackendTest, OfflineRefusalWithoutStateLookup) {
  StartEmulator();
  BackendConfig c = Config();
  c.dmf_lookup = "none";
  Make(c);
  auto got = ReadAll("tape/off.bin");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Filler(kHome + "/tape/off.bin", 300000));
  EXPECT_GE(CountLog("open refused (DMF OFL)"), 1);
  EXPECT_EQ(CountLog("rule msiDmfStage"), 1);
}

TEST_F(IrodsBackendTest, AnOfflineCodeNotConfiguredIsAnError) {
  StartEmulator({"--offline-error", "-1"});
  BackendConfig c = Config();
  c.dmf_lookup = "none";
  Make(c);
  auto got = ReadAll("tape/off.bin");
  EXPECT_FALSE(got.ok());
  EXPECT_NE(got.status().code(), Code::kUnavailable);
  c.offline_codes = {-1};
  Make(c);
  EXPECT_TRUE(ReadAll("tape/off.bin").ok());
}

TEST_F(IrodsBackendTest, ReadIsCancelled) {
  StartEmulator({"--stage-delay", "30"});
  Make();
  CancelToken cancelled;
  cancelled.Cancel();
  ReadOptions o;
  o.cancel = &cancelled;
  EXPECT_EQ(ReadAll("data/hello.txt", o).status().code(), Code::kCancelled);

  // While waiting for a recall.
  CancelToken cancel;
  ReadOptions w;
  w.cancel = &cancel;
  Result<std::string> got = InternalError("not run");
  const auto start = std::chrono::steady_clock::now();
  std::thread reader([&] { got = ReadAll("tape/off.bin", w); });
  std::this_thread::sleep_for(milliseconds(300));
  cancel.Cancel();
  reader.join();
  EXPECT_EQ(got.status().code(), Code::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(IrodsBackendTest, RecallThatNeverEndsGivesUpWithUnavailable) {
  StartEmulator({"--stage-delay", "30"});
  Make();
  backend_->set_stage_wait_limit(milliseconds(400));
  auto got = ReadAll("tape/off.bin");
  EXPECT_EQ(got.status().code(), Code::kUnavailable) << got.status().ToString();
  EXPECT_NE(got.status().message().find("UNM"), std::string::npos) << got.status().message();
}

TEST_F(IrodsBackendTest, ReadChecksExpectedChecksumAndReportsProgress) {
  StartEmulator();
  Make();
  ReadOptions good;
  good.expect_checksum = Sha256("hello world\n");
  uint64_t last = 0;
  good.progress = [&](uint64_t n) { last = n; };
  EXPECT_EQ(*ReadAll("data/hello.txt", good), "hello world\n");
  EXPECT_EQ(last, 12u);
  ReadOptions bad;
  bad.expect_checksum = "md5:00000000000000000000000000000000";
  EXPECT_EQ(ReadAll("data/hello.txt", bad).status().code(), Code::kDataLoss);
  EXPECT_EQ(ReadAll("data/nope").status().code(), Code::kNotFound);
}

TEST_F(IrodsBackendTest, StageManyOf200OfflineObjectsIsOneRuleCall) {
  StartEmulator({}, "OFL", 200);
  Make();
  std::vector<std::string> paths = BulkPaths(200);
  ASSERT_TRUE(backend_->StageMany(paths, Deadline::Never()).ok());
  EXPECT_LE(CountLog("api 625 "), 2);
  EXPECT_GE(CountLog("api 625 "), 1);
  // All 200 reached the microservice, although they are far more than one
  // string token of the server's rule parser may hold.
  EXPECT_EQ(CountLog("rule msiDmfStage paths=200"), 1);
  EXPECT_EQ(CountLog("syntax error"), 0);
  for (const ObjectInfo& o : ListAll("bulk")) {
    EXPECT_TRUE(o.hsm_state == "UNM" || o.hsm_state == "DUL") << o.name << " " << o.hsm_state;
  }
  // Nothing left offline: no further rule call.
  ASSERT_TRUE(backend_->StageMany(paths, Deadline::Never()).ok());
  EXPECT_LE(CountLog("api 625 "), 2);
}

TEST_F(IrodsBackendTest, ARuleThatRanWithoutItsPathsIsAnError) {
  // The server answers status 0 for a rule whose *paths it could not parse
  // (it runs without it): the length the rule returns gives it away.
  StartEmulator({}, "OFL", 200);
  BackendConfig c = Config();
  c.stage_rule = "site { msiDmfStage(*lost); *hsmfsLen = str(strlen(*lost)); }";
  Make(c);
  Status s = backend_->StageMany(BulkPaths(200), Deadline::Never());
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("ran without its input"), std::string::npos) << s.ToString();
  EXPECT_EQ(CountLog("rule msiDmfStage paths=0"), 1);
}

TEST_F(IrodsBackendTest, StageManyByRuleSkipsMissingObjects) {
  StartEmulator({}, "OFL", 200);
  BackendConfig c = Config();
  c.dmf_lookup = "rule";
  Make(c);
  std::vector<std::string> paths = BulkPaths(200);
  ASSERT_TRUE(backend_->StageMany(paths, Deadline::Never()).ok());
  EXPECT_EQ(CountLog("api 625 "), 1);
  EXPECT_EQ(CountLog("rule msiDmfStage paths=200"), 1);
  // One path of the batch is gone: the others are still staged.
  paths.push_back("bulk/gone");
  ASSERT_TRUE(backend_->StageMany(paths, Deadline::Never()).ok());
  EXPECT_EQ(backend_->Stage("bulk/gone", Deadline::Never()).code(), Code::kNotFound);
}

TEST_F(IrodsBackendTest, StageOfSingleObjects) {
  StartEmulator();
  Make();
  EXPECT_TRUE(backend_->Stage("tape/dul.bin", Deadline::Never()).ok());
  EXPECT_EQ(CountLog("api 625 "), 0);  // on disk: nothing to do
  EXPECT_EQ(backend_->Stage("tape/nope", Deadline::Never()).code(), Code::kNotFound);
  EXPECT_TRUE(backend_->Stage("tape/off.bin", Deadline::Never()).ok());
  EXPECT_EQ(CountLog("rule msiDmfStage"), 1);
  EXPECT_EQ(backend_->Stat("tape/off.bin")->hsm_state, "UNM");

  BackendConfig c = Config();
  c.stage_rule = "";
  Make(c);
  EXPECT_TRUE(backend_->StageMany({"tape/unm.bin", "tape/off.bin"}, Deadline::Never()).ok());
  EXPECT_EQ(CountLog("api 625 "), 1);
}

TEST_F(IrodsBackendTest, PutOfAMultiMiBFileAndOverwrite) {
  StartEmulator();
  Make();
  const std::string data = RandomBytes(9 << 20, 1);
  uint64_t progress = 0;
  backends::PutOptions o;
  o.progress = [&](uint64_t n) { progress = n; };
  auto put = backend_->Put(Local(data), "new/dir/big.bin", o);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, data.size());
  EXPECT_EQ(put->checksum, Sha256(data));
  EXPECT_EQ(put->type, ObjectType::kFile);
  EXPECT_GT(put->mtime_ns, 0);
  EXPECT_EQ(progress, data.size());
  // The checksum iRODS registered, read back.
  auto st = backend_->Stat("new/dir/big.bin");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->checksum, Sha256(data));
  EXPECT_EQ(st->size, data.size());
  EXPECT_GE(CountLog("api 629 "), 1);
  EXPECT_EQ(*ReadAll("new/dir/big.bin"), data);

  const std::string v2 = RandomBytes(5 << 20, 2);
  auto again = backend_->Put(Local(v2), "new/dir/big.bin", {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(backend_->Stat("new/dir/big.bin")->checksum, Sha256(v2));
  EXPECT_EQ(*ReadAll("new/dir/big.bin"), v2);
  EXPECT_EQ(ListAll("new/dir").size(), 1u);

  auto empty = backend_->Put(Local(""), "new/empty", {});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*ReadAll("new/empty"), "");

  CancelToken cancel;
  cancel.Cancel();
  backends::PutOptions c;
  c.cancel = &cancel;
  EXPECT_EQ(backend_->Put(Local(data), "new/cancelled", c).status().code(), Code::kCancelled);
  EXPECT_EQ(backend_->Stat("new/cancelled").status().code(), Code::kNotFound);
  EXPECT_EQ(backend_->Put(dir_ / "missing-src", "new/x", {}).status().code(), Code::kNotFound);
}

TEST_F(IrodsBackendTest, TheFilesMtimeIsKeptInAnAvu) {
  StartEmulator();
  Make();
  backends::PutOptions o;
  o.mtime_ns = 1'600'000'000'123'000'000;
  auto put = backend_->Put(Local("abc"), "m/f", o);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->mtime_ns, o.mtime_ns);
  EXPECT_EQ(backend_->Stat("m/f")->mtime_ns, o.mtime_ns);
  auto listed = ListAll("m");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].mtime_ns, o.mtime_ns);
  // An object written by someone else since shows its iRODS modify time.
  auto times = ListAll("times");
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times[0].name, "changed.txt");
  EXPECT_EQ(times[0].mtime_ns, 1'700'000'009'000'000'000);
  EXPECT_EQ(times[1].mtime_ns, 1'600'000'000'123'000'000);
  EXPECT_EQ(backend_->Stat("times/changed.txt")->mtime_ns, 1'700'000'009'000'000'000);
  EXPECT_EQ(backend_->Stat("times/kept.txt")->mtime_ns, 1'600'000'000'123'000'000);
  // Without a state lookup the mtimes still come from the AVU.
  BackendConfig none = Config();
  none.dmf_lookup = "none";
  Make(none);
  EXPECT_EQ(ListAll("m")[0].mtime_ns, o.mtime_ns);
}

TEST_F(IrodsBackendTest, PutOfDmfObjectStartsAsReg) {
  StartEmulator({"--mig-delay", "5"});
  Make();
  auto put = backend_->Put(Local("abc"), "fresh.txt", {});
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->hsm_state, "REG");
  EXPECT_EQ(put->residency, Residency::kDisk);
}

TEST_F(IrodsBackendTest, ASymlinkCannotBeStoredAndNothingIsCreated) {
  StartEmulator();
  Make();
  backends::PutOptions o;
  o.symlink_target = "elsewhere";
  EXPECT_EQ(backend_->Put({}, "link", o).status().code(), Code::kNotPermitted);
  EXPECT_EQ(backend_->Stat("link").status().code(), Code::kNotFound);
}

TEST_F(IrodsBackendTest, DroppedConnectionMidReadResumes) {
  StartEmulator();
  Make();
  const std::string data = RandomBytes(10 << 20, 3);
  ASSERT_TRUE(backend_->Put(Local(data), "big.bin", {}).ok());
  const int opened = backend_->connections_opened();
  // The second read reply (of 4 MiB chunks) breaks off half-way.
  Control(R"({"drop_mid_read": 2})");
  ReadOptions o;
  o.expect_checksum = Sha256(data);
  auto got = ReadAll("big.bin", o);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);
  EXPECT_EQ(CountLog("fault: drop mid-read"), 1);
  EXPECT_GT(backend_->connections_opened(), opened);
  // The resumed read seeks to where the drop left it.
  EXPECT_GE(CountLog("api 674 "), 1);
}

TEST_F(IrodsBackendTest, DroppedConnectionDuringListingIsRetried) {
  StartEmulator({}, "DUL", 1600);
  Make();
  // ObjStat, collections, 4 state pages, then the object pages: drops in
  // the state query and in the object query.
  for (int n : {4, 9}) {
    Control(R"({"drop_after": )" + std::to_string(n) + "}");
    Status s;
    auto all = ListAll("bulk", &s);
    ASSERT_TRUE(s.ok()) << n << ": " << s.ToString();
    ExpectBulk(all, 1600, "DUL");
  }
  EXPECT_EQ(CountLog("fault: drop connection"), 2);
}

TEST_F(IrodsBackendTest, DroppedConnectionDuringPutAndStatIsRetried) {
  StartEmulator();
  Make();
  const std::string data = RandomBytes(6 << 20, 4);
  Control(R"({"drop_after": 3})");  // create, write, then the second write
  auto put = backend_->Put(Local(data), "p.bin", {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*ReadAll("p.bin"), data);
  EXPECT_EQ(CountLog("fault: drop connection"), 1);
  Control(R"({"drop_after": 1})");
  EXPECT_TRUE(backend_->Stat("p.bin").ok());
  EXPECT_EQ(CountLog("fault: drop connection"), 2);
}

TEST_F(IrodsBackendTest, SlowRepliesHitTheIoTimeout) {
  StartEmulator();
  BackendConfig c = Config();
  c.io_timeout = milliseconds(300);
  Make(c);
  Control(R"({"slow_ms": 1000})");
  const auto start = std::chrono::steady_clock::now();
  auto st = backend_->Stat("data/hello.txt");
  EXPECT_EQ(st.status().code(), Code::kDeadlineExceeded) << st.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  // The timed-out connection is dropped; the next call gets a good one.
  Control(R"({"slow_ms": 0})");
  const int opened = backend_->connections_opened();
  auto again = backend_->Stat("data/hello.txt");
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(backend_->connections_opened(), opened + 1);
}

TEST_F(IrodsBackendTest, RemoveRenameMakeDir) {
  StartEmulator();
  Make();
  ASSERT_TRUE(backend_->Put(Local("x"), "d/f", {}).ok());
  EXPECT_EQ(backend_->Remove("nope").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Remove("d").code(), Code::kNotEmpty);
  EXPECT_EQ(backend_->Remove("").code(), Code::kInvalidArgument);

  EXPECT_TRUE(backend_->MakeDir("d/e", 0755).ok());
  EXPECT_EQ(backend_->MakeDir("d/e", 0755).code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->MakeDir("d/f", 0755).code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->MakeDir("missing/child", 0755).code(), Code::kNotFound);
  EXPECT_EQ(backend_->Stat("d/e")->type, ObjectType::kDir);

  EXPECT_TRUE(backend_->Rename("d/f", "d/g").ok());
  EXPECT_EQ(backend_->Stat("d/f").status().code(), Code::kNotFound);
  EXPECT_EQ(*ReadAll("d/g"), "x");
  EXPECT_EQ(backend_->Rename("nope", "other").code(), Code::kNotFound);
  EXPECT_EQ(backend_->Rename("d/g", "d/e").code(), Code::kAlreadyExists);
  EXPECT_EQ(backend_->Rename("d/g", "missing/g").code(), Code::kNotFound);
  EXPECT_TRUE(backend_->Rename("d", "moved").ok());
  EXPECT_EQ(*ReadAll("moved/g"), "x");
  EXPECT_EQ(backend_->Stat("moved/e")->type, ObjectType::kDir);
  EXPECT_EQ(backend_->Stat("d").status().code(), Code::kNotFound);

  EXPECT_TRUE(backend_->Remove("moved/g").ok());
  EXPECT_TRUE(backend_->Remove("moved/e").ok());
  EXPECT_TRUE(backend_->Remove("moved").ok());
  EXPECT_EQ(backend_->Stat("moved").status().code(), Code::kNotFound);
}

TEST_F(IrodsBackendTest, PoolNeverExceedsItsSizeUnderConcurrency) {
  StartEmulator({"--slow-ms", "5"});
  BackendConfig c = Config();
  c.connections = 2;
  Make(c);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const std::string path = "c/t" + std::to_string(t) + "_" + std::to_string(i);
        if (!backend_->Put(Local(path), path, {}).ok()) ++errors;
        if (!backend_->Stat(path).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ListAll("c").size(), 30u);
  EXPECT_LE(backend_->connections_opened(), 2);
}

}  // namespace
}  // namespace hsmfs::irods
