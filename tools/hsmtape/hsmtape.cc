// hsmtape: tape administration, compatible with tapeop (shared/seeds/002):
// the same commands, tape.conf and workflow (import, assign, archive,
// confirm), on the hsmfs catalog, so that the mount shows what is on tape.
//
//   hsmtape [-c tape.conf] tapes | status [TAPE] | import FILE | assign [TAPE]
//           | archive [--all | -n N] | confirm [ID | next] [--all] [--retry]
//           [--no-db-update] | close_tape [TAPE] | open_tape NAME [--serial S]
//           [--activate] | activate_tape NAME | backup_info [N] | where_is NAME
//           | tape_detail [TAPE] | dump_manifest [DIR] | rebuild_catalog TAPE

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "backends/tape/st_drive.h"
#include "backends/tape/tape_format.h"
#include "backends/tape/virtual_library.h"
#include "catalog/tape_catalog.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/units.h"
#include "sources/local_source.h"
#include "sources/ssh_source.h"
#include "tools/hsmtape/tape_conf.h"

namespace hsmfs::hsmtape {
namespace {

namespace stdfs = std::filesystem;
using catalog::Session;
using catalog::Tape;
using catalog::TapeCatalog;
using catalog::Target;
using catalog::TargetFile;
using catalog::TargetState;

constexpr std::string_view kProgram = "hsmtape";

int64_t Now() { return Clock::Real().WallNanos(); }

std::string Bytes(uint64_t n) { return FormatSizeHuman(n); }

// One failure line and the exit code for it.
int Fail(const Status& s) { return cli::Fail(kProgram, s.message(), cli::ExitCodeFor(s)); }

bool Ask(const std::string& question, bool default_yes) {
  std::cout << question << (default_yes ? " [Y/n] " : " [y/N] ") << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer) || answer.empty()) return default_yes;
  return answer[0] == 'y' || answer[0] == 'Y';
}

class Context {
 public:
  Status Open(const std::string& conf_path, const std::string& backend) {
    HSMFS_ASSIGN_OR_RETURN(conf_, LoadTapeConf(conf_path, backend));
    HSMFS_ASSIGN_OR_RETURN(catalog_, catalog::Catalog::Open(conf_.database_file));
    return Status::Ok();
  }
  Result<Session> Db() { return catalog_->Acquire(); }
  const TapeConf& conf() const { return conf_; }

  // A drive holding tape `name`, its label checked (unless `blank_ok` and the
  // tape has no label yet).
  Result<std::unique_ptr<tape::TapeDrive>> Mount(const std::string& name, bool blank_ok = false) {
    std::unique_ptr<tape::TapeDrive> drive;
    if (conf_.device.kind == tape::DeviceSpec::Kind::kVirtualLibrary) {
      if (!library_) {
        HSMFS_ASSIGN_OR_RETURN(library_, tape::VirtualLibrary::Open(conf_.device.path));
      }
      HSMFS_ASSIGN_OR_RETURN(drive, library_->MountTape(name));
    } else {
      tape::StDrive::Options o;
      HSMFS_ASSIGN_OR_RETURN(drive, tape::StDrive::Open(conf_.device.path.string(), o));
    }
    auto label = tape::ReadLabel(*drive);
    if (!label.ok()) {
      if (blank_ok) return drive;
      return FailedPreconditionError("the tape in " + conf_.device.ToString() +
                                     " has no hsmfs label (" + label.status().message() + ")");
    }
    if (label->name != name) {
      return FailedPreconditionError("the tape in " + conf_.device.ToString() + " is " +
                                     label->name + ", not " + name);
    }
    return drive;
  }
  tape::VirtualLibrary* library() {
    if (!library_ && conf_.device.kind == tape::DeviceSpec::Kind::kVirtualLibrary) {
      auto l = tape::VirtualLibrary::Open(conf_.device.path);
      if (l.ok()) library_ = std::move(l).value();
    }
    return library_.get();
  }

  // The source a target's files are read from.
  Result<FileSource*> SourceFor(const std::string& host) {
    if (host.empty()) {
      if (!local_) local_ = std::make_unique<LocalSource>();
      return local_.get();
    }
    if (!conf_.ssh) {
      return FailedPreconditionError("targets on " + host + " need ssh_command in " +
                                     conf_.file.string());
    }
    if (conf_.ssh->Describe() != host) {
      return FailedPreconditionError("the target was imported from " + host + " but " +
                                     conf_.file.string() + " names " + conf_.ssh->Describe());
    }
    if (!ssh_) {
      HSMFS_ASSIGN_OR_RETURN(ssh_, SshSource::Connect(*conf_.ssh));
    }
    return ssh_.get();
  }

