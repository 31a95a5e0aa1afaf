#include "backends/hpss/hpss_type.h"

#include "backends/hpss/hpss_backend.h"
#include "common/units.h"

namespace hsmfs::backends::hpss {
namespace {

Status Parse(BackendTable& t, BackendConfig* out) {
  std::string root;
  HSMFS_RETURN_IF_ERROR(t.RemotePath("root", "HPSS", &root));
  if (root.empty()) return t.TableError("root", "missing required key for type hpss");
  out->root = root;
  out->hsi = DefaultHpssTool("hsi");
  out->htar = DefaultHpssTool("htar");
  // A bare program name is searched in $PATH when run; a path is a path.
  for (auto [key, dest] : {std::pair{"hsi", &out->hsi}, std::pair{"htar", &out->htar}}) {
    const std::optional<std::string> text = t.Peek(key);
    if (text && text->find('/') == std::string::npos) {
      std::string name;
      HSMFS_RETURN_IF_ERROR(t.String(key, &name));
      if (name.empty()) return t.Error(key, "must not be empty");
      *dest = name;
    } else {
      HSMFS_RETURN_IF_ERROR(t.Path(key, dest));
    }
  }
  HSMFS_RETURN_IF_ERROR(t.StringList("hsi_args", &out->hsi_args));
  HSMFS_RETURN_IF_ERROR(t.Dur("command_timeout", &out->command_timeout));
  if (out->command_timeout.count() <= 0) return t.Error("command_timeout", "must be positive");
  HSMFS_RETURN_IF_ERROR(t.Dur("session_idle", &out->session_idle));
  HSMFS_RETURN_IF_ERROR(t.Bool("checksum", &out->checksum));
  HSMFS_RETURN_IF_ERROR(t.Path("bundle_rules", &out->bundle_rules));
  HSMFS_RETURN_IF_ERROR(t.String("bundle_section", &out->bundle_section));
  HSMFS_RETURN_IF_ERROR(t.Size("bundle_max_size", &out->bundle_max_size));
  HSMFS_RETURN_IF_ERROR(t.Dur("bundle_quiet", &out->bundle_quiet));
  if (out->bundle_rules.empty() != out->bundle_section.empty()) {
    const char* missing = out->bundle_rules.empty() ? "bundle_rules" : "bundle_section";
    return t.TableError(missing, "is required when bundling (bundle_rules with bundle_section)");
  }
  if (out->bundle_max_size == 0) return t.Error("bundle_max_size", "must be positive");
  // As with tape units: a worker waits in Put until its bundle is written,
  // so the workers bound the files per bundle.
  if (!out->bundle_rules.empty() && out->archive_workers == 0) out->archive_workers = 256;
  return Status::Ok();
}

// The bundle index lives in the hsmfs catalog (consulted even with bundling
// off, so that files bundled earlier stay where they were written), and
// bundles are assembled in the cache's tmp directory, so hard links work.
void Complete(const Config& config, BackendConfig* out) {
  out->bundle_catalog = config.catalog.path;
  out->bundle_spool = config.cache.dir / "tmp";
}

void Render(const BackendConfig& b, BackendRender& out) {
  out.Set("root", b.root.string());
  out.Set("hsi", b.hsi.string());
  out.Set("htar", b.htar.string());
  out.Set("hsi_args", b.hsi_args);
  out.Set("command_timeout", FormatDurationExact(b.command_timeout));
  out.Set("session_idle", FormatDurationExact(b.session_idle));
  out.Set("checksum", b.checksum);
  if (!b.bundle_rules.empty()) {
    out.Set("bundle_rules", b.bundle_rules.string());
    out.Set("bundle_section", b.bundle_section);
    out.Set("bundle_max_size", FormatSizeExact(b.bundle_max_size));
    out.Set("bundle_quiet", FormatDurationExact(b.bundle_quiet));
  }
}

void Places(const BackendConfig& b, BackendPlaces& out) {
  if (!b.bundle_rules.empty()) out.Input("bundle_rules", b.bundle_rules);
}

Result<std::unique_ptr<Backend>> Create(const BackendConfig& config, BackendContext& context) {
  HpssOptions o;
  o.root = config.root.string();
  o.hsi = config.hsi;
  o.htar = config.htar;
  o.hsi_args = config.hsi_args;
  o.command_timeout = config.command_timeout;
  o.session_idle = config.session_idle;
  o.checksum = config.checksum;
  // Consulted even with bundling off, so that files bundled earlier stay
  // where they were written; none where no engine makes the backend.
  if (context.bundle_store) o.bundle_store = context.bundle_store(config.bundle_catalog);
  o.bundle_spool = config.bundle_spool;
  o.bundle_max_size = config.bundle_max_size;
  o.bundle_quiet = config.bundle_quiet;
  o.bundle_workers = config.archive_workers;
  if (!config.bundle_rules.empty()) {
    auto rules = hpsspy::LoadScanConfig(config.bundle_rules.string(), config.bundle_section);
    if (!rules.ok()) return rules.status().Annotate("bundle_rules");
    const std::string section = hpsspy::PathJoin(rules->hpss_root, rules->section);
    if (section.rfind(o.root + "/", 0) != 0 && o.root != "/") {
      return InvalidArgumentError("the bundle section's HPSS directory " + section +
                                  " does not lie below root " + o.root);
    }
    o.bundle_rules = std::make_shared<const hpsspy::ScanConfig>(std::move(rules).value());
  }
  return std::unique_ptr<Backend>(std::make_unique<HpssBackend>(std::move(o), context.clock));
}

}  // namespace

const BackendType kHpssType = {
    .config =
        {.name = "hpss", .parse = Parse, .complete = Complete, .render = Render, .places = Places},
    .create = Create,
    .stores_symlinks = true,
};

}  // namespace hsmfs::backends::hpss
