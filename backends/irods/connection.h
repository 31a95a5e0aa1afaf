#pragma once

// Connection: one blocking session with an iRODS server over the native
// protocol (plain TCP or TLS), already authenticated when handed out.
//
// Startup: StartupPack_PI; when negotiation is requested the server answers
// with CS_NEG_PI and we reply with the result; then the server's Version_PI;
// then, if TLS was negotiated, the TLS handshake and the encryption-parameter
// and shared-secret headers the server expects; then authentication (auth
// plugin for servers >= 4.3, legacy 703/704 before, or as configured).
//
// Not thread-safe: one caller at a time (a pool hands connections out).
// Errors: iRODS codes map through IrodsStatus (errors.h, docs/IRODS.md); a
// socket failure or timeout is kUnavailable / kDeadlineExceeded and leaves
// the connection broken() (the pool discards it). Passwords are never logged
// and never appear in a Status.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/irods/messages.h"
#include "common/result.h"

namespace hsmfs::irods {

// API numbers (apiNumber.h).
enum Api : int {
  kDataObjCreateAn = 601,
  kDataObjOpenAn = 602,
  kDataObjPutAn = 606,
  kDataObjGetAn = 608,
  kDataObjUnlinkAn = 615,
  kExecMyRuleAn = 625,
  kDataObjRenameAn = 627,
  kDataObjChksumAn = 629,
  kObjStatAn = 633,
  kDataObjCloseAn = 673,
  kDataObjLseekAn = 674,
  kDataObjReadAn = 675,
  kDataObjWriteAn = 676,
  kRmCollAn = 679,
  kCollCreateAn = 681,
  kGenQueryAn = 702,
  kAuthRequestAn = 703,
  kAuthResponseAn = 704,
  kModAvuMetadataAn = 706,
  kAuthenticateAn = 110000,
};

struct ConnectOptions {
  std::string host;
  int port = 1247;
  std::string user;
  std::string zone;
  std::string password;  // never logged
  enum class Auth { kAuto, kLegacy, kPlugin } auth = Auth::kAuto;
  // kNone sends no negotiation request (plain TCP, like python-irodsclient's
  // default); the others are the client policy CS_NEG_REFUSE/DONT_CARE/REQUIRE.
  enum class CsPolicy { kNone, kRefuse, kDontCare, kRequire } cs_policy = CsPolicy::kDontCare;
  std::string ca_file;  // TLS trust anchors; empty = the system's
  bool verify_server = true;
  std::string client_name = "hsmfs";      // shown by `ips`
  std::string rel_version = "rods4.3.2";  // the protocol level we speak
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds io_timeout{60000};  // per send/receive
  // Codes with which a site's policy rule refuses to open an object on tape.
  std::vector<int> offline_codes = {-1089000, -1101000};
};

struct Reply {
  int int_info = 0;
  std::string body;
  std::string bs;
  RError error;  // warnings or error text sent with the reply
};

class Connection final {
 public:
  // Connects, negotiates, authenticates.
  static Result<std::unique_ptr<Connection>> Open(const ConnectOptions& options);
  // The same over an already connected socket, which it takes (tests, fakes).
  static Result<std::unique_ptr<Connection>> OverSocket(int fd, const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One API request; a negative intInfo becomes IrodsStatus. `what` names
  // the operation in error messages.
  Result<Reply> Call(int api, std::string_view body, std::string_view bs = {},
                     std::string_view what = "iRODS call");

  const Version& server_version() const { return version_; }
  bool tls() const;
  // True after a transport failure: the session state is unknown.
  bool broken() const { return broken_; }
  // The iRODS code of the last call: 0 if it succeeded or failed in transport.
  int last_error_code() const { return last_error_; }
  // True if the last call failed with one of `offline_codes` (an open the
  // site's rule refused because the object is on tape).
  bool last_refused_offline() const;

  Result<RodsObjStat> ObjStat(const std::string& path);
  // One page; CAT_NO_ROWS_FOUND gives an empty result, not an error.
  Result<GenQueryOut> GenQuery(const GenQueryInp& inp);
  // All pages, handed to `page` in order; closes the server-side statement
  // when `page` stops early with an error.
  Status GenQueryAll(GenQueryInp inp, const std::function<Status(const GenQueryOut&)>& page);

  // Returns the descriptor (l1descInx). An offline refusal (offline_codes)
  // is kUnavailable with "offline" in the message.
  Result<int> OpenObject(const std::string& path, int open_flags, const KeyValPairs& kv = {});
  Result<int> CreateObject(const std::string& path, int mode, const KeyValPairs& kv = {});
  Result<std::string> ReadObject(int fd, int len);
  Result<int64_t> WriteObject(int fd, std::string_view data);
  Result<int64_t> Seek(int fd, int64_t offset, int whence);
  Status CloseObject(int fd, const KeyValPairs& kv = {});
  // Single-buffer put/get (objects small enough for one message).
  Status PutSmall(const std::string& path, std::string_view data, bool force);
  Result<std::string> GetSmall(const std::string& path);

  Status Unlink(const std::string& path, bool force);
  Status Rename(const std::string& from, const std::string& to, bool collection);
  Status CreateCollection(const std::string& path, bool parents);
  Status RemoveCollection(const std::string& path, bool recursive);
  Result<std::string> Checksum(const std::string& path, bool force);
  // "add"/"set"/"rm" on a data object (-d) or collection (-C).
  Status ModifyAvu(std::string_view op, std::string_view kind, const std::string& path,
                   std::string_view attr, std::string_view value, std::string_view unit = {});
  Result<MsParamArray> ExecRule(const ExecMyRuleInp& inp);

  // Sends RODS_DISCONNECT (best effort) and closes.
  void Disconnect();

 private:
  class Transport;
  Connection(std::unique_ptr<Transport> transport, ConnectOptions options);
  Status Startup();
  Status StartTls();
  Status Authenticate();
  Status Send(std::string_view type, int int_info, std::string_view body, std::string_view bs);
  Result<Message> Receive();
  Status Broken(Status s);

  std::unique_ptr<Transport> transport_;
  ConnectOptions options_;
  Version version_;
  bool broken_ = false;
  int last_error_ = 0;
};

}  // namespace hsmfs::irods
