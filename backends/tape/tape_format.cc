#include "backends/tape/tape_format.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/checksum.h"

namespace hsmfs::tape {
namespace {

constexpr std::string_view kLabelMagic = "HSMFS-TAPE 1";
constexpr std::string_view kManifestFormat = "hsmfs-manifest 1";

std::span<const std::byte> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string HexOf(const std::string& checksum) {  // "md5:abc" -> "abc"
  const auto colon = checksum.find(':');
  return colon == std::string::npos ? checksum : checksum.substr(colon + 1);
}

// Cuts the tar stream into records of exactly block_size bytes (the last one
// shorter) and counts the bytes, so that member offsets map to blocks.
class RecordWriter {
 public:
  RecordWriter(TapeDrive& drive, uint32_t block_size) : drive_(drive), block_size_(block_size) {
    buf_.reserve(block_size);
  }
  // For libarchive's write callback: false when the drive failed (see status()).
  bool Write(const void* data, size_t len) {
    const auto* p = static_cast<const std::byte*>(data);
    total_ += len;
    while (len > 0) {
      const size_t n = std::min(len, block_size_ - buf_.size());
      buf_.insert(buf_.end(), p, p + n);
      p += n;
      len -= n;
      if (buf_.size() == block_size_ && !FlushRecord()) return false;
    }
    return true;
  }
  bool FlushRecord() {
    if (buf_.empty()) return true;
    status_ = drive_.WriteRecord(buf_);
    buf_.clear();
    return status_.ok();
  }
  uint64_t total() const { return total_; }
  const Status& status() const { return status_; }

 private:
  TapeDrive& drive_;
  const size_t block_size_;
  std::vector<std::byte> buf_;
  uint64_t total_ = 0;
  Status status_;
};

la_ssize_t WriteCallback(struct archive*, void* client, const void* buf, size_t len) {
  auto* w = static_cast<RecordWriter*>(client);
  return w->Write(buf, len) ? static_cast<la_ssize_t>(len) : -1;
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

Status ArchiveError(struct archive* a, const RecordWriter& w, const std::string& what) {
  if (!w.status().ok()) return w.status();  // the drive's error says more
  const char* msg = archive_error_string(a);
  return InternalError(what + ": " + (msg ? msg : "libarchive error"));
}

nlohmann::json ManifestJson(const Target& t, const std::vector<TargetFile>& files,
                            const WrittenUnit& w) {
  nlohmann::json j;
  j["format"] = kManifestFormat;
  j["unit"] = {{"id", t.id},
               {"kind", t.kind},
               {"host", t.host},
               {"path", t.path},
               {"tape", t.tape},
               {"file_number", t.file_number},
               {"start_block", t.start_block},
               {"block_size", t.block_size},
               {"tar_bytes", w.tar_bytes}};
  auto& list = j["files"] = nlohmann::json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    list.push_back({{"path", files[i].rel_path},
                    {"size", files[i].size},
                    {"mtime_ns", files[i].mtime_ns},
                    {"mode", files[i].mode},
                    {"md5", w.md5[i]},
                    {"offset", w.offsets[i]}});
    if (!files[i].link_target.empty()) list.back()["link"] = files[i].link_target;
  }
  return j;
}

Result<Manifest> ParseManifest(const std::string& text) {
  Manifest m;
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.value("format", "") != kManifestFormat) {
      return FailedPreconditionError("not an hsmfs manifest");
    }
    const auto& u = j.at("unit");
    m.target.id = u.at("id").get<int64_t>();
    m.target.kind = u.at("kind").get<std::string>();
    m.target.host = u.at("host").get<std::string>();
    m.target.path = u.at("path").get<std::string>();
    m.target.tape = u.at("tape").get<std::string>();
    m.target.file_number = u.at("file_number").get<int64_t>();
    m.target.start_block = u.at("start_block").get<int64_t>();
    m.target.block_size = u.at("block_size").get<uint32_t>();
    m.target.tar_bytes = u.at("tar_bytes").get<uint64_t>();
    for (const auto& f : j.at("files")) {
      TargetFile tf;
      tf.rel_path = f.at("path").get<std::string>();
      tf.size = f.at("size").get<uint64_t>();
      tf.mtime_ns = f.at("mtime_ns").get<int64_t>();
      tf.mode = f.at("mode").get<uint32_t>();
      tf.md5 = f.at("md5").get<std::string>();
      tf.data_offset = f.at("offset").get<int64_t>();
      tf.link_target = f.value("link", "");  // symlink members (manifests since schema 10)
      m.target.bytes += tf.size;
      m.files.push_back(std::move(tf));
    }
    m.target.files = static_cast<int64_t>(m.files.size());
    m.target.state = TargetState::kArchived;
  } catch (const nlohmann::json::exception& e) {
    return FailedPreconditionError(std::string("bad manifest: ") + e.what());
  }
  return m;
}

