#include "tools/hsmscan/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace hsmfs::hsmscan {
namespace {

constexpr size_t kBufSize = 1 << 20;

bool ParseInt(const std::string& s, int64_t& v) {
  // Python's int() accepts surrounding spaces and a sign.
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  if (b < e && s[b] == '+') ++b;
  auto [p, ec] = std::from_chars(s.data() + b, s.data() + e, v);
  return ec == std::errc() && p == s.data() + e && b < e;
}

}  // namespace

void AppendCsvRow(std::string& out, std::string_view name, int64_t size, int64_t mtime) {
  if (name.find_first_of(",\"\r\n") != std::string_view::npos) {
    out += '"';
    for (char c : name) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  } else {
    out.append(name);
  }
  char num[48];
  auto r = std::to_chars(num, num + sizeof num, size);
  out += ',';
  out.append(num, r.ptr);
  r = std::to_chars(num, num + sizeof num, mtime);
  out += ',';
  out.append(num, r.ptr);
  out += "\r\n";
}

Result<std::unique_ptr<CsvWriter>> CsvWriter::Create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "creating " + path);
  std::unique_ptr<CsvWriter> w(new CsvWriter(fd, path));
  w->buf_.reserve(kBufSize + 4096);
  w->buf_ = "Name,Size,Mtime\r\n";
  w->offset_ = w->buf_.size();
  return w;
}

CsvWriter::~CsvWriter() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t CsvWriter::Write(std::string_view name, int64_t size, int64_t mtime) {
  const uint64_t at = offset_;
  const size_t before = buf_.size();
  AppendCsvRow(buf_, name, size, mtime);
  offset_ += buf_.size() - before;
  if (buf_.size() >= kBufSize) Flush().IgnoreError();  // kept in error_, reported by Close
  return at;
}

Status CsvWriter::Flush() {
  size_t done = 0;
  while (done < buf_.size() && error_.ok()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = ErrnoToStatus(errno, "writing " + path_);
      break;
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
  return error_;
}

Status CsvWriter::Close() {
  Status s = Flush();
  if (::close(fd_) != 0 && s.ok()) s = ErrnoToStatus(errno, "closing " + path_);
  fd_ = -1;
  return s;
}

Result<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + path);
  std::unique_ptr<CsvReader> r(new CsvReader(fd, path));
  r->buf_.resize(kBufSize);
  if (!r->ReadRecord()) return InvalidArgumentError(path + ": empty file, no CSV header");
  for (size_t i = 0; i < r->fields_.size(); ++i) {
    const std::string& f = r->fields_[i];
    if (f == "Name") r->name_col_ = static_cast<int>(i);
    if (f == "Size") r->size_col_ = static_cast<int>(i);
    if (f == "Mtime") r->mtime_col_ = static_cast<int>(i);
  }
  if (r->name_col_ < 0 || r->size_col_ < 0) {
    return InvalidArgumentError(path + ": the CSV header has no Name and Size columns");
  }
  return r;
}

CsvReader::~CsvReader() { ::close(fd_); }

int CsvReader::Get() {
  if (pos_ == len_) {
    if (eof_) return -1;
    file_pos_ += len_;
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data(), buf_.size());
    } while (n < 0 && errno == EINTR);
    pos_ = 0;
    len_ = n > 0 ? static_cast<size_t>(n) : 0;
    if (len_ == 0) {
      eof_ = true;
      return -1;
    }
  }
  return static_cast<unsigned char>(buf_[pos_++]);
}

bool CsvReader::ReadRecord() {
  fields_.clear();
  int c;
  // Python's csv skips blank lines.
  do {
    record_offset_ = file_pos_ + pos_;
    c = Get();
    if (c == '\r') {
      c = Get();
      if (c != '\n' && c >= 0) --pos_;
      c = '\n';
    }
  } while (c == '\n');
  if (c < 0) return false;
  ++line_;
  std::string field;
  bool quoted = false, in_quotes = false;
  while (true) {
    if (in_quotes) {
      if (c < 0) break;
      if (c == '"') {
        const int d = Get();
        if (d == '"') {
          field += '"';
        } else {
          in_quotes = false;
          c = d;
          continue;
        }
      } else {
        field += static_cast<char>(c);
      }
      c = Get();
      continue;
    }
    if (c < 0 || c == '\n' || c == '\r') {
      if (c == '\r') {
        const int d = Get();
        if (d != '\n' && d >= 0) --pos_;
      }
      fields_.push_back(std::move(field));
      return true;
    }
    if (c == ',') {
      fields_.push_back(std::move(field));
      field.clear();
      quoted = false;
    } else if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else {
      field += static_cast<char>(c);
    }
    c = Get();
  }
  fields_.push_back(std::move(field));
  return true;
}

