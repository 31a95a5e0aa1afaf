#include "backends/tape/virtual_library.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <system_error>

namespace hsmfs::tape {

struct VirtualLibrary::State {
  struct Drive {
    std::string tape;         // "" when empty
    int64_t block = 0;        // the head, kept between handles
    uint64_t head_bytes = 0;  // payload bytes before the head (for the rewind cost)
  };
  uint64_t capacity = 0;
  uint64_t early_warning = 0;
  std::vector<std::string> slots;
  std::vector<Drive> drives;
  TapeCounters counters;

  int SlotOf(const std::string& label) const {
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] == label) return static_cast<int>(i);
    }
    return -1;
  }
  int DriveOf(const std::string& label) const {
    for (size_t i = 0; i < drives.size(); ++i) {
      if (drives[i].tape == label) return static_cast<int>(i);
    }
    return -1;
  }
};

namespace {

constexpr std::string_view kStateFile = "library.json";
constexpr std::string_view kLockFile = "library.lock";
constexpr int kStateVersion = 1;

// An flock held for the object's lifetime, on a file of its own open file
// description (so that threads of one process exclude each other too).
class FileLock {
 public:
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Blocking unless `try_only`; kBusy when `try_only` and held elsewhere.
  Status Acquire(const std::filesystem::path& path, bool try_only) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoToStatus(errno, "opening lock " + path.string());
    int r;
    do {
      r = ::flock(fd_, LOCK_EX | (try_only ? LOCK_NB : 0));
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
      int err = errno;
      ::close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) return {Code::kBusy, path.string() + " is held"};
      return ErrnoToStatus(err, "locking " + path.string());
    }
    return Status::Ok();
  }
  // Hands the descriptor (and the lock) to the caller.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

std::filesystem::path DriveLockPath(const std::filesystem::path& dir, int drive) {
  return dir / ("drive-" + std::to_string(drive) + ".lock");
}

bool ValidLabel(const std::string& label) {
  if (label.empty() || label.size() > 23) return false;
  for (char c : label) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

nlohmann::json CountersToJson(const TapeCounters& c) {
  return {{"bytes_read", c.bytes_read},
          {"bytes_written", c.bytes_written},
          {"records_read", c.records_read},
          {"records_written", c.records_written},
          {"filemarks_written", c.filemarks_written},
          {"locates", c.locates},
          {"locate_distance_bytes", c.locate_distance_bytes},
          {"loads", c.loads},
          {"unloads", c.unloads},
          {"simulated_ns", c.simulated.count()}};
}

TapeCounters CountersFromJson(const nlohmann::json& j) {
  TapeCounters c;
  c.bytes_read = j.value("bytes_read", uint64_t{0});
  c.bytes_written = j.value("bytes_written", uint64_t{0});
  c.records_read = j.value("records_read", uint64_t{0});
  c.records_written = j.value("records_written", uint64_t{0});
  c.filemarks_written = j.value("filemarks_written", uint64_t{0});
  c.locates = j.value("locates", uint64_t{0});
  c.locate_distance_bytes = j.value("locate_distance_bytes", uint64_t{0});
  c.loads = j.value("loads", uint64_t{0});
  c.unloads = j.value("unloads", uint64_t{0});
  c.simulated = Duration(j.value("simulated_ns", int64_t{0}));
  return c;
}

TapeCounters Minus(const TapeCounters& a, const TapeCounters& b) {
  TapeCounters d;
  d.bytes_read = a.bytes_read - b.bytes_read;
  d.bytes_written = a.bytes_written - b.bytes_written;
  d.records_read = a.records_read - b.records_read;
  d.records_written = a.records_written - b.records_written;
  d.filemarks_written = a.filemarks_written - b.filemarks_written;
  d.locates = a.locates - b.locates;
  d.locate_distance_bytes = a.locate_distance_bytes - b.locate_distance_bytes;
  d.loads = a.loads - b.loads;
  d.unloads = a.unloads - b.unloads;
  d.simulated = a.simulated - b.simulated;
  return d;
}

}  // namespace

