#include "backends/irods/irods_backend.h"

// Placeholder until the backend lands: every operation is kUnimplemented.
namespace hsmfs::irods {

struct IrodsBackend::Impl {};

Result<std::unique_ptr<IrodsBackend>> IrodsBackend::Create(const BackendConfig& config, Clock&) {
  return UnimplementedError("type irods: the backend is not in this build yet (" + config.host +
                            ")");
}
IrodsBackend::IrodsBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IrodsBackend::~IrodsBackend() = default;
Result<backends::ObjectInfo> IrodsBackend::Stat(const backends::ObjectPath&) {
  return UnimplementedError("irods");
}
Status IrodsBackend::List(const backends::ObjectPath&, const backends::ListSink&,
                          const CancelToken&) {
  return UnimplementedError("irods");
}
Status IrodsBackend::Stage(const backends::ObjectPath&, Deadline) {
  return UnimplementedError("irods");
}
Status IrodsBackend::StageMany(const std::vector<backends::ObjectPath>&, Deadline) {
  return UnimplementedError("irods");
}
Status IrodsBackend::Read(const backends::ObjectPath&, const std::filesystem::path&,
                          const backends::ReadOptions&) {
  return UnimplementedError("irods");
}
Result<backends::ObjectInfo> IrodsBackend::Put(const std::filesystem::path&,
                                               const backends::ObjectPath&,
                                               const backends::PutOptions&) {
  return UnimplementedError("irods");
}
Status IrodsBackend::Remove(const backends::ObjectPath&) { return UnimplementedError("irods"); }
Status IrodsBackend::Rename(const backends::ObjectPath&, const backends::ObjectPath&) {
  return UnimplementedError("irods");
}
Status IrodsBackend::MakeDir(const backends::ObjectPath&, uint32_t) {
  return UnimplementedError("irods");
}

}  // namespace hsmfs::irods