// Reads the records of the current tape file up to its file mark.
Result<std::string> ReadTapeFile(TapeDrive& drive, size_t max_record) {
  std::string out;
  std::vector<std::byte> buf(max_record);
  for (;;) {
    HSMFS_ASSIGN_OR_RETURN(size_t n, drive.ReadRecord(buf));
    if (n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

// Writes the symlink member `f` (header only: a tar symlink has no data) and
// records its offset and the md5 of nothing, so that ReadMember and
// ConfirmUnit treat it as an empty member.
Status WriteSymlinkMember(struct archive* a, archive_entry* e, const TargetFile& f,
                          const RecordWriter& out, WrittenUnit* result) {
  archive_entry_set_filetype(e, AE_IFLNK);
  archive_entry_set_perm(e, 0777);
  archive_entry_set_size(e, 0);
  archive_entry_set_symlink_utf8(e, f.link_target.c_str());
  archive_entry_set_mtime(e, f.mtime_ns / 1'000'000'000, f.mtime_ns % 1'000'000'000);
  if (archive_write_header(a, e) != ARCHIVE_OK) {
    return ArchiveError(a, out, "writing the symlink " + f.rel_path);
  }
  result->offsets.push_back(static_cast<int64_t>(out.total()));
  result->md5.push_back(HexOf(Hasher::Create(ChecksumAlgo::kMd5)->Finish()));
  return Status::Ok();
}

}  // namespace

Status WriteLabel(TapeDrive& drive, const TapeLabel& label) {
  if (label.name.empty() || label.name.find('\n') != std::string::npos) {
    return InvalidArgumentError("bad tape name '" + label.name + "'");
  }
  HSMFS_RETURN_IF_ERROR(drive.Rewind());
  std::ostringstream text;
  text << kLabelMagic << "\nname=" << label.name << "\nserial=" << label.serial
       << "\nblock_size=" << label.block_size << "\n";
  HSMFS_RETURN_IF_ERROR(drive.WriteRecord(AsBytes(text.str())));
  return drive.WriteFileMarks(1);
}

Result<TapeLabel> ReadLabel(TapeDrive& drive) {
  HSMFS_RETURN_IF_ERROR(drive.Rewind());
  std::vector<std::byte> buf(64 * 1024);
  auto n = drive.ReadRecord(buf);
  if (!n.ok() && n.status().code() != Code::kInvalidArgument) return n.status();
  const std::string text(reinterpret_cast<const char*>(buf.data()), n.ok() ? *n : 0);
  if (!n.ok() || text.rfind(std::string(kLabelMagic) + "\n", 0) != 0) {
    return FailedPreconditionError("the tape has no hsmfs label");
  }
  TapeLabel label;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "name") label.name = value;
    if (key == "serial") label.serial = value;
    if (key == "block_size") {
      // A damaged label must not throw: an unreadable number leaves it incomplete.
      uint32_t bs = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), bs);
      label.block_size = ec == std::errc() && end == value.data() + value.size() ? bs : 0;
    }
  }
  if (label.name.empty() || label.block_size == 0) {
    return FailedPreconditionError("the tape label is incomplete");
  }
  return label;
}

