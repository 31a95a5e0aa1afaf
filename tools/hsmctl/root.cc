// hsmctl init-root BACKEND [--force]: makes a backend's root directory carry
// the catalog's identity (docs/SEMANTICS.md, "Backend root identity"): for a
// new, empty root of a backend that was used before, after restoring a root
// from a backup, or after its .hsmfs-root was lost.

#include <iostream>

#include "cli/cli.h"
#include "tools/hsmctl/hsmctl.h"

namespace hsmfs::hsmctl {

int CmdInitRoot(Context& ctx, const std::string& backend, bool force) {
  if (Status s = OpenEngine(ctx); !s.ok()) return cli::Fail(kProgram, s.message(), cli::kExitUsage);
  if (!ctx.service->admin().HasBackend(backend)) {
    return cli::Fail(kProgram, "no backend named \"" + backend + "\" in " + ctx.config_path,
                     cli::kExitUsage);
  }
  auto id = ctx.service->admin().InitRoot(backend, force);
  if (!id.ok()) return cli::Fail(kProgram, id.status().message(), cli::kExitFailed);
  std::cout << "backend " << backend << ": root carries id " << *id
            << "; it is listed and archived into again\n";
  return cli::kExitOk;
}

}  // namespace hsmfs::hsmctl
