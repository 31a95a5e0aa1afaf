#include "backends/irods/messages.h"

#include <utility>

namespace hsmfs::irods {
namespace {

// iRODS's MAX_SQL_ATTR: the server always sends this many SqlResult_PI.
constexpr int kMaxSqlAttr = 50;

Status Missing(const XmlNode& node, std::string_view child) {
  return InvalidArgumentError("iRODS " + node.name + ": missing <" + std::string(child) + ">");
}

// Unpacks the nested KeyValPair_PI of `node`; an absent one is an empty list.
Result<KeyValPairs> NestedKv(const XmlNode& node) {
  const XmlNode* kv = node.Child("KeyValPair_PI");
  if (kv == nullptr) return KeyValPairs{};
  return UnpackKeyValPairs(*kv);
}

std::vector<std::string> Texts(const XmlNode& node, std::string_view name) {
  std::vector<std::string> out;
  for (const XmlNode* c : node.Children(name)) out.push_back(c->text);
  return out;
}

}  // namespace

std::string PackKeyValPairs(const KeyValPairs& kv) {
  XmlWriter w("KeyValPair_PI");
  w.Int("ssLen", static_cast<int64_t>(kv.size()));
  for (const auto& [k, v] : kv) w.Str("keyWord", k);
  for (const auto& [k, v] : kv) w.Str("svalue", v);
  return std::move(w).Finish();
}

Result<KeyValPairs> UnpackKeyValPairs(const XmlNode& node) {
  FieldReader r(node);
  int64_t n = r.Int("ssLen");
  HSMFS_RETURN_IF_ERROR(r.status());
  std::vector<std::string> keys = Texts(node, "keyWord");
  std::vector<std::string> values = Texts(node, "svalue");
  if (n < 0 || keys.size() != static_cast<size_t>(n) || values.size() != keys.size()) {
    return InvalidArgumentError("iRODS KeyValPair_PI: ssLen does not match its entries");
  }
  KeyValPairs kv;
  for (size_t i = 0; i < keys.size(); ++i) kv.emplace_back(keys[i], values[i]);
  return kv;
}

const std::string* FindKey(const KeyValPairs& kv, std::string_view key) {
  for (const auto& [k, v] : kv) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string StartupPack::Pack() const {
  XmlWriter w("StartupPack_PI");
  w.Int("irodsProt", irods_prot);
  if (reconn_flag) w.Int("reconnFlag", *reconn_flag);
  w.Int("connectCnt", connect_cnt)
      .Str("proxyUser", proxy_user)
      .Str("proxyRcatZone", proxy_zone)
      .Str("clientUser", client_user)
      .Str("clientRcatZone", client_zone)
      .Str("relVersion", rel_version)
      .Str("apiVersion", api_version)
      .Str("option", option);
  return std::move(w).Finish();
}

Result<StartupPack> StartupPack::Unpack(const XmlNode& node) {
  FieldReader r(node);
  StartupPack s;
  s.irods_prot = static_cast<int>(r.Int("irodsProt"));
  s.reconn_flag = std::nullopt;
  if (node.Child("reconnFlag")) s.reconn_flag = static_cast<int>(r.Int("reconnFlag"));
  s.connect_cnt = static_cast<int>(r.Int("connectCnt"));
  s.proxy_user = r.Str("proxyUser");
  s.proxy_zone = r.Str("proxyRcatZone");
  s.client_user = r.Str("clientUser");
  s.client_zone = r.Str("clientRcatZone");
  s.rel_version = r.Str("relVersion");
  s.api_version = r.Str("apiVersion");
  s.option = r.OptStr("option");
  HSMFS_RETURN_IF_ERROR(r.status());
  return s;
}

std::string Version::Pack() const {
  XmlWriter w("Version_PI");
  w.Int("status", status)
      .Str("relVersion", rel_version)
      .Str("apiVersion", api_version)
      .Int("reconnPort", reconn_port)
      .Str("reconnAddr", reconn_addr)
      .Int("cookie", cookie);
  return std::move(w).Finish();
}

Result<Version> Version::Unpack(const XmlNode& node) {
  FieldReader r(node);
  Version v;
  v.status = static_cast<int>(r.Int("status"));
  v.rel_version = r.Str("relVersion");
  v.api_version = r.Str("apiVersion");
  v.reconn_port = static_cast<int>(r.OptInt("reconnPort", 0));
  v.reconn_addr = r.OptStr("reconnAddr");
  v.cookie = static_cast<int>(r.OptInt("cookie", 0));
  HSMFS_RETURN_IF_ERROR(r.status());
  return v;
}

std::string CsNeg::Pack() const {
  XmlWriter w("CS_NEG_PI");
  w.Int("status", status).Str("result", result);
  return std::move(w).Finish();
}

Result<CsNeg> CsNeg::Unpack(const XmlNode& node) {
  FieldReader r(node);
  CsNeg c;
  c.status = static_cast<int>(r.Int("status"));
  c.result = r.Str("result");
  HSMFS_RETURN_IF_ERROR(r.status());
  return c;
}

std::string AuthRequestOut::Pack() const {
  XmlWriter w("authRequestOut_PI");
  w.Str("challenge", challenge);
  return std::move(w).Finish();
}

Result<AuthRequestOut> AuthRequestOut::Unpack(const XmlNode& node) {
  FieldReader r(node);
  AuthRequestOut a;
  a.challenge = r.Str("challenge");
  HSMFS_RETURN_IF_ERROR(r.status());
  return a;
}

std::string AuthResponseInp::Pack() const {
  XmlWriter w("authResponseInp_PI");
  w.Str("response", response).Str("username", username);
  return std::move(w).Finish();
}

Result<AuthResponseInp> AuthResponseInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  AuthResponseInp a;
  a.response = r.Str("response");
  a.username = r.Str("username");
  HSMFS_RETURN_IF_ERROR(r.status());
  return a;
}

std::string BinBytesBuf::Pack() const {
  XmlWriter w("BinBytesBuf_PI");
  w.Int("buflen", static_cast<int64_t>(buf.size())).Str("buf", Base64Encode(buf));
  return std::move(w).Finish();
}

Result<BinBytesBuf> BinBytesBuf::Unpack(const XmlNode& node) {
  FieldReader r(node);
  int64_t buflen = r.Int("buflen");
  std::string b64 = r.Str("buf");
  HSMFS_RETURN_IF_ERROR(r.status());
  HSMFS_ASSIGN_OR_RETURN(std::string bytes, Base64Decode(b64));
  // Some clients send the base64 length as buflen; trust the decoded bytes
  // but never read past what buflen allows.
  if (buflen >= 0 && static_cast<size_t>(buflen) < bytes.size()) {
    bytes.resize(static_cast<size_t>(buflen));
  }
  return BinBytesBuf{std::move(bytes)};
}

std::string GenQueryInp::Pack() const {
  XmlWriter w("GenQueryInp_PI");
  w.Int("maxRows", max_rows)
      .Int("continueInx", continue_inx)
      .Int("partialStartIndex", partial_start_index)
      .Int("options", options)
      .Raw(PackKeyValPairs(cond_input));
  XmlWriter sel("InxIvalPair_PI");
  sel.Int("iiLen", static_cast<int64_t>(select.size()));
  for (const auto& [inx, v] : select) sel.Int("inx", inx);
  for (const auto& [inx, v] : select) sel.Int("ivalue", v);
  w.Raw(std::move(sel).Finish());
  XmlWriter cond("InxValPair_PI");
  cond.Int("isLen", static_cast<int64_t>(where.size()));
  for (const auto& [inx, v] : where) cond.Int("inx", inx);
  for (const auto& [inx, v] : where) cond.Str("svalue", v);
  w.Raw(std::move(cond).Finish());
  return std::move(w).Finish();
}

Result<GenQueryInp> GenQueryInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  GenQueryInp q;
  q.max_rows = static_cast<int>(r.Int("maxRows"));
  q.continue_inx = static_cast<int>(r.Int("continueInx"));
  q.partial_start_index = static_cast<int>(r.Int("partialStartIndex"));
  q.options = static_cast<int>(r.Int("options"));
  HSMFS_RETURN_IF_ERROR(r.status());
  HSMFS_ASSIGN_OR_RETURN(q.cond_input, NestedKv(node));
  const XmlNode* sel = node.Child("InxIvalPair_PI");
  const XmlNode* cond = node.Child("InxValPair_PI");
  if (sel == nullptr) return Missing(node, "InxIvalPair_PI");
  if (cond == nullptr) return Missing(node, "InxValPair_PI");
  std::vector<std::string> inx = Texts(*sel, "inx");
  std::vector<std::string> iv = Texts(*sel, "ivalue");
  if (inx.size() != iv.size()) return InvalidArgumentError("iRODS InxIvalPair_PI: size mismatch");
  for (size_t i = 0; i < inx.size(); ++i) {
    HSMFS_ASSIGN_OR_RETURN(int64_t a, ParseInt(inx[i]));
    HSMFS_ASSIGN_OR_RETURN(int64_t b, ParseInt(iv[i]));
    q.select.emplace_back(static_cast<int>(a), static_cast<int>(b));
  }
  std::vector<std::string> cinx = Texts(*cond, "inx");
  std::vector<std::string> sv = Texts(*cond, "svalue");
  if (cinx.size() != sv.size()) return InvalidArgumentError("iRODS InxValPair_PI: size mismatch");
  for (size_t i = 0; i < cinx.size(); ++i) {
    HSMFS_ASSIGN_OR_RETURN(int64_t a, ParseInt(cinx[i]));
    q.where.emplace_back(static_cast<int>(a), sv[i]);
  }
  return q;
}

