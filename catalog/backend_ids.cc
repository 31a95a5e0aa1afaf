#include "catalog/backend_ids.h"

namespace hsmfs::catalog {

Result<std::optional<std::string>> GetBackendRootId(Session& session, std::string_view backend) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s,
                         session.db().Prepare("SELECT root_id FROM backend_ids WHERE backend = ?"));
  s.Bind(1, backend);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Status SetBackendRootId(Session& session, std::string_view backend, std::string_view root_id,
                        int64_t now_ns) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, session.db().Prepare(
                  "INSERT INTO backend_ids (backend, root_id, recorded_ns) VALUES (?, ?, ?) "
                  "ON CONFLICT (backend) DO UPDATE SET root_id = excluded.root_id, "
                  "recorded_ns = excluded.recorded_ns"));
  s.Bind(1, backend).Bind(2, root_id).Bind(3, now_ns);
  return s.Run();
}

Result<bool> BackendUsed(Session& session, std::string_view backend) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt s, session.db().Prepare(
                  "SELECT EXISTS (SELECT 1 FROM entries WHERE backend = ?1 AND on_backend = 1 "
                  "AND parent != ?2) OR EXISTS (SELECT 1 FROM dir_sync d JOIN entries e ON "
                  "e.id = d.dir_id WHERE e.backend = ?1 AND d.entries > 0)"));
  s.Bind(1, backend).Bind(2, kRootId);
  HSMFS_ASSIGN_OR_RETURN(bool row, s.Step());
  return row && s.Int(0) != 0;
}

Status SetEntryError(Session& session, EntryId id, std::string_view error) {
  HSMFS_ASSIGN_OR_RETURN(Stmt s, session.db().Prepare("UPDATE entries SET error = ? WHERE id = ?"));
  s.BindText(1, error).Bind(2, id);
  return s.Run();
}

}  // namespace hsmfs::catalog
