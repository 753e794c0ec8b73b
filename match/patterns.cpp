#include "match/patterns.h"

#include <cstring>
#include <utility>

#include "base/io.h"
#include "match/pattern_file.h"
#include "match/py_text.h"

namespace hgvfs::match {
namespace {

// hg recurses through include: and listfile: files until Python's stack runs
// out; a deeper nesting is surely a cycle.
constexpr int kMaxNesting = 64;

constexpr std::pair<const char*, Kind> kKinds[] = {
    {"re", Kind::kRe},
    {"glob", Kind::kGlob},
    {"path", Kind::kPath},
    {"relglob", Kind::kRelglob},
    {"relpath", Kind::kRelpath},
    {"relre", Kind::kRelre},
    {"rootglob", Kind::kRootglob},
    {"listfile", Kind::kListfile},
    {"listfile0", Kind::kListfile0},
    {"set", Kind::kSet},
    {"include", Kind::kInclude},
    {"subinclude", Kind::kSubinclude},
    {"rootfilesin", Kind::kRootfilesin},
};

// stringutil.reescape: hg's own re.escape.
constexpr ByteView kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";

void appendEscaped(std::string& out, char c) {
  if (kSpecial.find(c) != ByteView::npos) out += '\\';
  out += c;
}

std::string reEscape(ByteView s) {
  std::string out;
  for (char c : s) appendEscaped(out, c);
  return out;
}

std::string where(const std::string& file, int lineno) {
  return file.empty() ? std::string() : file + ":" + std::to_string(lineno);
}

// A pattern as typed or as read from a file, before _patsplit.
struct Raw {
  std::string text;
  std::string file;
  int lineno = 0;
};

// bytes.splitlines(): \n, \r and \r\n end a line.
std::vector<std::string> splitLines(ByteView data) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\n' && data[i] != '\r') continue;
    out.emplace_back(data.substr(start, i - start));
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < data.size()) out.emplace_back(data.substr(start));
  return out;
}

// hg re-raises an abort from inside an include as "PAT: MESSAGE", which
// drops the hint canonPath may have added on its own line.
Error insideInclude(Error err, const std::string& includePat) {
  if (err.kind != ErrorKind::kInvalidArgument) return err;
  size_t hint = err.what.rfind("\n(consider using '--cwd ");
  if (hint != std::string::npos) err.what.resize(hint);
  err.what = includePat + ": " + err.what;
  return err;
}

Status normalize(const std::vector<Raw>& in, Kind dflt, const PatternContext& ctx, int depth,
                 std::vector<KindPat>& out);

Status expandListfile(const Raw& raw, Kind kind, const std::string& pat, Kind dflt,
                      const PatternContext& ctx, int depth, std::vector<KindPat>& out) {
  auto data = readFile(pat);
  if (!data.ok()) {
    return invalidArgument("unable to read file list (" + pat + ")", where(raw.file, raw.lineno));
  }
  std::vector<Raw> lines;
  int lineno = 0;
  for (auto& line : kind == Kind::kListfile0 ? splitBytes(*data, '\0') : splitLines(*data)) {
    ++lineno;
    if (!line.empty()) lines.push_back({std::move(line), pat, lineno});
  }
  std::vector<KindPat> expanded;
  HG_RETURN_IF_ERROR(normalize(lines, dflt, ctx, depth + 1, expanded));
  for (KindPat& e : expanded) {
    e.source = pat;
    out.push_back(std::move(e));
  }
  return okStatus();
}

Status expandInclude(const std::string& pat, Kind dflt, const PatternContext& ctx, int depth,
                     std::vector<KindPat>& out) {
  std::string fullpath = pyJoin(ctx.root, pat);
  auto data = readFile(fullpath);
  if (!data.ok()) {
    if (ctx.warnings) {
      ctx.warnings->push_back("skipping unreadable pattern file '" + pat +
                              "': " + std::strerror(data.error().err));
    }
    return okStatus();
  }
  std::vector<Raw> lines;
  for (auto& line : parsePatternFile(*data, fullpath, ctx.warnings)) {
    lines.push_back({std::move(line.pattern), fullpath, line.lineno});
  }
  std::vector<KindPat> expanded;
  Status st = normalize(lines, dflt, ctx, depth + 1, expanded);
  if (!st.ok()) return insideInclude(std::move(st).takeError(), pat);
  for (KindPat& e : expanded) {
    if (e.source.empty()) e.source = pat;
    out.push_back(std::move(e));
  }
  return okStatus();
}

Status normalize(const std::vector<Raw>& in, Kind dflt, const PatternContext& ctx, int depth,
                 std::vector<KindPat>& out) {
  if (depth > kMaxNesting) {
    return unsupported("include: or listfile: nesting deeper than " + std::to_string(kMaxNesting) +
                           " files (a cycle? hg recurses until Python's stack runs out)",
                       in.empty() ? std::string() : where(in[0].file, in[0].lineno));
  }
  for (const Raw& raw : in) {
    auto [kind, pat] = patSplit(raw.text, dflt);
    switch (kind) {
      case Kind::kRelpath:
      case Kind::kGlob: {
        auto rel = canonPath(ctx.root, ctx.cwd, pat, ctx.auditor);
        if (!rel.ok()) {
          Error err = std::move(rel).takeError();
          if (err.where.empty()) err.where = where(raw.file, raw.lineno);
          return err;
        }
        pat = std::move(rel).value();
        break;
      }
      case Kind::kRelglob:
      case Kind::kPath:
      case Kind::kRootfilesin:
      case Kind::kRootglob:
        pat = normpath(pat);
        break;
      case Kind::kListfile:
      case Kind::kListfile0:
        HG_RETURN_IF_ERROR(expandListfile(raw, kind, pat, dflt, ctx, depth, out));
        continue;
      case Kind::kInclude:
        HG_RETURN_IF_ERROR(expandInclude(pat, dflt, ctx, depth, out));
        continue;
      case Kind::kRe:
      case Kind::kRelre:
      case Kind::kSet:
      case Kind::kSubinclude:
        break;
    }
    out.push_back({kind, std::move(pat), std::string(), raw.file, raw.lineno});
  }
  return okStatus();
}

}  // namespace

