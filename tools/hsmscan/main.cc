// hsmscan: a compatible, faster `missing_from_hpss` (HPSSPy).
//
//   hsmscan [-c DIR] [-D] [-E] [-H] [-l N] [-p] [-r N] [-t] [-v] [-V] CONFIG SECTION
//
// Exit: 0 done; 1 files unmapped or mapped twice (as HPSSPy), a failed scan,
// or with -E any problem; 2 bad usage or config.

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/cli.h"
#include "cli/progress.h"
#include "tools/hsmscan/scan.h"

int main(int argc, char** argv) {
  using namespace hsmfs;
  using namespace hsmfs::hsmscan;
  constexpr const char* kProgram = "hsmscan";
  CLI::App app("Verify the presence of files on HPSS (a drop-in for HPSSPy's missing_from_hpss).",
               kProgram);
  ScanOptions opt;
  const char* home = std::getenv("HOME");
  opt.cache_dir = std::string(home ? home : ".") + "/cache";
  app.add_option("-c,--cache-dir", opt.cache_dir, "write cache files to DIR (default $HOME/cache)")
      ->option_text("DIR");
  app.add_flag("-D,--overwrite-disk", opt.overwrite_disk, "ignore any existing disk cache file");
  app.add_flag("-E,--exit-on-problems", opt.strict,
               "exit 1 on any problem (unused regex, archive too large, unreadable directory, "
               "undescribed directory), not only on unmapped files");
  app.add_flag("-H,--overwrite-hpss", opt.overwrite_hpss, "ignore any existing HPSS cache file");
  app.add_option("-l,--size-limit", opt.limit_gb,
                 "do not allow archive files larger than N GB (default 1024)")
      ->option_text("N");
  app.add_flag("-p,--process", opt.process, "create the missing archives on HPSS");
  app.add_option("-r,--report", opt.report, "report progress every N files (default 10000)")
      ->option_text("N")
      ->check(CLI::PositiveNumber);
  app.add_flag("-t,--test", opt.test, "test mode: change nothing, pretend HPSS is empty");
  app.add_flag("-v,--verbose", opt.verbose, "increase verbosity a lot");
  app.set_version_flag("-V,--version", std::string(kProgram) + " " + HSMFS_VERSION);
  app.add_option("--hsmfs-config", opt.hsmfs_config,
                 "with -p: record the new archives in this hsmfs mount's catalog");
  app.add_option("--backend", opt.hsmfs_backend, "with --hsmfs-config: its hpss backend");
  app.add_option("config", opt.config, "read configuration from FILE")->required();
  app.add_option("section", opt.section, "read SECTION from the configuration file")->required();
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  return RunScan(opt);
}
