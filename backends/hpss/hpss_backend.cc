#include "backends/hpss/hpss_backend.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <system_error>
#include <utility>

#include "common/checksum.h"
#include "common/subprocess.h"

namespace hsmfs::backends::hpss {
namespace {

namespace stdfs = std::filesystem;

constexpr size_t kBatch = 1000;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// An htar archive file shown as a directory: readable where the file is, and
// searchable wherever readable; never writable.
uint32_t ArchiveDirMode(uint32_t file_mode) {
  const uint32_t r = file_mode & 0444;
  return r | (r >> 2);
}

std::string OctalMode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%o", mode & 07777);
  return buf;
}

ObjectInfo FromLs(const LsEntry& e) {
  ObjectInfo o;
  o.name = BaseName(e.name);
  o.type = e.type;
  o.mode = e.mode;
  o.size = e.type == ObjectType::kDir ? 0 : e.size;
  o.mtime_ns = e.mtime_ns;
  if (e.is_link) {
    // Listed, never followed: its target is data (hsi ls shows it).
    o.type = ObjectType::kSymlink;
    o.mode = 0777;
    o.link_target = e.link_target;
    o.size = e.link_target.size();
  }
  return o;
}

ObjectInfo FromMember(const HtarMember& m) {
  ObjectInfo o;
  o.name = BaseName(m.name);
  o.type = m.type;
  // Members can be read but never changed through the mount.
  o.mode = m.mode & 0555;
  o.size = m.type == ObjectType::kDir ? 0 : m.size;
  o.mtime_ns = m.mtime_ns;
  if (!m.link_target.empty()) {
    o.type = ObjectType::kSymlink;
    o.mode = 0777;
    o.link_target = m.link_target;
    o.size = m.link_target.size();
  }
  return o;
}

}  // namespace

