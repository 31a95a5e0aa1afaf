#include "fs/fs_core.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/logging.h"

namespace hsmfs::fs {
namespace {

using catalog::Entry;
using catalog::EntryId;

constexpr int kReadDirBatch = 256;
// Cookies 1 and 2 follow "." and ".."; a child's cookie is its id + 2 (ids of
// children are >= 2, so cookies never collide).
constexpr uint64_t kCookieDot = 1;
constexpr uint64_t kCookieDotDot = 2;

// Counts a failure at error site `id` (docs/ERRORS.md) and tags its message.
Status AtSite(std::string_view id, const Status& s) {
  CountErrorSite(id);
  return s.Annotate(id);
}

// Catalog failures other than a missing entry are EIO site E-CAT-01.
Status CatalogError(const Status& s) {
  return s.code() == Code::kNotFound ? s : AtSite("E-CAT-01", s);
}

}  // namespace

FsCore::FsCore(Engine& engine, Options options) : engine_(engine), options_(options) {}

Attr FsCore::ToAttr(const Entry& e) const {
  Attr a;
  a.ino = static_cast<uint64_t>(e.id);
  a.uid = options_.uid;
  a.gid = options_.gid;
  a.mtime_ns = e.mtime_ns;
  if (e.is_dir()) {
    a.mode = S_IFDIR | (e.mode & 07777);
    a.nlink = 1;
  } else {
    a.mode = S_IFREG | (e.mode & 07777);
    a.size = e.size;
    a.blocks = e.cached ? (e.size + 511) / 512 : 0;
  }
  return a;
}

bool FsCore::Visible(const Entry& e) const {
  return e.parent != catalog::kRootId || engine_.config().FindBackend(e.name) != nullptr;
}

void FsCore::Lookup(uint64_t parent, std::string name, std::function<void(Result<Attr>)> done) {
  Entry dir;
  {
    auto session = engine_.catalog().Acquire();
    if (!session.ok()) return done(CatalogError(session.status()));
    auto got = session->Get(static_cast<EntryId>(parent));
    if (!got.ok()) return done(CatalogError(got.status()));
    dir = std::move(got).value();
  }
  if (!dir.is_dir()) return done(Status(Code::kNotDirectory, dir.name + ": not a directory"));
  const EntryId dir_id = dir.id;
  engine_.sync().WhenListed(
      dir, [this, dir_id, name = std::move(name), done = std::move(done)](Status listed) {
        if (!listed.ok()) return done(listed);
        auto session = engine_.catalog().Acquire();
        if (!session.ok()) return done(session.status());
        auto child = session->Lookup(dir_id, name);
        if (!child.ok()) return done(child.status());
        if (!Visible(*child)) return done(NotFoundError(name + ": no such backend"));
        done(ToAttr(*child));
      });
}

Result<Attr> FsCore::GetAttr(uint64_t ino) {
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return CatalogError(session.status());
  auto e = session->Get(static_cast<EntryId>(ino));
  if (!e.ok()) return CatalogError(e.status());
  return ToAttr(*e);
}

void FsCore::ReadDir(uint64_t ino, uint64_t offset, std::shared_ptr<DirSink> sink) {
  Entry dir;
  {
    auto session = engine_.catalog().Acquire();
    if (!session.ok()) return sink->Finish(CatalogError(session.status()));
    auto got = session->Get(static_cast<EntryId>(ino));
    if (!got.ok()) return sink->Finish(CatalogError(got.status()));
    dir = std::move(got).value();
  }
  if (!dir.is_dir()) {
    return sink->Finish(Status(Code::kNotDirectory, dir.name + ": not a directory"));
  }
  engine_.sync().WhenListed(dir, [this, dir, offset, sink](Status listed) {
    if (!listed.ok()) return sink->Finish(AtSite("E-LIST-01", listed));
    EmitEntries(dir, offset, *sink);
  });
}

void FsCore::EmitEntries(const Entry& dir, uint64_t offset, DirSink& sink) {
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return sink.Finish(CatalogError(session.status()));
  if (offset < kCookieDot) {
    if (!sink.Add(".", ToAttr(dir), kCookieDot)) return sink.Finish(Status::Ok());
    offset = kCookieDot;
  }
  if (offset < kCookieDotDot) {
    Attr parent_attr = ToAttr(dir);
    if (dir.parent != 0) {
      auto parent = session->Get(dir.parent);
      if (parent.ok()) parent_attr = ToAttr(*parent);
    }
    if (!sink.Add("..", parent_attr, kCookieDotDot)) return sink.Finish(Status::Ok());
    offset = kCookieDotDot;
  }
  EntryId after = static_cast<EntryId>(offset - kCookieDotDot);
  for (;;) {
    std::vector<Entry> children;
    Status s = session->Children(dir.id, after, kReadDirBatch, &children);
    if (!s.ok()) return sink.Finish(CatalogError(s));
    if (children.empty()) break;
    for (const Entry& child : children) {
      after = child.id;
      if (!Visible(child)) continue;
      if (!sink.Add(child.name, ToAttr(child), static_cast<uint64_t>(child.id) + kCookieDotDot)) {
        return sink.Finish(Status::Ok());
      }
    }
    if (children.size() < static_cast<size_t>(kReadDirBatch)) break;
  }
  sink.Finish(Status::Ok());
}

std::optional<std::string> FsCore::XattrOf(const Entry& e, std::string_view name) {
  std::string value;
  if (name == kXattrState) {
    if (!e.is_dir()) value = catalog::StateName(e.state);
  } else if (name == kXattrBackend) {
    value = e.backend;
  } else if (name == kXattrLocation) {
    value = !e.location.empty() ? e.location
                                : (e.backend.empty() ? "" : e.backend + ":/" + e.backend_path);
  } else if (name == kXattrChecksum) {
    value = e.checksum;
  } else if (name == kXattrError) {
    value = e.error;
  } else if (name == kXattrStats && e.id == catalog::kRootId) {
    for (const auto& [site, count] : ErrorSiteCounts()) {
      value += (value.empty() ? "" : " ") + site + "=" + std::to_string(count);
    }
    if (value.empty()) value = "no errors";
  }
  if (value.empty()) return std::nullopt;
  return value;
}

Result<std::optional<std::string>> FsCore::GetXattr(uint64_t ino, std::string_view name) {
  // Other namespaces (security.*, system.posix_acl_*) are asked for on every
  // write and exec; answer them without touching the catalog.
  if (name.substr(0, 9) != "user.hsm.") return std::optional<std::string>();
  auto session = engine_.catalog().Acquire();
  if (!session.ok()) return CatalogError(session.status());
  auto e = session->Get(static_cast<EntryId>(ino));
  if (!e.ok()) return CatalogError(e.status());
  return XattrOf(*e, name);
}

Result<std::vector<std::string>> FsCore::ListXattr(uint64_t ino) {
  HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
  HSMFS_ASSIGN_OR_RETURN(Entry e, session.Get(static_cast<EntryId>(ino)));
  std::vector<std::string> names;
  for (std::string_view name :
       {kXattrState, kXattrBackend, kXattrLocation, kXattrChecksum, kXattrError, kXattrStats}) {
    if (XattrOf(e, name)) names.emplace_back(name);
  }
  return names;
}

Result<FsStats> FsCore::StatFs() {
  catalog::CatalogStats stats;
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    // Summing a large catalog takes a while; df does not need it exact.
    if (engine_.clock().Now() >= stats_until_) {
      HSMFS_ASSIGN_OR_RETURN(catalog::Session session, engine_.catalog().Acquire());
      HSMFS_ASSIGN_OR_RETURN(stats_, session.Stats());
      stats_until_ = engine_.clock().Now() + std::chrono::seconds(5);
    }
    stats = stats_;
  }
  FsStats out;
  struct statvfs cache_fs;
  uint64_t free_blocks = 0;
  if (::statvfs(engine_.config().cache.dir.c_str(), &cache_fs) == 0) {
    free_blocks = static_cast<uint64_t>(cache_fs.f_bavail) * cache_fs.f_frsize / out.block_size;
  }
  // df shows the archive's size as used and the cache's free space as free.
  out.blocks = (stats.bytes + out.block_size - 1) / out.block_size + free_blocks;
  out.blocks_free = free_blocks;
  out.files_free = uint64_t{1} << 32;
  out.files = static_cast<uint64_t>(stats.files + stats.dirs) + out.files_free;
  return out;
}

}  // namespace hsmfs::fs
