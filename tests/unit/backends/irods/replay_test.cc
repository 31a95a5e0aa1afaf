// Replays the conversations recorded against a real iRODS 5.0.2 server: a
// fake server on a socketpair sends the recorded replies in order while the
// test drives Connection through the same operations, and every request the
// client sends is checked against the recorded one.
//
// Compared: header type and intInfo, the body as an XML tree (so whitespace
// and entity spelling do not matter), and the binary stream. Tolerated, and
// only these:
//  - reconnFlag (StartupPack_PI), flags and oprType (CollInpNew_PI) with value
//    0 that we send and python-irodsclient 0.8.1 omits: they are part of the
//    C packing instructions and 0 is the server's default;
//  - auth plugin JSON (BinBytesBuf_PI) compared as JSON: the raw client
//    formatted it with spaces and sent the base64 length as buflen.
// The legacy auth response is compared exactly: the replayed challenge is the
// recorded one, so the digest must be identical.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "backends/irods/connection.h"
#include "tests/unit/backends/irods/recordings.h"

namespace hsmfs::irods {
namespace {

using testing::LoadRecording;
using testing::Recorded;

struct Exchange {
  Recorded request;
  std::optional<Recorded> reply;
};

// Splits a recording into connections and pairs each request with the next
// reply: the capture sometimes logged a reply before the request it answers.
std::vector<std::vector<Exchange>> Conversations(const std::vector<Recorded>& rec) {
  std::vector<std::vector<Exchange>> out;
  size_t start = 0;
  while (start < rec.size()) {
    size_t end = start + 1;
    while (end < rec.size() && !(rec[end].dir == "c2s" && rec[end].type == "RODS_CONNECT")) ++end;
    std::vector<Exchange> conv;
    std::vector<Recorded> replies;
    for (size_t i = start; i < end; ++i) {
      if (rec[i].dir == "c2s") {
        conv.push_back({rec[i], std::nullopt});
      } else {
        replies.push_back(rec[i]);
      }
    }
    size_t r = 0;
    for (Exchange& e : conv) {
      if (e.request.type != "RODS_DISCONNECT" && r < replies.size()) e.reply = replies[r++];
    }
    EXPECT_EQ(r, replies.size()) << "unpaired replies";
    out.push_back(std::move(conv));
    start = end;
  }
  return out;
}

bool ReadN(int fd, char* buf, size_t n) {
  while (n > 0) {
    ssize_t got = read(fd, buf, n);
    if (got <= 0) return false;
    buf += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

std::optional<Message> ReadFrame(int fd) {
  unsigned char prefix[4];
  if (!ReadN(fd, reinterpret_cast<char*>(prefix), 4)) return std::nullopt;
  std::string header(DecodeLengthPrefix(prefix), '\0');
  if (!ReadN(fd, header.data(), header.size())) return std::nullopt;
  Result<MsgHeader> h = UnpackHeader(header);
  if (!h.ok()) return std::nullopt;
  Message m{h->type, h->int_info, std::string(h->msg_len, '\0'), std::string(h->error_len, '\0'),
            std::string(h->bs_len, '\0')};
  for (std::string* part : {&m.body, &m.error, &m.bs}) {
    if (!ReadN(fd, part->data(), part->size())) return std::nullopt;
  }
  return m;
}

std::string PluginJson(const XmlNode& node) {
  std::string buf = *Base64Decode(node.Child("buf")->text);
  while (!buf.empty() && buf.back() == '\0') buf.pop_back();
  return nlohmann::json::parse(buf).dump();
}

// Compares our XML tree with the recorded one; returns "" or a difference.
std::string Diff(const XmlNode& ours, const XmlNode& want) {
  if (ours.name != want.name) return "element " + ours.name + " vs " + want.name;
  if (ours.name == "BinBytesBuf_PI") {
    std::string a = PluginJson(ours), b = PluginJson(want);
    return a == b ? "" : "JSON " + a + " vs " + b;
  }
  if (ours.text != want.text) return ours.name + ": '" + ours.text + "' vs '" + want.text + "'";
  size_t j = 0;
  for (const XmlNode& c : ours.children) {
    if (j < want.children.size() && want.children[j].name == c.name) {
      std::string d = Diff(c, want.children[j++]);
      if (!d.empty()) return ours.name + "." + d;
    } else if ((c.name == "reconnFlag" || c.name == "flags" || c.name == "oprType") &&
               c.text == "0" && want.Child(c.name) == nullptr) {
      continue;
    } else {
      return ours.name + ": unexpected <" + c.name + ">";
    }
  }
  if (j != want.children.size()) return ours.name + ": missing <" + want.children[j].name + ">";
  return "";
}

// Serves one recorded conversation on `fd`, collecting mismatches.
class ReplayServer {
 public:
  ReplayServer(int fd, std::vector<Exchange> conv)
      : fd_(fd), conv_(std::move(conv)), thread_([this] { Run(); }) {}
  ~ReplayServer() {
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  // Waits for the conversation to end and returns the mismatches.
  std::vector<std::string> Finish() {
    thread_.join();
    return failures_;
  }

 private:
  void Run() {
    for (size_t i = 0; i < conv_.size(); ++i) {
      const Exchange& e = conv_[i];
      std::string where = "request " + std::to_string(i) + " (" + e.request.type + " " +
                          std::to_string(e.request.int_info) + "): ";
      std::optional<Message> got = ReadFrame(fd_);
      if (!got) {
        failures_.push_back(where + "client sent nothing");
        return;
      }
      if (got->type != e.request.type || got->int_info != e.request.int_info) {
        failures_.push_back(where + "got " + got->type + " " + std::to_string(got->int_info));
        return;
      }
      if (got->body.empty() != e.request.msg.empty()) {
        failures_.push_back(where + "body presence differs: " + got->body);
      } else if (!got->body.empty()) {
        std::string d = Diff(*ParseXml(got->body), *ParseXml(e.request.msg));
        if (!d.empty()) failures_.push_back(where + d);
      }
      if (got->bs != *Base64Decode(e.request.bs_b64)) failures_.push_back(where + "bs differs");
      if (!e.reply) continue;
      const Recorded& r = *e.reply;
      std::string frame =
          EncodeMessage({r.type, r.int_info, r.msg, r.error, *Base64Decode(r.bs_b64)});
      if (write(fd_, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) {
        failures_.push_back(where + "reply write failed");
        return;
      }
    }
  }

  int fd_;
  std::vector<Exchange> conv_;
  std::vector<std::string> failures_;
  std::thread thread_;
};

struct Pair {
  int client = -1, server = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client = fds[0];
    server = fds[1];
  }
};

ConnectOptions LegacyOptions() {
  ConnectOptions o;
  o.host = "replay";
  o.user = "rods";
  o.zone = "tempZone";
  o.password = "rods";
  o.auth = ConnectOptions::Auth::kLegacy;
  o.cs_policy = ConnectOptions::CsPolicy::kNone;
  o.client_name = "";
  o.rel_version = "rods4.3.0";
  o.io_timeout = std::chrono::milliseconds(5000);
  return o;
}

GenQueryInp CollQuery(int column, const std::string& value) {
  GenQueryInp q;
  for (int c = 500; c <= 509; ++c) q.select.emplace_back(c, 1);
  q.where.emplace_back(column, "= '" + value + "'");
  return q;
}

GenQueryInp DataQuery(std::vector<std::pair<int, std::string>> where) {
  GenQueryInp q;
  for (int c : {401, 402, 403, 404, 405, 406, 407, 409, 410, 411, 412,
                413, 414, 415, 416, 417, 418, 419, 420, 422, 423}) {
    q.select.emplace_back(c, 1);
  }
  for (auto& [c, v] : where) q.where.emplace_back(c, "= '" + v + "'");
  return q;
}

void ExpectNoFailures(const std::vector<std::string>& failures) {
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

TEST(IrodsReplayTest, PythonIrodsclientSessionLegacyAuth) {
  auto convs = Conversations(LoadRecording("real_prc081.jsonl"));
  ASSERT_EQ(convs.size(), 2u);
  const std::string home = "/tempZone/home/rods";
  const std::string hello = home + "/hello.txt";
  const KeyValPairs resc = {{"destRescName", "demoResc"}};
  {
    Pair p;
    ReplayServer server(p.server, convs[0]);
    Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, LegacyOptions());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Connection& conn = **c;
    EXPECT_EQ(conn.server_version().rel_version, "rods5.0.2");
    Result<GenQueryOut> q = conn.GenQuery(CollQuery(501, home));
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ(*q->Get(0, 500), "10010");
    q = conn.GenQuery(DataQuery({{501, home}}));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->row_cnt, 2);
    EXPECT_EQ(*q->Get(1, 403), "put_single.bin");
    ASSERT_TRUE(conn.GenQuery(CollQuery(502, home)).ok());
    EXPECT_TRUE(conn.CreateCollection(home + "/sub", true).ok());
    ASSERT_TRUE(conn.GenQuery(CollQuery(501, home + "/sub")).ok());
    ASSERT_TRUE(conn.GenQuery(CollQuery(501, home)).ok());
    ASSERT_TRUE(conn.GenQuery(DataQuery({{403, "hello.txt"}, {402, "10010"}})).ok());
    EXPECT_TRUE(conn.Unlink(hello, true).ok());
    Result<int> fd = conn.CreateObject(hello, 0644);
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    EXPECT_EQ(*fd, 3);
    EXPECT_TRUE(conn.CloseObject(3).ok());
    ASSERT_TRUE(conn.GenQuery(CollQuery(501, home)).ok());
    ASSERT_TRUE(conn.GenQuery(DataQuery({{403, "hello.txt"}, {402, "10010"}})).ok());
    fd = conn.OpenObject(hello, 577, resc);  // O_WRONLY|O_CREAT|O_TRUNC
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(*conn.Seek(3, 0, SEEK_CUR), 0);
    EXPECT_EQ(*conn.WriteObject(3, "hello, irods\nhello, irods\nhello, irods\n"), 39);
    EXPECT_EQ(*conn.Seek(3, 0, SEEK_CUR), 39);
    EXPECT_TRUE(conn.CloseObject(3, resc).ok());
    ASSERT_TRUE(conn.GenQuery(CollQuery(501, home)).ok());
    ASSERT_TRUE(conn.GenQuery(DataQuery({{403, "hello.txt"}, {402, "10010"}})).ok());
    fd = conn.OpenObject(hello, 0, resc);
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(*conn.Seek(3, 0, SEEK_CUR), 0);
    EXPECT_EQ(*conn.Seek(3, 7, SEEK_SET), 7);
    EXPECT_EQ(*conn.Seek(3, 0, SEEK_CUR), 7);
    Result<std::string> data = conn.ReadObject(3, 8192);
    ASSERT_TRUE(data.ok());
    EXPECT_EQ(*data, "irods\nhello, irods\nhello, irods\n");
    EXPECT_EQ(*conn.Seek(3, -27, SEEK_CUR), 12);
    EXPECT_TRUE(conn.CloseObject(3, resc).ok());
    GenQueryInp avus;
    for (int col : {603, 600, 601, 602}) avus.select.emplace_back(col, 1);
    avus.where = {{501, "= '" + home + "'"}, {403, "= 'hello.txt'"}};
    Result<GenQueryOut> none = conn.GenQuery(avus);
    ASSERT_TRUE(none.ok()) << "CAT_NO_ROWS_FOUND is an empty result";
    EXPECT_EQ(none->row_cnt, 0);
    // The short form 5.0.2 rejects (no KeyValPair_PI), sent through Call.
    ModAvuMetadataInp short_form;
    short_form.args = {"add", "-d", hello, "SURF-DMF", "DUL"};
    short_form.cond_input = std::nullopt;
    Result<Reply> rejected = conn.Call(kModAvuMetadataAn, short_form.Pack());
    EXPECT_FALSE(rejected.ok());
    EXPECT_EQ(conn.last_error_code(), -15000);
    EXPECT_TRUE(conn.ModifyAvu("add", "-d", hello, "SURF-DMF", "DUL").ok());
    GenQueryInp avu;
    for (int col : {403, 600, 601}) avu.select.emplace_back(col, 1);
    avu.where = {{600, "= 'SURF-DMF'"}};
    Result<GenQueryOut> a = conn.GenQuery(avu);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a->Get(0, 601), "DUL");
    Result<RodsObjStat> st = conn.ObjStat(hello);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->obj_size, 39);
    EXPECT_EQ(st->obj_type, 1);
    Result<std::string> sum = conn.Checksum(hello, false);
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(*sum, "sha2:TTxCshLxekIofiN6iBUrUBBBGgw9FXvshkepWqxVMS8=");
    ExecMyRuleInp rule;
    rule.my_rule = "@external\nmyrule { *res = \"DMF:\" ++ *p; }";
    rule.out_param_desc = "*res";
    rule.params.params.push_back({"*p", "STR_PI", "\"DUL\"", std::nullopt});
    Result<MsParamArray> out = conn.ExecRule(rule);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->Find("*res")->value, "DMF:DUL");
    conn.Disconnect();
    ExpectNoFailures(server.Finish());
  }
  {
    Pair p;
    ReplayServer server(p.server, convs[1]);
    Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, LegacyOptions());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE((*c)->GenQuery(CollQuery(501, home)).ok());
    Result<GenQueryOut> none = (*c)->GenQuery(DataQuery({{403, "does-not-exist"}, {402, "10010"}}));
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->row_cnt, 0);
    (*c)->Disconnect();
    ExpectNoFailures(server.Finish());
  }
}