// This thread's session, reserved for the duration of one command.
class HpssBackend::Lease {
 public:
  explicit Lease(HpssBackend& b) : b_(b) {
    std::vector<std::unique_ptr<HsiSession>> idle;
    {
      std::lock_guard<std::mutex> l(b_.mu_);
      const TimePoint now = b_.clock_.Now();
      for (auto it = b_.sessions_.begin(); it != b_.sessions_.end();) {
        Slot& s = it->second;
        if (it->first != std::this_thread::get_id() && !s.busy &&
            now - s.last_used > b_.options_.session_idle) {
          b_.closed_starts_ += s.session->starts();
          idle.push_back(std::move(s.session));
          it = b_.sessions_.erase(it);
        } else {
          ++it;
        }
      }
      Slot& mine = b_.sessions_[std::this_thread::get_id()];
      if (!mine.session) {
        std::vector<std::string> argv = {b_.options_.hsi.string(), "-q"};
        argv.insert(argv.end(), b_.options_.hsi_args.begin(), b_.options_.hsi_args.end());
        mine.session = std::make_unique<HsiSession>(std::move(argv));
      }
      mine.busy = true;
      session_ = mine.session.get();
    }
    for (auto& s : idle) s->Close();
  }
  ~Lease() {
    std::lock_guard<std::mutex> l(b_.mu_);
    Slot& mine = b_.sessions_[std::this_thread::get_id()];
    mine.busy = false;
    mine.last_used = b_.clock_.Now();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  HsiSession& session() { return *session_; }

 private:
  HpssBackend& b_;
  HsiSession* session_;
};

HpssBackend::LocalAttrs::LocalAttrs(stdfs::path file, int64_t mtime_ns, uint32_t mode)
    : file_(std::move(file)) {
  struct stat st;
  if (::stat(file_.c_str(), &st) != 0) return;
  mtime_ = st.st_mtim;
  atime_ = st.st_atim;
  mode_ = st.st_mode & 07777;
  const int64_t have = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  const bool set_mtime = mtime_ns != 0 && mtime_ns != have;
  const bool set_mode = (mode & 07777) != mode_;
  if (!set_mtime && !set_mode) return;
  restore_ = true;
  if (set_mode) ::chmod(file_.c_str(), mode & 07777);
  if (set_mtime) {
    const struct timespec ts[2] = {{0, UTIME_OMIT},
                                   {static_cast<time_t>(mtime_ns / 1'000'000'000),
                                    static_cast<long>(mtime_ns % 1'000'000'000)}};
    ::utimensat(AT_FDCWD, file_.c_str(), ts, 0);
  }
}

HpssBackend::LocalAttrs::~LocalAttrs() {
  if (!restore_) return;
  ::chmod(file_.c_str(), mode_);
  const struct timespec ts[2] = {atime_, mtime_};
  ::utimensat(AT_FDCWD, file_.c_str(), ts, 0);
}

HpssBackend::HpssBackend(HpssOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock), index_(options_.bundle_store) {}

HpssBackend::~HpssBackend() {
  StopWriter();
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, slot] : sessions_) slot.session->Close();
}

int HpssBackend::SessionStarts() const {
  std::lock_guard<std::mutex> l(mu_);
  int n = closed_starts_;
  for (const auto& [id, slot] : sessions_) n += slot.session->starts();
  return n;
}

std::string HpssBackend::Full(const ObjectPath& path) const {
  if (path.empty()) return options_.root;
  if (options_.root == "/") return "/" + path;
  return options_.root + "/" + path;
}

Result<std::vector<std::string>> HpssBackend::Hsi(const std::string& command, std::string_view what,
                                                  const CancelToken& cancel) {
  Lease lease(*this);
  HSMFS_ASSIGN_OR_RETURN(std::vector<std::string> lines,
                         lease.session().Run(command, options_.command_timeout, cancel));
  HSMFS_RETURN_IF_ERROR(HsiCommandStatus(lines, what));
  return lines;
}

Result<bool> HpssBackend::IsArchive(const ObjectPath& path) {
  if (!EndsWith(path, ".tar")) return false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (archives_.count(path)) return true;
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string idx, HsiQuote(Full(path) + ".idx"));
  auto r = Hsi("ls -Dd " + idx, "stat " + path + ".idx");
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return false;
    return r.status();
  }
  std::lock_guard<std::mutex> l(mu_);
  archives_.insert(path);
  return true;
}

Result<HpssBackend::Split> HpssBackend::SplitArchive(const ObjectPath& path) {
  size_t pos = 0;
  while (true) {
    const size_t slash = path.find('/', pos);
    if (slash == std::string::npos) break;
    const std::string prefix = path.substr(0, slash);
    if (EndsWith(prefix, ".tar")) {
      HSMFS_ASSIGN_OR_RETURN(const bool is_archive, IsArchive(prefix));
      if (is_archive) return Split{prefix, path.substr(slash + 1)};
    }
    pos = slash + 1;
  }
  return Split{};
}

Result<std::vector<HtarMember>> HpssBackend::ArchiveMembers(const ObjectPath& archive) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = listings_.find(archive);
    if (it != listings_.end() && clock_.Now() - it->second.fetched < options_.archive_list_ttl) {
      return it->second.members;
    }
  }
  SubprocessOptions o;
  o.argv = {options_.htar.string(), "-t", "-f", Full(archive)};
  o.merge_stderr = true;
  auto run = RunSubprocess(o, options_.command_timeout);
  if (!run.ok()) {
    if (run.status().code() == Code::kNotFound) {
      return FailedPreconditionError("cannot run htar: " + run.status().message());
    }
    return UnavailableError("htar -t " + archive + ": " + run.status().message());
  }
  auto members = ParseHtarList(run->out);
  if (!members.ok()) return members.status().Annotate("listing archive " + archive);
  if (!run->ok()) {
    return UnavailableError("htar -t " + archive + " exited with " +
                            std::to_string(run->exit_code));
  }
  std::lock_guard<std::mutex> l(mu_);
  listings_[archive] = ArchiveListing{*members, clock_.Now()};
  return *members;
}

