// The one place that lists the catalog's implementations. Adding one (e.g.
// PostgreSQL, issue 17) is its folder under catalog/ plus a row here.

#include <string_view>

#include "catalog/session_impl.h"
#include "catalog/sqlite/sqlite_catalog.h"

namespace hsmfs::catalog {
namespace {

struct Implementation {
  std::string_view name;
  // Whether this implementation serves `location`.
  bool (*serves)(const std::filesystem::path& location);
  Result<std::unique_ptr<CatalogImpl>> (*open)(const std::filesystem::path& location,
                                               const Catalog::Options& options);
};

// Tried in order; the last serves every location (a file path).
constexpr Implementation kImplementations[] = {
    {"sqlite", [](const std::filesystem::path&) { return true; },
     [](const std::filesystem::path& location,
        const Catalog::Options& options) -> Result<std::unique_ptr<CatalogImpl>> {
       HSMFS_ASSIGN_OR_RETURN(auto impl, SqliteCatalog::Open(location, options));
       return std::unique_ptr<CatalogImpl>(std::move(impl));
     }},
};

}  // namespace

Result<std::unique_ptr<CatalogImpl>> OpenCatalogImpl(const std::filesystem::path& location,
                                                     const Catalog::Options& options) {
  for (const Implementation& impl : kImplementations) {
    if (impl.serves(location)) return impl.open(location, options);
  }
  return InvalidArgumentError("catalog " + location.string() +
                              ": no catalog implementation serves it");
}

}  // namespace hsmfs::catalog
