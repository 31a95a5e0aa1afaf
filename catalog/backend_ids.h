#pragma once

// The catalog's record of each backend root's identity (table backend_ids)
// and the facts the engine's root checks need. Functions of a Session, kept
// apart from catalog.h because only fs/root_guard uses them.

#include <optional>
#include <string>
#include <string_view>

#include "catalog/catalog.h"

namespace hsmfs::catalog {

// The id recorded for `backend`, if any.
Result<std::optional<std::string>> GetBackendRootId(Session& session, std::string_view backend);
Status SetBackendRootId(Session& session, std::string_view backend, std::string_view root_id,
                        int64_t now_ns);
// True if the catalog holds anything that came from (or went to) the
// backend: an entry below its top directory that is on the backend, or a
// listing of that top directory that found something.
Result<bool> BackendUsed(Session& session, std::string_view backend);
// Sets (or, with "", clears) user.hsm.error of an entry (a backend's top
// directory: why its root is refused).
Status SetEntryError(Session& session, EntryId id, std::string_view error);

}  // namespace hsmfs::catalog