const char* kindName(Kind kind) {
  for (const auto& [name, k] : kKinds) {
    if (k == kind) return name;
  }
  return "?";
}

std::pair<Kind, std::string> patSplit(ByteView pattern, Kind dflt) {
  size_t colon = pattern.find(':');
  if (colon != ByteView::npos) {
    ByteView kind = pattern.substr(0, colon);
    for (const auto& [name, k] : kKinds) {
      if (kind == name) return {k, std::string(pattern.substr(colon + 1))};
    }
  }
  return {dflt, std::string(pattern)};
}

std::string globRe(ByteView pat) {
  size_t i = 0, n = pat.size();
  int group = 0;
  std::string res;
  while (i < n) {
    char c = pat[i++];
    switch (c) {
      case '*':
        if (i < n && pat[i] == '*') {
          ++i;
          if (i < n && pat[i] == '/') {
            ++i;
            res += "(?:.*/)?";
          } else {
            res += ".*";
          }
        } else {
          res += "[^/]*";
        }
        break;
      case '?':
        res += '.';
        break;
      case '[': {
        size_t j = i;
        if (j < n && (pat[j] == '!' || pat[j] == ']')) ++j;
        while (j < n && pat[j] != ']') ++j;
        if (j >= n) {
          res += "\\[";
          break;
        }
        std::string stuff = replaceAll(std::string(pat.substr(i, j - i)), "\\", "\\\\");
        i = j + 1;
        if (startsWith(stuff, "!")) {
          stuff = "^" + stuff.substr(1);
        } else if (startsWith(stuff, "^")) {
          stuff = "\\" + stuff;
        }
        res += "[" + stuff + "]";
        break;
      }
      case '{':
        ++group;
        res += "(?:";
        break;
      case '}':
        if (group) {
          res += ')';
          --group;
        } else {
          appendEscaped(res, c);
        }
        break;
      case ',':
        if (group) {
          res += '|';
        } else {
          appendEscaped(res, c);
        }
        break;
      case '\\':
        appendEscaped(res, i < n ? pat[i++] : c);
        break;
      default:
        appendEscaped(res, c);
        break;
    }
  }
  return res;
}

std::string regexFor(Kind kind, ByteView pat, ByteView globSuffix) {
  if (pat.empty() && (kind == Kind::kGlob || kind == Kind::kRelpath)) return "";
  switch (kind) {
    case Kind::kRe:
      return std::string(pat);
    case Kind::kPath:
    case Kind::kRelpath:
      if (pat == ".") return "";
      return reEscape(pat) + "(?:/|$)";
    case Kind::kRootfilesin:
      // Anything after the directory must be a non-directory.
      return (pat == "." ? std::string() : reEscape(pat) + "/") + "[^/]+$";
    case Kind::kRelglob: {
      std::string g = globRe(pat);
      if (startsWith(g, "[^/]*")) return ".*" + g.substr(5) + std::string(globSuffix);
      return "(?:|.*/)" + g + std::string(globSuffix);
    }
    case Kind::kRelre: {
      // FLAG_RE, ^\(\?([aiLmsux]+)\)(.*): the flags move into a scoped group.
      // Its '.' stops at a newline, so hg keeps only the first line.
      std::string p(pat), flag;
      if (startsWith(p, "(?")) {
        size_t j = 2;
        while (j < p.size() && p[j] != '\0' && std::strchr("aiLmsux", p[j])) ++j;
        if (j > 2 && j < p.size() && p[j] == ')') {
          flag = p.substr(2, j - 2);
          p = p.substr(j + 1);
          p = p.substr(0, p.find('\n'));
        }
      }
      if (!startsWith(p, "^")) p = ".*" + p;
      if (!flag.empty()) p = "(?" + flag + ":" + p + ")";
      return p;
    }
    case Kind::kGlob:
    case Kind::kRootglob:
      return globRe(pat) + std::string(globSuffix);
    case Kind::kListfile:
    case Kind::kListfile0:
    case Kind::kSet:
    case Kind::kInclude:
    case Kind::kSubinclude:
      break;
  }
  return "";
}

Result<std::vector<KindPat>> normalizePatterns(const std::vector<std::string>& patterns, Kind dflt,
                                               const PatternContext& context) {
  std::vector<Raw> raw;
  for (const auto& p : patterns) raw.push_back({p, std::string(), 0});
  std::vector<KindPat> out;
  HG_RETURN_IF_ERROR(normalize(raw, dflt, context, 0, out));
  return out;
}

}  // namespace hgvfs::match
