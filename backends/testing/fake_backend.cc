#include "backends/testing/fake_backend.h"

#include <fstream>
#include <sstream>

#include "common/checksum.h"

namespace hsmfs::backends {
namespace {

std::string BaseName(const ObjectPath& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsChildOf(const ObjectPath& path, const ObjectPath& dir) {
  if (path.empty()) return false;
  if (dir.empty()) return path.find('/') == std::string::npos;
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/' && path.find('/', dir.size() + 1) == std::string::npos;
}

bool IsUnder(const ObjectPath& path, const ObjectPath& dir) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::string ChecksumOf(const std::string& data) {
  auto hasher = Hasher::Create(ChecksumAlgo::kMd5);
  hasher->Update(data.data(), data.size());
  return hasher->Finish();
}

}  // namespace

void FakeBackend::AddParentsLocked(const ObjectPath& path) {
  if (!nodes_.count("")) {
    nodes_[""].info.type = ObjectType::kDir;
    nodes_[""].info.mode = 0755;
  }
  ObjectPath parent = ParentObjectPath(path);
  while (!parent.empty() && !nodes_.count(parent)) {
    Node& n = nodes_[parent];
    n.info.name = BaseName(parent);
    n.info.type = ObjectType::kDir;
    n.info.mode = 0755;
    parent = ParentObjectPath(parent);
  }
}

void FakeBackend::AddFile(const ObjectPath& path, std::string data, int64_t mtime_ns) {
  std::lock_guard<std::mutex> l(mu_);
  AddParentsLocked(path);
  Node& n = nodes_[path];
  n.info.name = BaseName(path);
  n.info.type = ObjectType::kFile;
  n.info.mode = 0644;
  n.info.size = data.size();
  n.info.mtime_ns = mtime_ns;
  n.info.checksum = ChecksumOf(data);
  n.info.location = "fake:" + path;
  n.data = std::move(data);
}

void FakeBackend::AddDir(const ObjectPath& path) {
  std::lock_guard<std::mutex> l(mu_);
  AddParentsLocked(path);
  Node& n = nodes_[path];
  n.info.name = BaseName(path);
  n.info.type = ObjectType::kDir;
  n.info.mode = 0755;
}

void FakeBackend::SetPlacement(const ObjectPath& path, std::string volume, int64_t position,
                               Residency residency) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return;
  it->second.info.volume = std::move(volume);
  it->second.info.position = position;
  it->second.info.residency = residency;
}

void FakeBackend::SetHsmState(const ObjectPath& path, std::string code) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it != nodes_.end()) it->second.info.hsm_state = std::move(code);
}

void FakeBackend::SetOwner(const ObjectPath& path, int64_t uid, int64_t gid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it != nodes_.end()) {
    it->second.info.uid = uid;
    it->second.info.gid = gid;
  }
}

std::vector<std::vector<ObjectPath>> FakeBackend::stage_batches() const {
  std::lock_guard<std::mutex> l(mu_);
  return stage_batches_;
}

Status FakeBackend::StageMany(const std::vector<ObjectPath>& paths, Deadline /*deadline*/) {
  std::lock_guard<std::mutex> l(mu_);
  stage_batches_.push_back(paths);
  return Status::Ok();
}

std::string FakeBackend::Data(const ObjectPath& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  return it == nodes_.end() ? std::string() : it->second.data;
}

std::vector<ObjectPath> FakeBackend::reads() const {
  std::lock_guard<std::mutex> l(mu_);
  return reads_;
}

bool FakeBackend::Exists(const ObjectPath& path) const {
  std::lock_guard<std::mutex> l(mu_);
  return nodes_.count(path) > 0;
}

Result<ObjectInfo> FakeBackend::StatLocked(const ObjectPath& path) const {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  auto it = nodes_.find(path);
  if (it == nodes_.end()) {
    if (path.empty()) {
      ObjectInfo root;
      root.type = ObjectType::kDir;
      root.mode = 0755;
      return root;
    }
    return NotFoundError("fake:" + path + ": no such object");
  }
  return it->second.info;
}

Result<ObjectInfo> FakeBackend::Stat(const ObjectPath& path) {
  Count(Op::kStat);
  std::lock_guard<std::mutex> l(mu_);
  return StatLocked(path);
}

Status FakeBackend::List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) {
  Count(Op::kList);
  std::vector<ObjectInfo> batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, StatLocked(dir));
    if (info.type != ObjectType::kDir) {
      return Status(Code::kNotDirectory, "fake:" + dir + ": not a directory");
    }
    for (const auto& [path, node] : nodes_) {
      if (IsChildOf(path, dir)) batch.push_back(node.info);
    }
  }
  if (cancel.cancelled()) return CancelledError("listing cancelled");
  // Two batches when possible, so that callers see batching happen.
  if (batch.size() > 1) {
    std::vector<ObjectInfo> first(batch.begin(),
                                  batch.begin() + static_cast<long>(batch.size() / 2));
    std::vector<ObjectInfo> second(batch.begin() + static_cast<long>(batch.size() / 2),
                                   batch.end());
    HSMFS_RETURN_IF_ERROR(sink(std::move(first)));
    return sink(std::move(second));
  }
  if (!batch.empty()) return sink(std::move(batch));
  return Status::Ok();
}