const std::string* GenQueryOut::Get(int row, int column) const {
  for (const SqlResult& c : columns) {
    if (c.attri_inx == column) {
      if (row < 0 || static_cast<size_t>(row) >= c.values.size()) return nullptr;
      return &c.values[static_cast<size_t>(row)];
    }
  }
  return nullptr;
}

std::string GenQueryOut::Pack() const {
  XmlWriter w("GenQueryOut_PI");
  w.Int("rowCnt", row_cnt)
      .Int("attriCnt", attri_cnt)
      .Int("continueInx", continue_inx)
      .Int("totalRowCount", total_row_count);
  for (int i = 0; i < kMaxSqlAttr; ++i) {
    XmlWriter s("SqlResult_PI");
    if (static_cast<size_t>(i) < columns.size()) {
      const SqlResult& c = columns[static_cast<size_t>(i)];
      s.Int("attriInx", c.attri_inx).Int("reslen", c.reslen);
      for (const std::string& v : c.values) s.Str("value", v);
    } else {
      s.Int("attriInx", 0).Int("reslen", 0);
    }
    w.Raw(std::move(s).Finish());
  }
  return std::move(w).Finish();
}

Result<GenQueryOut> GenQueryOut::Unpack(const XmlNode& node) {
  FieldReader r(node);
  GenQueryOut q;
  q.row_cnt = static_cast<int>(r.Int("rowCnt"));
  q.attri_cnt = static_cast<int>(r.Int("attriCnt"));
  q.continue_inx = static_cast<int>(r.Int("continueInx"));
  q.total_row_count = static_cast<int>(r.OptInt("totalRowCount", 0));
  HSMFS_RETURN_IF_ERROR(r.status());
  std::vector<const XmlNode*> results = node.Children("SqlResult_PI");
  if (q.row_cnt < 0 || q.attri_cnt < 0 || static_cast<size_t>(q.attri_cnt) > results.size()) {
    return InvalidArgumentError("iRODS GenQueryOut_PI: attriCnt exceeds its SqlResult_PI");
  }
  for (int i = 0; i < q.attri_cnt; ++i) {
    const XmlNode& n = *results[static_cast<size_t>(i)];
    FieldReader c(n);
    SqlResult s;
    s.attri_inx = static_cast<int>(c.Int("attriInx"));
    s.reslen = static_cast<int>(c.Int("reslen"));
    HSMFS_RETURN_IF_ERROR(c.status());
    s.values = Texts(n, "value");
    if (s.values.size() != static_cast<size_t>(q.row_cnt)) {
      return InvalidArgumentError("iRODS GenQueryOut_PI: column " + std::to_string(s.attri_inx) +
                                  " has " + std::to_string(s.values.size()) + " values for " +
                                  std::to_string(q.row_cnt) + " rows");
    }
    q.columns.push_back(std::move(s));
  }
  return q;
}

