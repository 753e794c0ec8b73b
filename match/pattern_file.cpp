#include "match/pattern_file.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>

#include "match/py_text.h"

namespace hgvfs::match {
namespace {

// Where readpatternfile's _commentre, ((?:^|[^\\])(?:\\\\)*)#.*, cuts a
// line: the first '#' preceded by an even number of backslashes.
size_t commentStart(ByteView line) {
  for (size_t p = line.find('#'); p != ByteView::npos; p = line.find('#', p + 1)) {
    size_t k = 0;
    while (k < p && line[p - 1 - k] == '\\') ++k;
    if (k % 2 == 0) return p;
  }
  return ByteView::npos;
}

}  // namespace

std::vector<PatternLine> parsePatternFile(ByteView data, const std::string& filepath,
                                          std::vector<std::string>* warnings) {
  // In the order of hg's dict: a line is tested against each in turn.
  static const std::pair<const char*, const char*> kSyntaxes[] = {
      {"re", "relre:"},          {"regexp", "relre:"},   {"glob", "relglob:"},
      {"rootglob", "rootglob:"}, {"include", "include"}, {"subinclude", "subinclude"},
  };
  std::string syntax = "relre:";
  std::vector<PatternLine> out;
  int lineno = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == ByteView::npos ? data.size() : nl + 1;
    ByteView raw = data.substr(pos, end - pos);
    pos = end;
    ++lineno;
    std::string line(raw);
    if (raw.find('#') != ByteView::npos) {
      size_t c = commentStart(raw);
      if (c != ByteView::npos) line.resize(c);
      line = replaceAll(line, "\\#", "#");
    }
    line = std::string(rstrip(line));
    if (line.empty()) continue;
    if (startsWith(line, "syntax:")) {
      std::string s(strip(ByteView(line).substr(7)));
      auto it = std::find_if(std::begin(kSyntaxes), std::end(kSyntaxes),
                             [&](const auto& e) { return s == e.first; });
      if (it != std::end(kSyntaxes)) {
        syntax = it->second;
      } else if (warnings) {
        warnings->push_back(filepath + ": ignoring invalid syntax '" + s + "'");
      }
      continue;
    }
    std::string linesyntax = syntax;
    for (const auto& [s, rels] : kSyntaxes) {
      if (startsWith(line, rels)) {
        linesyntax = rels;
        line.erase(0, std::strlen(rels));
        break;
      }
      if (startsWith(line, std::string(s) + ":")) {
        linesyntax = rels;
        line.erase(0, std::strlen(s) + 1);
        break;
      }
    }
    out.push_back({linesyntax + line, lineno});
  }
  return out;
}

}  // namespace hgvfs::match