void HpssBackend::FillTape(ObjectInfo& info, const TapeEntry& tape) const {
  info.volume = tape.volume;
  info.position = tape.section;
  if (!tape.volume.empty()) {
    info.residency = Residency::kTape;
    info.location = "hpss " + tape.path + " tape " + tape.volume + " position " +
                    std::to_string(tape.section) + "+" + std::to_string(tape.offset);
  } else {
    info.residency = Residency::kDisk;
    info.location = "hpss " + tape.path;
  }
}

Result<ObjectInfo> HpssBackend::StatPlain(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  HSMFS_ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                         Hsi("ls -Dd " + full, "stat " + path));
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  HSMFS_ASSIGN_OR_RETURN(const std::vector<LsEntry> entries, ParseLsD(text));
  if (entries.size() != 1) {
    return UnavailableError("hsi ls -Dd " + Full(path) + " answered " +
                            std::to_string(entries.size()) + " entries");
  }
  ObjectInfo info = FromLs(entries[0]);
  info.name = BaseName(path);
  if (info.type == ObjectType::kDir || info.type == ObjectType::kSymlink) {
    info.location = "hpss " + Full(path);
    return info;
  }
  HSMFS_ASSIGN_OR_RETURN(const bool archive, IsArchive(path));
  if (archive) {
    info.type = ObjectType::kDir;
    info.mode = ArchiveDirMode(info.mode);
    info.size = 0;
    info.location = "htar archive " + Full(path);
    return info;
  }
  HSMFS_ASSIGN_OR_RETURN(const std::vector<std::string> plines,
                         Hsi("ls -P " + full, "tape position of " + path));
  text.clear();
  for (const std::string& l : plines) text += l + "\n";
  HSMFS_ASSIGN_OR_RETURN(const std::vector<TapeEntry> tapes, ParseLsP(text));
  if (!tapes.empty()) FillTape(info, tapes[0]);
  return info;
}

Result<ObjectInfo> HpssBackend::StatMember(const Split& split) {
  HSMFS_ASSIGN_OR_RETURN(const std::vector<HtarMember> members, ArchiveMembers(split.archive));
  for (const HtarMember& m : members) {
    if (m.name == split.member) {
      ObjectInfo info = FromMember(m);
      info.location = "htar " + Full(split.archive) + " member " + m.name;
      return info;
    }
  }
  // A directory htar did not store itself but holds members.
  const std::string prefix = split.member + "/";
  for (const HtarMember& m : members) {
    if (m.name.rfind(prefix, 0) == 0) {
      ObjectInfo info;
      info.name = BaseName(split.member);
      info.type = ObjectType::kDir;
      info.mode = 0555;
      return info;
    }
  }
  return NotFoundError("no member " + split.member + " in htar archive " + Full(split.archive));
}

Result<ObjectInfo> HpssBackend::Stat(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  HSMFS_ASSIGN_OR_RETURN(const std::optional<BundledFile> bundled, index_.Find(Full(path)));
  if (bundled) return StatBundled(path, *bundled);
  HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(path));
  if (!split.archive.empty()) return StatMember(split);
  return StatPlain(path);
}

Status HpssBackend::ListArchive(const Split& split, const ListSink& sink) {
  HSMFS_ASSIGN_OR_RETURN(const std::vector<HtarMember> members, ArchiveMembers(split.archive));
  const std::string prefix = split.member.empty() ? "" : split.member + "/";
  std::map<std::string, ObjectInfo> children;
  bool found = split.member.empty();
  for (const HtarMember& m : members) {
    if (m.name == split.member) {
      if (m.type != ObjectType::kDir) {
        return Status(Code::kNotDirectory, split.archive + "/" + m.name + " is not a directory");
      }
      found = true;
      continue;
    }
    if (m.name.rfind(prefix, 0) != 0) continue;
    found = true;
    const std::string rest = m.name.substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      children[rest] = FromMember(m);
    } else if (!children.count(rest.substr(0, slash))) {
      ObjectInfo dir;
      dir.name = rest.substr(0, slash);
      dir.type = ObjectType::kDir;
      dir.mode = 0555;
      children[dir.name] = dir;
    }
  }
  if (!found) {
    return NotFoundError("no member " + split.member + " in htar archive " + Full(split.archive));
  }
  std::vector<ObjectInfo> batch;
  for (auto& [name, info] : children) {
    info.location = "htar " + Full(split.archive) + " member " + prefix + name;
    batch.push_back(std::move(info));
    if (batch.size() == kBatch) {
      HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
      batch.clear();
    }
  }
  if (!batch.empty()) HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
  return Status::Ok();
}

