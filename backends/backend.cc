#include "backends/backend.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace hsmfs::backends {

Status ReadBack(Backend& backend, const ObjectPath& path, const std::filesystem::path& scratch_dir,
                const ReadOptions& options) {
  std::string tmpl = (scratch_dir / "readback-XXXXXX").string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return ErrnoToStatus(errno, "temporary file in " + scratch_dir.string());
  ::close(fd);
  Status s = backend.Read(path, tmpl, options);
  std::error_code ec;
  std::filesystem::remove(tmpl, ec);
  return s;
}

Status Backend::StageMany(const std::vector<ObjectPath>& /*paths*/, Deadline /*deadline*/) {
  return Status::Ok();
}

std::string JoinObjectPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

std::string ParentObjectPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

Status ValidateObjectPath(std::string_view path) {
  if (path.empty()) return Status::Ok();
  if (path.front() == '/' || path.back() == '/') {
    return InvalidArgumentError("object path \"" + std::string(path) +
                                "\" must not start or end with '/'");
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(pos, slash - pos);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgumentError("object path \"" + std::string(path) +
                                  "\" has an empty, '.' or '..' component");
    }
    pos = slash + 1;
  }
  return Status::Ok();
}

Status Backend::SetDirAttrs(const ObjectPath& path, const DirAttrs& /*attrs*/) {
  return UnimplementedError("this backend keeps no directory modes or times (" + path + ")");
}

Status CheckStorableName(std::string_view type, std::string_view name) {
  if (type != "hpss") return Status::Ok();
  const size_t bad = name.find_first_of(kHsiUnquotableChars);
  if (bad == std::string_view::npos) return Status::Ok();
  const char c = name[bad];
  const std::string shown = c == '\n'   ? "a newline"
                            : c == '\r' ? "a carriage return"
                                        : std::string("'") + c + "'";
  return InvalidArgumentError("the name \"" + std::string(name) + "\" holds " + shown +
                              ", which an HPSS backend cannot store (hsi cannot quote it)");
}

}  // namespace hsmfs::backends
