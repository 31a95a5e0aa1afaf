#include "backends/tape/tape_type.h"

#include <cctype>
#include <charconv>

#include "backends/tape/device_spec.h"
#include "backends/tape/tape_backend.h"
#include "backends/tape/virtual_library.h"
#include "common/units.h"

namespace hsmfs::tape {
namespace {

namespace fs = std::filesystem;
using backends::Backend;
using backends::BackendContext;

// A device spec as the config accepts it under `library` or `drives`:
// stricter than ParseDeviceSpec (which reads it again when the backend is
// made), so that a spec under the wrong key or a rewinding node is a config
// error naming the key.
Status CheckSpec(std::string_view text, bool library) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (library) {
    if (text.substr(0, 4) != "vtl:" || text.size() == 4 || text[4] == '#') {
      return InvalidArgumentError(quoted + ": expected vtl:DIR[#N]");
    }
    if (auto hash = text.rfind('#'); hash != std::string_view::npos) {
      std::string_view num = text.substr(hash + 1);
      int drive = 0;
      const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), drive);
      if (num.empty() || num.find_first_not_of("0123456789") != std::string_view::npos ||
          ec != std::errc() || end != num.data() + num.size()) {
        return InvalidArgumentError(quoted + ": drive after '#' must be a number >= 0");
      }
    }
    return Status::Ok();
  }
  if (text.empty() || text.front() != '/') {
    return InvalidArgumentError(quoted + ": expected a /dev/nstN device path");
  }
  // /dev/stN[lma] rewind on close: a second process would overwrite the first one's data.
  std::string_view base = text.substr(text.rfind('/') + 1);
  if (text.substr(0, 5) == "/dev/" && text.find('/', 5) == std::string_view::npos &&
      base.substr(0, 2) == "st" && base.size() > 2 &&
      std::isdigit(static_cast<unsigned char>(base[2]))) {
    return InvalidArgumentError(quoted + " is a rewinding node; use /dev/n" + std::string(base));
  }
  return Status::Ok();
}

// The directory of "vtl:DIR[#N]" (already absolute and normalised).
fs::path LibraryDir(std::string_view library) {
  std::string_view dir = library.substr(4);
  if (auto hash = dir.rfind('#'); hash != std::string_view::npos) dir = dir.substr(0, hash);
  return fs::path(dir);
}

Status Parse(BackendTable& t, BackendConfig* out) {
  HSMFS_RETURN_IF_ERROR(t.String("library", &out->library));
  HSMFS_RETURN_IF_ERROR(t.StringList("drives", &out->drives));
  if (out->library.empty() == out->drives.empty()) {
    return t.TableError(out->library.empty() ? "library" : "drives",
                        "type tape needs exactly one of library = \"vtl:DIR\" or drives = [...]");
  }
  int drive_count = 0;
  if (!out->library.empty()) {
    if (Status s = CheckSpec(out->library, true); !s.ok()) return t.Error("library", s.message());
    // A relative DIR is relative to the config file, as for every other path.
    std::string dir = out->library.substr(4);
    std::string drive;
    if (auto hash = dir.rfind('#'); hash != std::string::npos) {
      drive = dir.substr(hash);
      dir.resize(hash);
    }
    fs::path p(dir);
    if (p.is_relative()) p = t.file().parent_path() / p;
    p = p.lexically_normal();
    out->library = "vtl:" + p.string() + drive;
    drive_count = VirtualLibrary::DriveCount(p);
  } else {
    for (const std::string& d : out->drives) {
      if (Status s = CheckSpec(d, false); !s.ok()) return t.Error("drives", s.message());
    }
    drive_count = static_cast<int>(out->drives.size());
  }
  HSMFS_RETURN_IF_ERROR(t.Size("unit_size", &out->unit_size));
  if (out->unit_size == 0) return t.Error("unit_size", "must be positive");
  HSMFS_RETURN_IF_ERROR(t.Dur("unit_quiet", &out->unit_quiet));
  HSMFS_RETURN_IF_ERROR(t.Path("tape_catalog", &out->tape_catalog));
  HSMFS_RETURN_IF_ERROR(t.String("strip_prefix", &out->strip_prefix));
  if (out->strip_prefix.empty() || out->strip_prefix.front() != '/') {
    return t.Error("strip_prefix", "must be an absolute path");
  }
  while (out->strip_prefix.size() > 1 && out->strip_prefix.back() == '/') {
    out->strip_prefix.pop_back();
  }
  // One recall worker per drive: more would only queue for a drive.
  if (out->stage_workers == 0) out->stage_workers = drive_count > 0 ? drive_count : 2;
  // An archive worker waits in Put until its file's unit is on tape, so the
  // workers bound the files per unit.
  if (out->archive_workers == 0) out->archive_workers = 64;
  return Status::Ok();
}

// The tape tables live in the hsmfs catalog unless tape_catalog names another file.
void Complete(const Config& config, BackendConfig* out) {
  if (out->tape_catalog.empty()) out->tape_catalog = config.catalog.path;
}

void Render(const BackendConfig& b, BackendRender& out) {
  if (!b.library.empty()) {
    out.Set("library", b.library);
  } else {
    out.Set("drives", b.drives);
  }
  out.Set("tape_catalog", b.tape_catalog.string());
  out.Set("strip_prefix", b.strip_prefix);
  out.Set("unit_size", FormatSizeExact(b.unit_size));
  out.Set("unit_quiet", FormatDurationExact(b.unit_quiet));
}

// Tape images are written in the library's directory; two tape backends may
// use drives of one library, and the tape tables may be the hsmfs catalog.
void Places(const BackendConfig& b, BackendPlaces& out) {
  if (!b.library.empty()) out.SharedDir("library", LibraryDir(b.library));
  out.Catalog("tape_catalog", b.tape_catalog);
}

Result<std::unique_ptr<Backend>> Create(const BackendConfig& config, BackendContext& context) {
  TapeBackendOptions o;
  const std::vector<std::string> specs =
      config.library.empty() ? config.drives : std::vector<std::string>{config.library};
  for (const std::string& text : specs) {
    HSMFS_ASSIGN_OR_RETURN(DeviceSpec spec, ParseDeviceSpec(text));
    o.devices.push_back(spec);
  }
  if (!context.tape_store) {
    return FailedPreconditionError("no store for the tape tables (made without an engine)");
  }
  o.store = context.tape_store(config.tape_catalog);
  o.strip_prefix = config.strip_prefix;
  o.unit_size = config.unit_size;
  o.unit_quiet = config.unit_quiet;
  HSMFS_ASSIGN_OR_RETURN(std::unique_ptr<TapeBackend> b,
                         TapeBackend::Create(std::move(o), context.clock));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace

const backends::BackendType kTapeType = {
    .config =
        {.name = "tape", .parse = Parse, .complete = Complete, .render = Render, .places = Places},
    .create = Create,
    .stores_symlinks = true,
};

}  // namespace hsmfs::tape