  Result<Tape> TapeOrActive(const std::string& name) {
    HSMFS_ASSIGN_OR_RETURN(Session s, Db());
    if (!name.empty()) return TapeCatalog::GetTape(s, name);
    HSMFS_ASSIGN_OR_RETURN(auto active, TapeCatalog::ActiveTape(s));
    if (!active) {
      return FailedPreconditionError(
          "no active tape: hsmtape open_tape NAME --activate, or hsmtape activate_tape NAME");
    }
    return *active;
  }

 private:
  TapeConf conf_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<tape::VirtualLibrary> library_;
  std::unique_ptr<LocalSource> local_;
  std::unique_ptr<SshSource> ssh_;
};

// A batch (files written through the mount) keeps a unique name in `host`
// that is not a place to read from.
bool IsBatch(const Target& t) { return t.kind == "batch"; }

std::string Where(const Target& t) {
  if (IsBatch(t)) return t.path + " [batch]";
  return (t.host.empty() ? "" : t.host + ":") + t.path;
}

// The full name of a member (with the ssh host it came from, if asked).
std::string FilePath(const Target& t, const std::string& rel, bool with_host = false) {
  std::string dir = !with_host || IsBatch(t) || t.host.empty() ? t.path : t.host + ":" + t.path;
  if (!dir.empty() && dir.back() == '/') dir.pop_back();
  return dir + "/" + rel;
}

// ---- tapes and status ----

int CmdTapes(Context& ctx) {
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto tapes = TapeCatalog::Tapes(*s);
  if (!tapes.ok()) return Fail(tapes.status());
  if (tapes->empty()) {
    std::cout << "no tapes yet: hsmtape open_tape NAME\n";
    return 0;
  }
  std::printf("%-12s %-14s %-7s %-6s %6s %12s %12s\n", "TAPE", "SERIAL", "STATE", "ACTIVE", "UNITS",
              "USED", "CAPACITY");
  for (const auto& t : *tapes) {
    auto units = TapeCatalog::Targets(*s, t.name, std::nullopt);
    std::printf("%-12s %-14s %-7s %-6s %6zu %12s %12s\n", t.name.c_str(),
                t.serial.empty() ? "-" : t.serial.c_str(),
                t.closed ? "closed" : (t.full ? "full" : "open"), t.active ? "yes" : "",
                units.ok() ? units->size() : 0, Bytes(t.bytes_used).c_str(),
                t.capacity ? Bytes(t.capacity).c_str() : "-");
  }
  return 0;
}

int CmdStatus(Context& ctx, const std::string& name) {
  auto t = ctx.TapeOrActive(name);
  if (!t.ok()) {
    if (name.empty()) return CmdTapes(ctx);  // tapeop: the default without an active tape
    return Fail(t.status());
  }
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  std::printf("tape %s%s%s: %s, %s used%s\n", t->name.c_str(), t->serial.empty() ? "" : " serial ",
              t->serial.c_str(), t->closed ? "closed" : (t->active ? "active" : "open"),
              Bytes(t->bytes_used).c_str(), t->full ? ", FULL" : "");
  for (TargetState st : {TargetState::kAssigned, TargetState::kWriting, TargetState::kArchived,
                         TargetState::kConfirmed}) {
    auto list = TapeCatalog::Targets(*s, t->name, st);
    if (!list.ok()) return Fail(list.status());
    uint64_t bytes = 0;
    for (const auto& x : *list) bytes += x.bytes;
    std::printf("  %-10s %5zu targets %12s\n", std::string(catalog::TargetStateName(st)).c_str(),
                list->size(), Bytes(bytes).c_str());
  }
  auto waiting = TapeCatalog::Targets(*s, "", TargetState::kImported);
  if (waiting.ok() && !waiting->empty()) {
    std::printf("  %zu imported targets are not assigned to a tape (hsmtape assign)\n",
                waiting->size());
  }
  return 0;
}

// ---- tape management ----

