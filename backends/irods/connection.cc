#include "backends/irods/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "backends/irods/auth.h"
#include "backends/irods/errors.h"

namespace hsmfs::irods {
namespace {

// rcConnect's parameters for the shared secret (irods_environment defaults).
constexpr std::string_view kEncryptionAlgorithm = "AES-256-CBC";
constexpr int kEncryptionKeySize = 32;
constexpr int kEncryptionSaltSize = 8;
constexpr int kEncryptionHashRounds = 16;

// Server-to-client status messages of a recursive collection removal.
constexpr int kSvrToCliCollStat = 99999996;
constexpr int kCliToSvrCollStatReply = 99999997;

std::string_view PolicyName(ConnectOptions::CsPolicy p) {
  switch (p) {
    case ConnectOptions::CsPolicy::kRequire:
      return "CS_NEG_REQUIRE";
    case ConnectOptions::CsPolicy::kDontCare:
      return "CS_NEG_DONT_CARE";
    case ConnectOptions::CsPolicy::kNone:
    case ConnectOptions::CsPolicy::kRefuse:
      break;
  }
  return "CS_NEG_REFUSE";
}

// The iRODS negotiation table: REQUIRE beats DONT_CARE, REFUSE against
// REQUIRE fails, anything else without REQUIRE and with a REFUSE is TCP.
std::string_view Negotiate(std::string_view client, std::string_view server) {
  if (client == server) return client == "CS_NEG_REFUSE" ? "CS_NEG_USE_TCP" : "CS_NEG_USE_SSL";
  if (client == "CS_NEG_REFUSE" || server == "CS_NEG_REFUSE") {
    return (client == "CS_NEG_REQUIRE" || server == "CS_NEG_REQUIRE") ? "CS_NEG_FAILURE"
                                                                      : "CS_NEG_USE_TCP";
  }
  return "CS_NEG_USE_SSL";
}

void SetTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000),
             static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<int> ConnectTcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string where = host + ":" + std::to_string(port);
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return UnavailableError("iRODS resolve " + where + ": " + gai_strerror(rc));
  Status last = UnavailableError("iRODS connect " + where + ": no address");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = ErrnoToStatus(errno, "iRODS connect " + where);
      close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n != 1 || err != 0) {
      last = n == 0 ? DeadlineExceededError("iRODS connect " + where + ": timed out")
                    : UnavailableError("iRODS connect " + where + ": " + std::strerror(err));
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  // Refused or unreachable: the server may be restarting.
  return Status(last.code() == Code::kDeadlineExceeded ? last.code() : Code::kUnavailable,
                last.message());
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return e ? buf : "unknown TLS error";
}

}  // namespace