std::string DataObjInp::Pack() const {
  XmlWriter w("DataObjInp_PI");
  w.Str("objPath", obj_path)
      .Int("createMode", create_mode)
      .Int("openFlags", open_flags)
      .Int("offset", offset)
      .Int("dataSize", data_size)
      .Int("numThreads", num_threads)
      .Int("oprType", opr_type)
      .Raw(PackKeyValPairs(cond_input));
  return std::move(w).Finish();
}

Result<DataObjInp> DataObjInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  DataObjInp d;
  d.obj_path = r.Str("objPath");
  d.create_mode = static_cast<int>(r.Int("createMode"));
  d.open_flags = static_cast<int>(r.Int("openFlags"));
  d.offset = r.Int("offset");
  d.data_size = r.Int("dataSize");
  d.num_threads = static_cast<int>(r.Int("numThreads"));
  d.opr_type = static_cast<int>(r.Int("oprType"));
  HSMFS_RETURN_IF_ERROR(r.status());
  HSMFS_ASSIGN_OR_RETURN(d.cond_input, NestedKv(node));
  return d;
}

std::string DataObjCopyInp::Pack() const {
  XmlWriter w("DataObjCopyInp_PI");
  w.Raw(src.Pack()).Raw(dst.Pack());
  return std::move(w).Finish();
}