Status HpssBackend::List(const ObjectPath& dir, const ListSink& sink, const CancelToken& cancel) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(dir));
  HSMFS_ASSIGN_OR_RETURN(Split split, SplitArchive(dir));
  if (split.archive.empty()) {
    HSMFS_ASSIGN_OR_RETURN(const bool archive, IsArchive(dir));
    if (archive) split = Split{dir, ""};
  }
  if (!split.archive.empty()) return ListArchive(split, sink);

  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(dir)));
  HSMFS_ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                         Hsi("ls -Da " + full, "list " + dir, cancel));
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  HSMFS_ASSIGN_OR_RETURN(std::vector<LsEntry> entries, ParseLsD(text));
  bool header = false;
  for (const std::string& l : lines) {
    if (!l.empty() && l.back() == ':' && l.front() == '/') header = true;
  }
  if (!header && entries.size() == 1 && entries[0].type == ObjectType::kFile) {
    return Status(Code::kNotDirectory, Full(dir) + " is not a directory");
  }
  // Volumes and positions of the files, for recall ordering.
  std::map<std::string, TapeEntry> tape;
  {
    HSMFS_ASSIGN_OR_RETURN(const std::vector<std::string> plines,
                           Hsi("ls -P " + full, "tape positions in " + dir, cancel));
    text.clear();
    for (const std::string& l : plines) text += l + "\n";
    HSMFS_ASSIGN_OR_RETURN(std::vector<TapeEntry> tapes, ParseLsP(text));
    for (TapeEntry& t : tapes) tape[BaseName(t.path)] = std::move(t);
  }
  std::set<std::string> names;
  for (const LsEntry& e : entries) names.insert(e.name);
  // Files written into bundles are listed where they were written; such a
  // name hides a plain file HPSS may still hold there from before.
  HSMFS_ASSIGN_OR_RETURN(const auto bundled, index_.Children(Full(dir)));
  std::set<std::string> bundled_names;
  for (const auto& [name, f] : bundled) bundled_names.insert(name);
  std::vector<std::string> archives;
  std::vector<ObjectInfo> batch;
  for (const LsEntry& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    if (bundled_names.count(BaseName(e.name))) continue;
    ObjectInfo info = FromLs(e);
    const std::string child = JoinObjectPath(dir, info.name);
    if (e.type == ObjectType::kFile && EndsWith(e.name, ".tar.idx") &&
        names.count(e.name.substr(0, e.name.size() - 4))) {
      continue;  // the index of an archive shown as a directory
    }
    if (e.type == ObjectType::kFile && EndsWith(e.name, ".tar") && names.count(e.name + ".idx")) {
      info.type = ObjectType::kDir;
      info.mode = ArchiveDirMode(info.mode);
      info.size = 0;
      info.location = "htar archive " + Full(child);
      archives.push_back(child);
    } else if (info.type == ObjectType::kSymlink) {
      info.location = "hpss " + Full(child);
    } else if (e.type == ObjectType::kFile) {
      auto it = tape.find(e.name);
      if (it != tape.end()) FillTape(info, it->second);
    } else {
      info.location = "hpss " + Full(child);
    }
    batch.push_back(std::move(info));
    if (batch.size() == kBatch) {
      HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
      batch.clear();
    }
  }
  for (const auto& [name, f] : bundled) {
    HSMFS_ASSIGN_OR_RETURN(ObjectInfo info, StatBundled(JoinObjectPath(dir, name), f));
    batch.push_back(std::move(info));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    archives_.insert(archives.begin(), archives.end());
  }
  if (!batch.empty()) HSMFS_RETURN_IF_ERROR(sink(std::move(batch)));
  return Status::Ok();
}

