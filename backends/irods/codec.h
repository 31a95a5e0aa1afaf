#pragma once

// The iRODS native protocol's wire format, without any socket.
//
// A message on the wire is: a 4-byte big-endian length N, N bytes of
// MsgHeader_PI XML, then msgLen bytes of body XML, errorLen bytes of RError_PI
// XML and bsLen bytes of opaque binary stream. Bodies are iRODS "packed
// instruction" XML: one element per field, no attributes, no namespaces.
//
// The real server sends loosely formatted XML (a newline after every element),
// so ParseXml accepts any whitespace between elements. XmlWriter emits compact
// XML with the five XML entities escaped, which is what the server unpacks.
//
// Everything here is a pure function or a value type; thread-compatible.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace hsmfs::irods {

// Header types (MsgHeader_PI.type).
inline constexpr std::string_view kRodsConnect = "RODS_CONNECT";
inline constexpr std::string_view kRodsVersion = "RODS_VERSION";
inline constexpr std::string_view kRodsApiReq = "RODS_API_REQ";
inline constexpr std::string_view kRodsApiReply = "RODS_API_REPLY";
inline constexpr std::string_view kRodsDisconnect = "RODS_DISCONNECT";
inline constexpr std::string_view kRodsCsNeg = "RODS_CS_NEG_T";

// Limits that keep a corrupt or hostile length from allocating gigabytes.
inline constexpr uint32_t kMaxHeaderLen = 4096;
inline constexpr uint32_t kMaxXmlLen = 64u << 20;
inline constexpr uint32_t kMaxBsLen = 1u << 30;

// One element of packed-instruction XML: either a leaf with text or a node
// with children (iRODS never mixes the two).
struct XmlNode {
  std::string name;
  std::string text;  // entities decoded
  std::vector<XmlNode> children;

  // The first child called `name`, or nullptr.
  const XmlNode* Child(std::string_view child_name) const;
  // All children called `name`, in order.
  std::vector<const XmlNode*> Children(std::string_view child_name) const;
};

// Parses one element (leading/trailing whitespace and an <?xml?> prolog are
// skipped). kInvalidArgument on malformed input.
Result<XmlNode> ParseXml(std::string_view xml);

// Escapes & < > " ' as entities.
std::string XmlEscape(std::string_view text);

// Builds compact XML: XmlWriter w("A"); w.Int("b", 1); w.Str("c", "x");
// std::move(w).Finish() == "<A><b>1</b><c>x</c></A>".
class XmlWriter {
 public:
  explicit XmlWriter(std::string_view root);
  XmlWriter& Str(std::string_view name, std::string_view value);
  XmlWriter& Int(std::string_view name, int64_t value);
  // Appends already-packed XML (a nested structure).
  XmlWriter& Raw(std::string_view xml);
  std::string Finish() &&;

 private:
  std::string root_;
  std::string out_;
};

// Reads typed fields out of an XmlNode, remembering the first error so that an
// unpacker can read every field and check once.
class FieldReader {
 public:
  explicit FieldReader(const XmlNode& node) : node_(node) {}
  std::string Str(std::string_view name);
  int64_t Int(std::string_view name);
  // Missing fields are not errors for these (fields old clients omit).
  std::string OptStr(std::string_view name) const;
  int64_t OptInt(std::string_view name, int64_t fallback) const;
  const XmlNode& node() const { return node_; }
  const Status& status() const { return status_; }

 private:
  const XmlNode& node_;
  Status status_;
};

// Parses a decimal integer the way the iRODS unpacker does (leading spaces,
// sign). kInvalidArgument if `text` is not one.
Result<int64_t> ParseInt(std::string_view text);

struct MsgHeader {
  std::string type;
  uint32_t msg_len = 0;
  uint32_t error_len = 0;
  uint32_t bs_len = 0;
  int32_t int_info = 0;
};

std::string PackHeader(const MsgHeader& header);
Result<MsgHeader> UnpackHeader(std::string_view xml);

// A whole message as sent or received.
struct Message {
  std::string type;
  int32_t int_info = 0;
  std::string body;   // XML, may be empty
  std::string error;  // RError_PI XML, may be empty
  std::string bs;     // binary stream, may be empty
};

// The exact bytes of `message` on the wire (length prefix included).
std::string EncodeMessage(const Message& message);

// The 4-byte big-endian header length prefix.
uint32_t DecodeLengthPrefix(const unsigned char bytes[4]);

// Decodes a whole frame held in memory (tests and the replay fake).
// kInvalidArgument if truncated or malformed.
Result<Message> DecodeMessage(std::string_view frame);

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace hsmfs::irods