int CmdOpenTape(Context& ctx, const std::string& name, std::string serial, bool serial_given,
                bool activate, bool activate_given) {
  const bool tty = ::isatty(STDIN_FILENO);
  if (tty) {
    if (!Ask("Open new tape " + name + "?", false)) return cli::kExitFailed;
    if (!serial_given) {
      std::cout << "Serial number (optional): " << std::flush;
      std::getline(std::cin, serial);
    }
    if (!activate_given) activate = Ask("Make " + name + " the active tape?", true);
  }
  {
    auto s = ctx.Db();
    if (!s.ok()) return Fail(s.status());
    if (TapeCatalog::GetTape(*s, name).ok()) {
      return Fail(AlreadyExistsError("tape " + name + " is already in the catalog"));
    }
  }
  uint64_t capacity = ctx.conf().capacity;
  if (auto* lib = ctx.library()) {
    auto inv = lib->GetInventory();
    if (!inv.ok()) return Fail(inv.status());
    if (std::find(inv->slots.begin(), inv->slots.end(), name) == inv->slots.end()) {
      if (Status st = lib->AddTape(name); !st.ok()) return Fail(st);
    }
    if (capacity == 0) capacity = inv->capacity;
  }
  auto drive = ctx.Mount(name, /*blank_ok=*/true);
  if (!drive.ok()) return Fail(drive.status());
  if (auto label = tape::ReadLabel(**drive); label.ok()) {
    return Fail(FailedPreconditionError("the tape already has the label " + label->name +
                                        "; hsmtape will not write over it"));
  }
  if (Status st = tape::WriteLabel(**drive, {name, serial, ctx.conf().block_size}); !st.ok()) {
    return Fail(st);
  }
  auto pos = (*drive)->Tell();
  if (!pos.ok()) return Fail(pos.status());
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  if (Status st = TapeCatalog::OpenTape(*s, name, serial, capacity, pos->logical_block, Now());
      !st.ok()) {
    return Fail(st);
  }
  if (activate) {
    if (Status st = TapeCatalog::ActivateTape(*s, name, Now()); !st.ok()) return Fail(st);
  }
  std::cout << "tape " << name << " labelled and opened" << (activate ? ", active" : "") << "\n";
  return 0;
}

int CmdActivate(Context& ctx, const std::string& name) {
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  if (Status st = TapeCatalog::ActivateTape(*s, name, Now()); !st.ok()) return Fail(st);
  std::cout << "tape " << name << " is the active tape\n";
  return 0;
}

int CmdClose(Context& ctx, const std::string& name, bool yes) {
  auto t = ctx.TapeOrActive(name);
  if (!t.ok()) return Fail(t.status());
  if (!yes && ::isatty(STDIN_FILENO) && !Ask("Close tape " + t->name + "?", false)) {
    return cli::kExitFailed;
  }
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto freed = TapeCatalog::CloseTape(*s, t->name, Now());
  if (!freed.ok()) return Fail(freed.status());
  std::cout << "tape " << t->name << " closed";
  if (*freed > 0) std::cout << "; " << *freed << " unwritten targets are unassigned again";
  std::cout << "\n";
  return 0;
}

// ---- import and assign ----

int CmdImport(Context& ctx, const std::string& list_file) {
  std::ifstream in(list_file);
  if (!in) return cli::Fail(kProgram, list_file + ": cannot read", cli::kExitUsage);
  std::vector<std::string> paths;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    paths.push_back(line);
  }
  int failures = 0, imported = 0;
  for (std::string path : paths) {
    // "local:/path" reads from this machine even when ssh_command is set.
    bool local = !ctx.conf().ssh;
    if (path.rfind("local:", 0) == 0) {
      local = true;
      path = path.substr(6);
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    Target t;
    t.path = path;
    t.host = local ? "" : ctx.conf().ssh->Describe();
    auto src = ctx.SourceFor(t.host);
    if (!src.ok()) {
      std::cerr << "hsmtape: " << Where(t) << ": " << src.status().message() << "\n";
      ++failures;
      continue;
    }
    std::vector<TargetFile> files;
    uint64_t total = 0;
    Status walked = (*src)->Walk(
        path,
        [&](const SourceEntry& e) {
          if (e.type == EntryType::kFile) {
            TargetFile f;
            f.rel_path = e.path;
            f.size = e.size;
            f.mtime_ns = e.mtime * 1'000'000'000;
            f.mode = e.mode;
            files.push_back(std::move(f));
            total += e.size;
          } else if (e.type != EntryType::kDir) {
            std::cerr << "hsmtape: " << Where(t) << "/" << e.path << ": "
                      << (e.type == EntryType::kSymlink ? "a symlink" : "not a regular file")
                      << ", not archived\n";
          }
          return Status::Ok();
        },
        CancelToken::None());
    if (!walked.ok()) {
      std::cerr << "hsmtape: " << walked.message() << "\n";
      ++failures;
      continue;
    }
    cli::Progress progress("checksum " + Where(t), "files");
    uint64_t done = 0;
    Status sums;
    for (size_t i = 0; i < files.size() && sums.ok(); ++i) {
      auto md5 = (*src)->ChecksumFile(path + "/" + files[i].rel_path, ChecksumAlgo::kMd5,
                                      CancelToken::None());
      if (!md5.ok()) {
        sums = md5.status();
        break;
      }
      files[i].md5 = md5->substr(4);
      done += files[i].size;
      progress.Update(static_cast<int64_t>(i + 1), static_cast<int64_t>(files.size()), done, total);
    }
    progress.Finish();
    if (!sums.ok()) {
      std::cerr << "hsmtape: " << sums.message() << "\n";
      ++failures;
      continue;
    }
    auto s = ctx.Db();
    if (!s.ok()) return Fail(s.status());
    auto tx = s->Begin();
    if (!tx.ok()) return Fail(tx.status());
    auto id = TapeCatalog::Import(*s, t, files, Now());
    if (id.ok()) {
      if (Status c = tx->Commit(); !c.ok()) return Fail(c);
    }
    if (!id.ok()) {
      std::cerr << "hsmtape: " << id.status().message() << "\n";
      if (id.status().code() != Code::kAlreadyExists) ++failures;
      continue;
    }
    ++imported;
    std::cout << "imported target " << *id << ": " << Where(t) << " (" << files.size() << " files, "
              << Bytes(total) << ")\n";
  }
  std::cout << imported << " of " << paths.size() << " targets imported\n";
  return failures ? cli::kExitFailed : 0;
}