Result<HpssBackend::Split> HpssBackend::Locate(const ObjectPath& path) {
  HSMFS_ASSIGN_OR_RETURN(const std::optional<BundledFile> bundled, index_.Find(Full(path)));
  if (!bundled) return SplitArchive(path);
  HSMFS_ASSIGN_OR_RETURN(std::string archive, Rel(bundled->archive));
  return Split{std::move(archive), bundled->member, true};
}

Status HpssBackend::Stage(const ObjectPath& path, Deadline) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  HSMFS_ASSIGN_OR_RETURN(const Split split, Locate(path));
  // Staging a member brings its whole archive to disk: htar then reads it there.
  const ObjectPath target = split.archive.empty() ? path : split.archive;
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(target)));
  return Hsi("stage " + full, "stage " + path).status();
}

Status HpssBackend::Read(const ObjectPath& path, const stdfs::path& dest,
                         const ReadOptions& options) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (options.cancel->cancelled()) return CancelledError("read of " + path + " cancelled");
  {
    // hsi and htar replace `dest`: never a device such as /dev/null.
    std::error_code ec;
    const auto st = stdfs::symlink_status(dest, ec);
    if (!ec && stdfs::exists(st) && !stdfs::is_regular_file(st)) {
      return InvalidArgumentError("cannot recall " + path + " into " + dest.string() +
                                  ": not a regular file");
    }
  }
  HSMFS_ASSIGN_OR_RETURN(const Split split, Locate(path));
  if (!split.archive.empty()) {
    std::optional<Status> taken;
    if (split.bundled) taken = TakePrefetched(Full(path), split.member, dest, *options.cancel);
    if (taken && taken->code() == Code::kCancelled) return *taken;
    if (!taken || !taken->ok()) HSMFS_RETURN_IF_ERROR(ReadMember(split, dest, options));
  } else {
    HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
    HSMFS_ASSIGN_OR_RETURN(const std::string local, HsiQuote(dest.string()));
    std::error_code ec;
    stdfs::remove(dest, ec);  // hsi may keep an existing file as a backup copy
    HSMFS_RETURN_IF_ERROR(
        Hsi(std::string("get ") + (options_.checksum ? "-c on " : "") + local + " : " + full,
            "recall " + path, *options.cancel)
            .status());
    if (!stdfs::is_regular_file(dest, ec)) {
      return UnavailableError("hsi get of " + Full(path) + " reported success but wrote no file");
    }
  }
  if (!options.expect_checksum.empty()) {
    HSMFS_ASSIGN_OR_RETURN(const ChecksumAlgo algo, AlgoOfChecksum(options.expect_checksum));
    HSMFS_ASSIGN_OR_RETURN(const std::string got, ChecksumFile(dest, algo, *options.cancel));
    if (got != options.expect_checksum) {
      return DataLossError("recalled " + path + " has checksum " + got + ", expected " +
                           options.expect_checksum);
    }
  }
  if (options.progress) {
    std::error_code ec;
    const auto size = stdfs::file_size(dest, ec);
    if (!ec) options.progress(size);
  }
  return Status::Ok();
}

Status HpssBackend::ReadMember(const Split& split, const stdfs::path& dest,
                               const ReadOptions& options) {
  // Extract next to `dest` so that the final move is a rename on one file system.
  std::string tmpl = (dest.parent_path() / ".hsmfs-htar-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoToStatus(errno, "temporary directory for htar in " + dest.parent_path().string());
  }
  const stdfs::path tmp(tmpl);
  struct Cleanup {
    stdfs::path p;
    ~Cleanup() {
      std::error_code ec;
      stdfs::remove_all(p, ec);
    }
  } cleanup{tmp};

  HSMFS_ASSIGN_OR_RETURN(const std::vector<HtarExtracted> extracted,
                         ExtractMembers(split.archive, {split.member}, tmp, *options.cancel));
  const auto it = std::find_if(extracted.begin(), extracted.end(),
                               [&](const HtarExtracted& x) { return x.name == split.member; });
  if (it == extracted.end()) {
    return UnavailableError("htar reported success but did not extract " + split.member + " from " +
                            Full(split.archive) + " (" + std::to_string(extracted.size()) +
                            " members extracted)");
  }
  const stdfs::path got = tmp / split.member;
  std::error_code ec;
  const auto size = stdfs::file_size(got, ec);
  if (ec || size != it->size) {
    return UnavailableError("htar extracted " + split.member + " from " + Full(split.archive) +
                            " with " + (ec ? "no file" : std::to_string(size) + " bytes") +
                            ", expected " + std::to_string(it->size));
  }
  stdfs::rename(got, dest, ec);
  if (ec) return ErrnoToStatus(ec.value(), "moving the extracted member to " + dest.string());
  return Status::Ok();
}