// A blocking byte stream: a socket, optionally wrapped in TLS.
class Connection::Transport {
 public:
  explicit Transport(int fd) : fd_(fd) {}
  ~Transport() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  Status StartTls(const ConnectOptions& o) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return InternalError("TLS: " + OpenSslError());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (o.verify_server) {
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
      int ok = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_)
                                 : SSL_CTX_load_verify_locations(ctx_, o.ca_file.c_str(), nullptr);
      if (ok != 1) return FailedPreconditionError("TLS trust anchors: " + OpenSslError());
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    // SSL_set_tlsext_host_name is a macro with a C cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(o.host.c_str()));
    if (o.verify_server) SSL_set1_host(ssl_, o.host.c_str());
    if (SSL_connect(ssl_) != 1) {
      long v = SSL_get_verify_result(ssl_);
      std::string why = v != X509_V_OK ? X509_verify_cert_error_string(v) : OpenSslError();
      return UnavailableError("iRODS TLS handshake with " + o.host + ": " + why);
    }
    return Status::Ok();
  }

  bool tls() const { return ssl_ != nullptr; }

  Status WriteAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n;
      if (ssl_) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (n <= 0) return IoError("send", errno);
      } else {
        n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return IoError("send", errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Status ReadExact(char* buf, size_t len) {
    while (len > 0) {
      ssize_t n;
      if (ssl_) {
        n = SSL_read(ssl_, buf, static_cast<int>(len));
        if (n <= 0) return IoError("receive", n == 0 ? 0 : errno);
      } else {
        n = recv(fd_, buf, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return IoError("receive", errno);
        if (n == 0) return UnavailableError("iRODS connection closed by the server");
      }
      buf += n;
      len -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

 private:
  static Status IoError(std::string_view what, int err) {
    if (err == EAGAIN || err == EWOULDBLOCK) {
      return DeadlineExceededError("iRODS " + std::string(what) + ": timed out");
    }
    return UnavailableError("iRODS " + std::string(what) + ": " +
                            (err ? std::strerror(err) : "connection closed"));
  }

  int fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

Connection::Connection(std::unique_ptr<Transport> transport, ConnectOptions options)
    : transport_(std::move(transport)), options_(std::move(options)) {}

Connection::~Connection() = default;

bool Connection::tls() const { return transport_ && transport_->tls(); }

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  HSMFS_ASSIGN_OR_RETURN(int fd, ConnectTcp(options.host, options.port, options.connect_timeout));
  return OverSocket(fd, options);
}

Result<std::unique_ptr<Connection>> Connection::OverSocket(int fd, const ConnectOptions& options) {
  SetTimeouts(fd, options.io_timeout);
  std::unique_ptr<Connection> c(new Connection(std::make_unique<Transport>(fd), options));
  HSMFS_RETURN_IF_ERROR(c->Startup());
  HSMFS_RETURN_IF_ERROR(c->Authenticate());
  return c;
}

Status Connection::Broken(Status s) {
  broken_ = true;
  return s;
}

Status Connection::Send(std::string_view type, int int_info, std::string_view body,
                        std::string_view bs) {
  if (broken_) return UnavailableError("iRODS connection is broken");
  Status s = transport_->WriteAll(
      EncodeMessage(Message{std::string(type), int_info, std::string(body), "", std::string(bs)}));
  return s.ok() ? s : Broken(s);
}

Result<Message> Connection::Receive() {
  if (broken_) return UnavailableError("iRODS connection is broken");
  unsigned char prefix[4];
  Status s = transport_->ReadExact(reinterpret_cast<char*>(prefix), 4);
  if (!s.ok()) return Broken(s);
  uint32_t n = DecodeLengthPrefix(prefix);
  if (n == 0 || n > kMaxHeaderLen) {
    return Broken(UnavailableError("iRODS: bad header length " + std::to_string(n)));
  }
  std::string header(n, '\0');
  s = transport_->ReadExact(header.data(), n);
  if (!s.ok()) return Broken(s);
  Result<MsgHeader> h = UnpackHeader(header);
  if (!h.ok()) return Broken(UnavailableError(h.status().message()));
  Message m;
  m.type = h->type;
  m.int_info = h->int_info;
  m.body.resize(h->msg_len);
  m.error.resize(h->error_len);
  m.bs.resize(h->bs_len);
  for (std::string* part : {&m.body, &m.error, &m.bs}) {
    s = transport_->ReadExact(part->data(), part->size());
    if (!s.ok()) return Broken(s);
  }
  return m;
}

Status Connection::Startup() {
  bool negotiate = options_.cs_policy != ConnectOptions::CsPolicy::kNone;
  StartupPack sp;
  sp.proxy_user = sp.client_user = options_.user;
  sp.proxy_zone = sp.client_zone = options_.zone;
  sp.rel_version = options_.rel_version;
  sp.option = options_.client_name;
  if (negotiate) sp.option += ";request_server_negotiation";
  HSMFS_RETURN_IF_ERROR(Send(kRodsConnect, 0, sp.Pack(), {}));
  HSMFS_ASSIGN_OR_RETURN(Message m, Receive());
  if (m.type == kRodsCsNeg) {
    HSMFS_ASSIGN_OR_RETURN(CsNeg server, UnpackXml<CsNeg>(m.body, "CS_NEG_PI"));
    std::string_view result = Negotiate(PolicyName(options_.cs_policy), server.result);
    CsNeg reply{result == "CS_NEG_FAILURE" ? 0 : 1,
                "cs_neg_result_kw=" + std::string(result) + ";"};
    HSMFS_RETURN_IF_ERROR(Send(kRodsCsNeg, 0, reply.Pack(), {}));
    if (result == "CS_NEG_FAILURE") {
      return Broken(FailedPreconditionError("iRODS TLS negotiation failed: we " +
                                            std::string(PolicyName(options_.cs_policy)) +
                                            ", server " + server.result));
    }
    HSMFS_ASSIGN_OR_RETURN(m, Receive());
    if (m.type != kRodsVersion) return Broken(UnavailableError("iRODS: expected RODS_VERSION"));
    HSMFS_ASSIGN_OR_RETURN(version_, UnpackXml<Version>(m.body, "Version_PI"));
    if (result == "CS_NEG_USE_SSL") return StartTls();
  } else {
    if (m.type != kRodsVersion) return Broken(UnavailableError("iRODS: expected RODS_VERSION"));
    if (m.int_info < 0) return Broken(IrodsStatus(m.int_info, "iRODS connect"));
    HSMFS_ASSIGN_OR_RETURN(version_, UnpackXml<Version>(m.body, "Version_PI"));
  }
  if (version_.status < 0) return Broken(IrodsStatus(version_.status, "iRODS connect"));
  return Status::Ok();
}

Status Connection::StartTls() {
  Status s = transport_->StartTls(options_);
  if (!s.ok()) return Broken(s);
  // The server reads the encryption parameters (a header whose length fields
  // carry key size, salt size and hash rounds), then the shared secret used
  // for parallel transfers, which we never use but must send.
  auto header_frame = [](const MsgHeader& h) {
    std::string x = PackHeader(h);
    uint32_t n = static_cast<uint32_t>(x.size());
    std::string out{static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xff),
                    static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
    return out + x;
  };
  std::string key(kEncryptionKeySize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kEncryptionKeySize) != 1) {
    return Broken(InternalError("TLS: no random bytes for the shared secret"));
  }
  s = transport_->WriteAll(header_frame({std::string(kEncryptionAlgorithm), kEncryptionKeySize,
                                         kEncryptionSaltSize, kEncryptionHashRounds, 0}));
  if (s.ok()) {
    s = transport_->WriteAll(header_frame({"SHARED_SECRET", kEncryptionKeySize, 0, 0, 0}) + key);
  }
  return s.ok() ? s : Broken(s);
}

Status Connection::Authenticate() {
  bool plugin =
      options_.auth == ConnectOptions::Auth::kPlugin ||
      (options_.auth == ConnectOptions::Auth::kAuto && ServerHasAuthPlugin(version_.rel_version));
  auto fail = [&](const Status& s) {
    // Wrong passwords are a configuration problem, not a transient one.
    return s.code() == Code::kPermissionDenied
               ? s.Annotate("iRODS authentication of " + options_.user + "#" + options_.zone +
                            " at " + options_.host + ":" + std::to_string(options_.port))
               : s;
  };
  if (!plugin) {
    Result<Reply> r = Call(kAuthRequestAn, {}, {}, "iRODS auth request");
    if (!r.ok()) return fail(r.status());
    HSMFS_ASSIGN_OR_RETURN(AuthRequestOut a,
                           UnpackXml<AuthRequestOut>(r->body, "authRequestOut_PI"));
    HSMFS_ASSIGN_OR_RETURN(std::string challenge, Base64Decode(a.challenge));
    HSMFS_ASSIGN_OR_RETURN(std::string response, NativeAuthResponse(challenge, options_.password));
    // Proxy authentication is not used: the username is the client user.
    AuthResponseInp inp{response, options_.user};
    Result<Reply> done = Call(kAuthResponseAn, inp.Pack(), {}, "iRODS auth response");
    return done.ok() ? Status::Ok() : fail(done.status());
  }
  BinBytesBuf req{PluginAuthRequestJson(options_.user, options_.zone) + std::string(1, '\0')};
  Result<Reply> r = Call(kAuthenticateAn, req.Pack(), {}, "iRODS auth plugin request");
  if (!r.ok()) return fail(r.status());
  HSMFS_ASSIGN_OR_RETURN(BinBytesBuf out, UnpackXml<BinBytesBuf>(r->body, "BinBytesBuf_PI"));
  HSMFS_ASSIGN_OR_RETURN(std::string request_result, PluginRequestResult(out.buf));
  HSMFS_ASSIGN_OR_RETURN(std::string digest, NativeAuthResponse(request_result, options_.password));
  BinBytesBuf resp{PluginAuthResponseJson(options_.user, options_.zone, request_result, digest) +
                   std::string(1, '\0')};
  Result<Reply> done = Call(kAuthenticateAn, resp.Pack(), {}, "iRODS auth plugin response");
  return done.ok() ? Status::Ok() : fail(done.status());
}

Result<Reply> Connection::Call(int api, std::string_view body, std::string_view bs,
                               std::string_view what) {
  // A transport failure must not leave an earlier call's code behind (a
  // stale CAT_NO_ROWS_FOUND would make a dropped GenQuery look empty).
  last_error_ = 0;
  HSMFS_RETURN_IF_ERROR(Send(kRodsApiReq, api, body, bs));
  while (true) {
    HSMFS_ASSIGN_OR_RETURN(Message m, Receive());
    if (m.type != kRodsApiReply) {
      return Broken(UnavailableError("iRODS: unexpected " + m.type + " reply"));
    }
    Reply reply;
    reply.int_info = m.int_info;
    reply.body = std::move(m.body);
    reply.bs = std::move(m.bs);
    if (!m.error.empty()) {
      Result<RError> e = UnpackXml<RError>(m.error, "RError_PI");
      if (e.ok()) reply.error = std::move(*e);
    }
    if (reply.int_info == kSvrToCliCollStat) {
      // Progress of a collection operation; the server waits for our ack.
      uint32_t ack = htonl(static_cast<uint32_t>(kCliToSvrCollStatReply));
      Status s = transport_->WriteAll(std::string_view(reinterpret_cast<char*>(&ack), 4));
      if (!s.ok()) return Broken(s);
      continue;
    }
    if (reply.int_info < 0) {
      last_error_ = reply.int_info;
      return IrodsStatus(reply.int_info, what, reply.error.Summary());
    }
    last_error_ = 0;
    return reply;
  }
}

Result<RodsObjStat> Connection::ObjStat(const std::string& path) {
  DataObjInp inp;
  inp.obj_path = path;
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kObjStatAn, inp.Pack(), {}, "ObjStat " + path));
  return UnpackXml<RodsObjStat>(r.body, "RodsObjStat_PI");
}

Result<GenQueryOut> Connection::GenQuery(const GenQueryInp& inp) {
  Result<Reply> r = Call(kGenQueryAn, inp.Pack(), {}, "GenQuery");
  if (!r.ok()) {
    if (last_error_ == kCatNoRowsFound) return GenQueryOut{};
    return r.status();
  }
  return UnpackXml<GenQueryOut>(r->body, "GenQueryOut_PI");
}

Status Connection::GenQueryAll(GenQueryInp inp,
                               const std::function<Status(const GenQueryOut&)>& page) {
  while (true) {
    HSMFS_ASSIGN_OR_RETURN(GenQueryOut out, GenQuery(inp));
    Status s = out.row_cnt > 0 ? page(out) : Status::Ok();
    if (out.continue_inx <= 0) return s;
    inp.continue_inx = out.continue_inx;
    if (!s.ok()) {
      // maxRows 0 with a continueInx frees the server's statement.
      inp.max_rows = 0;
      GenQuery(inp).status().IgnoreError();
      return s;
    }
  }
}

bool Connection::last_refused_offline() const {
  return last_error_ != 0 && std::find(options_.offline_codes.begin(), options_.offline_codes.end(),
                                       last_error_) != options_.offline_codes.end();
}

Result<int> Connection::OpenObject(const std::string& path, int open_flags, const KeyValPairs& kv) {
  DataObjInp inp;
  inp.obj_path = path;
  inp.open_flags = open_flags;
  inp.data_size = -1;
  inp.cond_input = kv;
  Result<Reply> r = Call(kDataObjOpenAn, inp.Pack(), {}, "open " + path);
  if (!r.ok()) {
    if (last_refused_offline()) {
      return UnavailableError("open " + path + ": offline (refused by the site's rule, iRODS " +
                              std::to_string(last_error_) + ")");
    }
    return r.status();
  }
  return r->int_info;
}

Result<int> Connection::CreateObject(const std::string& path, int mode, const KeyValPairs& kv) {
  DataObjInp inp;
  inp.obj_path = path;
  inp.create_mode = mode;
  inp.data_size = -1;
  inp.cond_input = kv;
  if (FindKey(inp.cond_input, "dataType") == nullptr) {
    inp.cond_input.emplace_back("dataType", "generic");
  }
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjCreateAn, inp.Pack(), {}, "create " + path));
  return r.int_info;
}

