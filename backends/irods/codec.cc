#include "backends/irods/codec.h"

#include <openssl/evp.h>

#include <cctype>
#include <charconv>
#include <utility>

namespace hsmfs::irods {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Decodes the five named entities and numeric character references. Unknown
// entities are kept verbatim: the server never sends them, and dropping text
// would be worse than passing it through.
std::string DecodeEntities(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '&') {
      out.push_back(in[i]);
      continue;
    }
    size_t semi = in.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = in.substr(i + 1, semi - i - 1);
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      unsigned value = 0;
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), value, hex ? 16 : 10);
      if (ec != std::errc() || p != digits.data() + digits.size() || value > 0x7f) {
        // Non-ASCII references would need UTF-8 encoding; iRODS never emits them.
        out.append(in.substr(i, semi - i + 1));
      } else {
        out.push_back(static_cast<char>(value));
      }
    } else {
      out.append(in.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  Result<XmlNode> Document() {
    SkipSpace();
    while (in_.substr(pos_, 2) == "<?" || in_.substr(pos_, 4) == "<!--") {
      size_t end = in_.find(in_[pos_ + 1] == '?' ? "?>" : "-->", pos_);
      if (end == std::string_view::npos) return Error("unterminated prolog or comment");
      pos_ = end + (in_[pos_ + 1] == '?' ? 2 : 3);
      SkipSpace();
    }
    HSMFS_ASSIGN_OR_RETURN(XmlNode node, Element(0));
    SkipSpace();
    // A trailing NUL is common: C servers count the terminator in msgLen.
    while (pos_ < in_.size() && in_[pos_] == '\0') ++pos_;
    SkipSpace();
    if (pos_ != in_.size()) return Error("trailing data after root element");
    return node;
  }

 private:
  Result<XmlNode> Element(int depth) {
    if (depth > 32) return Error("nesting too deep");
    if (pos_ >= in_.size() || in_[pos_] != '<') return Error("expected '<'");
    ++pos_;
    size_t name_start = pos_;
    while (pos_ < in_.size() && !IsSpace(in_[pos_]) && in_[pos_] != '>' && in_[pos_] != '/') {
      ++pos_;
    }
    XmlNode node;
    node.name = std::string(in_.substr(name_start, pos_ - name_start));
    if (node.name.empty()) return Error("empty element name");
    SkipSpace();
    if (in_.substr(pos_, 2) == "/>") {
      pos_ += 2;
      return node;
    }
    if (pos_ >= in_.size() || in_[pos_] != '>') return Error("expected '>' after <" + node.name);
    ++pos_;
    size_t content_start = pos_;
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == '<' && in_.substr(pos_, 2) != "</") {
      while (true) {
        HSMFS_ASSIGN_OR_RETURN(XmlNode child, Element(depth + 1));
        node.children.push_back(std::move(child));
        SkipSpace();
        if (in_.substr(pos_, 2) == "</") break;
        if (pos_ >= in_.size()) return Error("unterminated <" + node.name + ">");
      }
    } else {
      size_t lt = in_.find('<', content_start);
      if (lt == std::string_view::npos) return Error("unterminated <" + node.name + ">");
      node.text = DecodeEntities(in_.substr(content_start, lt - content_start));
      pos_ = lt;
    }
    std::string close = "</" + node.name;
    if (in_.substr(pos_, close.size()) != close) return Error("expected " + close + ">");
    pos_ += close.size();
    SkipSpace();
    if (pos_ >= in_.size() || in_[pos_] != '>') return Error("expected '>' closing " + node.name);
    ++pos_;
    return node;
  }

  void SkipSpace() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
  }

  Status Error(const std::string& what) const {
    return InvalidArgumentError("iRODS XML: " + what + " at byte " + std::to_string(pos_));
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

const XmlNode* XmlNode::Child(std::string_view child_name) const {
  for (const XmlNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::vector<const XmlNode*> XmlNode::Children(std::string_view child_name) const {
  std::vector<const XmlNode*> out;
  for (const XmlNode& c : children) {
    if (c.name == child_name) out.push_back(&c);
  }
  return out;
}

Result<XmlNode> ParseXml(std::string_view xml) { return Parser(xml).Document(); }

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

XmlWriter::XmlWriter(std::string_view root) : root_(root) { out_ = "<" + root_ + ">"; }

XmlWriter& XmlWriter::Str(std::string_view name, std::string_view value) {
  out_.append("<").append(name).append(">");
  out_.append(XmlEscape(value));
  out_.append("</").append(name).append(">");
  return *this;
}

XmlWriter& XmlWriter::Int(std::string_view name, int64_t value) {
  return Str(name, std::to_string(value));
}

XmlWriter& XmlWriter::Raw(std::string_view xml) {
  out_.append(xml);
  return *this;
}

std::string XmlWriter::Finish() && {
  out_.append("</").append(root_).append(">");
  return std::move(out_);
}

Result<int64_t> ParseInt(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int64_t value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    return InvalidArgumentError("iRODS XML: not an integer: '" + std::string(text) + "'");
  }
  return value;
}

std::string FieldReader::Str(std::string_view name) {
  const XmlNode* c = node_.Child(name);
  if (c == nullptr) {
    if (status_.ok()) {
      status_ =
          InvalidArgumentError("iRODS " + node_.name + ": missing <" + std::string(name) + ">");
    }
    return {};
  }
  return c->text;
}

int64_t FieldReader::Int(std::string_view name) {
  const XmlNode* c = node_.Child(name);
  if (c == nullptr) {
    Str(name);
    return 0;
  }
  Result<int64_t> v = ParseInt(c->text);
  if (!v.ok()) {
    if (status_.ok()) status_ = v.status().Annotate(node_.name + "." + std::string(name));
    return 0;
  }
  return *v;
}

std::string FieldReader::OptStr(std::string_view name) const {
  const XmlNode* c = node_.Child(name);
  return c ? c->text : std::string();
}

int64_t FieldReader::OptInt(std::string_view name, int64_t fallback) const {
  const XmlNode* c = node_.Child(name);
  if (c == nullptr) return fallback;
  Result<int64_t> v = ParseInt(c->text);
  return v.ok() ? *v : fallback;
}

std::string PackHeader(const MsgHeader& header) {
  XmlWriter w("MsgHeader_PI");
  w.Str("type", header.type)
      .Int("msgLen", header.msg_len)
      .Int("errorLen", header.error_len)
      .Int("bsLen", header.bs_len)
      .Int("intInfo", header.int_info);
  return std::move(w).Finish();
}

Result<MsgHeader> UnpackHeader(std::string_view xml) {
  HSMFS_ASSIGN_OR_RETURN(XmlNode node, ParseXml(xml));
  if (node.name != "MsgHeader_PI") {
    return InvalidArgumentError("iRODS: expected MsgHeader_PI, got " + node.name);
  }
  FieldReader r(node);
  MsgHeader h;
  h.type = r.Str("type");
  int64_t msg_len = r.Int("msgLen");
  int64_t error_len = r.Int("errorLen");
  int64_t bs_len = r.Int("bsLen");
  int64_t int_info = r.Int("intInfo");
  HSMFS_RETURN_IF_ERROR(r.status());
  if (msg_len < 0 || msg_len > kMaxXmlLen || error_len < 0 || error_len > kMaxXmlLen ||
      bs_len < 0 || bs_len > kMaxBsLen || int_info < INT32_MIN || int_info > INT32_MAX) {
    return InvalidArgumentError("iRODS: message header lengths out of range");
  }
  h.msg_len = static_cast<uint32_t>(msg_len);
  h.error_len = static_cast<uint32_t>(error_len);
  h.bs_len = static_cast<uint32_t>(bs_len);
  h.int_info = static_cast<int32_t>(int_info);
  return h;
}

std::string EncodeMessage(const Message& message) {
  MsgHeader h{message.type, static_cast<uint32_t>(message.body.size()),
              static_cast<uint32_t>(message.error.size()), static_cast<uint32_t>(message.bs.size()),
              message.int_info};
  std::string header = PackHeader(h);
  uint32_t n = static_cast<uint32_t>(header.size());
  std::string out;
  out.reserve(4 + header.size() + message.body.size() + message.error.size() + message.bs.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += header;
  out += message.body;
  out += message.error;
  out += message.bs;
  return out;
}

uint32_t DecodeLengthPrefix(const unsigned char bytes[4]) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

Result<Message> DecodeMessage(std::string_view frame) {
  if (frame.size() < 4) return InvalidArgumentError("iRODS: frame shorter than its length prefix");
  uint32_t n = DecodeLengthPrefix(reinterpret_cast<const unsigned char*>(frame.data()));
  if (n > kMaxHeaderLen || frame.size() < 4 + size_t{n}) {
    return InvalidArgumentError("iRODS: bad header length " + std::to_string(n));
  }
  HSMFS_ASSIGN_OR_RETURN(MsgHeader h, UnpackHeader(frame.substr(4, n)));
  size_t pos = 4 + size_t{n};
  if (frame.size() != pos + h.msg_len + h.error_len + h.bs_len) {
    return InvalidArgumentError("iRODS: frame size does not match its header");
  }
  Message m;
  m.type = h.type;
  m.int_info = h.int_info;
  m.body = std::string(frame.substr(pos, h.msg_len));
  m.error = std::string(frame.substr(pos + h.msg_len, h.error_len));
  m.bs = std::string(frame.substr(pos + h.msg_len + h.error_len, h.bs_len));
  return m;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (!IsSpace(c)) clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return InvalidArgumentError("base64: length not a multiple of 4");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return InvalidArgumentError("base64: invalid character");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace hsmfs::irods