Result<DataObjCopyInp> DataObjCopyInp::Unpack(const XmlNode& node) {
  std::vector<const XmlNode*> parts = node.Children("DataObjInp_PI");
  if (parts.size() != 2) return InvalidArgumentError("iRODS DataObjCopyInp_PI: needs two parts");
  DataObjCopyInp c;
  HSMFS_ASSIGN_OR_RETURN(c.src, DataObjInp::Unpack(*parts[0]));
  HSMFS_ASSIGN_OR_RETURN(c.dst, DataObjInp::Unpack(*parts[1]));
  return c;
}

std::string OpenedDataObjInp::Pack() const {
  XmlWriter w("OpenedDataObjInp_PI");
  w.Int("l1descInx", l1desc_inx)
      .Int("len", len)
      .Int("whence", whence)
      .Int("oprType", opr_type)
      .Int("offset", offset)
      .Int("bytesWritten", bytes_written)
      .Raw(PackKeyValPairs(cond_input));
  return std::move(w).Finish();
}

Result<OpenedDataObjInp> OpenedDataObjInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  OpenedDataObjInp o;
  o.l1desc_inx = static_cast<int>(r.Int("l1descInx"));
  o.len = static_cast<int>(r.Int("len"));
  o.whence = static_cast<int>(r.Int("whence"));
  o.opr_type = static_cast<int>(r.Int("oprType"));
  o.offset = r.Int("offset");
  o.bytes_written = r.Int("bytesWritten");
  HSMFS_RETURN_IF_ERROR(r.status());
  HSMFS_ASSIGN_OR_RETURN(o.cond_input, NestedKv(node));
  return o;
}

std::string FileLseekInp::Pack() const {
  XmlWriter w("fileLseekInp_PI");
  w.Int("fileInx", file_inx).Int("offset", offset).Int("whence", whence);
  return std::move(w).Finish();
}

Result<FileLseekInp> FileLseekInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  FileLseekInp f;
  f.file_inx = static_cast<int>(r.Int("fileInx"));
  f.offset = r.Int("offset");
  f.whence = static_cast<int>(r.Int("whence"));
  HSMFS_RETURN_IF_ERROR(r.status());
  return f;
}

std::string FileLseekOut::Pack() const {
  XmlWriter w("fileLseekOut_PI");
  w.Int("offset", offset);
  return std::move(w).Finish();
}

Result<FileLseekOut> FileLseekOut::Unpack(const XmlNode& node) {
  FieldReader r(node);
  FileLseekOut f;
  f.offset = r.Int("offset");
  HSMFS_RETURN_IF_ERROR(r.status());
  return f;
}