TEST(IrodsReplayTest, NegotiationAndAuthPluginSession) {
  auto convs = Conversations(LoadRecording("real_raw_authplugin.jsonl"));
  ASSERT_EQ(convs.size(), 1u);
  Pair p;
  ReplayServer server(p.server, convs[0]);
  ConnectOptions o = LegacyOptions();
  o.auth = ConnectOptions::Auth::kAuto;               // 5.0.2 >= 4.3: the plugin flow
  o.cs_policy = ConnectOptions::CsPolicy::kDontCare;  // the server refuses TLS: TCP
  o.client_name = "cppclient";
  o.rel_version = "rods4.3.2";
  Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Connection& conn = **c;
  EXPECT_FALSE(conn.tls());
  Result<RodsObjStat> st = conn.ObjStat("/tempZone/home/rods");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->obj_type, 2);
  GenQueryInp q;
  q.max_rows = 256;
  for (int col : {403, 407, 420, 415}) q.select.emplace_back(col, 1);
  q.where = {{501, "= '/tempZone/home/rods'"}};
  int rows = 0;
  EXPECT_TRUE(conn.GenQueryAll(q,
                               [&](const GenQueryOut& page) {
                                 rows += page.row_cnt;
                                 return Status::Ok();
                               })
                  .ok());
  EXPECT_EQ(rows, 2);
  std::string payload = *Base64Decode(convs[0][6].request.bs_b64);
  ASSERT_EQ(payload.size(), 64u);
  EXPECT_TRUE(conn.PutSmall("/tempZone/home/rods/put_single.bin", payload, true).ok());
  Result<std::string> back = conn.GetSmall("/tempZone/home/rods/put_single.bin");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, payload);
  Result<RodsObjStat> missing = conn.ObjStat("/tempZone/home/rods/nope");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("-310000"), std::string::npos);
  conn.Disconnect();
  ExpectNoFailures(server.Finish());
}

