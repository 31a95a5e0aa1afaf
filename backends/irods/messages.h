#pragma once

// Typed iRODS packed-instruction structures (the "_PI" definitions of the
// server's rodsPackInstruct.h) that hsmfs sends or receives.
//
// Each struct has Pack(), giving compact XML in the field order of its
// packing instruction, and a static Unpack() that accepts the server's loosely
// formatted XML. Unpack fails with kInvalidArgument when a required field is
// missing or not a number; fields that older clients omit are optional.
// Value types; thread-compatible.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/irods/codec.h"
#include "common/result.h"

namespace hsmfs::irods {

// KeyValPair_PI: ordered (keyword, value) pairs; the server scans them in order.
using KeyValPairs = std::vector<std::pair<std::string, std::string>>;
std::string PackKeyValPairs(const KeyValPairs& kv);
Result<KeyValPairs> UnpackKeyValPairs(const XmlNode& node);
// The value of `key` or nullptr.
const std::string* FindKey(const KeyValPairs& kv, std::string_view key);

struct StartupPack {
  int irods_prot = 1;  // 1 = XML protocol
  // Part of the C definition; python-irodsclient 0.8.1 omits it.
  std::optional<int> reconn_flag = 0;
  int connect_cnt = 0;
  std::string proxy_user, proxy_zone, client_user, client_zone;
  std::string rel_version;
  std::string api_version = "d";
  std::string option;
  std::string Pack() const;
  static Result<StartupPack> Unpack(const XmlNode& node);
};

struct Version {
  int status = 0;
  std::string rel_version, api_version;
  int reconn_port = 0;
  std::string reconn_addr;
  int cookie = 0;
  std::string Pack() const;
  static Result<Version> Unpack(const XmlNode& node);
};

struct CsNeg {
  int status = 0;
  std::string result;  // server: a policy; client: "cs_neg_result_kw=<result>;"
  std::string Pack() const;
  static Result<CsNeg> Unpack(const XmlNode& node);
};

// Legacy native auth (API 703 reply).
struct AuthRequestOut {
  std::string challenge;  // base64 of the 64-byte challenge, as on the wire
  std::string Pack() const;
  static Result<AuthRequestOut> Unpack(const XmlNode& node);
};

// Legacy native auth (API 704 request).
struct AuthResponseInp {
  std::string response;  // base64 of the 16-byte digest
  std::string username;
  std::string Pack() const;
  static Result<AuthResponseInp> Unpack(const XmlNode& node);
};

// Binary bytes, base64 in XML. buflen is the byte count of `buf` (the server
// counts a trailing NUL it appends to JSON).
struct BinBytesBuf {
  std::string buf;  // decoded bytes
  std::string Pack() const;
  static Result<BinBytesBuf> Unpack(const XmlNode& node);
};

struct GenQueryInp {
  int max_rows = 500;
  int continue_inx = 0;
  int partial_start_index = 0;
  int options = 0;
  KeyValPairs cond_input;
  std::vector<std::pair<int, int>> select;         // InxIvalPair_PI: column, option
  std::vector<std::pair<int, std::string>> where;  // InxValPair_PI: column, "= 'x'"
  std::string Pack() const;
  static Result<GenQueryInp> Unpack(const XmlNode& node);
};

struct SqlResult {
  int attri_inx = 0;
  int reslen = 0;
  std::vector<std::string> values;  // one per row
};

struct GenQueryOut {
  int row_cnt = 0;
  int attri_cnt = 0;
  int continue_inx = 0;
  int total_row_count = 0;
  std::vector<SqlResult> columns;  // attri_cnt entries (the padding is dropped)
  // The value of `column` in `row`, or nullptr.
  const std::string* Get(int row, int column) const;
  // Packs like the server: MAX_SQL_ATTR (50) SqlResult_PI, unused ones empty.
  std::string Pack() const;
  static Result<GenQueryOut> Unpack(const XmlNode& node);
};

struct DataObjInp {
  std::string obj_path;
  int create_mode = 0;
  int open_flags = 0;
  int64_t offset = 0;
  int64_t data_size = 0;
  int num_threads = 0;
  int opr_type = 0;
  KeyValPairs cond_input;
  std::string Pack() const;
  static Result<DataObjInp> Unpack(const XmlNode& node);
};

// DataObjCopyInp_PI (rename and copy): source and destination.
struct DataObjCopyInp {
  DataObjInp src, dst;
  std::string Pack() const;
  static Result<DataObjCopyInp> Unpack(const XmlNode& node);
};

struct OpenedDataObjInp {
  int l1desc_inx = 0;
  int len = 0;
  int whence = 0;
  int opr_type = 0;
  int64_t offset = 0;
  int64_t bytes_written = 0;
  KeyValPairs cond_input;
  std::string Pack() const;
  static Result<OpenedDataObjInp> Unpack(const XmlNode& node);
};

struct FileLseekInp {
  int file_inx = 0;
  int64_t offset = 0;
  int whence = 0;
  std::string Pack() const;
  static Result<FileLseekInp> Unpack(const XmlNode& node);
};

struct FileLseekOut {
  int64_t offset = 0;
  std::string Pack() const;
  static Result<FileLseekOut> Unpack(const XmlNode& node);
};

struct CollInpNew {
  std::string coll_name;
  // Part of the C definition; python-irodsclient 0.8.1 omits both.
  std::optional<int> flags = 0;
  std::optional<int> opr_type = 0;
  KeyValPairs cond_input;
  std::string Pack() const;
  static Result<CollInpNew> Unpack(const XmlNode& node);
};

struct RodsObjStat {
  int64_t obj_size = 0;
  int obj_type = 0;  // 1 data object, 2 collection
  int data_mode = 0;
  std::string data_id, chksum, owner_name, owner_zone;
  std::string create_time, modify_time;  // seconds since the epoch, zero-padded
  std::string Pack() const;
  static Result<RodsObjStat> Unpack(const XmlNode& node);
};

struct StrPi {
  std::string my_str;
  std::string Pack() const;
  static Result<StrPi> Unpack(const XmlNode& node);
};

struct ModAvuMetadataInp {
  // arg0 operation (add, set, rm, ...), arg1 "-d"/"-C"/..., arg2 path,
  // arg3 attribute, arg4 value, arg5 unit, arg6..9 as the operation needs.
  std::vector<std::string> args;
  // Required by 5.0 (it rejects the request without it, -15000).
  std::optional<KeyValPairs> cond_input = KeyValPairs{};
  std::string Pack() const;
  static Result<ModAvuMetadataInp> Unpack(const XmlNode& node);
};

struct MsParam {
  std::string label;
  std::string type;   // "STR_PI", "INT_PI", ...; other types are carried opaquely
  std::string value;  // STR_PI.myStr or INT_PI.myInt
  std::optional<BinBytesBuf> bbuf;
};

struct MsParamArray {
  int opr_type = 0;
  std::vector<MsParam> params;
  // The value of the parameter labelled `label`, or nullptr.
  const MsParam* Find(std::string_view label) const;
  std::string Pack() const;
  static Result<MsParamArray> Unpack(const XmlNode& node);
};

struct RHostAddr {
  std::string host_addr, rods_zone;
  int port = 0;
  int dummy_int = 0;
};

struct ExecMyRuleInp {
  std::string my_rule;
  RHostAddr addr;
  KeyValPairs cond_input;
  std::string out_param_desc;
  MsParamArray params;
  std::string Pack() const;
  static Result<ExecMyRuleInp> Unpack(const XmlNode& node);
};

struct RErrMsg {
  int status = 0;
  std::string msg;
};

struct RError {
  std::vector<RErrMsg> msgs;
  // "msg1; msg2" for Status messages.
  std::string Summary() const;
  std::string Pack() const;
  static Result<RError> Unpack(const XmlNode& node);
};

// The reply to a single-buffer get (API 608).
struct PortalOprOut {
  int status = 0;
  int l1desc_inx = 0;
  int num_threads = 0;
  std::string chksum;
  int port_num = 0, cookie = 0, sock = 0, window_size = 0;
  std::string host_addr;
  std::string Pack() const;
  static Result<PortalOprOut> Unpack(const XmlNode& node);
};

// Parses `xml` and unpacks it as T, checking the root element is `root`.
template <typename T>
Result<T> UnpackXml(std::string_view xml, std::string_view root) {
  HSMFS_ASSIGN_OR_RETURN(XmlNode node, ParseXml(xml));
  if (node.name != root) {
    return InvalidArgumentError("iRODS: expected " + std::string(root) + ", got " + node.name);
  }
  return T::Unpack(node);
}

// Unpacks any of the structures above by its root element name (tests and
// diagnostics); kUnimplemented for an unknown root.
Status UnpackAny(std::string_view xml);

}  // namespace hsmfs::irods