Result<bool> CsvReader::Next(Row& row) {
  if (!ReadRecord()) return false;
  const auto need = static_cast<size_t>(std::max({name_col_, size_col_, mtime_col_}));
  if (fields_.size() <= need) {
    return InvalidArgumentError(path_ + ": row " + std::to_string(line_) + " has " +
                                std::to_string(fields_.size()) + " fields");
  }
  row.name = std::move(fields_[name_col_]);
  row.offset = record_offset_;
  if (!ParseInt(fields_[size_col_], row.size)) {
    return InvalidArgumentError(path_ + ": row " + std::to_string(line_) + ": bad Size '" +
                                fields_[size_col_] + "'");
  }
  row.mtime = -1;
  if (mtime_col_ >= 0 && !ParseInt(fields_[mtime_col_], row.mtime)) {
    return InvalidArgumentError(path_ + ": row " + std::to_string(line_) + ": bad Mtime '" +
                                fields_[mtime_col_] + "'");
  }
  return true;
}

Result<std::unique_ptr<CsvNameReader>> CsvNameReader::Open(const std::string& path) {
  HSMFS_ASSIGN_OR_RETURN(auto header, CsvReader::Open(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "opening " + path);
  std::unique_ptr<CsvNameReader> r(new CsvNameReader(fd, path));
  r->buf_.resize(1 << 16);
  (void)header;
  return r;
}

CsvNameReader::~CsvNameReader() { ::close(fd_); }

bool CsvNameReader::Fill(uint64_t offset) {
  ssize_t n;
  do {
    n = ::pread(fd_, buf_.data(), buf_.size(), static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  buf_start_ = offset;
  buf_len_ = n > 0 ? static_cast<size_t>(n) : 0;
  return buf_len_ > 0;
}

Result<std::string> CsvNameReader::NameAt(uint64_t offset) {
  // Member rows are mostly consecutive, so one buffered window serves many.
  if (offset < buf_start_ || offset >= buf_start_ + buf_len_) {
    if (!Fill(offset))
      return DataLossError(path_ + ": truncated at offset " + std::to_string(offset));
  }
  {
    // Fast path: an unquoted name ending inside the window.
    const char* p = buf_.data() + (offset - buf_start_);
    const size_t left = buf_start_ + buf_len_ - offset;
    if (*p != '"') {
      const void* comma = std::memchr(p, ',', left);
      if (comma != nullptr) {
        const char* end = static_cast<const char*>(comma);
        const void* cr = std::memchr(p, '\r', static_cast<size_t>(end - p));
        const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
        if (cr == nullptr && nl == nullptr) return std::string(p, end);
      }
    }
  }
  std::string name;
  uint64_t at = offset;
  bool in_quotes = false, started = false;
  while (true) {
    if (at < buf_start_ || at >= buf_start_ + buf_len_) {
      if (!Fill(at)) return DataLossError(path_ + ": truncated at offset " + std::to_string(at));
    }
    const char c = buf_[at - buf_start_];
    ++at;
    if (!started) {
      started = true;
      if (c == '"') {
        in_quotes = true;
        continue;
      }
    }
    if (in_quotes) {
      if (c == '"') {
        if (at >= buf_start_ + buf_len_ && !Fill(at)) return name;
        if (buf_[at - buf_start_] == '"') {
          name += '"';
          ++at;
          continue;
        }
        in_quotes = false;
        continue;
      }
      name += c;
      continue;
    }
    if (c == ',' || c == '\r' || c == '\n') return name;
    name += c;
  }
}

}  // namespace hsmfs::hsmscan
