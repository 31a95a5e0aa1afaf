#include "backends/hpss/hsi_output_parser.h"

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <sstream>

namespace hsmfs::backends::hpss {
namespace {

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

// Splits off the next whitespace-separated token; leaves `rest` after it and
// the whitespace that follows.
std::string_view Token(std::string_view& rest) {
  size_t i = 0;
  while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
  size_t j = i;
  while (j < rest.size() && rest[j] != ' ' && rest[j] != '\t') ++j;
  std::string_view tok = rest.substr(i, j - i);
  rest.remove_prefix(j);
  return tok;
}

std::string_view SkipSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

int MonthIndex(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i;
  }
  return -1;
}

// Local civil time to Unix nanoseconds (hsi and htar print local time).
int64_t LocalToNanos(int year, int mon, int day, int h, int m, int s) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  tm.tm_isdst = -1;
  // mktime reads and may reload the time zone state that glibc guards with a
  // lock ThreadSanitizer cannot see; one lock of our own keeps it quiet and
  // costs nothing next to the subprocess that produced the line.
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  const time_t t = std::mktime(&tm);
  return static_cast<int64_t>(t) * 1'000'000'000;
}

// "rwxr-x---" (with s/S/t/T) to permission bits.
bool ParseMode(std::string_view perms, uint32_t* mode) {
  if (perms.size() < 9) return false;
  uint32_t m = 0;
  static constexpr uint32_t kBits[9] = {0400, 0200, 0100, 040, 020, 010, 04, 02, 01};
  for (int i = 0; i < 9; ++i) {
    const char c = perms[static_cast<size_t>(i)];
    // s/t: the special bit with x; S/T: the special bit without x.
    if (c == 'r' || c == 'w' || c == 'x' || c == 's' || c == 't') {
      m |= kBits[i];
    } else if (c != '-' && c != 'S' && c != 'T') {
      return false;
    }
    if ((c == 's' || c == 'S') && i == 2) m |= 04000;
    if ((c == 's' || c == 'S') && i == 5) m |= 02000;
    if ((c == 't' || c == 'T') && i == 8) m |= 01000;
  }
  *mode = m;
  return true;
}