std::string CollInpNew::Pack() const {
  XmlWriter w("CollInpNew_PI");
  w.Str("collName", coll_name);
  if (flags) w.Int("flags", *flags);
  if (opr_type) w.Int("oprType", *opr_type);
  w.Raw(PackKeyValPairs(cond_input));
  return std::move(w).Finish();
}

Result<CollInpNew> CollInpNew::Unpack(const XmlNode& node) {
  FieldReader r(node);
  CollInpNew c;
  c.coll_name = r.Str("collName");
  HSMFS_RETURN_IF_ERROR(r.status());
  c.flags = std::nullopt;
  c.opr_type = std::nullopt;
  if (node.Child("flags")) c.flags = static_cast<int>(r.Int("flags"));
  if (node.Child("oprType")) c.opr_type = static_cast<int>(r.Int("oprType"));
  HSMFS_RETURN_IF_ERROR(r.status());
  HSMFS_ASSIGN_OR_RETURN(c.cond_input, NestedKv(node));
  return c;
}

std::string RodsObjStat::Pack() const {
  XmlWriter w("RodsObjStat_PI");
  w.Int("objSize", obj_size)
      .Int("objType", obj_type)
      .Int("dataMode", data_mode)
      .Str("dataId", data_id)
      .Str("chksum", chksum)
      .Str("ownerName", owner_name)
      .Str("ownerZone", owner_zone)
      .Str("createTime", create_time)
      .Str("modifyTime", modify_time);
  return std::move(w).Finish();
}

Result<RodsObjStat> RodsObjStat::Unpack(const XmlNode& node) {
  FieldReader r(node);
  RodsObjStat s;
  s.obj_size = r.Int("objSize");
  s.obj_type = static_cast<int>(r.Int("objType"));
  s.data_mode = static_cast<int>(r.OptInt("dataMode", 0));
  s.data_id = r.OptStr("dataId");
  s.chksum = r.OptStr("chksum");
  s.owner_name = r.OptStr("ownerName");
  s.owner_zone = r.OptStr("ownerZone");
  s.create_time = r.OptStr("createTime");
  s.modify_time = r.OptStr("modifyTime");
  HSMFS_RETURN_IF_ERROR(r.status());
  return s;
}

std::string StrPi::Pack() const {
  XmlWriter w("STR_PI");
  w.Str("myStr", my_str);
  return std::move(w).Finish();
}

Result<StrPi> StrPi::Unpack(const XmlNode& node) {
  FieldReader r(node);
  StrPi s;
  s.my_str = r.Str("myStr");
  HSMFS_RETURN_IF_ERROR(r.status());
  return s;
}

std::string ModAvuMetadataInp::Pack() const {
  XmlWriter w("ModAVUMetadataInp_PI");
  for (size_t i = 0; i < args.size(); ++i) w.Str("arg" + std::to_string(i), args[i]);
  if (cond_input) w.Raw(PackKeyValPairs(*cond_input));
  return std::move(w).Finish();
}

Result<ModAvuMetadataInp> ModAvuMetadataInp::Unpack(const XmlNode& node) {
  ModAvuMetadataInp m;
  for (int i = 0; i < 10; ++i) {
    const XmlNode* a = node.Child("arg" + std::to_string(i));
    if (a == nullptr) break;
    m.args.push_back(a->text);
  }
  if (m.args.empty()) return Missing(node, "arg0");
  m.cond_input = std::nullopt;
  if (const XmlNode* kv = node.Child("KeyValPair_PI")) {
    HSMFS_ASSIGN_OR_RETURN(m.cond_input, UnpackKeyValPairs(*kv));
  }
  return m;
}

const MsParam* MsParamArray::Find(std::string_view label) const {
  for (const MsParam& p : params) {
    if (p.label == label) return &p;
  }
  return nullptr;
}

std::string MsParamArray::Pack() const {
  XmlWriter w("MsParamArray_PI");
  w.Int("paramLen", static_cast<int64_t>(params.size())).Int("oprType", opr_type);
  for (const MsParam& p : params) {
    XmlWriter m("MsParam_PI");
    m.Str("label", p.label).Str("type", p.type);
    if (p.type == "STR_PI") {
      m.Raw(StrPi{p.value}.Pack());
    } else if (p.type == "INT_PI") {
      XmlWriter i("INT_PI");
      i.Str("myInt", p.value);
      m.Raw(std::move(i).Finish());
    }
    if (p.bbuf) m.Raw(p.bbuf->Pack());
    w.Raw(std::move(m).Finish());
  }
  return std::move(w).Finish();
}

