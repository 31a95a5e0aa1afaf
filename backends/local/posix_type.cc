#include "backends/local/posix_type.h"

#include "backends/local/posix_backend.h"
#include "common/units.h"

namespace hsmfs::backends {
namespace {

Status Parse(BackendTable& t, BackendConfig* out) {
  HSMFS_RETURN_IF_ERROR(t.Path("root", &out->root));
  if (out->root.empty()) return t.TableError("root", "missing required key for type posix");
  return t.Dur("stage_delay", &out->stage_delay);
}

void Render(const BackendConfig& b, BackendRender& out) {
  out.Set("root", b.root.string());
  out.Set("stage_delay", FormatDurationExact(b.stage_delay));
}

// An archive writes into the root: it must not overlap the cache, the
// catalog or another backend.
void Places(const BackendConfig& b, BackendPlaces& out) { out.Dir("root", b.root); }

Result<std::unique_ptr<Backend>> Create(const BackendConfig& config, BackendContext& context) {
  return std::unique_ptr<Backend>(
      std::make_unique<PosixBackend>(config.root, config.stage_delay, context.clock));
}

}  // namespace

const BackendType kPosixType = {
    .config = {.name = "posix", .parse = Parse, .render = Render, .places = Places},
    .create = Create,
    .stores_symlinks = true,
};

}  // namespace hsmfs::backends
