#pragma once

// iRODS error codes and their mapping onto hsmfs Status codes.
//
// iRODS errors are negative integers; many carry an errno in their last three
// digits (e.g. -510002 = UNIX_FILE_OPEN_ERR + ENOENT), so the mapping looks
// at the code rounded to a multiple of 1000. docs/IRODS.md holds the table.

#include <string_view>

#include "common/status.h"

namespace hsmfs::irods {

inline constexpr int kCatNoRowsFound = -808000;
inline constexpr int kUserFileDoesNotExist = -310000;
inline constexpr int kCatUnknownCollection = -814000;
inline constexpr int kCatUnknownFile = -817000;
inline constexpr int kCatNameExistsAsCollection = -809000;
inline constexpr int kCatNameExistsAsDataObj = -812000;
inline constexpr int kOverwriteWithoutForceFlag = -312000;
inline constexpr int kCatNoAccessPermission = -818000;
inline constexpr int kCatCollectionNotEmpty = -821000;
inline constexpr int kCatInvalidAuthentication = -826000;
inline constexpr int kCatInvalidUser = -827000;
inline constexpr int kCatPasswordExpired = -840000;
inline constexpr int kSysInvalidInputParam = -130000;
inline constexpr int kSysNoApiPriv = -830000;
inline constexpr int kRuleFailedErr = -1089000;
// What the issue and some DMF sites report for a rule refusing an open.
inline constexpr int kSiteRuleFailed = -1101000;
// A warning the 5.x server attaches to a successful legacy auth request.
inline constexpr int kLegacyAuthDeprecated = -3002000;

// The name of `code` ("CAT_NO_ROWS_FOUND") or "" if we do not know it.
std::string_view IrodsErrorName(int code);

// A Status for the iRODS error `code` returned by `what` (e.g. "ObjStat
// /zone/a"); `server_msg` is the RError_PI text, if any. The message always
// carries the numeric code, so logs can be matched against the server's.
Status IrodsStatus(int code, std::string_view what, std::string_view server_msg = {});

}  // namespace hsmfs::irods
