#include "catalog/bundle_store.h"

#include <mutex>
#include <system_error>

#include "catalog/catalog.h"
#include "catalog/sqlite/raw_access.h"

namespace hsmfs::catalog {
namespace {

using backends::hpss::BundledFile;
using backends::hpss::BundledRows;

Status Insert(Session& s, const std::string& path, const BundledFile& f) {
  HSMFS_ASSIGN_OR_RETURN(
      Stmt st,
      RawSqlite(s).Prepare("INSERT OR REPLACE INTO hpss_bundled (path, archive, member, size, "
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

Status Delete(Session& s, const std::string& path) {
  HSMFS_ASSIGN_OR_RETURN(Stmt st, RawSqlite(s).Prepare("DELETE FROM hpss_bundled WHERE path = ?"));
  st.Bind(1, path);
  return st.Run();
}

class CatalogBundleStore final : public backends::hpss::BundleStore {
 public:
  explicit CatalogBundleStore(std::filesystem::path file) : file_(std::move(file)) {}

  Result<BundledRows> Load() override {
    HSMFS_ASSIGN_OR_RETURN(Session s, Acquire());
    HSMFS_ASSIGN_OR_RETURN(
        Stmt st, RawSqlite(s).Prepare("SELECT path, archive, member, size, mtime_ns, mode, "
                                      "checksum, written_ns, link_target FROM hpss_bundled"));
    BundledRows rows;
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
      rows.emplace_back(st.Text(0), std::move(f));
    }
    return rows;
  }

  Status Apply(const std::vector<std::string>& erase, const BundledRows& put) override {
    HSMFS_ASSIGN_OR_RETURN(Session s, Acquire());
    HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
    for (const std::string& p : erase) HSMFS_RETURN_IF_ERROR(Delete(s, p));
    for (const auto& [p, f] : put) HSMFS_RETURN_IF_ERROR(Insert(s, p, f));
    return tx.Commit();
  }

 private:
  // Opened on first use, not when made: the mount creates its catalog file
  // after its backends.
  Result<Session> Acquire() {
    Catalog* c;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!catalog_) {
        std::error_code ec;
        if (!std::filesystem::exists(file_, ec)) {
          return UnavailableError("catalog " + file_.string() + " does not exist");
        }
        Catalog::Options co;
        co.create = false;
        co.max_connections = 2;
        auto opened = Catalog::Open(file_, co);
        if (!opened.ok()) return opened.status().Annotate("opening the HPSS bundle index");
        catalog_ = std::move(opened).value();
      }
      c = catalog_.get();
    }
    return c->Acquire();
  }

  const std::filesystem::path file_;
  std::mutex mu_;
  std::unique_ptr<Catalog> catalog_;  // GUARDED_BY(mu_)
};

}  // namespace

std::shared_ptr<backends::hpss::BundleStore> OpenBundleStore(const std::filesystem::path& file) {
  return std::make_shared<CatalogBundleStore>(file);
}

}  // namespace hsmfs::catalog