TEST(IrodsReplayTest, DmfPolicyRefusalIsOffline) {
  auto convs = Conversations(LoadRecording("real_dmf_policy.jsonl"));
  ASSERT_EQ(convs.size(), 1u);
  Pair p;
  ReplayServer server(p.server, convs[0]);
  Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, LegacyOptions());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Connection& conn = **c;
  const std::string hello = "/tempZone/home/rods/hello.txt";
  for (const char* state : {"OFL", "UNM"}) {
    EXPECT_TRUE(conn.ModifyAvu("set", "-d", hello, "SURF-DMF", state).ok());
    Result<int> fd = conn.OpenObject(hello, 0);
    EXPECT_EQ(fd.status().code(), Code::kUnavailable) << state;
    EXPECT_NE(fd.status().message().find("offline"), std::string::npos);
    EXPECT_EQ(conn.last_error_code(), -1089000);
    EXPECT_FALSE(conn.broken());
  }
  EXPECT_TRUE(conn.ModifyAvu("set", "-d", hello, "SURF-DMF", "DUL").ok());
  Result<int> fd = conn.OpenObject(hello, 0);
  ASSERT_TRUE(fd.ok());
  EXPECT_TRUE(conn.CloseObject(*fd).ok());
  conn.Disconnect();
  ExpectNoFailures(server.Finish());
}

