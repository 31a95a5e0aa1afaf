#include "backends/irods/irods_type.h"

#include "backends/irods/irods_backend.h"
#include "common/units.h"

namespace hsmfs::irods {
namespace {

using backends::Backend;
using backends::BackendContext;

Status Parse(BackendTable& t, BackendConfig* out) {
  for (auto [key, dest] : {std::pair{"host", &out->host}, std::pair{"zone", &out->zone},
                           std::pair{"user", &out->user}}) {
    HSMFS_RETURN_IF_ERROR(t.String(key, dest));
    if (dest->empty()) return t.TableError(key, "missing required key for type irods");
  }
  HSMFS_RETURN_IF_ERROR(t.Int("port", &out->port, 1, 65535));
  std::string root;
  HSMFS_RETURN_IF_ERROR(t.RemotePath("root", "iRODS collection", &root));
  out->root = root.empty() ? "/" + out->zone + "/home/" + out->user : root;
  HSMFS_RETURN_IF_ERROR(t.String("password", &out->password));
  HSMFS_RETURN_IF_ERROR(t.Path("password_file", &out->password_file));
  if (out->password.empty() == out->password_file.empty()) {
    return t.TableError(
        out->password.empty() ? "password_file" : "password",
        "type irods needs exactly one of password_file (an .irodsA file) or password");
  }
  const auto one_of = [&](std::string_view key, std::string* v,
                          std::initializer_list<std::string_view> allowed) -> Status {
    HSMFS_RETURN_IF_ERROR(t.String(key, v));
    std::string list;
    for (std::string_view a : allowed) {
      if (*v == a) return Status::Ok();
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    return t.Error(key, "unknown value \"" + *v + "\" (use " + list + ")");
  };
  HSMFS_RETURN_IF_ERROR(one_of("auth", &out->auth, {"auto", "legacy", "plugin"}));
  HSMFS_RETURN_IF_ERROR(one_of("tls", &out->tls, {"none", "refuse", "dont_care", "require"}));
  HSMFS_RETURN_IF_ERROR(t.Path("ca_file", &out->ca_file));
  HSMFS_RETURN_IF_ERROR(t.Bool("verify_server", &out->verify_server));
  HSMFS_RETURN_IF_ERROR(t.Int("connections", &out->connections, 1, 256));
  for (auto [key, dest] :
       {std::pair{"connect_timeout", &out->connect_timeout},
        std::pair{"io_timeout", &out->io_timeout}, std::pair{"stage_poll", &out->stage_poll}}) {
    HSMFS_RETURN_IF_ERROR(t.Dur(key, dest));
    if (dest->count() <= 0) return t.Error(key, "must be positive");
  }
  HSMFS_RETURN_IF_ERROR(one_of("dmf_lookup", &out->dmf_lookup, {"avu", "rule", "none"}));
  HSMFS_RETURN_IF_ERROR(t.String("dmf_attr", &out->dmf_attr));
  if (out->dmf_lookup == "avu" && out->dmf_attr.empty()) {
    return t.Error("dmf_attr", "must not be empty with dmf_lookup = \"avu\"");
  }
  HSMFS_RETURN_IF_ERROR(t.String("dmf_state_rule", &out->dmf_state_rule));
  if (out->dmf_lookup == "rule" && out->dmf_state_rule.empty()) {
    return t.Error("dmf_state_rule", "must not be empty with dmf_lookup = \"rule\"");
  }
  HSMFS_RETURN_IF_ERROR(t.String("stage_rule", &out->stage_rule));
  for (std::string_view key : {"dmf_state_rule", "stage_rule"}) {
    const std::string& v = key == "stage_rule" ? out->stage_rule : out->dmf_state_rule;
    // The name becomes part of a rule's text: a microservice name, no syntax.
    if (v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
        std::string::npos) {
      return t.Error(key, "must be a microservice or rule name (letters, digits, _)");
    }
  }
  return t.IntList(
      "offline_codes", &out->offline_codes, [](int64_t v) { return v < 0; },
      "expected an array of negative integers");
}

void Render(const BackendConfig& b, BackendRender& out) {
  out.Set("host", b.host);
  out.Set("port", b.port);
  out.Set("zone", b.zone);
  out.Set("user", b.user);
  out.Set("root", b.root.string());
  // Never the password itself.
  if (!b.password.empty()) out.Set("password", "(set)");
  if (!b.password_file.empty()) out.Set("password_file", b.password_file.string());
  out.Set("auth", b.auth);
  out.Set("tls", b.tls);
  if (!b.ca_file.empty()) out.Set("ca_file", b.ca_file.string());
  out.Set("verify_server", b.verify_server);
  out.Set("connections", b.connections);
  out.Set("connect_timeout", FormatDurationExact(b.connect_timeout));
  out.Set("io_timeout", FormatDurationExact(b.io_timeout));
  out.Set("dmf_lookup", b.dmf_lookup);
  out.Set("dmf_attr", b.dmf_attr);
  out.Set("dmf_state_rule", b.dmf_state_rule);
  out.Set("stage_rule", b.stage_rule);
  out.Set("offline_codes", b.offline_codes);
  out.Set("stage_poll", FormatDurationExact(b.stage_poll));
}

// Read only, but a FIFO there would block the mount's start.
void Places(const BackendConfig& b, BackendPlaces& out) {
  if (!b.password_file.empty()) out.Input("password_file", b.password_file);
  if (!b.ca_file.empty()) out.Input("ca_file", b.ca_file);
}

Result<std::unique_ptr<Backend>> Create(const BackendConfig& config, BackendContext& context) {
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<IrodsBackend> b,
                         IrodsBackend::Create(config, context.clock));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace

// iRODS has no symbolic links: the mount refuses symlink() there at once
// instead of failing the archive job later.
const backends::BackendType kIrodsType = {
    .config = {.name = "irods", .parse = Parse, .render = Render, .places = Places},
    .create = Create,
    .stores_symlinks = false,
};

}  // namespace hsmfs::irods
