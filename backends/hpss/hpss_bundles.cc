// HpssBackend's bundled writes (docs/HPSS.md "Bundled writes"): files that the
// HPSSPy rules map to an htar archive are written together, one htar run per
// bundle, instead of one hsi put each.

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <system_error>

#include "backends/hpss/hpss_backend.h"
#include "backends/hpss/hpsspy/py_regex.h"
#include "common/checksum.h"
#include "common/thread.h"

namespace hsmfs::backends::hpss {
namespace {

namespace stdfs = std::filesystem;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Makes `p`'s symlink at `dst` in the bundle's spool tree, with its mtime
// (htar stores what lstat shows), so that htar archives a symlink member.
Status SpoolSymlinkAt(const std::string& target, int64_t mtime_ns, const stdfs::path& dst) {
  if (::symlink(target.c_str(), dst.c_str()) != 0) {
    return ErrnoToStatus(errno, "symlink " + dst.string());
  }
  if (mtime_ns != 0) {
    const struct timespec times[2] = {{0, UTIME_OMIT},
                                      {mtime_ns / 1'000'000'000, mtime_ns % 1'000'000'000}};
    if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoToStatus(errno, "utimens " + dst.string());
    }
  }
  return Status::Ok();
}

// Removes a directory tree when it goes out of scope.
struct RemoveAll {
  stdfs::path p;
  ~RemoveAll() {
    std::error_code ec;
    if (!p.empty()) stdfs::remove_all(p, ec);
  }
};

}  // namespace

// One Put waiting for its bundle.
struct HpssBackend::PendingPut {
  stdfs::path src;
  ObjectPath path;
  std::string member;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0644;
  std::string checksum;     // the caller's ("algo:hex"), else md5 computed by the writer
  std::string link_target;  // a symlink member (no data; `src` unused)
  const CancelToken* cancel = &CancelToken::None();
  // Set under bmu_.
  bool taken = false;  // its bundle is being written: it can no longer leave
  bool done = false;
  Result<ObjectInfo> result = Status(Code::kInternal, "not written");
};

Result<ObjectPath> HpssBackend::Rel(const std::string& full) const {
  if (options_.root == "/") {
    if (!full.empty() && full.front() == '/') return full.substr(1);
  } else if (full == options_.root) {
    return ObjectPath();
  } else if (full.size() > options_.root.size() &&
             full.compare(0, options_.root.size(), options_.root) == 0 &&
             full[options_.root.size()] == '/') {
    return full.substr(options_.root.size() + 1);
  }
  return NotFoundError(full + " lies outside the backend root " + options_.root);
}

std::optional<HpssBackend::BundleTarget> HpssBackend::BundleFor(const ObjectPath& path,
                                                                uint64_t size) const {
  if (!options_.bundle_rules || size >= options_.bundle_max_size) return std::nullopt;
  const hpsspy::ScanConfig& cfg = *options_.bundle_rules;
  const std::string section = hpsspy::PathJoin(cfg.hpss_root, cfg.section);
  const std::string full = Full(path);
  if (full.size() <= section.size() + 1 || full.compare(0, section.size(), section) != 0 ||
      full[section.size()] != '/') {
    return std::nullopt;
  }
  const std::string rel = full.substr(section.size() + 1);
  // htar -L reads one member per line.
  if (rel.find('\n') != std::string::npos || cfg.rules.exclude.count(rel)) return std::nullopt;
  const hpsspy::Rule* rule = hpsspy::FirstMatch(cfg.rules, rel);
  if (rule == nullptr || rule->kind != hpsspy::Rule::Kind::kArchive) return std::nullopt;
  const std::string archive = rule->re->Sub(rule->tmpl, rel);
  if (!EndsWith(archive, ".tar") || archive.size() == 4) return std::nullopt;
  // Members are named from the archive's directory, as htar run there names them.
  const std::string dir(hpsspy::DirName(archive));
  if (!dir.empty() && (rel.size() <= dir.size() + 1 || rel.compare(0, dir.size(), dir) != 0 ||
                       rel[dir.size()] != '/')) {
    return std::nullopt;
  }
  return BundleTarget{hpsspy::PathJoin(section, archive),
                      dir.empty() ? rel : rel.substr(dir.size() + 1)};
}