Result<std::vector<HtarExtracted>> HpssBackend::ExtractMembers(
    const ObjectPath& archive, const std::vector<std::string>& members, const stdfs::path& cwd,
    const CancelToken& cancel) {
  SubprocessOptions o;
  o.argv = {options_.htar.string(), "-x", "-v", "-f", Full(archive)};
  o.argv.insert(o.argv.end(), members.begin(), members.end());
  o.cwd = cwd;
  o.merge_stderr = true;
  const std::string what =
      "htar -x " + Full(archive) + (members.size() == 1 ? " " + members[0] : "");
  auto run = RunSubprocess(o, options_.command_timeout, cancel);
  if (!run.ok()) {
    const Status& s = run.status();
    if (s.code() == Code::kCancelled) return s;
    if (s.code() == Code::kNotFound)
      return FailedPreconditionError("cannot run htar: " + s.message());
    return UnavailableError(what + ": " + s.message());
  }
  HSMFS_ASSIGN_OR_RETURN(std::vector<HtarExtracted> extracted, ParseHtarExtract(run->out));
  if (!run->ok()) {
    return UnavailableError(what + " exited with " + std::to_string(run->exit_code));
  }
  return extracted;
}

Result<ObjectInfo> HpssBackend::Put(const stdfs::path& src, const ObjectPath& path,
                                    const PutOptions& options) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (path.empty()) return InvalidArgumentError("cannot put onto the backend root");
  HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(path));
  if (!split.archive.empty()) {
    return ReadOnlyError(path + " lies inside the htar archive " + split.archive);
  }
  if (options.cancel->cancelled()) return CancelledError("put of " + path + " cancelled");
  if (!options.symlink_target.empty()) {
    // Where a rule bundles the directory's files, the link joins the bundle
    // as a tar symlink member; elsewhere it is an HPSS symlink.
    if (auto target = BundleFor(path, 0)) return PutBundled({}, 0, path, *target, options);
    return PutSymlink(path, options);
  }
  if (options_.bundle_rules) {
    std::error_code ec;
    const auto size = stdfs::file_size(src, ec);
    if (ec) return ErrnoToStatus(ec.value(), "stat " + src.string());
    if (auto target = BundleFor(path, size)) return PutBundled(src, size, path, *target, options);
  }
  const ObjectPath parent = ParentObjectPath(path);
  if (!parent.empty()) {
    HSMFS_ASSIGN_OR_RETURN(const std::string pfull, HsiQuote(Full(parent)));
    HSMFS_RETURN_IF_ERROR(Hsi("mkdir -p " + pfull, "mkdir " + parent, *options.cancel).status());
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  HSMFS_ASSIGN_OR_RETURN(const std::string local, HsiQuote(src.string()));
  // -p keeps the local file's mtime and mode on the HPSS copy.
  const LocalAttrs attrs(src, options.mtime_ns, options.mode);
  HSMFS_RETURN_IF_ERROR(
      Hsi(std::string("put -p ") + (options_.checksum ? "-c on " : "") + local + " : " + full,
          "archive " + path, *options.cancel)
          .status());
  if (options.progress) {
    std::error_code ec;
    const auto size = stdfs::file_size(src, ec);
    if (!ec) options.progress(size);
  }
  // A plain copy now stands where a bundled one was.
  HSMFS_RETURN_IF_ERROR(index_.Erase(Full(path)));
  return StatPlain(path);
}