bool ParseHms(std::string_view t, int* h, int* m, int* s) {
  int parts[3] = {0, 0, 0};
  int n = 0;
  uint64_t v;
  while (n < 3) {
    const size_t colon = t.find(':');
    if (!ParseU64(t.substr(0, colon), &v)) return false;
    parts[n++] = static_cast<int>(v);
    if (colon == std::string_view::npos) break;
    t.remove_prefix(colon + 1);
  }
  if (n < 2) return false;
  *h = parts[0];
  *m = parts[1];
  *s = parts[2];
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace

Result<std::vector<LsEntry>> ParseLsD(std::string_view text) {
  std::vector<LsEntry> out;
  std::string dir;
  for (std::string_view line : Lines(text)) {
    if (SkipSpaces(line).empty()) continue;
    const char t = line.front();
    if ((t == '-' || t == 'd' || t == 'l') && line.size() > 10) {
      std::string_view rest = line;
      const std::string_view type_mode = Token(rest);
      const std::string_view links = Token(rest);
      Token(rest);  // user
      Token(rest);  // group
      const std::string_view size_s = Token(rest);
      Token(rest);  // weekday
      const std::string_view mon_s = Token(rest);
      const std::string_view day_s = Token(rest);
      const std::string_view time_s = Token(rest);
      const std::string_view year_s = Token(rest);
      // One separator after the year; the name may itself contain spaces.
      if (!rest.empty()) rest.remove_prefix(1);
      LsEntry e;
      uint64_t nlinks, day, year;
      int h, m, s;
      const int mon = MonthIndex(mon_s);
      if (!ParseMode(type_mode.substr(1), &e.mode) || !ParseU64(links, &nlinks) ||
          !ParseU64(size_s, &e.size) || mon < 0 || !ParseU64(day_s, &day) ||
          !ParseHms(time_s, &h, &m, &s) || !ParseU64(year_s, &year) || rest.empty()) {
        return InvalidArgumentError("unrecognised hsi ls -D line: \"" + std::string(line) + "\"");
      }
      e.type = t == 'd' ? ObjectType::kDir : ObjectType::kFile;
      e.is_link = t == 'l';
      std::string_view name = rest;
      if (e.is_link) {
        const size_t arrow = name.find(" -> ");
        if (arrow != std::string_view::npos) {
          e.link_target = std::string(name.substr(arrow + 4));
          name = name.substr(0, arrow);
        }
      }
      e.name = std::string(name);
      e.dir = dir;
      e.mtime_ns = LocalToNanos(static_cast<int>(year), mon, static_cast<int>(day), h, m, s);
      out.push_back(std::move(e));
      continue;
    }
    if (line.back() == ':' && (t == '/' || t != ' ')) {
      dir = std::string(line.substr(0, line.size() - 1));
      continue;
    }
    return InvalidArgumentError("unrecognised hsi ls -D line: \"" + std::string(line) + "\"");
  }
  return out;
}

Result<std::vector<TapeEntry>> ParseLsP(std::string_view text) {
  std::vector<TapeEntry> out;
  for (std::string_view line : Lines(text)) {
    if (SkipSpaces(line).empty()) continue;
    // Fields are tab separated so that paths may hold spaces.
    std::vector<std::string_view> f;
    std::string_view rest = line;
    while (true) {
      const size_t tab = rest.find('\t');
      f.push_back(rest.substr(0, tab));
      if (tab == std::string_view::npos) break;
      rest.remove_prefix(tab + 1);
    }
    if (f.size() < 2) {
      return InvalidArgumentError("unrecognised hsi ls -P line: \"" + std::string(line) + "\"");
    }
    TapeEntry e;
    e.path = std::string(f[1]);
    if (f[0] == "DIRECTORY") {
      e.type = ObjectType::kDir;
      out.push_back(std::move(e));
      continue;
    }
    if (f[0] != "FILE" || f.size() < 6 || !ParseU64(f[2], &e.size)) {
      return InvalidArgumentError("unrecognised hsi ls -P line: \"" + std::string(line) + "\"");
    }
    const std::string_view pos = f[4];
    const size_t plus = pos.find('+');
    uint64_t section = 0, offset = 0;
    if (!ParseU64(pos.substr(0, plus), &section) ||
        (plus != std::string_view::npos && !ParseU64(pos.substr(plus + 1), &offset))) {
      return InvalidArgumentError("bad tape position in hsi ls -P line: \"" + std::string(line) +
                                  "\"");
    }
    e.section = static_cast<int64_t>(section);
    e.offset = static_cast<int64_t>(offset);
    e.volume = std::string(f[5]);
    if (e.volume == "-") e.volume.clear();
    out.push_back(std::move(e));
  }
  return out;
}

Status HsiCommandStatus(const std::vector<std::string>& lines, std::string_view what) {
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.rfind("***", 0) != 0) continue;
    std::string msg = std::string(what) + ": " + line;
    if (i + 1 < lines.size() && lines[i + 1].rfind("    ", 0) == 0) {
      msg += " (" + std::string(SkipSpaces(lines[i + 1])) + ")";
    }
    const std::string l = Lower(line);
    if (Contains(l, "hpss_enoent") || Contains(l, "no such file")) return NotFoundError(msg);
    if (Contains(l, "hpss_eexist") || Contains(l, "file exists")) return AlreadyExistsError(msg);
    if (Contains(l, "hpss_eacces") || Contains(l, "hpss_eperm") ||
        Contains(l, "permission denied") || Contains(l, "not permitted")) {
      return PermissionDeniedError(msg);
    }
    if (Contains(l, "hpss_enotempty") || Contains(l, "not empty")) {
      return Status(Code::kNotEmpty, msg);
    }
    if (Contains(l, "hpss_enotdir") || Contains(l, "not a directory")) {
      return Status(Code::kNotDirectory, msg);
    }
    if (Contains(l, "hpss_eisdir") || Contains(l, "is a directory")) {
      return Status(Code::kIsDirectory, msg);
    }
    if (Contains(l, "hash mismatch") || Contains(l, "checksum mismatch")) {
      return DataLossError(msg);
    }
    if (Contains(l, "unknown command")) return InternalError(msg);
    // HPSS_EIO, connection and mover errors, anything unknown: a tape system's
    // errors are mostly transient (a drive, a mover, a mount), so retry.
    return UnavailableError(msg);
  }
  return Status::Ok();
}

bool HsiSessionBroken(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    if (line.rfind("***", 0) != 0) continue;
    const std::string l = Lower(line);
    if (Contains(l, "econn") || Contains(l, "connection") || Contains(l, "authenticat") ||
        Contains(l, "not logged in") || Contains(l, "timed out") || Contains(l, "timeout")) {
      return true;
    }
  }
  return false;
}