Result<VirtualLibrary::State> VirtualLibrary::ReadState(const std::filesystem::path& dir) {
  const auto path = dir / kStateFile;
  std::ifstream in(path);
  if (!in) {
    return NotFoundError("no virtual library in " + dir.string() + " (no " +
                         std::string(kStateFile) + ")");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return DataLossError(path.string() + ": not valid JSON");
  try {
    if (j.at("version").get<int>() != kStateVersion) {
      return FailedPreconditionError(path.string() + ": unsupported version");
    }
    VirtualLibrary::State s;
    s.capacity = j.at("capacity").get<uint64_t>();
    s.early_warning = j.at("early_warning").get<uint64_t>();
    for (const auto& slot : j.at("slots"))
      s.slots.push_back(slot.is_null() ? "" : slot.get<std::string>());
    for (const auto& d : j.at("drives")) {
      VirtualLibrary::State::Drive drive;
      drive.tape = d.at("tape").is_null() ? "" : d.at("tape").get<std::string>();
      drive.block = d.value("block", int64_t{0});
      drive.head_bytes = d.value("head_bytes", uint64_t{0});
      s.drives.push_back(drive);
    }
    if (j.contains("counters")) s.counters = CountersFromJson(j.at("counters"));
    return s;
  } catch (const nlohmann::json::exception& e) {
    return DataLossError(path.string() + ": " + e.what());
  }
}

Status VirtualLibrary::WriteState(const std::filesystem::path& dir, const State& s) {
  nlohmann::json j;
  j["format"] = "hsmfs-vtl";
  j["version"] = kStateVersion;
  j["capacity"] = s.capacity;
  j["early_warning"] = s.early_warning;
  j["slots"] = nlohmann::json::array();
  for (const auto& slot : s.slots) {
    j["slots"].push_back(slot.empty() ? nlohmann::json(nullptr) : nlohmann::json(slot));
  }
  j["drives"] = nlohmann::json::array();
  for (const auto& d : s.drives) {
    j["drives"].push_back(
        {{"tape", d.tape.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.tape)},
         {"block", d.block},
         {"head_bytes", d.head_bytes}});
  }
  j["counters"] = CountersToJson(s.counters);
  const std::string text = j.dump(2) + "\n";
  const auto path = dir / kStateFile;
  const auto tmp = dir / (std::string(kStateFile) + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "writing " + tmp.string());
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return ErrnoToStatus(err, "writing " + tmp.string());
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return ErrnoToStatus(errno, "renaming " + tmp.string());
  // The rename is durable once the directory is synced.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status VirtualLibrary::Create(const std::filesystem::path& dir, int slots, int drives,
                              uint64_t capacity, uint64_t early_warning) {
  if (slots < 1 || drives < 1) {
    return InvalidArgumentError("a virtual library needs at least one slot and one drive");
  }
  if (capacity == 0) return InvalidArgumentError("tape capacity must be > 0");
  if (early_warning == 0) early_warning = capacity / 100;
  if (early_warning > capacity) return InvalidArgumentError("early warning larger than capacity");
  std::error_code ec;
  std::filesystem::create_directories(dir / "tapes", ec);
  if (ec) return ErrnoToStatus(ec.value(), "creating " + (dir / "tapes").string());
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir / kLockFile, false));
  if (std::filesystem::exists(dir / kStateFile, ec)) {
    return AlreadyExistsError("a virtual library already exists in " + dir.string());
  }
  State s;
  s.capacity = capacity;
  s.early_warning = early_warning;
  s.slots.assign(static_cast<size_t>(slots), "");
  s.drives.assign(static_cast<size_t>(drives), State::Drive{});
  return WriteState(dir, s);
}

Result<std::unique_ptr<VirtualLibrary>> VirtualLibrary::Open(const std::filesystem::path& dir,
                                                             const Options& options) {
  // Fails early on a missing or damaged library; the state is re-read per call.
  auto state = ReadState(dir);
  if (!state.ok()) return state.status();
  return std::unique_ptr<VirtualLibrary>(new VirtualLibrary(dir, options));
}

Result<std::unique_ptr<VirtualLibrary>> VirtualLibrary::Open(const std::filesystem::path& dir) {
  return Open(dir, Options{});
}

int VirtualLibrary::DriveCount(const std::filesystem::path& dir) {
  // Never opened unless a plain file: opening a FIFO for reading would block.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir / kStateFile, ec)) return 0;
  std::ifstream in(dir / kStateFile, std::ios::binary);
  if (!in) return 0;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("drives") || !j["drives"].is_array()) {
    return 0;
  }
  return static_cast<int>(j["drives"].size());
}