Result<WrittenUnit> WriteUnit(TapeDrive& drive, const Target& target,
                              const std::vector<TargetFile>& files,
                              const std::function<Result<ChunkReader>(size_t index)>& open,
                              const CancelToken& cancel, const ByteProgress& progress) {
  if (target.block_size == 0 || target.start_block < 0 || target.file_number < 1) {
    return InvalidArgumentError("unit " + std::to_string(target.id) + " has no tape position");
  }
  HSMFS_RETURN_IF_ERROR(drive.Locate(target.start_block));
  RecordWriter out(drive, target.block_size);
  std::unique_ptr<struct archive, ArchiveDeleter> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  // No libarchive blocking: RecordWriter cuts records, and bytes reach it as
  // soon as they are written, so the count after a header is the data offset.
  archive_write_set_bytes_per_block(a.get(), 0);
  if (archive_write_open2(a.get(), &out, nullptr, WriteCallback, nullptr, nullptr) != ARCHIVE_OK) {
    return ArchiveError(a.get(), out, "opening the tar stream");
  }
  WrittenUnit result;
  std::vector<std::byte> chunk(1 << 20);
  for (size_t i = 0; i < files.size(); ++i) {
    const TargetFile& f = files[i];
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                    archive_entry_free);
    archive_entry_set_pathname_utf8(e.get(), f.rel_path.c_str());
    if (!f.link_target.empty()) {
      HSMFS_RETURN_IF_ERROR(WriteSymlinkMember(a.get(), e.get(), f, out, &result));
      continue;
    }
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(f.size));
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), f.mode & 07777);
    archive_entry_set_mtime(e.get(), f.mtime_ns / 1'000'000'000, f.mtime_ns % 1'000'000'000);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return ArchiveError(a.get(), out, "writing the header of " + f.rel_path);
    }
    result.offsets.push_back(static_cast<int64_t>(out.total()));
    HSMFS_ASSIGN_OR_RETURN(ChunkReader read, open(i));
    auto md5 = Hasher::Create(ChecksumAlgo::kMd5);
    uint64_t done = 0;
    for (;;) {
      if (cancel.cancelled()) return CancelledError("archiving cancelled");
      HSMFS_ASSIGN_OR_RETURN(size_t n, read(chunk));
      if (n == 0) break;
      if (done + n > f.size) break;  // grew since import: caught below
      md5->Update(chunk.data(), n);
      if (archive_write_data(a.get(), chunk.data(), n) != static_cast<la_ssize_t>(n)) {
        return ArchiveError(a.get(), out, "writing " + f.rel_path);
      }
      done += n;
      if (progress) progress(out.total());
    }
    if (done != f.size) {
      return DataLossError(f.rel_path + " changed since import: it is no longer " +
                           std::to_string(f.size) + " bytes");
    }
    std::string hex = HexOf(md5->Finish());
    if (!f.md5.empty() && hex != f.md5) {
      return DataLossError(f.rel_path + " changed since import: md5 " + hex + ", imported as " +
                           f.md5);
    }
    result.md5.push_back(std::move(hex));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return ArchiveError(a.get(), out, "closing the tar stream");
  }
  if (!out.FlushRecord()) return out.status();
  HSMFS_RETURN_IF_ERROR(drive.WriteFileMarks(1));
  result.tar_bytes = out.total();

  const std::string manifest = ManifestJson(target, files, result).dump() + "\n";
  for (size_t pos = 0; pos < manifest.size(); pos += target.block_size) {
    HSMFS_RETURN_IF_ERROR(
        drive.WriteRecord(AsBytes(std::string_view(manifest).substr(pos, target.block_size))));
  }
  HSMFS_RETURN_IF_ERROR(drive.WriteFileMarks(1));
  HSMFS_ASSIGN_OR_RETURN(TapePosition end, drive.Tell());
  result.next_file = end.file_number;
  result.next_block = end.logical_block;
  return result;
}