// What every htar run prints: "HTAR: ..." lines, "ERROR: ..." lines and, only
// when it worked, "HTAR: HTAR SUCCESSFUL". Passes each other HTAR line (without
// its prefix) and the whole line to `body`; `first_error` gets the first ERROR.
struct HtarRun {
  bool ok = false;
  std::string first_error;
};
Result<HtarRun> ScanHtarOutput(
    std::string_view text,
    const std::function<Status(std::string_view rest, std::string_view line)>& body) {
  HtarRun run;
  for (std::string_view line : Lines(text)) {
    if (line.rfind("ERROR:", 0) == 0 && run.first_error.empty()) {
      run.first_error = std::string(line);
    }
    if (line.rfind("HTAR: ", 0) != 0) continue;
    const std::string_view rest = line.substr(6);
    if (rest == "HTAR SUCCESSFUL") {
      run.ok = true;
      continue;
    }
    HSMFS_RETURN_IF_ERROR(body(rest, line));
  }
  return run;
}

Result<std::vector<HtarMember>> ParseHtarList(std::string_view text) {
  std::vector<HtarMember> out;
  HSMFS_ASSIGN_OR_RETURN(
      HtarRun run,
      ScanHtarOutput(text, [&](std::string_view rest, std::string_view line) -> Status {
        if (rest.size() < 10 || (rest[0] != '-' && rest[0] != 'd' && rest[0] != 'l'))
          return Status::Ok();
        HtarMember m;
        const std::string_view type_mode = Token(rest);
        if (!ParseMode(type_mode.substr(1), &m.mode)) return Status::Ok();  // a summary line
        Token(rest);                                                        // user/group
        const std::string_view size_s = Token(rest);
        const std::string_view date_s = Token(rest);
        const std::string_view time_s = Token(rest);
        std::string_view name = SkipSpaces(rest);
        uint64_t y, mo, d;
        int h, mi, s;
        if (!ParseU64(size_s, &m.size) || date_s.size() != 10 ||
            !ParseU64(date_s.substr(0, 4), &y) || !ParseU64(date_s.substr(5, 2), &mo) ||
            !ParseU64(date_s.substr(8, 2), &d) || !ParseHms(time_s, &h, &mi, &s) || name.empty()) {
          return InvalidArgumentError("unrecognised htar -t line: \"" + std::string(line) + "\"");
        }
        if (type_mode[0] == 'l') {
          const size_t arrow = name.find(" -> ");
          if (arrow != std::string_view::npos) {
            m.link_target = std::string(name.substr(arrow + 4));
            name = name.substr(0, arrow);
          }
        }
        // htar's own consistency file, stored under its absolute /tmp path.
        if (name.front() == '/') return Status::Ok();
        m.type = type_mode[0] == 'd' ? ObjectType::kDir : ObjectType::kFile;
        while (name.size() > 1 && name.back() == '/') name.remove_suffix(1);
        while (name.rfind("./", 0) == 0) name.remove_prefix(2);
        m.name = std::string(name);
        m.mtime_ns = LocalToNanos(static_cast<int>(y), static_cast<int>(mo) - 1,
                                  static_cast<int>(d), h, mi, s);
        out.push_back(std::move(m));
        return Status::Ok();
      }));
  if (!run.ok) {
    return UnavailableError("htar listing failed" +
                            (run.first_error.empty() ? std::string() : ": " + run.first_error));
  }
  return out;
}

Result<std::vector<HtarExtracted>> ParseHtarExtract(std::string_view text) {
  std::vector<HtarExtracted> out;
  HSMFS_ASSIGN_OR_RETURN(
      HtarRun run,
      ScanHtarOutput(text, [&](std::string_view rest, std::string_view line) -> Status {
        if (rest.rfind("x ", 0) != 0) return Status::Ok();
        rest.remove_prefix(2);
        // "NAME, N bytes, M media blocks": the name may hold ", " so split from the right.
        const size_t media = rest.rfind(", ");
        if (media == std::string_view::npos) return Status::Ok();
        std::string_view head = rest.substr(0, media);
        const size_t bytes_at = head.rfind(", ");
        if (bytes_at == std::string_view::npos) return Status::Ok();
        std::string_view bytes = head.substr(bytes_at + 2);
        HtarExtracted x;
        x.name = std::string(head.substr(0, bytes_at));
        const size_t sp = bytes.find(' ');
        if (!ParseU64(bytes.substr(0, sp), &x.size)) {
          return InvalidArgumentError("unrecognised htar -x line: \"" + std::string(line) + "\"");
        }
        out.push_back(std::move(x));
        return Status::Ok();
      }));
  if (!run.ok) {
    const std::string why =
        "htar extract failed" + (run.first_error.empty() ? std::string() : ": " + run.first_error);
    if (Contains(run.first_error, "No such file")) return NotFoundError(why);
    return UnavailableError(why);
  }
  return out;
}

}  // namespace hsmfs::backends::hpss
