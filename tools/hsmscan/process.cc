#include "tools/hsmscan/process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "backends/hpss/hpss_backend.h"
#include "tools/hsmscan/log.h"
#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {
namespace {

namespace stdfs = std::filesystem;

// "a, b, c" of at most `n` names, "... (N more)" after that.
std::string Sample(const std::vector<std::string>& names, size_t n = 5) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < n; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > n) out += " ... (" + std::to_string(names.size() - n) + " more)";
  return out;
}

// What htar should have stored for directory members: everything below them
// that is not a directory (files and symlinks, as tar stores them).
Status DiskMembers(const std::string& disk_dir, const std::vector<std::string>& dirs,
                   std::set<std::string>& out) {
  for (const std::string& d : dirs) {
    std::error_code ec;
    stdfs::recursive_directory_iterator it(PathJoin(disk_dir, d), ec), end;
    if (ec) return ErrnoToStatus(ec.value(), "reading " + PathJoin(disk_dir, d));
    for (; it != end; it.increment(ec)) {
      if (ec) return ErrnoToStatus(ec.value(), "reading below " + PathJoin(disk_dir, d));
      if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
      out.insert(PathJoin(d, it->path().lexically_relative(PathJoin(disk_dir, d)).string()));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ArchiveMaker::Make(const ArchivePlan& plan, const std::vector<std::string>& files) {
  if (!plan.error.empty()) return FailedPreconditionError(plan.error);
  const std::string dir(DirName(plan.archive));
  if (!plan.hpss_mkdir.empty()) {
    log_.Debug("hsi mkdir -p -m 2770 " + plan.hpss_mkdir);
    HSMFS_RETURN_IF_ERROR(hpss_.MakeDirs(dir, kHpssDirMode));
  }
  if (plan.kind != ArchivePlan::Kind::kPut) return MakeHtar(plan, files);

  const std::string& src = plan.members.front();
  log_.Debug("hsi put " + src + " : " + plan.hpss_path);
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + src);
  backends::PutOptions put;
  HSMFS_ASSIGN_OR_RETURN(const backends::ObjectInfo info, hpss_.Put(src, plan.archive, put));
  if (info.size != static_cast<uint64_t>(st.st_size)) {
    return DataLossError("hsi put " + src + " stored " + std::to_string(info.size) +
                         " bytes, the file has " + std::to_string(st.st_size));
  }
  return Status::Ok();
}

Status ArchiveMaker::MakeHtar(const ArchivePlan& plan, const std::vector<std::string>& files) {
  backends::hpss::HpssBackend::HtarCreate spec;
  spec.cwd = plan.disk_dir;
  spec.extra_args = {"-H", "crc:verify=all"};
  std::set<std::string> expected;
  std::string list_file;
  if (plan.kind == ArchivePlan::Kind::kHtarFileList) {
    // HPSSPy writes BASENAME(archive with .txt) in its temporary directory.
    list_file = tmpdir_ + "/hsmscan-list-XXXXXX";
    const int fd = ::mkstemp(list_file.data());
    if (fd < 0) return ErrnoToStatus(errno, "creating a list file in " + tmpdir_);
    ::close(fd);
    std::ofstream out(list_file, std::ios::binary | std::ios::trunc);
    for (const std::string& m : plan.members) out << m << '\n';
    out.close();
    if (!out) {
      ::unlink(list_file.c_str());
      return InternalError("writing " + list_file);
    }
    spec.list_file = list_file;
    expected.insert(plan.members.begin(), plan.members.end());
    log_.Debug("cd " + plan.disk_dir + " && htar -cvf " + plan.hpss_path +
               " -H crc:verify=all -L " + list_file);
  } else {
    spec.members = plan.members;
    HSMFS_RETURN_IF_ERROR(DiskMembers(plan.disk_dir, plan.members, expected));
    // The planned files must be there too (they were when the disk was scanned).
    const std::string prefix =
        DirName(plan.archive).empty() ? std::string() : std::string(DirName(plan.archive)) + "/";
    std::vector<std::string> gone;
    for (const std::string& f : files) {
      const std::string rel =
          f.compare(0, prefix.size(), prefix) == 0 ? f.substr(prefix.size()) : f;
      if (!expected.count(rel)) gone.push_back(rel);
    }
    if (!gone.empty()) {
      return FailedPreconditionError(std::to_string(gone.size()) +
                                     " planned member(s) no longer below " + plan.disk_dir + ": " +
                                     Sample(gone));
    }
    std::string c =
        "cd " + plan.disk_dir + " && htar -cvf " + plan.hpss_path + " -H crc:verify=all";
    for (const std::string& m : plan.members) c += " " + m;
    log_.Debug(c);
  }
  auto members = hpss_.CreateArchive(plan.archive, spec);
  if (!list_file.empty()) ::unlink(list_file.c_str());
  if (!members.ok()) return members.status();

  std::set<std::string> got;
  for (const backends::hpss::HtarMember& m : *members) {
    if (m.type != backends::ObjectType::kDir) got.insert(m.name);
  }
  std::vector<std::string> lacking, extra;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(),
                      std::back_inserter(lacking));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(),
                      std::back_inserter(extra));
  if (lacking.empty() && extra.empty()) return Status::Ok();
  std::string msg = "htar reported success but " + plan.hpss_path + " lists " +
                    std::to_string(got.size()) + " member(s), planned " +
                    std::to_string(expected.size());
  if (!lacking.empty()) msg += "; missing: " + Sample(lacking);
  if (!extra.empty()) msg += "; unexpected: " + Sample(extra);
  return DataLossError(msg);
}

}  // namespace hsmfs::hsmscan