Result<MsParamArray> MsParamArray::Unpack(const XmlNode& node) {
  FieldReader r(node);
  MsParamArray a;
  int64_t n = r.Int("paramLen");
  a.opr_type = static_cast<int>(r.Int("oprType"));
  HSMFS_RETURN_IF_ERROR(r.status());
  std::vector<const XmlNode*> ps = node.Children("MsParam_PI");
  if (n < 0 || static_cast<size_t>(n) != ps.size()) {
    return InvalidArgumentError("iRODS MsParamArray_PI: paramLen does not match");
  }
  for (const XmlNode* pn : ps) {
    FieldReader pr(*pn);
    MsParam p;
    p.label = pr.Str("label");
    p.type = pr.OptStr("type");
    HSMFS_RETURN_IF_ERROR(pr.status());
    if (p.type == "STR_PI" || p.type == "INT_PI") {
      const XmlNode* v = pn->Child(p.type);
      if (v == nullptr) return Missing(*pn, p.type);
      FieldReader vr(*v);
      p.value = vr.Str(p.type == "STR_PI" ? "myStr" : "myInt");
      HSMFS_RETURN_IF_ERROR(vr.status());
    }
    if (const XmlNode* b = pn->Child("BinBytesBuf_PI")) {
      HSMFS_ASSIGN_OR_RETURN(p.bbuf, BinBytesBuf::Unpack(*b));
    }
    a.params.push_back(std::move(p));
  }
  return a;
}

std::string ExecMyRuleInp::Pack() const {
  XmlWriter host("RHostAddr_PI");
  host.Str("hostAddr", addr.host_addr)
      .Str("rodsZone", addr.rods_zone)
      .Int("port", addr.port)
      .Int("dummyInt", addr.dummy_int);
  XmlWriter w("ExecMyRuleInp_PI");
  w.Str("myRule", my_rule)
      .Raw(std::move(host).Finish())
      .Raw(PackKeyValPairs(cond_input))
      .Str("outParamDesc", out_param_desc)
      .Raw(params.Pack());
  return std::move(w).Finish();
}

Result<ExecMyRuleInp> ExecMyRuleInp::Unpack(const XmlNode& node) {
  FieldReader r(node);
  ExecMyRuleInp e;
  e.my_rule = r.Str("myRule");
  e.out_param_desc = r.OptStr("outParamDesc");
  HSMFS_RETURN_IF_ERROR(r.status());
  if (const XmlNode* h = node.Child("RHostAddr_PI")) {
    FieldReader hr(*h);
    e.addr.host_addr = hr.OptStr("hostAddr");
    e.addr.rods_zone = hr.OptStr("rodsZone");
    e.addr.port = static_cast<int>(hr.OptInt("port", 0));
    e.addr.dummy_int = static_cast<int>(hr.OptInt("dummyInt", 0));
  }
  HSMFS_ASSIGN_OR_RETURN(e.cond_input, NestedKv(node));
  if (const XmlNode* p = node.Child("MsParamArray_PI")) {
    HSMFS_ASSIGN_OR_RETURN(e.params, MsParamArray::Unpack(*p));
  }
  return e;
}

std::string RError::Summary() const {
  std::string out;
  for (const RErrMsg& m : msgs) {
    if (!out.empty()) out += "; ";
    out += m.msg;
  }
  return out;
}

std::string RError::Pack() const {
  XmlWriter w("RError_PI");
  w.Int("count", static_cast<int64_t>(msgs.size()));
  for (const RErrMsg& m : msgs) {
    XmlWriter e("RErrMsg_PI");
    e.Int("status", m.status).Str("msg", m.msg);
    w.Raw(std::move(e).Finish());
  }
  return std::move(w).Finish();
}

