#pragma once

// The catalog implementations the contract tests (catalog_test,
// job_queue_test) run against: each test of a suite instantiated with
// CatalogImplementations() runs once per implementation, through the public
// interface (Catalog::Open picks the implementation by location). A second
// implementation (PostgreSQL, issue 17) joins by adding a row here.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/sqlite/raw_access.h"

namespace hsmfs::catalog {

struct CatalogImplementation {
  std::string name;
  // Where a test's catalog called `name` lives, given its scratch directory.
  std::function<std::filesystem::path(const std::filesystem::path& dir, std::string_view name)>
      location;
  // Runs plain SQL (statements every implementation accepts: UPDATE and
  // INSERT on entries) to reach states the interface cannot make directly,
  // such as a file written through the mount in the middle of a listing.
  std::function<Status(Session& s, const std::string& sql)> exec;
};

inline CatalogImplementation SqliteImplementation() {
  return {"sqlite",
          [](const std::filesystem::path& dir, std::string_view name) {
            return dir / (std::string(name) + ".db");
          },
          [](Session& s, const std::string& sql) { return RawSqlite(s).Exec(sql); }};
}

inline std::vector<CatalogImplementation> CatalogImplementations() {
  return {SqliteImplementation()};
}

inline void PrintTo(const CatalogImplementation& impl, std::ostream* os) { *os << impl.name; }

inline std::string ImplementationName(const ::testing::TestParamInfo<CatalogImplementation>& info) {
  return info.param.name;
}

}  // namespace hsmfs::catalog