Result<ObjectInfo> HpssBackend::StatBundled(const ObjectPath& path, const BundledFile& f) const {
  ObjectInfo info;
  const size_t slash = path.rfind('/');
  info.name = slash == std::string::npos ? path : path.substr(slash + 1);
  info.type = ObjectType::kFile;
  info.mode = f.mode & 07777;
  info.size = f.size;
  info.mtime_ns = f.mtime_ns;
  info.checksum = f.checksum;
  info.location = "htar " + f.archive + " member " + f.member;
  if (!f.link_target.empty()) {
    info.type = ObjectType::kSymlink;
    info.mode = 0777;
    info.size = f.link_target.size();
    info.link_target = f.link_target;
    info.checksum.clear();
  }
  return info;
}

Result<ObjectInfo> HpssBackend::PutBundled(const stdfs::path& src, uint64_t size,
                                           const ObjectPath& path, const BundleTarget& target,
                                           const PutOptions& options) {
  auto p = std::make_shared<PendingPut>();
  p->src = src;
  p->path = path;
  p->member = target.member;
  p->size = size;
  p->mtime_ns = options.mtime_ns;
  p->mode = options.mode & 07777;
  p->checksum = options.checksum;
  p->link_target = options.symlink_target;
  p->cancel = options.cancel;

  std::unique_lock<std::mutex> l(bmu_);
  if (stop_) return UnavailableError("hsmfs is shutting down");
  if (!writer_.joinable()) writer_ = StartThread("hpss-bundler", [this] { WriterLoop(); });
  OpenBundle& b = open_[target.archive];
  for (auto it = b.files.begin(); it != b.files.end(); ++it) {
    if ((*it)->path == path) {  // rewritten while it waited: the newer data goes
      (*it)->result = CancelledError("superseded by a newer write of " + path);
      (*it)->done = true;
      b.bytes -= std::min(b.bytes, (*it)->size);
      b.files.erase(it);
      break;
    }
  }
  b.files.push_back(p);
  b.bytes += p->size;
  b.last_join = clock_.Now();
  if (b.bytes >= options_.bundle_max_size) {
    full_.emplace_back(target.archive, std::move(b.files));
    open_.erase(target.archive);
  }
  size_t waiting = 0;
  for (const auto& [archive, ob] : open_) waiting += ob.files.size();
  for (const auto& [archive, list] : full_) waiting += list.size();
  if (options_.bundle_workers > 0 && waiting >= static_cast<size_t>(options_.bundle_workers)) {
    // Every archive worker waits here: nothing else can join before quiet.
    for (auto& [archive, ob] : open_) full_.emplace_back(archive, std::move(ob.files));
    open_.clear();
  }
  bcv_.notify_all();
  while (!p->done) {
    if (!p->taken && p->cancel->cancelled()) {
      auto leave = [&](PendingList& list) {
        auto it = std::find(list.begin(), list.end(), p);
        if (it == list.end()) return false;
        list.erase(it);
        return true;
      };
      auto o = open_.find(target.archive);
      if (o != open_.end() && leave(o->second.files)) {
        o->second.bytes -= std::min(o->second.bytes, p->size);
        if (o->second.files.empty()) open_.erase(o);
      } else {
        for (auto& [archive, list] : full_) {
          if (leave(list)) break;
        }
      }
      return CancelledError("archiving " + path + " into a bundle cancelled");
    }
    clock_.WaitUntil(bcv_, l, clock_.Now() + std::chrono::milliseconds(100));
  }
  return p->result;
}

void HpssBackend::StopWriter() {
  {
    std::lock_guard<std::mutex> l(bmu_);
    stop_ = true;
  }
  bcv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard<std::mutex> l(pmu_);
    prefetch_stop_ = true;
  }
  prefetch_cancel_.Cancel();
  pcv_.notify_all();
  if (prefetcher_.joinable()) prefetcher_.join();
  std::lock_guard<std::mutex> l(pmu_);
  while (!prefetched_.empty()) DropPrefetchedLocked(prefetched_.begin()->second);
}