int CmdAssign(Context& ctx, const std::string& name) {
  auto t = ctx.TapeOrActive(name);
  if (!t.ok()) return Fail(t.status());
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto n = TapeCatalog::Assign(*s, t->name);
  if (!n.ok()) return Fail(n.status());
  std::cout << *n << " targets assigned to tape " << t->name << "\n";
  return 0;
}

// ---- archive ----

// Writes one target; kResourceExhausted when the tape is full.
Status ArchiveOne(Context& ctx, tape::TapeDrive& drive, const Tape& tape, Target t) {
  HSMFS_ASSIGN_OR_RETURN(FileSource * src, ctx.SourceFor(t.host));
  std::vector<TargetFile> files;
  {
    HSMFS_ASSIGN_OR_RETURN(Session s, ctx.Db());
    HSMFS_ASSIGN_OR_RETURN(files, TapeCatalog::Files(s, t.id));
    // Where the unit starts is recorded before writing: after a crash the same
    // unit is written again from there (the tape's end has not moved).
    HSMFS_RETURN_IF_ERROR(
        TapeCatalog::BeginWrite(s, t.id, tape.next_file, tape.next_block, ctx.conf().block_size));
  }
  t.file_number = tape.next_file;
  t.start_block = tape.next_block;
  t.block_size = ctx.conf().block_size;
  t.tape = tape.name;
  std::unique_ptr<FileReader> reader;
  auto open = [&](size_t i) -> Result<tape::ChunkReader> {
    HSMFS_ASSIGN_OR_RETURN(reader, src->Open(t.path + "/" + files[i].rel_path, ChecksumAlgo::kMd5));
    FileReader* r = reader.get();
    return tape::ChunkReader(
        [r](std::span<std::byte> buf) { return r->Read(buf.data(), buf.size()); });
  };
  cli::Progress progress("archive " + Where(t), "files");
  const auto started = std::chrono::steady_clock::now();
  auto written = tape::WriteUnit(drive, t, files, open, CancelToken::None(),
                                 [&](uint64_t bytes) { progress.Update(0, 0, bytes, t.bytes); });
  progress.Finish();
  HSMFS_ASSIGN_OR_RETURN(Session s, ctx.Db());
  if (!written.ok()) {
    const bool full = written.status().code() == Code::kResourceExhausted;
    HSMFS_RETURN_IF_ERROR(TapeCatalog::AbandonWrite(s, t.id, full, written.status().message()));
    return written.status();
  }
  HSMFS_ASSIGN_OR_RETURN(auto tx, s.Begin());
  HSMFS_RETURN_IF_ERROR(TapeCatalog::FinishWrite(s, t.id, written->offsets, written->tar_bytes,
                                                 written->next_file, written->next_block, Now()));
  HSMFS_RETURN_IF_ERROR(tx.Commit());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("archived target %lld (%s) as file %lld on %s: %lld files, %s in %.1fs (%.0f MB/s)\n",
              static_cast<long long>(t.id), Where(t).c_str(), static_cast<long long>(t.file_number),
              tape.name.c_str(), static_cast<long long>(t.files), Bytes(t.bytes).c_str(), secs,
              secs > 0 ? static_cast<double>(written->tar_bytes) / secs / 1e6 : 0.0);
  return Status::Ok();
}

