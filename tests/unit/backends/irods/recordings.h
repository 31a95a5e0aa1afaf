#pragma once

// Loads the recorded real-server conversations of tests/testdata/irods
// (one JSON object per message; see README.md there).

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

namespace hsmfs::irods::testing {

struct Recorded {
  std::string dir;  // "c2s" or "s2c"
  std::string type;
  int int_info = 0;
  std::string msg, error, bs_b64;
  int bs_len = 0;
};

inline std::vector<Recorded> LoadRecording(const std::string& name) {
  std::ifstream in(std::string(HSMFS_SOURCE_DIR) + "/tests/testdata/irods/" + name);
  std::vector<Recorded> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    out.push_back(
        Recorded{j["dir"], j["type"], j["intInfo"], j["msg"], j["error"], j["bs_b64"], j["bsLen"]});
  }
  return out;
}

// Whitespace between elements is formatting only; python-irodsclient 0.8.1
// (which made the c2s recordings) leaves ' and " unescaped where we send
// &apos; and &quot;, which the server decodes to the same text.
inline std::string NormalizeXml(const std::string& xml) {
  std::string s = std::regex_replace(xml, std::regex(R"(>\s+<)"), "><");
  s = std::regex_replace(s, std::regex(R"(^\s+|\s+$)"), "");
  s = std::regex_replace(s, std::regex("&apos;"), "'");
  s = std::regex_replace(s, std::regex("&quot;"), "\"");
  return s;
}

}  // namespace hsmfs::irods::testing