Result<RError> RError::Unpack(const XmlNode& node) {
  RError e;
  for (const XmlNode* m : node.Children("RErrMsg_PI")) {
    FieldReader r(*m);
    RErrMsg msg;
    msg.status = static_cast<int>(r.Int("status"));
    msg.msg = r.OptStr("msg");
    HSMFS_RETURN_IF_ERROR(r.status());
    e.msgs.push_back(std::move(msg));
  }
  return e;
}

std::string PortalOprOut::Pack() const {
  XmlWriter ports("PortList_PI");
  ports.Int("portNum", port_num)
      .Int("cookie", cookie)
      .Int("sock", sock)
      .Int("windowSize", window_size)
      .Str("hostAddr", host_addr);
  XmlWriter w("PortalOprOut_PI");
  w.Int("status", status)
      .Int("l1descInx", l1desc_inx)
      .Int("numThreads", num_threads)
      .Str("chksum", chksum)
      .Raw(std::move(ports).Finish());
  return std::move(w).Finish();
}

Result<PortalOprOut> PortalOprOut::Unpack(const XmlNode& node) {
  FieldReader r(node);
  PortalOprOut p;
  p.status = static_cast<int>(r.Int("status"));
  p.l1desc_inx = static_cast<int>(r.Int("l1descInx"));
  p.num_threads = static_cast<int>(r.Int("numThreads"));
  p.chksum = r.OptStr("chksum");
  HSMFS_RETURN_IF_ERROR(r.status());
  if (const XmlNode* pl = node.Child("PortList_PI")) {
    FieldReader pr(*pl);
    p.port_num = static_cast<int>(pr.OptInt("portNum", 0));
    p.cookie = static_cast<int>(pr.OptInt("cookie", 0));
    p.sock = static_cast<int>(pr.OptInt("sock", 0));
    p.window_size = static_cast<int>(pr.OptInt("windowSize", 0));
    p.host_addr = pr.OptStr("hostAddr");
  }
  return p;
}

Status UnpackAny(std::string_view xml) {
  HSMFS_ASSIGN_OR_RETURN(XmlNode node, ParseXml(xml));
  const std::string& n = node.name;
  auto check = [](const auto& r) { return r.ok() ? Status::Ok() : r.status(); };
  if (n == "StartupPack_PI") return check(StartupPack::Unpack(node));
  if (n == "Version_PI") return check(Version::Unpack(node));
  if (n == "CS_NEG_PI") return check(CsNeg::Unpack(node));
  if (n == "authRequestOut_PI") return check(AuthRequestOut::Unpack(node));
  if (n == "authResponseInp_PI") return check(AuthResponseInp::Unpack(node));
  if (n == "BinBytesBuf_PI") return check(BinBytesBuf::Unpack(node));
  if (n == "GenQueryInp_PI") return check(GenQueryInp::Unpack(node));
  if (n == "GenQueryOut_PI") return check(GenQueryOut::Unpack(node));
  if (n == "DataObjInp_PI") return check(DataObjInp::Unpack(node));
  if (n == "DataObjCopyInp_PI") return check(DataObjCopyInp::Unpack(node));
  if (n == "OpenedDataObjInp_PI") return check(OpenedDataObjInp::Unpack(node));
  if (n == "fileLseekInp_PI") return check(FileLseekInp::Unpack(node));
  if (n == "fileLseekOut_PI") return check(FileLseekOut::Unpack(node));
  if (n == "CollInpNew_PI") return check(CollInpNew::Unpack(node));
  if (n == "RodsObjStat_PI") return check(RodsObjStat::Unpack(node));
  if (n == "STR_PI") return check(StrPi::Unpack(node));
  if (n == "ModAVUMetadataInp_PI") return check(ModAvuMetadataInp::Unpack(node));
  if (n == "ExecMyRuleInp_PI") return check(ExecMyRuleInp::Unpack(node));
  if (n == "MsParamArray_PI") return check(MsParamArray::Unpack(node));
  if (n == "RError_PI") return check(RError::Unpack(node));
  if (n == "PortalOprOut_PI") return check(PortalOprOut::Unpack(node));
  return UnimplementedError("iRODS: no unpacker for " + n);
}

}  // namespace hsmfs::irods
