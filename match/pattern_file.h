#pragma once
// Pattern files: .hgignore, ui.ignore files and `include:`/`subinclude:`
// targets, read as mercurial/match.py `readpatternfile` reads them.
//
// Thread rules: plain functions; any thread.

#include <string>
#include <vector>

#include "base/bytes.h"

namespace hgvfs::match {

// One pattern line, already prefixed with its kind ("relre:^a", "relglob:*.o",
// "include" + ":path"), as readpatternfile returns it.
struct PatternLine {
  std::string pattern;
  int lineno;  // 1-based
};

// Parses the bytes of a pattern file: comments (a '#' after an even number
// of backslashes), trailing white space, `syntax:` lines, and per-line kind
// prefixes. An unknown `syntax:` becomes a warning in hg's words
// ("FILE: ignoring invalid syntax 'X'") when `warnings` is not null.
std::vector<PatternLine> parsePatternFile(ByteView data, const std::string& filepath,
                                          std::vector<std::string>* warnings);

}  // namespace hgvfs::match