int CmdArchive(Context& ctx, bool all, int count) {
  auto active = ctx.TapeOrActive("");
  if (!active.ok()) return Fail(active.status());
  if (active->full) {
    return Fail(ResourceExhaustedError("tape " + active->name +
                                       " is full: close_tape, then open_tape the next one"));
  }
  auto drive = ctx.Mount(active->name);
  if (!drive.ok()) return Fail(drive.status());
  const int limit = all ? INT32_MAX : std::max(count, 1);
  int done = 0;
  while (done < limit) {
    Result<Tape> tape = active;
    std::optional<Target> next;
    {
      auto s = ctx.Db();
      if (!s.ok()) return Fail(s.status());
      tape = TapeCatalog::GetTape(*s, active->name);
      if (!tape.ok()) return Fail(tape.status());
      // A unit left `writing` by a crash comes first: it is rewritten in place.
      // Batches are the mount's: it drops an unfinished one and writes its
      // files again itself.
      auto writing = TapeCatalog::Targets(*s, tape->name, TargetState::kWriting);
      auto assigned = TapeCatalog::Targets(*s, tape->name, TargetState::kAssigned);
      if (!writing.ok()) return Fail(writing.status());
      if (!assigned.ok()) return Fail(assigned.status());
      for (const Target& w : *writing) {
        if (!IsBatch(w)) {
          next = w;
          break;
        }
      }
      for (const Target& a : *assigned) {
        if (!next && !IsBatch(a)) next = a;
      }
    }
    if (!next) {
      std::cout << (done ? "" : "nothing to archive: ") << "no targets assigned to tape "
                << tape->name << " remain\n";
      return 0;
    }
    Status st = ArchiveOne(ctx, **drive, *tape, *next);
    if (st.code() == Code::kResourceExhausted) {
      std::cout << "tape " << tape->name << " is full after " << done << " more targets; target "
                << next->id << " (" << Where(*next)
                << ") stays assigned: close_tape, open_tape NEXT --activate, assign, archive\n";
      return all || count > 1 ? 0 : cli::kExitFailed;
    }
    if (!st.ok()) {
      std::cerr << "hsmtape: target " << next->id << " (" << Where(*next) << "): " << st.message()
                << "\n";
      return cli::kExitFailed;
    }
    ++done;
  }
  return 0;
}

// ---- confirm ----

int CmdConfirm(Context& ctx, const std::string& which, bool all, bool retry, bool no_db_update,
               const std::string& tape_name) {
  auto tape = ctx.TapeOrActive(tape_name);
  if (!tape.ok()) return Fail(tape.status());
  std::vector<Target> todo;
  {
    auto s = ctx.Db();
    if (!s.ok()) return Fail(s.status());
    auto units = TapeCatalog::Targets(*s, tape->name, std::nullopt);
    if (!units.ok()) return Fail(units.status());
    std::sort(units->begin(), units->end(),
              [](const Target& a, const Target& b) { return a.file_number < b.file_number; });
    for (const auto& u : *units) {
      const bool archived = u.state == TargetState::kArchived;
      const bool confirmed = u.state == TargetState::kConfirmed;
      if (!archived && !confirmed) continue;
      if (!which.empty() && which != "next") {
        if (std::to_string(u.file_number) != which) continue;
        if (confirmed && !retry) {
          return cli::Fail(kProgram,
                           "file " + which + " is already confirmed (--retry to confirm again)",
                           cli::kExitFailed);
        }
        todo.push_back(u);
        break;
      }
      if (archived || retry) todo.push_back(u);
      if (!all && !todo.empty()) break;  // "next" (the default): one
    }
  }
  if (todo.empty()) {
    if (!which.empty() && which != "next") {
      return cli::Fail(kProgram, "no archived target is file " + which + " of tape " + tape->name,
                       cli::kExitFailed);
    }
    std::cout << "nothing to confirm on tape " << tape->name << "\n";
    return 0;
  }
  auto drive = ctx.Mount(tape->name);
  if (!drive.ok()) return Fail(drive.status());
  int bad_units = 0;
  for (const auto& t : todo) {
    std::vector<TargetFile> files;
    {
      auto s = ctx.Db();
      if (!s.ok()) return Fail(s.status());
      auto f = TapeCatalog::Files(*s, t.id);
      if (!f.ok()) return Fail(f.status());
      files = std::move(f).value();
    }
    cli::Progress progress("confirm file " + std::to_string(t.file_number), "files");
    auto damaged = tape::ConfirmUnit(**drive, t, files, CancelToken::None(),
                                     [&](uint64_t b) { progress.Update(0, 0, b, t.tar_bytes); });
    progress.Finish();
    if (!damaged.ok()) {
      std::cerr << "hsmtape: confirm of file " << t.file_number << " (" << Where(t)
                << "): " << damaged.status().message() << "\n";
      ++bad_units;
      continue;
    }
    if (damaged->empty()) {
      std::cout << "file " << t.file_number << " (" << Where(t) << "): OK, " << files.size()
                << " files match their md5\n";
    } else {
      ++bad_units;
      std::cout << "file " << t.file_number << " (" << Where(t) << "): DAMAGED, " << damaged->size()
                << " of " << files.size() << " files differ:\n";
      for (const auto& p : *damaged) std::cout << "  " << FilePath(t, p) << "\n";
    }
    if (!no_db_update) {
      auto s = ctx.Db();
      if (!s.ok()) return Fail(s.status());
      if (Status st = TapeCatalog::RecordConfirm(*s, t.id, *damaged, Now()); !st.ok()) {
        return Fail(st);
      }
    }
  }
  return bad_units ? cli::kExitFailed : 0;
}

