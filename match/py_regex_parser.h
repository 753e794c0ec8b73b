#pragma once
// Internal to PyRegex (py_regex.h): Python 3.11's `re` parser for bytes
// patterns (Lib/re/_parser.py, the checks of _compiler.py), emitting PCRE2
// text instead of sre opcodes.
//
// The parser follows _parser.py function by function so that it accepts and
// rejects exactly what Python does, with Python's messages and positions. It
// emits PCRE2 text in a form whose meaning cannot drift: every literal byte
// is \x{hh} (or a plain ASCII letter/digit), every class lists its members,
// every quantified item is wrapped in (?:...), group references are
// numbered. Python's scoped flags (?i:) (?m:) (?s:) map to PCRE2's; (?x) is
// applied while parsing; a, L, u only choose character tables, and for bytes
// Python's tables are ASCII, like PCRE2's built-in ones (L assumes a C or
// UTF-8 locale).
//
// Thread rules: plain functions; any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <variant>

#include "base/bytes.h"

namespace hgvfs::match {

// sre flag bits (Lib/re/_constants.py) that survive into the compiled pattern.
constexpr unsigned kPyFlagIgnoreCase = 2, kPyFlagMultiline = 8, kPyFlagDotAll = 16;
// Deeper nesting is refused before Python's own recursion limit would be.
constexpr int kPyMaxNesting = 400;

// What re.compile raised.
struct PyReError {
  std::string msg;
  std::optional<size_t> pos;
  const char* type = nullptr;  // a Python exception other than re.error
};

struct ParsedPattern {
  std::string pcre2;   // to compile with PCRE2_ANCHORED and the options of `flags`
  unsigned flags = 0;  // the global kPyFlag* bits
};

// re.compile(pattern) up to the point of building the matcher.
std::variant<ParsedPattern, PyReError> parsePythonPattern(ByteView pattern);

}  // namespace hgvfs::match
