#include "backends/hpss/bundle_index.h"

#include <system_error>

#include "catalog/sqlite/raw_access.h"

namespace hsmfs::backends::hpss {
namespace {

// `path` is `dir` itself or lies below it; `rest` gets what follows `dir`.
bool Under(const std::string& path, const std::string& dir, std::string* rest) {
  if (path == dir) {
    *rest = "";
    return true;
  }
  if (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
      path[dir.size()] == '/') {
    *rest = path.substr(dir.size());
    return true;
  }
  return false;
}

Status Insert(catalog::Session& s, const std::string& path, const BundledFile& f) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Stmt st,
                         catalog::RawSqlite(s).Prepare(
                             "INSERT OR REPLACE INTO hpss_bundled (path, archive, member, size, "
                             "mtime_ns, mode, checksum, written_ns, link_target) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, path)
      .Bind(2, f.archive)
      .Bind(3, f.member)
      .Bind(4, static_cast<int64_t>(f.size))
      .Bind(5, f.mtime_ns)
      .Bind(6, static_cast<int64_t>(f.mode))
      .Bind(7, f.checksum)
      .Bind(8, f.written_ns)
      .BindText(9, f.link_target);
  return st.Run();
}

Status Delete(catalog::Session& s, const std::string& path) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Stmt st,
                         catalog::RawSqlite(s).Prepare("DELETE FROM hpss_bundled WHERE path = ?"));
  st.Bind(1, path);
  return st.Run();
}

}  // namespace

Result<catalog::Session> BundleIndex::SessionLocked() {
  if (!catalog_) {
    std::error_code ec;
    if (!std::filesystem::exists(catalog_path_, ec)) {
      return UnavailableError("catalog " + catalog_path_.string() + " does not exist");
    }
    catalog::Catalog::Options co;
    co.create = false;
    co.max_connections = 2;
    auto opened = catalog::Catalog::Open(catalog_path_, co);
    if (!opened.ok()) return opened.status().Annotate("opening the HPSS bundle index");
    catalog_ = std::move(opened).value();
  }
  return catalog_->Acquire();
}

Status BundleIndex::LoadLocked() {
  if (loaded_ || !enabled()) return Status::Ok();
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, SessionLocked());
  HSMFS_ASSIGN_OR_RETURN(
      catalog::Stmt st,
      catalog::RawSqlite(s).Prepare("SELECT path, archive, member, size, mtime_ns, mode, "
                                    "checksum, written_ns, link_target FROM hpss_bundled"));
  std::map<std::string, BundledFile> files;
  while (true) {
    HSMFS_ASSIGN_OR_RETURN(const bool row, st.Step());
    if (!row) break;
    BundledFile f;
    f.archive = st.Text(1);
    f.member = st.Text(2);
    f.size = static_cast<uint64_t>(st.Int(3));
    f.mtime_ns = st.Int(4);
    f.mode = static_cast<uint32_t>(st.Int(5));
    f.checksum = st.Text(6);
    f.written_ns = st.Int(7);
    f.link_target = st.Text(8);
    files.emplace(st.Text(0), std::move(f));
  }
  files_ = std::move(files);
  loaded_ = true;
  return Status::Ok();
}

Result<std::optional<BundledFile>> BundleIndex::Find(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  auto it = files_.find(path);
  if (it == files_.end()) return std::optional<BundledFile>();
  return std::optional<BundledFile>(it->second);
}

Result<std::vector<std::pair<std::string, BundledFile>>> BundleIndex::Children(
    const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  std::vector<std::pair<std::string, BundledFile>> out;
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  for (auto it = files_.lower_bound(prefix);
       it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const std::string name = it->first.substr(prefix.size());
    if (name.find('/') == std::string::npos) out.emplace_back(name, it->second);
  }
  return out;
}

Result<bool> BundleIndex::ArchiveUsed(const std::string& archive) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  for (const auto& [path, f] : files_) {
    if (f.archive == archive) return true;
  }
  return false;
}

Result<bool> BundleIndex::AnyBelow(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  const std::string prefix = dir + "/";
  auto it = files_.lower_bound(prefix);
  return it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

Status BundleIndex::Record(const std::vector<std::pair<std::string, BundledFile>>& files) {
  if (!enabled()) return FailedPreconditionError("the HPSS bundle index has no catalog");
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, SessionLocked());
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  for (const auto& [path, f] : files) HSMFS_RETURN_IF_ERROR(Insert(s, path, f));
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  for (const auto& [path, f] : files) files_[path] = f;
  return Status::Ok();
}

Status BundleIndex::Erase(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  if (!files_.count(path)) return Status::Ok();
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, SessionLocked());
  HSMFS_RETURN_IF_ERROR(Delete(s, path));
  files_.erase(path);
  return Status::Ok();
}

Status BundleIndex::Move(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  std::vector<std::pair<std::string, BundledFile>> moved;
  std::vector<std::string> gone;
  std::string rest;
  for (const auto& [path, f] : files_) {
    const bool path_moves = Under(path, from, &rest);
    BundledFile g = f;
    const std::string new_path = path_moves ? to + rest : path;
    bool archive_moves = Under(f.archive, from, &rest);
    if (archive_moves) g.archive = to + rest;
    if (!path_moves && !archive_moves) continue;
    if (path_moves) gone.push_back(path);
    moved.emplace_back(new_path, std::move(g));
  }
  // A file moved onto a bundled path replaces it.
  if (files_.count(to) && !Under(to, from, &rest)) gone.push_back(to);
  if (moved.empty() && gone.empty()) return Status::Ok();
  HSMFS_ASSIGN_OR_RETURN(catalog::Session s, SessionLocked());
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  for (const std::string& p : gone) HSMFS_RETURN_IF_ERROR(Delete(s, p));
  for (const auto& [p, f] : moved) HSMFS_RETURN_IF_ERROR(Insert(s, p, f));
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  for (const std::string& p : gone) files_.erase(p);
  for (auto& [p, f] : moved) files_[p] = std::move(f);
  return Status::Ok();
}

}  // namespace hsmfs::backends::hpss