Status HpssBackend::StageMany(const std::vector<ObjectPath>& paths, Deadline) {
  if (!index_.enabled()) return Status::Ok();
  // Bundled members by archive, in the order asked (the recall order).
  std::map<std::string, std::vector<std::pair<std::string, BundledFile>>> by_archive;
  std::vector<std::string> order;
  for (const ObjectPath& path : paths) {
    const std::string full = Full(path);
    HSMFS_ASSIGN_OR_RETURN(const std::optional<BundledFile> f, index_.Find(full));
    if (!f) continue;
    auto [it, added] = by_archive.try_emplace(f->archive);
    if (added) order.push_back(f->archive);
    it->second.emplace_back(full, *f);
  }
  std::lock_guard<std::mutex> l(pmu_);
  if (prefetch_stop_) return Status::Ok();
  // Copies nobody took within 10 minutes (recalls cancelled) are dropped.
  std::set<std::shared_ptr<Prefetch>> stale;
  for (const auto& [full, pf] : prefetched_) {
    if (pf->done && clock_.Now() - pf->finished > std::chrono::minutes(10)) stale.insert(pf);
  }
  for (const auto& pf : stale) DropPrefetchedLocked(pf);
  std::vector<std::shared_ptr<Prefetch>> fresh;
  for (const std::string& archive : order) {
    uint64_t bytes = 0;
    for (const auto& [full, f] : by_archive[archive]) {
      if (prefetched_.count(full)) continue;
      // One run extracts at most a bundle's worth (and 1000 names on its
      // command line).
      if (fresh.empty() || fresh.back()->archive != archive ||
          bytes + f.size > options_.bundle_max_size || fresh.back()->members.size() >= 1000) {
        fresh.push_back(std::make_shared<Prefetch>());
        fresh.back()->archive = archive;
        bytes = 0;
      }
      fresh.back()->members.emplace_back(full, f.member);
      bytes += f.size;
    }
  }
  bool queued = false;
  for (const auto& pf : fresh) {
    if (pf->members.size() < 2) continue;  // a lone member is left to its Read
    pf->left = pf->members.size();
    for (const auto& [full, member] : pf->members) prefetched_[full] = pf;
    prefetch_queue_.push_back(pf);
    queued = true;
  }
  if (queued && !prefetcher_.joinable()) {
    prefetcher_ = StartThread("hpss-prefetch", [this] { PrefetchLoop(); });
  }
  pcv_.notify_all();
  return Status::Ok();
}

void HpssBackend::PrefetchLoop() {
  std::unique_lock<std::mutex> l(pmu_);
  while (!prefetch_stop_) {
    if (prefetch_queue_.empty()) {
      pcv_.wait(l);
      continue;
    }
    std::shared_ptr<Prefetch> pf = prefetch_queue_.front();
    prefetch_queue_.pop_front();
    l.unlock();
    RunPrefetch(*pf);
    l.lock();
    pf->done = true;
    pf->finished = clock_.Now();
    pcv_.notify_all();
  }
  for (const auto& pf : prefetch_queue_) {
    pf->status = UnavailableError("hsmfs is shutting down");
    pf->done = true;
  }
  prefetch_queue_.clear();
  pcv_.notify_all();
}

void HpssBackend::RunPrefetch(Prefetch& pf) {
  std::error_code ec;
  stdfs::create_directories(options_.bundle_spool, ec);
  std::string tmpl = (options_.bundle_spool / "hpss-prefetch-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    pf.status = ErrnoToStatus(errno, "prefetch directory in " + options_.bundle_spool.string());
    return;
  }
  pf.dir = tmpl;
  auto rel = Rel(pf.archive);
  if (!rel.ok()) {
    pf.status = rel.status();
    return;
  }
  std::vector<std::string> members;
  for (const auto& [full, member] : pf.members) members.push_back(member);
  auto extracted = ExtractMembers(*rel, members, pf.dir, prefetch_cancel_);
  pf.status = extracted.status();
  if (pf.status.ok()) {
    spdlog::debug("extracted {} members of {} at once", extracted->size(), pf.archive);
  } else {
    spdlog::warn("extracting {} members of {} at once failed: {}; each is read by itself",
                 members.size(), pf.archive, pf.status.message());
  }
}

void HpssBackend::DropPrefetchedLocked(const std::shared_ptr<Prefetch>& pf) {
  for (const auto& [full, member] : pf->members) {
    auto it = prefetched_.find(full);
    if (it != prefetched_.end() && it->second == pf) prefetched_.erase(it);
  }
  std::error_code ec;
  if (!pf->dir.empty()) stdfs::remove_all(pf->dir, ec);
}

std::optional<Status> HpssBackend::TakePrefetched(const std::string& full,
                                                  const std::string& member,
                                                  const stdfs::path& dest,
                                                  const CancelToken& cancel) {
  std::unique_lock<std::mutex> l(pmu_);
  auto it = prefetched_.find(full);
  if (it == prefetched_.end()) return std::nullopt;
  const std::shared_ptr<Prefetch> pf = it->second;
  while (!pf->done) {
    if (cancel.cancelled()) return CancelledError("read of " + full + " cancelled");
    clock_.WaitUntil(pcv_, l, clock_.Now() + std::chrono::milliseconds(100));
  }
  it = prefetched_.find(full);
  if (it == prefetched_.end() || it->second != pf) return std::nullopt;  // taken meanwhile
  prefetched_.erase(it);
  std::optional<Status> out;
  if (pf->status.ok()) {
    std::error_code ec;
    stdfs::rename(pf->dir / member, dest, ec);
    if (!ec) out = Status::Ok();
  }
  if (--pf->left == 0) DropPrefetchedLocked(pf);
  return out;
}

