#include "backends/irods/auth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backends/irods/codec.h"
#include "backends/irods/messages.h"
#include "tests/unit/backends/irods/recordings.h"

namespace hsmfs::irods {
namespace {

using testing::LoadRecording;

std::string ChallengeOf(const std::string& xml) {
  Result<AuthRequestOut> a = UnpackXml<AuthRequestOut>(xml, "authRequestOut_PI");
  EXPECT_TRUE(a.ok());
  return *Base64Decode(a->challenge);
}

// Auth vectors: the real server's challenges and python-irodsclient's accepted
// responses for password "rods", from the recordings (two connections).
TEST(IrodsAuthTest, LegacyResponseMatchesRecordedVectors) {
  std::vector<testing::Recorded> prc = LoadRecording("real_prc081.jsonl");
  for (auto [req, resp] : {std::pair{3, 4}, std::pair{76, 77}}) {
    std::string challenge = ChallengeOf(prc[req].msg);
    ASSERT_EQ(challenge.size(), 64u);
    Result<AuthResponseInp> expected =
        UnpackXml<AuthResponseInp>(prc[resp].msg, "authResponseInp_PI");
    ASSERT_TRUE(expected.ok());
    Result<std::string> got = NativeAuthResponse(challenge, "rods");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, expected->response);
    EXPECT_NE(*NativeAuthResponse(challenge, "rodz"), expected->response);
  }
  std::vector<testing::Recorded> dmf = LoadRecording("real_dmf_policy.jsonl");
  EXPECT_EQ(*NativeAuthResponse(ChallengeOf(dmf[3].msg), "rods"), "RDh9BtQgl+GcZgZ8gmYrEA==");
}

TEST(IrodsAuthTest, ResponseNeverContainsZeroBytes) {
  // Search a challenge whose digest has a zero byte, then check it was replaced.
  for (int i = 0; i < 2000; ++i) {
    std::string challenge(64, 'a');
    challenge.replace(0, std::to_string(i).size(), std::to_string(i));
    std::string raw = *Base64Decode(*NativeAuthResponse(challenge, "pw"));
    ASSERT_EQ(raw.size(), 16u);
    EXPECT_EQ(raw.find('\0'), std::string::npos);
  }
}

TEST(IrodsAuthTest, RejectsLongPasswordAndShortChallenge) {
  EXPECT_EQ(NativeAuthResponse(std::string(64, 'c'), std::string(51, 'p')).status().code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(NativeAuthResponse(std::string(63, 'c'), "p").ok());
  // The error never echoes the password.
  EXPECT_EQ(
      NativeAuthResponse(std::string(64, 'c'), std::string(51, 'p')).status().message().find("ppp"),
      std::string::npos);
}

TEST(IrodsAuthTest, PluginFlowMatchesRecording) {
  std::vector<testing::Recorded> plug = LoadRecording("real_raw_authplugin.jsonl");
  auto buf = [&](int i) {
    return UnpackXml<BinBytesBuf>(plug[static_cast<size_t>(i)].msg, "BinBytesBuf_PI")->buf;
  };
  // Our JSON is compact where the raw client's had spaces: compare as JSON.
  EXPECT_EQ(nlohmann::json::parse(PluginAuthRequestJson("rods", "tempZone")),
            nlohmann::json::parse(buf(4)));
  Result<std::string> rr = PluginRequestResult(buf(5));
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(*rr, "7d9acf00698390fa4e39460789b6611d7dcf9ba41c441f04b6c506118ed42f04");
  std::string digest = *NativeAuthResponse(*rr, "rods");
  EXPECT_EQ(digest, "KnAmpc37JSbN6hhKbYpkjA==");
  EXPECT_EQ(nlohmann::json::parse(PluginAuthResponseJson("rods", "tempZone", *rr, digest)),
            nlohmann::json::parse(buf(6)));
  EXPECT_FALSE(PluginRequestResult("{}").ok());
  EXPECT_FALSE(PluginRequestResult("not json").ok());
}

TEST(IrodsAuthTest, ChoosesPluginFromServerVersion) {
  EXPECT_TRUE(ServerHasAuthPlugin("rods5.0.2"));
  EXPECT_TRUE(ServerHasAuthPlugin("rods4.3.0"));
  EXPECT_FALSE(ServerHasAuthPlugin("rods4.2.12"));
  EXPECT_FALSE(ServerHasAuthPlugin("rods4.1.0"));
}

// Vectors made with python3-irodsclient 0.8.1's password_obfuscation.encode
// (uid, mtime as given), which decode() turns back into the password.
TEST(IrodsAuthTest, IrodsAObfuscationMatchesPythonIrodsclient) {
  EXPECT_EQ(EncodeIrodsA("rods", 1000, 1700000000), ".jis*fe\"(x)");
  EXPECT_EQ(*DecodeIrodsA(".jis*fe\"(x)", 1000), "rods");
  EXPECT_EQ(EncodeIrodsA("s3cr&t P@ss", 0, 1234567), ".qx'/re*T$/G2 o@$*");
  EXPECT_EQ(*DecodeIrodsA(std::string(".qx'/re*T$/G2 o@$*\0\n", 20), 0), "s3cr&t P@ss");
  EXPECT_NE(*DecodeIrodsA(".jis*fe\"(x)", 1001), "rods");
  EXPECT_FALSE(DecodeIrodsA("short", 0).ok());
}

}  // namespace
}  // namespace hsmfs::irods
