#include "tools/hsmscan/hpss_lister.h"

#include "backends/hpss/hpss_backend.h"
#include "tools/hsmscan/csv.h"
#include "tools/hsmscan/rules.h"

namespace hsmfs::hsmscan {

Status CsvHpssLister::List(const std::string& /*hpss_dir*/, const HpssSink& sink) {
  HSMFS_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(csv_path_));
  if (!reader->has_mtime()) {
    return InvalidArgumentError(csv_path_ + ": the CSV header has no Mtime column");
  }
  CsvReader::Row row;
  while (true) {
    HSMFS_ASSIGN_OR_RETURN(bool more, reader->Next(row));
    if (!more) return Status::Ok();
    sink(row.name, row.size, row.mtime);
  }
}

bool HpssCacheEntry(const backends::hpss::LsEntry& e, const std::string& hpss_dir,
                    std::string& name) {
  if (e.type == backends::ObjectType::kDir) return false;
  name = e.name;
  // Some hsi versions mark links "name@"; the link's own name is wanted.
  if (e.is_link && !name.empty() && name.back() == '@') name.pop_back();
  if (name == "." || name == "..") return false;
  std::string path = e.dir.empty() ? name : PathJoin(e.dir, name);
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".idx") == 0) return false;
  const std::string prefix = hpss_dir + "/";
  if (path.compare(0, prefix.size(), prefix) == 0) path.erase(0, prefix.size());
  name = std::move(path);
  return true;
}

Status HsiHpssLister::List(const std::string& hpss_dir, const HpssSink& sink) {
  std::string name;
  Status s = hpss_.ListTree("", [&](const backends::hpss::LsEntry& e) {
    // mtimes are the client's local time (mktime with DST), see docs/HSMSCAN.md.
    if (HpssCacheEntry(e, hpss_dir, name)) {
      sink(name, static_cast<int64_t>(e.size), e.mtime_ns / 1'000'000'000);
    }
  });
  // Nothing archived yet: the section's HPSS directory does not exist.
  if (s.code() == Code::kNotFound) return Status::Ok();
  return s;
}

}  // namespace hsmfs::hsmscan
