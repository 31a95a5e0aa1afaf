#include "catalog/backend_ids.h"

#include "catalog/session_impl.h"

namespace hsmfs::catalog {

Result<std::optional<std::string>> GetBackendRootId(Session& session, std::string_view backend) {
  return SessionAccess::Impl(session).GetBackendRootId(backend);
}

Status SetBackendRootId(Session& session, std::string_view backend, std::string_view root_id,
                        int64_t now_ns) {
  return SessionAccess::Impl(session).SetBackendRootId(backend, root_id, now_ns);
}

Result<bool> BackendUsed(Session& session, std::string_view backend) {
  return SessionAccess::Impl(session).BackendUsed(backend);
}

Status SetEntryError(Session& session, EntryId id, std::string_view error) {
  return SessionAccess::Impl(session).SetEntryError(id, error);
}

}  // namespace hsmfs::catalog
