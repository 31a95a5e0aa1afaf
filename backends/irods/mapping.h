#pragma once

// Pure translations between iRODS and hsmfs terms used by IrodsBackend: DMF
// state codes, checksums, times, GenQuery columns and rule texts. No I/O;
// thread-safe. docs/IRODS.md has the tables.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"

namespace hsmfs::irods {

// GenQuery column numbers (rodsGenQuery.h).
enum Column : int {
  kColDataName = 403,
  kColDataReplNum = 404,
  kColDataSize = 407,
  kColDataReplStatus = 413,
  kColDataChecksum = 415,
  kColDataModifyTime = 420,
  kColCollName = 501,
  kColCollParentName = 502,
  kColCollModifyTime = 509,
  kColMetaDataAttrName = 600,
  kColMetaDataAttrValue = 601,
};

// Where the data of an object in DMF state `state` sits: OFL, UNM (being
// recalled) and PAR (partly online) need a recall: kTape; REG, MIG, DUL and
// NMG (never migrated) are on the disk cache: kDisk; "" or INV: kUnknown.
backends::Residency ResidencyOfDmfState(std::string_view state);

// iRODS checksum -> "algo:hex": "sha2:BASE64" -> "sha256:<hex>", a plain
// 32-digit hex (MD5, the iRODS default elsewhere) -> "md5:<hex>", "" -> "".
// Anything else (another scheme) is returned unchanged.
std::string HsmChecksum(std::string_view irods_checksum);

// An iRODS time (seconds since the epoch, zero-padded) in nanoseconds; 0 if
// it is not a number.
int64_t IrodsTimeToNanos(std::string_view seconds);

// The GenQuery condition "= 'value'". iRODS GenQuery has no escape for a
// quote inside a value; names containing "'" cannot be matched exactly.
std::string EqualsCondition(std::string_view value);
// "in ('a','b')".
std::string InCondition(const std::vector<std::string>& values);

// The rule text that calls `rule` on the paths in its input *paths (and, for
// a state rule, returns "STATE path" lines in *out). `rule` is a microservice
// name (e.g. msiDmfStage), or a complete rule text when it contains '{'. The
// generated text also returns the length of the *paths it saw in
// *hsmfsLen (kRuleLenParam), so that the caller can tell a rule that ran
// with its input from one that ran without it (see DmfRulePathsParam).
std::string DmfRuleText(std::string_view rule, bool with_output);
// The output parameter in which DmfRuleText's rule returns strlen(*paths).
inline constexpr std::string_view kRuleLenParam = "*hsmfsLen";

// The server parses an input parameter as a rule-language expression and
// refuses a string token over MAX_TOKEN_TEXT_LEN (1,023) characters; the
// rule then runs with the parameter unset and the client is told status 0.
// Each literal DmfRulePathsParam makes is at most this long, quotes
// included (a margin below 1,023 for the server's own counting).
inline constexpr size_t kMaxRuleLiteral = 1000;
// The value of the *paths input: the paths, one a line, as rule string
// literals of at most kMaxRuleLiteral characters joined by "++" (quotes,
// backslashes, '*' and '$' escaped, so that no path is read as a variable).
// It evaluates to the string DmfRulePathsLength counts.
std::string DmfRulePathsParam(const std::vector<std::string>& paths);
// The length in bytes of the string the *paths input evaluates to: the paths
// and the newlines between them (what strlen(*paths) says on the server).
size_t DmfRulePathsLength(const std::vector<std::string>& paths);

// Parses the "STATE path" lines of a state rule; other lines are ignored.
// Returns path -> state.
std::unordered_map<std::string, std::string> ParseDmfStateLines(std::string_view text);

// The AVU in which Put records the file's own mtime, since iRODS keeps
// only the upload time (and a client may not set it).
inline constexpr std::string_view kMtimeAttr = "hsmfs_mtime";
// Its value: "<mtime_ns> <the object's iRODS modify time then>".
std::string MtimeAvuValue(int64_t mtime_ns, std::string_view modify_time);
// The mtime to show: the recorded one while the object's modify time is
// still the one recorded with it (nobody changed the object since), else
// the iRODS modify time.
int64_t ResolveMtime(std::string_view avu_value, std::string_view modify_time);

// "/zone/a/b" -> "b"; "/zone" -> "zone".
std::string_view LastComponent(std::string_view path);
// "/zone/a/b" -> "/zone/a"; "/zone" -> "/".
std::string ParentCollection(std::string_view path);

}  // namespace hsmfs::irods