Status ReadMember(TapeDrive& drive, const Target& target, const TargetFile& file,
                  const std::function<Status(std::span<const std::byte>)>& sink,
                  const CancelToken& cancel) {
  if (file.data_offset < 0 || target.start_block < 0 || target.block_size == 0) {
    return FailedPreconditionError(file.rel_path + " is not on tape yet");
  }
  const uint64_t bs = target.block_size;
  auto md5 = Hasher::Create(ChecksumAlgo::kMd5);
  uint64_t left = file.size;
  if (left > 0) {
    HSMFS_RETURN_IF_ERROR(
        drive.Locate(target.start_block + static_cast<int64_t>(file.data_offset / bs)));
    size_t skip = file.data_offset % bs;
    std::vector<std::byte> buf(bs);
    while (left > 0) {
      if (cancel.cancelled()) return CancelledError("recall cancelled");
      HSMFS_ASSIGN_OR_RETURN(size_t n, drive.ReadRecord(buf));
      if (n <= skip) return DataLossError(file.rel_path + ": the tar stream ends early");
      const size_t take = std::min<uint64_t>(n - skip, left);
      const std::span<const std::byte> part(buf.data() + skip, take);
      md5->Update(part.data(), part.size());
      HSMFS_RETURN_IF_ERROR(sink(part));
      left -= take;
      skip = 0;
    }
  }
  const std::string hex = HexOf(md5->Finish());
  if (!file.md5.empty() && hex != file.md5) {
    return DataLossError(file.rel_path + " read back with md5 " + hex + ", expected " + file.md5);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ConfirmUnit(TapeDrive& drive, const Target& target,
                                             const std::vector<TargetFile>& files,
                                             const CancelToken& cancel,
                                             const ByteProgress& progress) {
  if (target.start_block < 0 || target.block_size == 0) {
    return FailedPreconditionError("unit " + std::to_string(target.id) + " is not on tape");
  }
  // Members in stream order, each with its hasher; records are read once, in
  // order, and each byte goes to the member it belongs to.
  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return files[a].data_offset < files[b].data_offset; });
  std::vector<std::unique_ptr<Hasher>> hash(files.size());
  std::vector<bool> bad(files.size(), false);
  std::vector<uint64_t> seen(files.size(), 0);
  for (size_t i = 0; i < files.size(); ++i) hash[i] = Hasher::Create(ChecksumAlgo::kMd5);

  const uint64_t bs = target.block_size;
  const uint64_t end = target.tar_bytes;
  HSMFS_RETURN_IF_ERROR(drive.Locate(target.start_block));
  std::vector<std::byte> buf(bs);
  size_t first = 0;  // first member (in `order`) that may still overlap
  for (uint64_t pos = 0; pos < end; pos += bs) {
    if (cancel.cancelled()) return CancelledError("confirm cancelled");
    auto n = drive.ReadRecord(buf);
    const uint64_t rec_end = std::min(pos + bs, end);
    const bool unreadable = !n.ok() && n.status().code() == Code::kDataLoss;
    const bool cut_short = (n.ok() && *n == 0) || (!n.ok() && n.status().code() == Code::kNotFound);
    if (!n.ok() && !unreadable && !cut_short) return n.status();
    if (unreadable || cut_short) {
      // An unreadable record damages every member with data in it (a stream
      // cut short, every member from here on).
      for (size_t k = first; k < order.size(); ++k) {
        const TargetFile& f = files[order[k]];
        const uint64_t b = static_cast<uint64_t>(f.data_offset), e = b + f.size;
        if (unreadable && b >= rec_end) break;
        if (e > pos && f.size > 0) bad[order[k]] = true;
      }
      if (cut_short) break;
      HSMFS_RETURN_IF_ERROR(drive.Locate(target.start_block + static_cast<int64_t>(pos / bs) + 1));
      continue;
    }
    for (size_t k = first; k < order.size(); ++k) {
      const size_t i = order[k];
      const TargetFile& f = files[i];
      const uint64_t b = static_cast<uint64_t>(f.data_offset), e = b + f.size;
      if (b >= pos + *n) break;
      if (e <= pos) {
        if (k == first) ++first;
        continue;
      }
      const uint64_t from = std::max(b, pos), to = std::min(e, pos + *n);
      hash[i]->Update(buf.data() + (from - pos), to - from);
      seen[i] += to - from;
    }
    if (progress) progress(rec_end);
  }
  std::vector<std::string> damaged;
  for (size_t i = 0; i < files.size(); ++i) {
    if (bad[i] || seen[i] != files[i].size || HexOf(hash[i]->Finish()) != files[i].md5) {
      damaged.push_back(files[i].rel_path);
    }
  }
  return damaged;
}

Result<std::vector<Manifest>> ReadManifests(TapeDrive& drive) {
  HSMFS_ASSIGN_OR_RETURN(TapeLabel label, ReadLabel(drive));
  // ReadLabel leaves the head after the label record: past file 0's mark.
  HSMFS_RETURN_IF_ERROR(drive.Locate(0));
  HSMFS_RETURN_IF_ERROR(drive.Space(SpaceOp::kFileMarksForward, 1));
  std::vector<Manifest> out;
  for (;;) {
    // Skip the unit's tar stream, then read its manifest.
    Status s = drive.Space(SpaceOp::kFileMarksForward, 1);
    if (s.code() == Code::kNotFound) return out;  // end of data
    HSMFS_RETURN_IF_ERROR(s);
    auto text = ReadTapeFile(drive, label.block_size);
    if (!text.ok()) {
      // A unit cut short by a crash has no manifest: it never counted.
      if (text.status().code() == Code::kNotFound) return out;
      return text.status();
    }
    auto m = ParseManifest(*text);
    if (!m.ok()) return out;  // the tail of an interrupted unit
    out.push_back(std::move(m).value());
  }
}

}  // namespace hsmfs::tape