// ---- queries ----

void PrintTarget(const Target& t) {
  std::printf("target %lld: %s\n  state %s, tape %s, file %lld, block %lld, %lld files, %s\n",
              static_cast<long long>(t.id), Where(t).c_str(),
              std::string(catalog::TargetStateName(t.state)).c_str(),
              t.tape.empty() ? "-" : t.tape.c_str(), static_cast<long long>(t.file_number),
              static_cast<long long>(t.start_block), static_cast<long long>(t.files),
              Bytes(t.bytes).c_str());
  if (!t.error.empty()) std::printf("  last error: %s\n", t.error.c_str());
}

int CmdBackupInfo(Context& ctx, const std::string& file_number) {
  auto tape = ctx.TapeOrActive("");
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto units = TapeCatalog::Targets(*s, tape.ok() ? tape->name : "", std::nullopt);
  if (!units.ok()) return Fail(units.status());
  int shown = 0;
  for (const auto& t : *units) {
    if (!file_number.empty() && std::to_string(t.file_number) != file_number) continue;
    PrintTarget(t);
    ++shown;
  }
  if (!file_number.empty() && shown == 0) {
    return cli::Fail(kProgram, "no target is file " + file_number, cli::kExitFailed);
  }
  return 0;
}

int CmdWhereIs(Context& ctx, const std::string& name) {
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto hits = TapeCatalog::WhereIs(*s, name, 1000);
  if (!hits.ok()) return Fail(hits.status());
  if (hits->empty()) return cli::Fail(kProgram, name + ": not in the catalog", cli::kExitFailed);
  for (const auto& h : *hits) {
    std::string where =
        "not on tape (" + std::string(catalog::TargetStateName(h.target.state)) + ")";
    if (h.file.data_offset >= 0 && h.target.block_size > 0) {
      where = "tape " + h.target.tape + " file " + std::to_string(h.target.file_number) +
              " block " +
              std::to_string(h.target.start_block +
                             h.file.data_offset / static_cast<int64_t>(h.target.block_size));
    }
    std::string note;
    if (h.file.removed) {
      note = "  (removed through the mount)";
    } else if (!h.file.tree_path.empty()) {
      note = "  (renamed through the mount to " + h.file.tree_path + ")";
    }
    std::printf("%s  %s  %s  md5 %s%s\n", FilePath(h.target, h.file.rel_path, true).c_str(),
                where.c_str(), Bytes(h.file.size).c_str(), h.file.md5.c_str(), note.c_str());
  }
  return 0;
}

int CmdTapeDetail(Context& ctx, const std::string& name) {
  auto tape = ctx.TapeOrActive(name);
  if (!tape.ok()) return Fail(tape.status());
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto units = TapeCatalog::Targets(*s, tape->name, std::nullopt);
  if (!units.ok()) return Fail(units.status());
  std::printf("tape %s: %zu targets, %s used, next file %lld\n", tape->name.c_str(), units->size(),
              Bytes(tape->bytes_used).c_str(), static_cast<long long>(tape->next_file));
  std::printf("%6s %-10s %8s %12s  %s\n", "FILE", "STATE", "FILES", "BYTES", "TARGET");
  for (const auto& t : *units) {
    std::printf("%6s %-10s %8lld %12s  %s\n",
                t.file_number >= 0 ? std::to_string(t.file_number).c_str() : "-",
                std::string(catalog::TargetStateName(t.state)).c_str(),
                static_cast<long long>(t.files), Bytes(t.bytes).c_str(), Where(t).c_str());
  }
  return 0;
}

// One md5sum-style file per unit on tape: "<md5>  <path>", so that
// `md5sum -c` can check a restored copy.
int CmdDumpManifest(Context& ctx, const std::string& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto units = TapeCatalog::Targets(*s, "", std::nullopt);
  if (!units.ok()) return Fail(units.status());
  int written = 0;
  for (const auto& t : *units) {
    if (t.tape.empty() || t.file_number < 0) continue;
    if (t.state != TargetState::kArchived && t.state != TargetState::kConfirmed) continue;
    auto files = TapeCatalog::Files(*s, t.id);
    if (!files.ok()) return Fail(files.status());
    const stdfs::path out =
        stdfs::path(dir) / (t.tape + "_file" + std::to_string(t.file_number) + ".md5");
    std::ofstream f(out);
    for (const auto& file : *files) {
      // A symlink member has no data: md5sum -c would check what it points to.
      if (!file.link_target.empty()) continue;
      f << file.md5 << "  " << FilePath(t, file.rel_path) << "\n";
    }
    if (!f) return Fail(InternalError("cannot write " + out.string()));
    ++written;
  }
  std::cout << written << " manifests written to " << dir << "\n";
  return 0;
}

