#include "backends/registry.h"

#include "backends/hpss/hpss_backend.h"
#include "backends/irods/irods_backend.h"
#include "backends/local/posix_backend.h"
#include "backends/tape/device_spec.h"
#include "backends/tape/tape_backend.h"

namespace hsmfs::backends {

bool StoresSymlinks(const BackendConfig& config) { return config.type != "irods"; }

Result<std::unique_ptr<Backend>> CreateBackend(const BackendConfig& config, Clock& clock) {
  if (config.type == "posix") {
    return std::unique_ptr<Backend>(
        std::make_unique<PosixBackend>(config.root, config.stage_delay, clock));
  }
  if (config.type == "hpss") {
    hpss::HpssOptions o;
    o.root = config.root.string();
    o.hsi = config.hsi;
    o.htar = config.htar;
    o.hsi_args = config.hsi_args;
    o.command_timeout = config.command_timeout;
    o.session_idle = config.session_idle;
    o.checksum = config.checksum;
    o.bundle_catalog = config.bundle_catalog;
    o.bundle_spool = config.bundle_spool;
    o.bundle_max_size = config.bundle_max_size;
    o.bundle_quiet = config.bundle_quiet;
    o.bundle_workers = config.archive_workers;
    if (!config.bundle_rules.empty()) {
      auto rules =
          hpss::hpsspy::LoadScanConfig(config.bundle_rules.string(), config.bundle_section);
      if (!rules.ok())
        return rules.status().Annotate("backend \"" + config.name + "\": bundle_rules");
      const std::string section = hpss::hpsspy::PathJoin(rules->hpss_root, rules->section);
      if (section.rfind(o.root + "/", 0) != 0 && o.root != "/") {
        return InvalidArgumentError("backend \"" + config.name + "\": the bundle section's HPSS " +
                                    "directory " + section + " does not lie below root " + o.root);
      }
      o.bundle_rules = std::make_shared<const hpss::hpsspy::ScanConfig>(std::move(rules).value());
    }
    return std::unique_ptr<Backend>(std::make_unique<hpss::HpssBackend>(std::move(o), clock));
  }
  if (config.type == "tape") {
    tape::TapeBackendOptions o;
    const std::vector<std::string> specs =
        config.library.empty() ? config.drives : std::vector<std::string>{config.library};
    for (const std::string& text : specs) {
      auto spec = tape::ParseDeviceSpec(text);
      if (!spec.ok()) {
        return spec.status().Annotate("backend \"" + config.name + "\"");
      }
      o.devices.push_back(*spec);
    }
    o.catalog = config.tape_catalog;
    o.strip_prefix = config.strip_prefix;
    o.unit_size = config.unit_size;
    o.unit_quiet = config.unit_quiet;
    auto b = tape::TapeBackend::Create(std::move(o), clock);
    if (!b.ok()) return b.status().Annotate("backend \"" + config.name + "\"");
    return std::unique_ptr<Backend>(std::move(b).value());
  }
  if (config.type == "irods") {
    auto b = irods::IrodsBackend::Create(config, clock);
    if (!b.ok()) return b.status().Annotate("backend \"" + config.name + "\"");
    return std::unique_ptr<Backend>(std::move(b).value());
  }
  return InvalidArgumentError("backend \"" + config.name + "\": type \"" + config.type +
                              "\" is not available in this build");
}

}  // namespace hsmfs::backends