Result<std::string> Connection::ReadObject(int fd, int len) {
  OpenedDataObjInp inp;
  inp.l1desc_inx = fd;
  inp.len = len;
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjReadAn, inp.Pack(), {}, "read"));
  if (r.bs.size() != static_cast<size_t>(r.int_info)) {
    return Broken(UnavailableError("iRODS read: reply length does not match its data"));
  }
  return std::move(r.bs);
}

Result<int64_t> Connection::WriteObject(int fd, std::string_view data) {
  OpenedDataObjInp inp;
  inp.l1desc_inx = fd;
  inp.len = static_cast<int>(data.size());
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjWriteAn, inp.Pack(), data, "write"));
  return r.int_info;
}

Result<int64_t> Connection::Seek(int fd, int64_t offset, int whence) {
  OpenedDataObjInp inp;
  inp.l1desc_inx = fd;
  inp.offset = offset;
  inp.whence = whence;
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjLseekAn, inp.Pack(), {}, "lseek"));
  HSMFS_ASSIGN_OR_RETURN(FileLseekOut out, UnpackXml<FileLseekOut>(r.body, "fileLseekOut_PI"));
  return out.offset;
}

Status Connection::CloseObject(int fd, const KeyValPairs& kv) {
  OpenedDataObjInp inp;
  inp.l1desc_inx = fd;
  inp.cond_input = kv;
  return Call(kDataObjCloseAn, inp.Pack(), {}, "close").status();
}