Result<ObjectInfo> HpssBackend::PutSymlink(const ObjectPath& path, const PutOptions& options) {
  const ObjectPath parent = ParentObjectPath(path);
  if (!parent.empty()) {
    HSMFS_ASSIGN_OR_RETURN(const std::string pfull, HsiQuote(Full(parent)));
    HSMFS_RETURN_IF_ERROR(Hsi("mkdir -p " + pfull, "mkdir " + parent, *options.cancel).status());
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  HSMFS_ASSIGN_OR_RETURN(const std::string target, HsiQuote(options.symlink_target));
  // -f replaces what is there, as every Put does; the target is stored as
  // given (HSI Reference Manual, "ln"), relative targets staying relative.
  HSMFS_RETURN_IF_ERROR(
      Hsi("ln -s -f " + target + " " + full, "symlink " + path, *options.cancel).status());
  // A plain object now stands where a bundled file was.
  HSMFS_RETURN_IF_ERROR(index_.Erase(Full(path)));
  return StatPlain(path);
}

Status HpssBackend::Remove(const ObjectPath& path) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (path.empty()) return NotPermittedError("cannot remove the backend root");
  HSMFS_ASSIGN_OR_RETURN(const std::optional<BundledFile> bundled, index_.Find(Full(path)));
  if (bundled) {
    // The member stays in its archive (htar archives are never rewritten).
    return index_.Erase(Full(path));
  }
  HSMFS_ASSIGN_OR_RETURN(const bool holds_bundled, index_.AnyBelow(Full(path)));
  if (holds_bundled) {
    return Status(Code::kNotEmpty, path + " holds files written into htar bundles");
  }
  HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(path));
  if (!split.archive.empty()) {
    return ReadOnlyError(path + " lies inside the htar archive " + split.archive);
  }
  HSMFS_ASSIGN_OR_RETURN(const ObjectInfo info, StatPlain(path));
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  if (info.type == ObjectType::kDir && EndsWith(path, ".tar")) {
    HSMFS_ASSIGN_OR_RETURN(const bool archive, IsArchive(path));
    if (archive) {
      return NotPermittedError(path + " is an htar archive; remove it with hsi rm");
    }
  }
  return Hsi((info.type == ObjectType::kDir ? "rmdir " : "rm ") + full, "remove " + path).status();
}

Status HpssBackend::Rename(const ObjectPath& from, const ObjectPath& to) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(from));
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(to));
  for (const ObjectPath* p : {&from, &to}) {
    HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(*p));
    if (!split.archive.empty()) {
      return ReadOnlyError(*p + " lies inside the htar archive " + split.archive);
    }
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string a, HsiQuote(Full(from)));
  HSMFS_ASSIGN_OR_RETURN(const std::string b, HsiQuote(Full(to)));
  HSMFS_ASSIGN_OR_RETURN(const std::optional<BundledFile> bundled, index_.Find(Full(from)));
  if (bundled) {
    // Only the index changes; a plain file at `to` is replaced.
    if (auto r = Hsi("rm " + b, "remove " + to); !r.ok() && r.status().code() != Code::kNotFound) {
      return r.status();
    }
    return index_.Move(Full(from), Full(to));
  }
  HSMFS_ASSIGN_OR_RETURN(const bool archive, IsArchive(from));
  if (archive && !EndsWith(to, ".tar")) {
    return NotPermittedError("an htar archive must keep its .tar name (renaming " + from + ")");
  }
  HSMFS_RETURN_IF_ERROR(Hsi("mv " + a + " " + b, "rename " + from).status());
  if (archive) {
    // The index moves with its archive, else htar cannot read it any more.
    HSMFS_ASSIGN_OR_RETURN(const std::string ai, HsiQuote(Full(from) + ".idx"));
    HSMFS_ASSIGN_OR_RETURN(const std::string bi, HsiQuote(Full(to) + ".idx"));
    HSMFS_RETURN_IF_ERROR(Hsi("mv " + ai + " " + bi, "rename " + from + ".idx").status());
    std::lock_guard<std::mutex> l(mu_);
    archives_.erase(from);
    listings_.erase(from);
  }
  // Bundled files below a renamed directory (and their archives) move with it.
  return index_.Move(Full(from), Full(to));
}

