#pragma once

// iRODS native authentication, the parts that need no socket.
//
// Both the legacy API (703/704) and the 4.3+ auth plugin (API 110000,
// scheme "native") answer a challenge with
//   md5(challenge[0:64] ‖ password zero-padded to 50 bytes)
// whose zero bytes are replaced by 1 (the server compares it as a C string),
// sent base64-encoded. Passwords are never logged or put in a Status message.

#include <string>
#include <string_view>

#include "common/result.h"

namespace hsmfs::irods {

inline constexpr size_t kMaxPasswordLen = 50;  // MAX_PASSWORD_LEN
inline constexpr size_t kChallengeLen = 64;    // CHALLENGE_LEN

// The base64 response to `challenge` (raw bytes, at least 64; only the first
// 64 count). kInvalidArgument if the password is longer than 50 bytes or the
// challenge too short.
Result<std::string> NativeAuthResponse(std::string_view challenge, std::string_view password);

// JSON bodies of the auth plugin flow ("native" scheme).
std::string PluginAuthRequestJson(std::string_view user, std::string_view zone);
// `request_result` is the server's reply field of the same name.
std::string PluginAuthResponseJson(std::string_view user, std::string_view zone,
                                   std::string_view request_result, std::string_view digest);
// Extracts "request_result" from the server's reply to the first step.
Result<std::string> PluginRequestResult(std::string_view reply_json);

// True if the server (Version_PI.relVersion, "rods4.3.2") has the auth plugin
// API, i.e. is 4.3.0 or later.
bool ServerHasAuthPlugin(std::string_view rel_version);

// The `.irodsA` obfuscation (iRODS obfEncodeByKey with the default key and
// the user id as salt; the same as python-irodsclient's password_obfuscation).
// It hides the password from casual reading only; it is not encryption.
Result<std::string> DecodeIrodsA(std::string_view contents, unsigned uid);
// `mtime` is the file's intended modification time (the C client checks it).
std::string EncodeIrodsA(std::string_view password, unsigned uid, long mtime);

}  // namespace hsmfs::irods