Status Connection::PutSmall(const std::string& path, std::string_view data, bool force) {
  DataObjInp inp;
  inp.obj_path = path;
  inp.open_flags = 2;  // O_RDWR
  inp.data_size = static_cast<int64_t>(data.size());
  inp.opr_type = 1;  // PUT_OPR
  inp.cond_input = {{"dataType", "generic"}, {"dataIncluded", ""}};
  if (force) inp.cond_input.emplace_back("forceFlag", "");
  return Call(kDataObjPutAn, inp.Pack(), data, "put " + path).status();
}

Result<std::string> Connection::GetSmall(const std::string& path) {
  DataObjInp inp;
  inp.obj_path = path;
  inp.opr_type = 2;  // GET_OPR
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjGetAn, inp.Pack(), {}, "get " + path));
  HSMFS_ASSIGN_OR_RETURN(PortalOprOut out, UnpackXml<PortalOprOut>(r.body, "PortalOprOut_PI"));
  if (out.num_threads > 0 || r.bs.size() != static_cast<size_t>(r.int_info)) {
    // The server chose a parallel transfer over extra ports; callers use
    // OpenObject/ReadObject for large objects instead.
    return UnimplementedError("get " + path + ": parallel transfer not supported");
  }
  return std::move(r.bs);
}

