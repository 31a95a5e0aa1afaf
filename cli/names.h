#pragma once

// Printing file names that may hold any bytes but '/' and NUL (Latin-1 names
// from old archives, names with newlines or escape sequences).
//
// Terminal and table output: EscapeName, in the manner of `ls -b`, so that one
// name stays on one line and cannot drive the terminal.
// JSON output: DumpJson, which keeps every name reversible: JSON text must be
// UTF-8, so each byte that is not part of valid UTF-8 is written as the lone
// surrogate \udcXX (XX the byte), the "surrogateescape" scheme of Python's
// os.fsdecode: `os.fsencode(value)` gives the original bytes back. Valid UTF-8
// is written as is. docs/HSMCTL.md documents the scheme.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace hsmfs::cli {

// Backslash escapes for control characters (\n, \t, \r, \a, \b, \f, \v, \e
// and \ooo for the others), a backslash itself (\\), and \ooo for each byte
// that is not part of valid UTF-8. Printable text, UTF-8 included, is kept.
std::string EscapeName(std::string_view name);

// json.dump(indent) with every string value (and key) made valid JSON text by
// the surrogate-escape scheme above. Never throws for bad UTF-8.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

}  // namespace hsmfs::cli