int CmdRebuild(Context& ctx, const std::string& name) {
  auto drive = ctx.Mount(name);
  if (!drive.ok()) return Fail(drive.status());
  auto label = tape::ReadLabel(**drive);
  if (!label.ok()) return Fail(label.status());
  auto manifests = tape::ReadManifests(**drive);
  if (!manifests.ok()) return Fail(manifests.status());
  int64_t end_of_data = 0;
  if (!manifests->empty()) {
    // Position after the last manifest: locate to its start and skip it.
    const auto& last = manifests->back().target;
    Status st = (*drive)->Locate(last.start_block);
    if (st.ok()) st = (*drive)->Space(tape::SpaceOp::kFileMarksForward, 2);
    auto pos = st.ok() ? (*drive)->Tell() : Result<tape::TapePosition>(st);
    if (!pos.ok()) return Fail(pos.status());
    end_of_data = pos->logical_block;
  }
  auto s = ctx.Db();
  if (!s.ok()) return Fail(s.status());
  auto tx = s->Begin();
  if (!tx.ok()) return Fail(tx.status());
  if (!TapeCatalog::GetTape(*s, name).ok()) {
    uint64_t capacity = ctx.conf().capacity;
    if (auto* lib = ctx.library(); lib && capacity == 0) {
      if (auto inv = lib->GetInventory(); inv.ok()) capacity = inv->capacity;
    }
    if (Status st = TapeCatalog::OpenTape(*s, name, label->serial, capacity, 2, Now()); !st.ok()) {
      return Fail(st);
    }
  }
  int restored = 0, known = 0;
  for (size_t i = 0; i < manifests->size(); ++i) {
    const auto& m = (*manifests)[i];
    Target t = m.target;
    t.tape = name;
    // The unit's manifest is the tape file after its tar stream.
    const int64_t next_file = t.file_number + 2;
    // The next unit's start; for the last one, where reading its manifest
    // left the head (just past its file mark).
    int64_t next_block = end_of_data;
    if (i + 1 < manifests->size()) next_block = (*manifests)[i + 1].target.start_block;
    auto id = TapeCatalog::RestoreUnit(*s, t, m.files, next_file, next_block, Now());
    if (id.status().code() == Code::kAlreadyExists) {
      ++known;
      continue;
    }
    if (!id.ok()) return Fail(id.status());
    ++restored;
  }
  if (Status st = tx->Commit(); !st.ok()) return Fail(st);
  std::cout << "tape " << name << ": " << manifests->size() << " units on tape, " << restored
            << " restored to the catalog, " << known << " already known\n";
  return 0;
}