Status Connection::Unlink(const std::string& path, bool force) {
  DataObjInp inp;
  inp.obj_path = path;
  inp.data_size = -1;
  if (force) inp.cond_input.emplace_back("forceFlag", "");
  return Call(kDataObjUnlinkAn, inp.Pack(), {}, "unlink " + path).status();
}

Status Connection::Rename(const std::string& from, const std::string& to, bool collection) {
  DataObjCopyInp inp;
  inp.src.obj_path = from;
  inp.dst.obj_path = to;
  inp.src.opr_type = inp.dst.opr_type = collection ? 12 : 11;  // RENAME_COLL / RENAME_DATA_OBJ
  return Call(kDataObjRenameAn, inp.Pack(), {}, "rename " + from).status();
}

Status Connection::CreateCollection(const std::string& path, bool parents) {
  CollInpNew inp;
  inp.coll_name = path;
  if (parents) inp.cond_input.emplace_back("recursiveOpr", "");
  return Call(kCollCreateAn, inp.Pack(), {}, "mkdir " + path).status();
}

Status Connection::RemoveCollection(const std::string& path, bool recursive) {
  CollInpNew inp;
  inp.coll_name = path;
  if (recursive) inp.cond_input.emplace_back("recursiveOpr", "");
  inp.cond_input.emplace_back("forceFlag", "");
  return Call(kRmCollAn, inp.Pack(), {}, "rmdir " + path).status();
}

Result<std::string> Connection::Checksum(const std::string& path, bool force) {
  DataObjInp inp;
  inp.obj_path = path;
  if (force) inp.cond_input.emplace_back("forceChksum", "");
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kDataObjChksumAn, inp.Pack(), {}, "checksum " + path));
  HSMFS_ASSIGN_OR_RETURN(StrPi s, UnpackXml<StrPi>(r.body, "STR_PI"));
  return s.my_str;
}

Status Connection::ModifyAvu(std::string_view op, std::string_view kind, const std::string& path,
                             std::string_view attr, std::string_view value, std::string_view unit) {
  ModAvuMetadataInp inp;
  inp.args = {std::string(op),   std::string(kind),  path,
              std::string(attr), std::string(value), std::string(unit)};
  inp.args.resize(10);
  return Call(kModAvuMetadataAn, inp.Pack(), {}, "AVU " + std::string(op) + " " + path).status();
}

Result<MsParamArray> Connection::ExecRule(const ExecMyRuleInp& inp) {
  HSMFS_ASSIGN_OR_RETURN(Reply r, Call(kExecMyRuleAn, inp.Pack(), {}, "rule"));
  if (r.body.empty()) return MsParamArray{};
  return UnpackXml<MsParamArray>(r.body, "MsParamArray_PI");
}

void Connection::Disconnect() {
  if (!broken_) Send(kRodsDisconnect, 0, {}, {}).IgnoreError();
  broken_ = true;
}

}  // namespace hsmfs::irods