void HpssBackend::WriterLoop() {
  std::unique_lock<std::mutex> l(bmu_);
  while (!stop_) {
    std::string archive;
    PendingList files;
    if (!full_.empty()) {
      archive = std::move(full_.front().first);
      files = std::move(full_.front().second);
      full_.pop_front();
    } else {
      const TimePoint now = clock_.Now();
      TimePoint wake = now + std::chrono::seconds(1);
      for (auto it = open_.begin(); it != open_.end(); ++it) {
        if (now - it->second.last_join >= options_.bundle_quiet) {
          archive = it->first;
          files = std::move(it->second.files);
          open_.erase(it);
          break;
        }
        wake = std::min(wake, it->second.last_join + options_.bundle_quiet);
      }
      if (archive.empty()) {
        clock_.WaitUntil(bcv_, l, wake);
        continue;
      }
    }
    if (files.empty()) continue;
    for (auto& p : files) p->taken = true;
    l.unlock();
    WriteBundle(archive, files);
    l.lock();
    for (auto& p : files) p->done = true;
    bcv_.notify_all();
  }
  // Shutting down: nothing waiting is written (the engine retries it later).
  for (auto& [archive, b] : open_) full_.emplace_back(archive, std::move(b.files));
  for (auto& [archive, list] : full_) {
    for (auto& p : list) {
      p->result = UnavailableError("hsmfs is shutting down");
      p->done = true;
    }
  }
  open_.clear();
  full_.clear();
  bcv_.notify_all();
}

void HpssBackend::WriteBundle(const std::string& archive, const PendingList& files) {
  const Status s = WriteBundleTo(archive, files);
  if (!s.ok()) {
    spdlog::warn("bundle of {} files for {} not written: {}", files.size(), archive, s.message());
    for (const auto& p : files) p->result = s;
  }
}

Result<std::string> HpssBackend::FreeArchiveName(const std::string& archive) {
  // htar archives are never rewritten: a later bundle of the same archive
  // name gets the next free name X.1.tar, X.2.tar, ...
  const std::string base = archive.substr(0, archive.size() - 4);
  for (int i = 0;; ++i) {
    const std::string name = i == 0 ? archive : base + "." + std::to_string(i) + ".tar";
    HSMFS_ASSIGN_OR_RETURN(const bool used, index_.ArchiveUsed(name));
    if (used) continue;
    HSMFS_ASSIGN_OR_RETURN(const std::string q, HsiQuote(name));
    auto r = Hsi("ls -Dd " + q, "stat " + name);
    if (!r.ok() && r.status().code() == Code::kNotFound) return name;
    if (!r.ok()) return r.status();
  }
}

