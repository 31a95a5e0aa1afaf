#include "backends/irods/auth.h"

#include <openssl/evp.h>

#include <array>
#include <nlohmann/json.hpp>

#include "backends/irods/codec.h"

namespace hsmfs::irods {
namespace {

constexpr std::array<uint32_t, 16> kSeq = {
    0xd768b678, 0xedfdaf56, 0x2420231b, 0x987098d8, 0xc1bdfeee, 0xf572341f, 0x478def3a, 0xa830d343,
    0x774dfa2a, 0x6720731e, 0x346fa320, 0x6ffdf43a, 0x7723a320, 0xdf67d02e, 0x86ad240a, 0xe76d342e};

constexpr std::string_view kWheel =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!\"#$%&'()*+,-./";

std::string Md5(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

nlohmann::json PluginBase(std::string_view user, std::string_view zone) {
  return nlohmann::json{{"a_ttl", "0"},
                        {"force_password_prompt", "true"},
                        {"scheme", "native"},
                        {"user_name", std::string(user)},
                        {"zone_name", std::string(zone)}};
}

}  // namespace

Result<std::string> NativeAuthResponse(std::string_view challenge, std::string_view password) {
  if (password.size() > kMaxPasswordLen) {
    return InvalidArgumentError("iRODS password longer than 50 bytes");
  }
  if (challenge.size() < kChallengeLen) {
    return InvalidArgumentError("iRODS auth challenge shorter than 64 bytes");
  }
  std::string buf(challenge.substr(0, kChallengeLen));
  std::string padded(password);
  padded.resize(kMaxPasswordLen, '\0');
  buf += padded;
  std::string digest = Md5(buf);
  // The server handles the digest as a C string, so zeros would truncate it.
  for (char& c : digest) {
    if (c == '\0') c = 1;
  }
  return Base64Encode(digest);
}

std::string PluginAuthRequestJson(std::string_view user, std::string_view zone) {
  nlohmann::json j = PluginBase(user, zone);
  j["next_operation"] = "auth_agent_auth_request";
  return j.dump();
}

std::string PluginAuthResponseJson(std::string_view user, std::string_view zone,
                                   std::string_view request_result, std::string_view digest) {
  nlohmann::json j = PluginBase(user, zone);
  j["next_operation"] = "auth_agent_auth_response";
  j["request_result"] = std::string(request_result);
  j["digest"] = std::string(digest);
  return j.dump();
}

Result<std::string> PluginRequestResult(std::string_view reply_json) {
  // The server counts and sends the C string terminator.
  while (!reply_json.empty() && reply_json.back() == '\0') reply_json.remove_suffix(1);
  nlohmann::json j = nlohmann::json::parse(reply_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("request_result") ||
      !j["request_result"].is_string()) {
    return InvalidArgumentError("iRODS auth plugin reply has no request_result");
  }
  return j["request_result"].get<std::string>();
}

bool ServerHasAuthPlugin(std::string_view rel_version) {
  if (rel_version.substr(0, 4) == "rods") rel_version.remove_prefix(4);
  int major = 0, minor = 0;
  size_t i = 0;
  while (i < rel_version.size() && rel_version[i] >= '0' && rel_version[i] <= '9') {
    major = major * 10 + (rel_version[i++] - '0');
  }
  if (i < rel_version.size() && rel_version[i] == '.') ++i;
  while (i < rel_version.size() && rel_version[i] >= '0' && rel_version[i] <= '9') {
    minor = minor * 10 + (rel_version[i++] - '0');
  }
  return major > 4 || (major == 4 && minor >= 3);
}

Result<std::string> DecodeIrodsA(std::string_view contents, unsigned uid) {
  while (!contents.empty() &&
         (contents.back() == '\n' || contents.back() == '\0' || contents.back() == '\r')) {
    contents.remove_suffix(1);
  }
  if (contents.size() < 8 || contents[6] < 'e' || contents[6] > 'e' + 15) {
    return InvalidArgumentError("not an .irodsA scrambled password");
  }
  uint32_t seq = kSeq[static_cast<size_t>(contents[6] - 'e')];
  // The first 5 encoded characters are a timestamp; decoding starts after them.
  int shift = 15;
  std::string out;
  const int n = static_cast<int>(kWheel.size());
  for (char c : contents.substr(7)) {
    int offset = static_cast<int>(((seq >> shift) & 0x1f) + (uid & 0xf5f));
    shift += 3;
    if (shift > 28) shift = 0;
    size_t w = kWheel.find(c);
    if (w == std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back(kWheel[static_cast<size_t>(((n + static_cast<int>(w) - offset) % n + n) % n)]);
    }
  }
  return out;
}

std::string EncodeIrodsA(std::string_view password, unsigned uid, long mtime) {
  const int seq_index = 0;
  uint32_t seq = kSeq[seq_index];
  std::string plain;
  plain.push_back(static_cast<char>('S' - ((seq_index & 0x7) * 2)));
  plain.push_back(static_cast<char>(((mtime >> 4) & 0xf) + 'a'));
  plain.push_back(static_cast<char>((mtime & 0xf) + 'a'));
  plain.push_back(static_cast<char>(((mtime >> 12) & 0xf) + 'a'));
  plain.push_back(static_cast<char>(((mtime >> 8) & 0xf) + 'a'));
  plain += password;
  std::string enc = ".";
  int shift = 0;
  const int n = static_cast<int>(kWheel.size());
  for (char c : plain) {
    int offset = static_cast<int>(((seq >> shift) & 0x1f) + (uid & 0xf5f));
    shift += 3;
    if (shift > 28) shift = 0;
    size_t w = kWheel.find(c);
    enc.push_back(w == std::string_view::npos
                      ? c
                      : kWheel[static_cast<size_t>((static_cast<int>(w) + offset) % n)]);
  }
  enc.insert(6, 1, static_cast<char>('e' + seq_index));
  return enc;
}

}  // namespace hsmfs::irods
