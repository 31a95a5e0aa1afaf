#include "fuse/demo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace hsmfs::fs {
namespace {

namespace stdfs = std::filesystem;

constexpr char kDemoVersion[] = "hsmfs-demo-2";

constexpr char kDemoConfig[] = R"(# hsmfs demo configuration, written by `hsmfs --demo`.
# Relative paths are relative to this file.

[catalog]
path = "catalog.db"

[cache]
dir = "cache"
size = "1GiB"
stage_timeout = "10m"

[mount]
list_ttl = "1m"

[log]
file = "hsmfs.log"

# Files copied into vault/incoming are archived 2 s after their last close.
[archive]
settle = "2s"

# The archive tier: a plain directory. stage_delay makes every recall take two
# seconds, the way a tape mount would (only shorter).
[[backend]]
name = "vault"
type = "posix"
root = "archive/vault"
writable = ["incoming"]
stage_delay = "2s"
)";

constexpr char kReadme[] = R"(hsmfs demo archive
==================

This tree stands in for a tape archive. Everything under vault/ is "offline":
listing, find, stat and du answer from the local catalog at once, and st_blocks
is 0 because no data is on local disk.

  act6/       time-ordered detector data and maps of a CMB telescope
  lsst/       raw exposures, one directory per night
  climate/    monthly reanalysis fields
  genomics/   sequencing runs
  incoming/   the writable directory
)";

// A small deterministic generator, so that the demo's checksums never change.
class XorShift {
 public:
  explicit XorShift(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }

 private:
  uint64_t s_;
};