Status HpssBackend::WriteBundleTo(const std::string& archive_base, const PendingList& files) {
  HSMFS_ASSIGN_OR_RETURN(const std::string archive, FreeArchiveName(archive_base));
  HSMFS_ASSIGN_OR_RETURN(const ObjectPath archive_rel, Rel(archive));

  std::error_code ec;
  stdfs::create_directories(options_.bundle_spool, ec);
  std::string tmpl = (options_.bundle_spool / "hpss-bundle-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoToStatus(errno, "spool directory in " + options_.bundle_spool.string());
  }
  const RemoveAll cleanup{tmpl};
  const stdfs::path tree = stdfs::path(tmpl) / "tree";
  const stdfs::path list = stdfs::path(tmpl) / "members";

  // The members, hard-linked (copied across file systems) at their names;
  // htar stores the mode and mtime the file has, so the link gets the
  // written file's, and the cached copy gets its own back afterwards.
  std::vector<std::unique_ptr<LocalAttrs>> attrs;
  std::ofstream names(list);
  for (const auto& p : files) {
    const stdfs::path dst = tree / p->member;
    stdfs::create_directories(dst.parent_path(), ec);
    if (ec) return ErrnoToStatus(ec.value(), "create " + dst.parent_path().string());
    if (!p->link_target.empty()) {
      HSMFS_RETURN_IF_ERROR(SpoolSymlinkAt(p->link_target, p->mtime_ns, dst));
      names << p->member << '\n';
      continue;
    }
    if (p->checksum.empty() || !AlgoOfChecksum(p->checksum).ok()) {
      HSMFS_ASSIGN_OR_RETURN(p->checksum, ChecksumFile(p->src, ChecksumAlgo::kMd5));
    }
    if (::link(p->src.c_str(), dst.c_str()) != 0 &&
        !stdfs::copy_file(p->src, dst, stdfs::copy_options::overwrite_existing, ec)) {
      return ErrnoToStatus(ec.value(), "copying " + p->src.string() + " to " + dst.string());
    }
    attrs.push_back(std::make_unique<LocalAttrs>(dst, p->mtime_ns, p->mode));
    names << p->member << '\n';
  }
  names.close();
  if (!names) return UnavailableError("cannot write the member list " + list.string());

  // The files' directories exist on HPSS like those of any written file, so
  // that listings show them; only the files live in the archive. One mkdir
  // per directory, in this (the writer's) session.
  std::set<ObjectPath> parents;
  for (const auto& p : files) parents.insert(ParentObjectPath(p->path));
  for (const ObjectPath& parent : parents) {
    if (parent.empty()) continue;
    HSMFS_ASSIGN_OR_RETURN(const std::string q, HsiQuote(Full(parent)));
    HSMFS_RETURN_IF_ERROR(Hsi("mkdir -p " + q, "mkdir " + parent).status());
  }
  HtarCreate spec;
  spec.cwd = tree;
  spec.list_file = list;
  HSMFS_ASSIGN_OR_RETURN(const std::vector<HtarMember> listed, CreateArchive(archive_rel, spec));
  std::map<std::string, const HtarMember*> by_name;
  for (const HtarMember& m : listed) by_name[m.name] = &m;
  std::vector<std::string> missing;
  for (const auto& p : files) {
    auto it = by_name.find(p->member);
    if (it == by_name.end() || it->second->link_target != p->link_target ||
        (p->link_target.empty() && it->second->size != p->size)) {
      missing.push_back(p->member);
    }
  }
  if (!missing.empty()) {
    return UnavailableError("htar reported success but " + archive + " lists " +
                            std::to_string(files.size() - missing.size()) + " of " +
                            std::to_string(files.size()) +
                            " members right (first wrong: " + missing.front() + ")");
  }

  // Read the whole archive back once and compare every member's checksum.
  const stdfs::path back = stdfs::path(tmpl) / "verify";
  stdfs::create_directories(back, ec);
  HSMFS_RETURN_IF_ERROR(ExtractMembers(archive_rel, {}, back, CancelToken::None()).status());
  std::vector<std::pair<std::string, BundledFile>> rows;
  std::vector<std::shared_ptr<PendingPut>> good;
  const int64_t now = clock_.WallNanos();
  for (const auto& p : files) {
    if (!p->link_target.empty()) {
      std::error_code lec;
      const stdfs::path got = stdfs::read_symlink(back / p->member, lec);
      if (lec || got.string() != p->link_target) {
        p->result = DataLossError("the symlink " + p->path + " in " + archive + " reads back as " +
                                  (lec ? lec.message() : "\"" + got.string() + "\"") +
                                  ", expected \"" + p->link_target + "\"");
        continue;
      }
    } else {
      auto algo = AlgoOfChecksum(p->checksum);
      auto got = ChecksumFile(back / p->member, *algo);
      if (!got.ok() || *got != p->checksum) {
        p->result = DataLossError(
            "the copy of " + p->path + " in " + archive + " has checksum " +
            (got.ok() ? *got : got.status().message()) + ", expected " + p->checksum +
            " (changed while it was archived?); it stays in the cache and is archived again");
        continue;
      }
    }
    BundledFile f;
    f.archive = archive;
    f.member = p->member;
    f.size = p->size;
    f.mtime_ns = p->mtime_ns;
    f.mode = p->mode;
    f.checksum = p->checksum;
    f.written_ns = now;
    f.link_target = p->link_target;
    rows.emplace_back(Full(p->path), std::move(f));
    good.push_back(p);
  }
  HSMFS_RETURN_IF_ERROR(index_.Record(rows).Annotate("recording the bundle " + archive));
  for (size_t i = 0; i < good.size(); ++i) {
    auto info = StatBundled(good[i]->path, rows[i].second);
    if (info.ok()) info->read_back = true;  // extracted and compared above
    good[i]->result = std::move(info);
  }
  spdlog::info("wrote htar bundle {} ({} of {} files)", archive, good.size(), files.size());
  return Status::Ok();
}

}  // namespace hsmfs::backends::hpss
