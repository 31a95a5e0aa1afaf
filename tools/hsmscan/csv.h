#pragma once

// The cache files of `missing_from_hpss`: CSV as Python's csv module writes it
// (header `Name,Size,Mtime`, CRLF line ends, QUOTE_MINIMAL quoting), read back
// with either line end. Streaming in both directions: memory does not grow
// with the number of rows.
//
// Thread-compatible: one thread per object.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace hsmfs::hsmscan {

// Appends one CSV row `name,size,mtime\r\n` to `out`.
void AppendCsvRow(std::string& out, std::string_view name, int64_t size, int64_t mtime);

// A buffered file writer that knows the offset of every row it writes.
class CsvWriter final {
 public:
  // Creates (truncates) `path` and writes the header.
  static Result<std::unique_ptr<CsvWriter>> Create(const std::string& path);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  // Returns the byte offset at which the row starts.
  uint64_t Write(std::string_view name, int64_t size, int64_t mtime);
  // Flushes and closes; the file is complete only after an OK Close().
  Status Close();

 private:
  CsvWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status Flush();

  int fd_;
  std::string path_;
  std::string buf_;
  uint64_t offset_ = 0;
  Status error_;
};

// Reads rows of a cache CSV by header names.
class CsvReader final {
 public:
  // Opens `path` and reads the header; `Name` and `Size` are required,
  // `Mtime` is optional (HPSSPy before 0.5 wrote Name,Size); -1 if absent.
  static Result<std::unique_ptr<CsvReader>> Open(const std::string& path);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  struct Row {
    std::string name;
    int64_t size = 0;
    int64_t mtime = -1;
    uint64_t offset = 0;  // byte offset of the row in the file
  };
  // Reads the next row into `row`: true, false at the end, or an error for a
  // malformed row.
  Result<bool> Next(Row& row);

  bool has_mtime() const { return mtime_col_ >= 0; }

 private:
  explicit CsvReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // Parses one record into fields_; false at end of file.
  bool ReadRecord();
  int Get();

  int fd_;
  std::string path_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  uint64_t file_pos_ = 0;  // offset of buf_[0]
  bool eof_ = false;
  std::vector<std::string> fields_;
  uint64_t record_offset_ = 0;
  uint64_t line_ = 0;
  int name_col_ = -1, size_col_ = -1, mtime_col_ = -1;
};

// Reads the Name field of the row starting at `offset` (random access; used to
// write archive member lists without keeping names in memory).
class CsvNameReader final {
 public:
  static Result<std::unique_ptr<CsvNameReader>> Open(const std::string& path);
  ~CsvNameReader();
  CsvNameReader(const CsvNameReader&) = delete;
  CsvNameReader& operator=(const CsvNameReader&) = delete;
  // The first field of the row at `offset`.
  Result<std::string> NameAt(uint64_t offset);

 private:
  CsvNameReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  bool Fill(uint64_t offset);

  int fd_;
  std::string path_;
  std::vector<char> buf_;
  uint64_t buf_start_ = 0;
  size_t buf_len_ = 0;
  int name_col_ = 0;
};

}  // namespace hsmfs::hsmscan