VirtualLibrary::VirtualLibrary(std::filesystem::path dir, const Options& options)
    : dir_(std::move(dir)),
      options_(options),
      meter_(std::make_shared<CostMeter>(options.cost, options.sleep_clock, options.time_scale)) {}

std::filesystem::path VirtualLibrary::ImagePath(const std::string& label) const {
  return dir_ / "tapes" / (label + ".vtape");
}

void VirtualLibrary::FoldCounters(State& state) const {
  std::lock_guard<std::mutex> l(mu_);
  TapeCounters now = meter_->Snapshot();
  state.counters += Minus(now, persisted_);
  persisted_ = now;
}

Status VirtualLibrary::AddTape(const std::string& label) {
  if (!ValidLabel(label)) {
    return InvalidArgumentError("tape label '" + label +
                                "': use 1 to 23 letters, digits, '-' or '_'");
  }
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  if (s.SlotOf(label) >= 0)
    return AlreadyExistsError("tape " + label + " is already in the library");
  int free_slot = s.SlotOf("");
  if (free_slot < 0) return ResourceExhaustedError("no free slot in the library for tape " + label);
  Status created = VirtualTape::Create(ImagePath(label), label, s.capacity, s.early_warning);
  // An image without a slot is left over from a crash between these two
  // steps; it was never visible, so it is adopted.
  if (!created.ok() && created.code() != Code::kAlreadyExists) return created;
  s.slots[static_cast<size_t>(free_slot)] = label;
  return WriteState(dir_, s);
}

Result<VirtualLibrary::Inventory> VirtualLibrary::GetInventory() const {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  Inventory inv;
  inv.capacity = s.capacity;
  inv.early_warning = s.early_warning;
  inv.slots = s.slots;
  for (const auto& d : s.drives) inv.drives.push_back(d.tape);
  return inv;
}

Status VirtualLibrary::LoadLocked(State& s, const std::string& label, int drive) {
  if (drive < 0 || drive >= static_cast<int>(s.drives.size())) {
    return InvalidArgumentError("no drive " + std::to_string(drive) + " in the library (" +
                                std::to_string(s.drives.size()) + " drives)");
  }
  if (s.SlotOf(label) < 0) return NotFoundError("no tape " + label + " in the library");
  auto& d = s.drives[static_cast<size_t>(drive)];
  if (d.tape == label) return Status::Ok();
  if (!d.tape.empty()) {
    return FailedPreconditionError("drive " + std::to_string(drive) + " holds tape " + d.tape +
                                   "; unload it first");
  }
  int other = s.DriveOf(label);
  if (other >= 0) {
    return FailedPreconditionError("tape " + label + " is in drive " + std::to_string(other));
  }
  FileLock drive_lock;
  HSMFS_RETURN_IF_ERROR(drive_lock.Acquire(DriveLockPath(dir_, drive), true));
  meter_->Charge(CostMeter::Op::kLoad, 0);
  d.tape = label;
  d.block = 0;
  d.head_bytes = 0;
  FoldCounters(s);
  return WriteState(dir_, s);
}

Status VirtualLibrary::UnloadLocked(State& s, int drive) {
  if (drive < 0 || drive >= static_cast<int>(s.drives.size())) {
    return InvalidArgumentError("no drive " + std::to_string(drive) + " in the library");
  }
  auto& d = s.drives[static_cast<size_t>(drive)];
  if (d.tape.empty())
    return FailedPreconditionError("drive " + std::to_string(drive) + " is empty");
  FileLock drive_lock;
  Status busy = drive_lock.Acquire(DriveLockPath(dir_, drive), true);
  if (!busy.ok()) return busy.Annotate("unloading drive " + std::to_string(drive));
  // The drive rewinds before it ejects.
  meter_->Charge(CostMeter::Op::kRewind, d.head_bytes);
  meter_->Charge(CostMeter::Op::kUnload, 0);
  d = State::Drive{};
  FoldCounters(s);
  return WriteState(dir_, s);
}

Status VirtualLibrary::Load(const std::string& label, int drive) {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  return LoadLocked(s, label, drive);
}

