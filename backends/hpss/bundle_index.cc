#include "backends/hpss/bundle_index.h"

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

}  // namespace

Status BundleIndex::LoadLocked() {
  if (loaded_ || !enabled()) return Status::Ok();
  HSMFS_ASSIGN_OR_RETURN(BundledRows rows, store_->Load());
  std::map<std::string, BundledFile> files;
  for (auto& [path, f] : rows) files.emplace(std::move(path), std::move(f));
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
  HSMFS_RETURN_IF_ERROR(store_->Apply({}, files));
  for (const auto& [path, f] : files) files_[path] = f;
  return Status::Ok();
}

Status BundleIndex::Erase(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(LoadLocked());
  if (!files_.count(path)) return Status::Ok();
  HSMFS_RETURN_IF_ERROR(store_->Apply({path}, {}));
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
  HSMFS_RETURN_IF_ERROR(store_->Apply(gone, moved));
  for (const std::string& p : gone) files_.erase(p);
  for (auto& [p, f] : moved) files_[p] = std::move(f);
  return Status::Ok();
}

}  // namespace hsmfs::backends::hpss