TEST(IrodsReplayTest, WrongPasswordIsPermissionDeniedAndNotLogged) {
  // The recorded server accepted "rods"; a different password gives a
  // different digest, which the request check reports.
  auto convs = Conversations(LoadRecording("real_dmf_policy.jsonl"));
  std::vector<Exchange> conv(convs[0].begin(), convs[0].begin() + 3);
  conv[2].reply->int_info = -826000;  // what the server answers to a bad digest
  conv[2].reply->msg = "";
  Pair p;
  ReplayServer server(p.server, conv);
  ConnectOptions o = LegacyOptions();
  o.password = "hunter2";
  Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(c.status().ToString().find("hunter2"), std::string::npos);
  std::vector<std::string> failures = server.Finish();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("response"), std::string::npos);
}

TEST(IrodsReplayTest, DroppedConnectionIsUnavailableAndBroken) {
  auto convs = Conversations(LoadRecording("real_dmf_policy.jsonl"));
  std::vector<Exchange> conv(convs[0].begin(), convs[0].begin() + 4);  // ends after one AVU set
  Pair p;
  ReplayServer server(p.server, conv);
  Result<std::unique_ptr<Connection>> c = Connection::OverSocket(p.client, LegacyOptions());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(
      (*c)->ModifyAvu("set", "-d", "/tempZone/home/rods/hello.txt", "SURF-DMF", "OFL").ok());
  ExpectNoFailures(server.Finish());
  shutdown(p.server, SHUT_RDWR);
  Result<int> fd = (*c)->OpenObject("/tempZone/home/rods/hello.txt", 0);
  EXPECT_EQ(fd.status().code(), Code::kUnavailable);
  EXPECT_TRUE((*c)->broken());
}

}  // namespace
}  // namespace hsmfs::irods