Status HpssBackend::MakeDir(const ObjectPath& path, uint32_t mode) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (path.empty()) return AlreadyExistsError("the backend root exists");
  HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(path));
  if (!split.archive.empty()) {
    return ReadOnlyError(path + " lies inside the htar archive " + split.archive);
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  HSMFS_RETURN_IF_ERROR(Hsi("mkdir " + full, "mkdir " + path).status());
  // A separate chmod: mkdir's mode is filtered by the HPSS-side umask.
  return Hsi("chmod " + OctalMode(mode) + " " + full, "chmod " + path).status();
}

Status HpssBackend::SetDirAttrs(const ObjectPath& path, const DirAttrs& attrs) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  if (!attrs.mode) return Backend::SetDirAttrs(path, attrs);
  HSMFS_ASSIGN_OR_RETURN(const Split split, SplitArchive(path));
  if (!split.archive.empty()) {
    return ReadOnlyError(path + " lies inside the htar archive " + split.archive);
  }
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  return Hsi("chmod " + OctalMode(*attrs.mode) + " " + full, "chmod " + path).status();
}

Status HpssBackend::MakeDirs(const ObjectPath& path, uint32_t mode) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(path));
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(path)));
  return Hsi("mkdir -p -m " + OctalMode(mode) + " " + full, "mkdir -p " + Full(path)).status();
}

Result<std::vector<HtarMember>> HpssBackend::CreateArchive(const ObjectPath& archive,
                                                           const HtarCreate& spec) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(archive));
  if (archive.empty()) return InvalidArgumentError("cannot create an archive at the root");
  SubprocessOptions o;
  o.argv = {options_.htar.string(), "-cvf", Full(archive)};
  o.argv.insert(o.argv.end(), spec.extra_args.begin(), spec.extra_args.end());
  if (!spec.list_file.empty()) {
    o.argv.push_back("-L");
    o.argv.push_back(spec.list_file.string());
  }
  o.argv.insert(o.argv.end(), spec.members.begin(), spec.members.end());
  o.cwd = spec.cwd;
  o.merge_stderr = true;
  {
    // Whatever was known of an older archive at this path is stale now.
    std::lock_guard<std::mutex> l(mu_);
    listings_.erase(archive);
  }
  auto run = RunSubprocess(o, options_.command_timeout);
  if (!run.ok()) {
    if (run.status().code() == Code::kNotFound) {
      return FailedPreconditionError("cannot run htar: " + run.status().message());
    }
    return UnavailableError("htar -cvf " + Full(archive) + ": " + run.status().message());
  }
  if (!run->ok() || run->out.find("HTAR SUCCESSFUL") == std::string::npos) {
    std::string last;
    for (std::string_view rest = run->out; !rest.empty();) {
      const size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      if (line.rfind("ERROR", 0) == 0 || line.rfind("***", 0) == 0) last = std::string(line);
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
    return UnavailableError("htar -cvf " + Full(archive) + " failed (exit " +
                            std::to_string(run->exit_code) + ")" +
                            (last.empty() ? "" : ": " + last));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    archives_.insert(archive);
  }
  return ArchiveMembers(archive);
}

Status HpssBackend::ListTree(const ObjectPath& dir,
                             const std::function<void(const LsEntry&)>& sink) {
  HSMFS_RETURN_IF_ERROR(ValidateObjectPath(dir));
  HSMFS_ASSIGN_OR_RETURN(const std::string full, HsiQuote(Full(dir)));
  HSMFS_ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                         Hsi("ls -R -D " + full, "list " + Full(dir)));
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  HSMFS_ASSIGN_OR_RETURN(const std::vector<LsEntry> entries, ParseLsD(text));
  for (const LsEntry& e : entries) sink(e);
  return Status::Ok();
}

}  // namespace hsmfs::backends::hpss