// hsmfs extension: a virtual library for tests, demos and trying things out.
int CmdVtlCreate(Context& ctx, int slots, int drives, const std::string& capacity) {
  if (ctx.conf().device.kind != tape::DeviceSpec::Kind::kVirtualLibrary) {
    return cli::Fail(
        kProgram,
        "tape_device is " + ctx.conf().device.ToString() + ", not a virtual library (vtl:DIR)",
        cli::kExitUsage);
  }
  auto bytes = ParseSize(capacity);
  if (!bytes.ok() || *bytes == 0) {
    return cli::Fail(kProgram, "--capacity: " + capacity + " is not a size like 10GiB",
                     cli::kExitUsage);
  }
  if (slots < 1 || drives < 1) {
    return cli::Fail(kProgram, "--slots and --drives must be at least 1", cli::kExitUsage);
  }
  if (Status st = tape::VirtualLibrary::Create(ctx.conf().device.path, slots, drives, *bytes);
      !st.ok()) {
    return Fail(st);
  }
  std::cout << "virtual library " << ctx.conf().device.path.string() << ": " << slots << " slots, "
            << drives << " drives, tapes of " << Bytes(*bytes) << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app("Tape administration (tapeop-compatible) on the hsmfs catalog.",
               std::string(kProgram));
  app.require_subcommand(1);
  std::string conf = "tape.conf";
  app.add_option("-c,--config", conf,
                 "tape.conf (default: ./tape.conf), or the hsmfs config (*.toml) of the mount");
  std::string backend;
  app.add_option("--backend", backend, "with an hsmfs config: the tape backend to use");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.set_version_flag("--version", std::string(kProgram) + " " + HSMFS_VERSION);

  std::string tape_arg, file_arg, which;
  bool all = false, retry = false, no_db = false, yes = false, activate = false;
  int count = 1;
  std::string serial;
  auto* tapes = app.add_subcommand("tapes", "list the tapes with their state");
  auto* status = app.add_subcommand("status", "what is assigned, archived and confirmed");
  status->add_option("tape", tape_arg, "tape (default: the active one)");
  auto* import = app.add_subcommand("import", "add targets (directories listed in FILE)");
  import->add_option("file", file_arg, "one directory per line; local:/path for a local one")
      ->required();
  auto* assign = app.add_subcommand("assign", "assign unassigned targets to a tape");
  assign->add_option("tape", tape_arg, "tape (default: the active one)");
  auto* archive = app.add_subcommand("archive", "write assigned targets to the active tape");
  archive->add_flag("--all", all, "until the tape is full or nothing is assigned");
  archive->add_option("-n", count, "at most N targets");
  auto* confirm = app.add_subcommand("confirm", "read targets back and compare every md5");
  confirm->add_option("id", which, "file number on the tape, or next (default)");
  confirm->add_flag("--all", all, "every archived target not yet confirmed");
  confirm->add_flag("--retry", retry, "confirm again targets already confirmed");
  confirm->add_flag("--no-db-update", no_db, "check only; leave the catalog as it is");
  confirm->add_option("--tape", tape_arg, "tape (default: the active one)");
  auto* close = app.add_subcommand("close_tape", "close a tape; unassign its unwritten targets");
  close->add_option("tape", tape_arg, "tape (default: the active one)");
  close->add_flag("-y,--yes", yes, "do not ask");
  auto* open = app.add_subcommand("open_tape", "label a new tape and add it to the catalog");
  open->add_option("tape", tape_arg, "tape name (label / barcode)")->required();
  auto* serial_opt = open->add_option("--serial", serial, "serial number");
  auto* activate_opt = open->add_flag("--activate", activate, "make it the active tape");
  auto* activate_cmd = app.add_subcommand("activate_tape", "make a tape the active one");
  activate_cmd->add_option("tape", tape_arg, "tape name")->required();
  auto* info = app.add_subcommand("backup_info", "targets of the active tape (or file N)");
  info->add_option("n", file_arg, "file number");
  auto* where = app.add_subcommand("where_is", "which tape and file hold a file");
  where->add_option("name", file_arg, "any part of the file's path")->required();
  auto* detail = app.add_subcommand("tape_detail", "every target on a tape");
  detail->add_option("tape", tape_arg, "tape (default: the active one)");
  auto* dump = app.add_subcommand("dump_manifest", "write md5sum files of every unit on tape");
  dump->add_option("dir", file_arg, "output directory (default .)");
  auto* rebuild =
      app.add_subcommand("rebuild_catalog", "restore a tape's units from its manifests");
  rebuild->add_option("tape", tape_arg, "tape name")->required();

  int slots = 20, drives = 2;
  std::string capacity = "10GiB";
  auto* vtl = app.add_subcommand("vtl_create", "create the virtual library tape_device names");
  vtl->add_option("--slots", slots, "slots (default 20)");
  vtl->add_option("--drives", drives, "drives (default 2)");
  vtl->add_option("--capacity", capacity, "capacity of each tape (default 10GiB)");

  if (auto code = cli::Parse(app, argc, argv)) return *code;
  // Checked before anything is opened: a negative count is a typo, not "one".
  if (*archive && count < 1) {
    return cli::Fail(kProgram, "archive -n: " + std::to_string(count) + " is not a count >= 1",
                     cli::kExitUsage);
  }
  LogOptions log;
  log.level = log_level;
  log.name = std::string(kProgram);
  if (Status st = InitLogging(log); !st.ok()) {
    return cli::Fail(kProgram, st.message(), cli::kExitUsage);
  }
  Context ctx;
  if (Status st = ctx.Open(conf, backend); !st.ok()) return Fail(st);

  if (*vtl) return CmdVtlCreate(ctx, slots, drives, capacity);
  if (*tapes) return CmdTapes(ctx);
  if (*status) return CmdStatus(ctx, tape_arg);
  if (*import) return CmdImport(ctx, file_arg);
  if (*assign) return CmdAssign(ctx, tape_arg);
  if (*archive) return CmdArchive(ctx, all, count);
  if (*confirm) return CmdConfirm(ctx, which, all, retry, no_db, tape_arg);
  if (*close) return CmdClose(ctx, tape_arg, yes);
  if (*open) {
    return CmdOpenTape(ctx, tape_arg, serial, serial_opt->count() > 0, activate,
                       activate_opt->count() > 0);
  }
  if (*activate_cmd) return CmdActivate(ctx, tape_arg);
  if (*info) return CmdBackupInfo(ctx, file_arg);
  if (*where) return CmdWhereIs(ctx, file_arg);
  if (*detail) return CmdTapeDetail(ctx, tape_arg);
  if (*dump) return CmdDumpManifest(ctx, file_arg.empty() ? "." : file_arg);
  if (*rebuild) return CmdRebuild(ctx, tape_arg);
  return cli::kExitUsage;
}

}  // namespace
}  // namespace hsmfs::hsmtape

int main(int argc, char** argv) { return hsmfs::hsmtape::Main(argc, argv); }