Status VirtualLibrary::Unload(int drive) {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  return UnloadLocked(s, drive);
}

Result<std::unique_ptr<LibraryDrive>> VirtualLibrary::OpenDrive(int drive) {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  return OpenDriveLocked(s, drive);
}

Result<std::unique_ptr<LibraryDrive>> VirtualLibrary::OpenDriveLocked(const State& s, int drive) {
  if (drive < 0 || drive >= static_cast<int>(s.drives.size())) {
    return InvalidArgumentError("no drive " + std::to_string(drive) + " in the library");
  }
  const auto& d = s.drives[static_cast<size_t>(drive)];
  if (d.tape.empty()) {
    return FailedPreconditionError("drive " + std::to_string(drive) + " is empty; load a tape");
  }
  FileLock drive_lock;
  Status busy = drive_lock.Acquire(DriveLockPath(dir_, drive), true);
  if (!busy.ok()) return busy.Annotate("opening drive " + std::to_string(drive));
  VirtualTape::Options topts;
  topts.verify_crc = options_.verify_crc;
  topts.meter = meter_;
  topts.initial_block = d.block;
  HSMFS_ASSIGN_OR_RETURN(auto tape, VirtualTape::Open(ImagePath(d.tape), topts));
  return std::unique_ptr<LibraryDrive>(
      new LibraryDrive(this, drive, d.tape, drive_lock.Release(), std::move(tape)));
}

Result<std::unique_ptr<LibraryDrive>> VirtualLibrary::MountTape(const std::string& label) {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  if (s.SlotOf(label) < 0) return NotFoundError("no tape " + label + " in the library");
  int drive = s.DriveOf(label);
  if (drive < 0) {
    drive = s.DriveOf("");
    if (drive < 0) {
      // Every drive is full: evict the first one nobody has open.
      for (int i = 0; i < static_cast<int>(s.drives.size()) && drive < 0; ++i) {
        if (UnloadLocked(s, i).ok()) drive = i;
      }
      if (drive < 0) return Status(Code::kBusy, "every drive of the library is in use");
    }
    HSMFS_RETURN_IF_ERROR(LoadLocked(s, label, drive));
  }
  // Opened (the drive's lock taken) before the library lock is let go:
  // otherwise another mount, in this process or another, could find the
  // drive loaded but not yet open, evict our tape and load its own.
  return OpenDriveLocked(s, drive);
}

Result<TapeCounters> VirtualLibrary::PersistedCounters() const {
  FileLock lock;
  HSMFS_RETURN_IF_ERROR(lock.Acquire(dir_ / kLockFile, false));
  HSMFS_ASSIGN_OR_RETURN(State s, ReadState(dir_));
  std::lock_guard<std::mutex> l(mu_);
  s.counters += Minus(meter_->Snapshot(), persisted_);
  return s.counters;
}

LibraryDrive::LibraryDrive(VirtualLibrary* library, int drive, std::string label, int lock_fd,
                           std::unique_ptr<VirtualTape> tape)
    : library_(library),
      drive_(drive),
      label_(std::move(label)),
      lock_fd_(lock_fd),
      tape_(std::move(tape)) {}

LibraryDrive::~LibraryDrive() {
  // Close the image first (st-like trailing file mark, flock released), then
  // remember where the head is, as a non-rewinding drive does. Best effort:
  // a destructor has nobody to report to, and must not throw.
  try {
    tape_->Close().IgnoreError();
    const VirtualTape::Info info = tape_->info();
    tape_.reset();
    FileLock lock;
    if (lock.Acquire(library_->dir_ / kLockFile, false).ok()) {
      auto s = VirtualLibrary::ReadState(library_->dir_);
      if (s.ok() && drive_ < static_cast<int>(s->drives.size()) &&
          s->drives[static_cast<size_t>(drive_)].tape == label_) {
        auto& d = s->drives[static_cast<size_t>(drive_)];
        d.block = info.head_block;
        d.head_bytes = info.head_bytes;
      }
      if (s.ok()) {
        library_->FoldCounters(*s);
        VirtualLibrary::WriteState(library_->dir_, *s).IgnoreError();
      }
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): see above
  }
  ::close(lock_fd_);
}

}  // namespace hsmfs::tape