uint64_t HashOf(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

Status WriteFile(const stdfs::path& path, const std::string& header, uint64_t size,
                 int64_t mtime_s) {
  std::error_code ec;
  stdfs::create_directories(path.parent_path(), ec);
  if (ec) return ErrnoToStatus(ec.value(), "mkdir " + path.parent_path().string());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return ErrnoToStatus(errno, "create " + path.string());
  XorShift rng(HashOf(path.filename().string()) ^ size);
  std::string data = header.substr(0, size);
  data.reserve(size);
  while (data.size() < size) {
    const uint64_t v = rng.Next();
    const size_t n = std::min<size_t>(8, size - data.size());
    data.append(reinterpret_cast<const char*>(&v), n);
  }
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return ErrnoToStatus(errno, "write " + path.string());
  const struct timespec times[2] = {{mtime_s, 0}, {mtime_s, 0}};
  ::utimensat(AT_FDCWD, path.c_str(), times, 0);
  return Status::Ok();
}

std::string FitsHeader(const std::string& object) {
  std::string h;
  for (const std::string& card :
       {std::string("SIMPLE  =                    T / conforms to FITS standard"),
        std::string("BITPIX  =                  -32 / array data type"),
        std::string("NAXIS   =                    2"), "OBJECT  = '" + object + "'",
        std::string("END")}) {
    h += card + std::string(80 - std::min<size_t>(80, card.size()), ' ');
  }
  return h + std::string(2880 - h.size() % 2880, ' ');
}

Status BuildTree(const stdfs::path& vault) {
  char name[128];
  const int64_t t0 = 1'690'000'000;  // mid 2023
  HSMFS_RETURN_IF_ERROR(WriteFile(vault / "README.txt", kReadme, sizeof kReadme - 1, t0));
  for (int season = 4; season <= 5; ++season) {
    const int files = season == 4 ? 80 : 40;
    for (int i = 0; i < files; ++i) {
      std::snprintf(name, sizeof name, "act6/season%d/tod_%03d.dat", season, i);
      const uint64_t size = (32 + (HashOf(name) % 224)) << 10;  // 32 .. 256 KiB
      HSMFS_RETURN_IF_ERROR(
          WriteFile(vault / name, "TOD1", size, t0 + season * 86400 * 90 + i * 3600));
    }
    for (const char* band : {"f090", "f150", "f220"}) {
      std::snprintf(name, sizeof name, "act6/season%d/maps/map_%s.fits", season, band);
      HSMFS_RETURN_IF_ERROR(WriteFile(vault / name, FitsHeader(std::string("ACT ") + band),
                                      uint64_t{1} << 20, t0 + season * 86400 * 100));
    }
  }
  for (int night = 1; night <= 5; ++night) {
    for (int exp = 0; exp < 12; ++exp) {
      std::snprintf(name, sizeof name, "lsst/raw/2024-05-%02d/exp_%06d.fits", night,
                    100000 + night * 100 + exp);
      const uint64_t size = (32 + (HashOf(name) % 224)) << 10;
      HSMFS_RETURN_IF_ERROR(WriteFile(vault / name, FitsHeader("LSSTCam"), size,
                                      1'714'600'000 + night * 86400 + exp * 600));
    }
  }
  for (int year = 2019; year <= 2020; ++year) {
    for (int month = 1; month <= 12; ++month) {
      std::snprintf(name, sizeof name, "climate/era5/%d/t2m_%d-%02d.nc", year, year, month);
      HSMFS_RETURN_IF_ERROR(
          WriteFile(vault / name, std::string("CDF\x01", 4), uint64_t{256} << 10,
                    1'600'000'000 + (year - 2019) * 31'536'000 + month * 2'600'000));
    }
  }
  for (int sample = 1; sample <= 24; ++sample) {
    for (int read = 1; read <= 2; ++read) {
      std::snprintf(name, sizeof name, "genomics/run42/sample_%02d_R%d.fastq.gz", sample, read);
      const uint64_t size = (32 + (HashOf(name) % 224)) << 10;
      HSMFS_RETURN_IF_ERROR(WriteFile(vault / name, std::string("\x1f\x8b\x08\x00", 4), size,
                                      1'705'000'000 + sample * 7200));
    }
  }
  std::error_code ec;
  stdfs::create_directories(vault / "incoming", ec);
  if (ec) return ErrnoToStatus(ec.value(), "mkdir " + (vault / "incoming").string());
  return Status::Ok();
}

}  // namespace

stdfs::path DefaultDemoDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return stdfs::path(xdg) / "hsmfs" / "demo";
  }
  const char* home = std::getenv("HOME");
  return stdfs::path(home && *home ? home : "/tmp") / ".local" / "share" / "hsmfs" / "demo";
}

Result<stdfs::path> PrepareDemo(const stdfs::path& dir) {
  const stdfs::path marker = dir / "demo-version";
  const stdfs::path config = dir / "hsmfs.toml";
  {
    std::ifstream in(marker);
    std::string version;
    if (in && std::getline(in, version) && version == kDemoVersion) return config;
  }
  // Build beside the final place and rename, so that an interrupted build is
  // never mistaken for a finished demo. Only trees that carry the demo's
  // marker are ever removed: a directory of that name hsmfs did not make stays.
  const auto remove_own = [](const stdfs::path& p) -> Status {
    std::error_code ec;
    if (!stdfs::exists(stdfs::symlink_status(p, ec))) return Status::Ok();
    if (stdfs::is_directory(stdfs::symlink_status(p, ec)) && stdfs::is_empty(p, ec) &&
        stdfs::remove(p, ec)) {
      return Status::Ok();  // a build interrupted before its marker
    }
    if (!stdfs::is_directory(stdfs::symlink_status(p, ec)) ||
        !stdfs::is_regular_file(stdfs::symlink_status(p / "demo-version", ec))) {
      return FailedPreconditionError(p.string() +
                                     " exists but is not an hsmfs demo; move it away first");
    }
    stdfs::remove_all(p, ec);
    if (ec) return ErrnoToStatus(ec.value(), "cannot remove the old demo " + p.string());
    return Status::Ok();
  };
  std::error_code ec;
  const stdfs::path building = dir.string() + ".building";
  HSMFS_RETURN_IF_ERROR(remove_own(building));
  stdfs::create_directories(building, ec);
  if (ec) return ErrnoToStatus(ec.value(), "cannot create " + building.string());
  {
    // Written first, so that an interrupted build is recognised (and
    // removed) by the next one; a build is only used once renamed to `dir`.
    std::ofstream version(building / "demo-version");
    version << kDemoVersion << "\n";
    if (!version) return ErrnoToStatus(errno, "cannot write the demo config");
  }
  HSMFS_RETURN_IF_ERROR(BuildTree(building / "archive" / "vault"));
  {
    std::ofstream out(building / "hsmfs.toml");
    out << kDemoConfig;
    if (!out) return ErrnoToStatus(errno, "cannot write the demo config");
  }
  HSMFS_RETURN_IF_ERROR(remove_own(dir));
  stdfs::rename(building, dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), "cannot move the demo into " + dir.string());
  return config;
}

std::string DemoHints(const stdfs::path& mountpoint, const stdfs::path& config,
                      const std::string& hsmctl) {
  const std::string m = mountpoint.string();
  const std::string ctl = hsmctl + " -c " + config.string();
  const std::pair<std::string, std::string> tries[] = {
      {"ls -l " + m + "/vault", ""},
      {"find " + m + " -type f | wc -l", ""},
      {"du -sh " + m + "/vault", "0: nothing is on local disk yet"},
      {"getfattr -d -m user.hsm " + m + "/vault/README.txt", "offline"},
      {"cat " + m + "/vault/README.txt", "recalled on first read (2 s)"},
      {"getfattr -n user.hsm.state " + m + "/vault/README.txt", "dual: cached and archived"},
      {ctl + " ls -R vault/lsst | head", "DMF states"},
      {ctl + " stage --preview vault/act6/season4", "what a recall would cost"},
      {ctl + " stage --wait vault/lsst/raw/2024-05-01", "a tape-ordered batch"},
      {ctl + " jobs", "the queue"},
      {"cp /etc/services " + m + "/vault/incoming/", "writable: archived after 2 s"},
      {"getfattr -n user.hsm.state " + m + "/vault/incoming/services", "online, then dual"},
  };
  std::string out = "hsmfs demo mounted on " + m + "\n\nTry:\n";
  for (const auto& [command, note] : tries) {
    out += "  " + command;
    if (!note.empty()) out += "   # " + note;
    out += "\n";
  }
  out += "\nThe demo lives in " + config.parent_path().string() + " (config " + config.string() +
         ", log hsmfs.log).\nUnmount with:  fusermount3 -u " + m + "\n";
  return out;
}

}  // namespace hsmfs::fs