Status FakeBackend::Stage(const ObjectPath& path, Deadline /*deadline*/) {
  Count(Op::kStage);
  std::lock_guard<std::mutex> l(mu_);
  return StatLocked(path).status();
}

Status FakeBackend::Read(const ObjectPath& path, const std::filesystem::path& dest,
                         const ReadOptions& options) {
  Count(Op::kRead);
  std::string data;
  {
    std::lock_guard<std::mutex> l(mu_);
    HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, StatLocked(path));
    if (info.type == ObjectType::kDir) {
      return Status(Code::kIsDirectory, "fake:" + path + ": is a directory");
    }
    data = nodes_.at(path).data;
    reads_.push_back(path);
  }
  if (options.cancel->cancelled()) return CancelledError("read of fake:" + path + " cancelled");
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return UnavailableError("cannot write " + dest.string());
  if (options.progress) options.progress(data.size());
  if (!options.expect_checksum.empty()) {
    HSMFS_ASSIGN_OR_RETURN(ChecksumAlgo algo, AlgoOfChecksum(options.expect_checksum));
    auto hasher = Hasher::Create(algo);
    hasher->Update(data.data(), data.size());
    if (hasher->Finish() != options.expect_checksum) {
      return DataLossError("fake:" + path + ": checksum mismatch");
    }
  }
  return Status::Ok();
}

Result<ObjectInfo> FakeBackend::Put(const std::filesystem::path& src, const ObjectPath& path,
                                    const PutOptions& options) {
  Count(Op::kPut);
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (path.empty()) return InvalidArgumentError("cannot put onto the backend root");
  if (!options.symlink_target.empty()) return PutSymlink(path, options);
  std::ifstream in(src, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + src.string());
  std::stringstream ss;
  ss << in.rdbuf();
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it != nodes_.end() && it->second.info.type == ObjectType::kDir) {
    return Status(Code::kIsDirectory, "fake:" + path + ": is a directory");
  }
  AddParentsLocked(path);
  Node& n = nodes_[path];
  n.data = ss.str();
  n.info.name = BaseName(path);
  n.info.type = ObjectType::kFile;
  n.info.mode = options.mode;
  n.info.size = n.data.size();
  n.info.mtime_ns = options.mtime_ns;
  n.info.checksum = ChecksumOf(n.data);
  n.info.location = "fake:" + path;
  if (options.progress) options.progress(n.data.size());
  return n.info;
}

Result<ObjectInfo> FakeBackend::PutSymlink(const ObjectPath& path, const PutOptions& options) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it != nodes_.end() && it->second.info.type == ObjectType::kDir) {
    return Status(Code::kIsDirectory, "fake:" + path + ": is a directory");
  }
  AddParentsLocked(path);
  Node& n = nodes_[path];
  n.data.clear();
  n.info = ObjectInfo();
  n.info.name = BaseName(path);
  n.info.type = ObjectType::kSymlink;
  n.info.mode = 0777;
  n.info.link_target = options.symlink_target;
  n.info.size = options.symlink_target.size();
  n.info.mtime_ns = options.mtime_ns;
  n.info.location = "fake:" + path;
  return n.info;
}

Status FakeBackend::Remove(const ObjectPath& path) {
  Count(Op::kRemove);
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, StatLocked(path));
  if (path.empty()) return InvalidArgumentError("cannot remove the backend root");
  if (info.type == ObjectType::kDir) {
    for (const auto& [p, node] : nodes_) {
      if (IsChildOf(p, path)) return Status(Code::kNotEmpty, "fake:" + path + ": not empty");
    }
  }
  nodes_.erase(path);
  return Status::Ok();
}

Status FakeBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  Count(Op::kRename);
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(to));
  std::lock_guard<std::mutex> l(mu_);
  HSMFS_RETURN_IF_ERROR(StatLocked(from).status());
  if (from.empty() || to.empty()) return InvalidArgumentError("cannot rename the backend root");
  std::map<ObjectPath, Node> moved;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (it->first == from || IsUnder(it->first, from)) {
      moved.emplace(to + it->first.substr(from.size()), std::move(it->second));
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  AddParentsLocked(to);
  for (auto& [p, node] : moved) {
    node.info.name = BaseName(p);
    nodes_[p] = std::move(node);
  }
  return Status::Ok();
}

Status FakeBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  Count(Op::kMakeDir);
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  std::lock_guard<std::mutex> l(mu_);
  if (path.empty() || nodes_.count(path)) return AlreadyExistsError("fake:" + path + ": exists");
  const ObjectPath parent = ParentObjectPath(path);
  if (!parent.empty() && !nodes_.count(parent)) {
    return NotFoundError("fake:" + parent + ": no such directory");
  }
  Node& n = nodes_[path];
  n.info.name = BaseName(path);
  n.info.type = ObjectType::kDir;
  n.info.mode = mode & 07777;
  return Status::Ok();
}

Status FakeBackend::SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return NotFoundError("fake:" + path + ": no such directory");
  if (it->second.info.type != ObjectType::kDir) return Status(Code::kNotDirectory, path);
  if (attrs.mode) it->second.info.mode = *attrs.mode & 07777;
  if (attrs.mtime_ns) it->second.info.mtime_ns = *attrs.mtime_ns;
  return Status::Ok();
}

}  // namespace hsmfs::backends
