#include "backends/irods/errors.h"

#include <string>

namespace hsmfs::irods {

std::string_view IrodsErrorName(int code) {
  switch (code) {
    case kCatNoRowsFound:
      return "CAT_NO_ROWS_FOUND";
    case kUserFileDoesNotExist:
      return "USER_FILE_DOES_NOT_EXIST";
    case kCatUnknownCollection:
      return "CAT_UNKNOWN_COLLECTION";
    case kCatUnknownFile:
      return "CAT_UNKNOWN_FILE";
    case kCatNameExistsAsCollection:
      return "CAT_NAME_EXISTS_AS_COLLECTION";
    case kCatNameExistsAsDataObj:
      return "CAT_NAME_EXISTS_AS_DATAOBJ";
    case kOverwriteWithoutForceFlag:
      return "OVERWRITE_WITHOUT_FORCE_FLAG";
    case kCatNoAccessPermission:
      return "CAT_NO_ACCESS_PERMISSION";
    case kCatCollectionNotEmpty:
      return "CAT_COLLECTION_NOT_EMPTY";
    case kCatInvalidAuthentication:
      return "CAT_INVALID_AUTHENTICATION";
    case kCatInvalidUser:
      return "CAT_INVALID_USER";
    case kCatPasswordExpired:
      return "CAT_PASSWORD_EXPIRED";
    case kSysInvalidInputParam:
      return "SYS_INVALID_INPUT_PARAM";
    case kSysNoApiPriv:
      return "SYS_NO_API_PRIV";
    case kRuleFailedErr:
      return "RULE_FAILED_ERR";
    case kSiteRuleFailed:
      return "RULE_FAILED_ERR(site)";
    case kLegacyAuthDeprecated:
      return "legacy auth deprecated";
    default:
      return "";
  }
}

Status IrodsStatus(int code, std::string_view what, std::string_view server_msg) {
  int base = code / 1000 * 1000;
  std::string msg = std::string(what) + ": iRODS error " + std::to_string(code);
  std::string_view name = IrodsErrorName(base);
  if (!name.empty()) msg += " " + std::string(name);
  if (!server_msg.empty()) msg += " (" + std::string(server_msg) + ")";
  switch (base) {
    case kCatNoRowsFound:
    case kUserFileDoesNotExist:
    case kCatUnknownCollection:
    case kCatUnknownFile:
      return NotFoundError(msg);
    case kCatNameExistsAsCollection:
    case kCatNameExistsAsDataObj:
    case kOverwriteWithoutForceFlag:
      return AlreadyExistsError(msg);
    case kCatNoAccessPermission:
    case kSysNoApiPriv:
    case kCatInvalidAuthentication:
    case kCatInvalidUser:
    case kCatPasswordExpired:
      return PermissionDeniedError(msg);
    case kCatCollectionNotEmpty:
      return Status(Code::kNotEmpty, msg);
    case kSysInvalidInputParam:
      return InvalidArgumentError(msg);
    case kRuleFailedErr:
    case kSiteRuleFailed:
      // A policy rule said no; for DMF sites that means "on tape, retry
      // later", which only the caller (open) can know. Elsewhere it is final.
      return FailedPreconditionError(msg);
    default:
      break;
  }
  // Codes from -4000 to -199999 are the server's own socket and system
  // failures (SYS_*): transient from the client's point of view.
  if (code <= -4000 && code > -200000) return UnavailableError(msg);
  return InternalError(msg);
}

}  // namespace hsmfs::irods
