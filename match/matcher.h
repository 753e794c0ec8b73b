#pragma once
// Matchers as mercurial/match.py builds them for a command's patterns,
// -I/-X options and ignore files: `match.match(root, cwd, patterns, include,
// exclude, default)` gives the same tree of matchers (patternmatcher,
// includematcher, intersection, difference, always, never) with the same
// answers to the three questions hg's dirstate walk asks:
//   matches(path)          matchfn: is this repository-relative path selected?
//   files()                the explicitly named paths (the walk stats them and
//                          warns about the missing ones);
//   visitChildrenSet(dir)  which children of a directory the walk may visit.
// The last two decide what `hg status PATTERN` can see besides the files it
// tracks, so they are reproduced quirks and all (`hg status rootfilesin:d`
// lists no unknown file, because hg never walks into d).
//
// Filesets (`set:`) are not evaluated: building a matcher that needs one is
// kUnsupported.
//
// Thread rules: a built matcher is immutable; every const method may be
// called from any number of threads at once.

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "match/patterns.h"

namespace hgvfs::match {

// matcher.visitchildrenset(dir): 'all' (every descendant), 'this' (the
// directory and maybe some children), or a set of child names (empty:
// nothing under `dir`).
struct VisitChildren {
  enum class Kind { kSet, kThis, kAll };
  Kind kind = Kind::kSet;
  std::set<std::string, std::less<>> names;

  static VisitChildren all() { return {Kind::kAll, {}}; }
  static VisitChildren thisDir() { return {Kind::kThis, {}}; }
  static VisitChildren none() { return {}; }
  bool empty() const { return kind == Kind::kSet && names.empty(); }
  // Whether the walk looks at `child` (a file or directory name) in the directory.
  bool includes(ByteView child) const { return kind != Kind::kSet || names.count(child) > 0; }
};

class Matcher {
 public:
  virtual ~Matcher() = default;

  virtual bool matches(ByteView path) const = 0;
  virtual std::vector<std::string> files() const { return {}; }
  virtual VisitChildren visitChildrenSet(ByteView dir) const;
  virtual bool always() const { return false; }
  virtual bool isExact() const { return false; }
  virtual bool prefix() const { return false; }
  // Nothing can match: no pattern survived (hg's nevermatcher, or patterns
  // read from files that held none).
  virtual bool empty() const { return false; }
  bool anyPats() const { return !always() && !isExact() && !prefix(); }
};

// A pattern hg rejects at compile time, for callers that explain more than
// hg does (hg names the pattern; this adds Python's reason).
struct RejectedPattern {
  Kind kind = Kind::kRe;
  std::string pat;
  std::string reason;  // Python's re.error text
  std::string file;    // where the pattern was read ("" if typed)
  int lineno = 0;
};

struct MatchOptions {
  std::string root;  // the working copy's real path
  std::string cwd;   // the current directory, relative to root
  // Whether canonPath looks at the disk (hg's repo.auditor, for commands)
  // or only at names (as hg's ignore files effectively get).
  bool auditFileSystem = true;
  // hg's warn function; null: no warnings, as for `hg status PATTERN`.
  std::vector<std::string>* warnings = nullptr;
  // Subincluded files: hg reads one the first time a path under it is
  // matched, and crashes when it was named by a relative path (hg 6.3's
  // `assert os.path.isabs(root)`). Strict: every subinclude that hg might
  // not handle the same way (a relative one, one that fails to load) is
  // kUnsupported. Not strict (ignore files, read eagerly by a daemon): a
  // relative one is skipped with a warning, and a broken one fails the
  // build.
  bool strictSubincludes = true;
  RejectedPattern* rejected = nullptr;  // filled when a pattern is invalid
};

// match.match(root, cwd, patterns, include, exclude, default): `patterns`
// (positional arguments; default kind `dflt`), `include` (-I) and `exclude`
// (-X, both default glob).
// Errors: kInvalidArgument with hg's abort message word for word ("invalid
// pattern (re): (", "X not under root 'R'" plus a hint line, ...);
// kUnsupported for `set:`, for what hg would crash on and for what PCRE2
// cannot express. `where` names file:line when the pattern was read from a
// file.
Result<std::unique_ptr<Matcher>> buildMatcher(const MatchOptions& options,
                                              const std::vector<std::string>& patterns,
                                              const std::vector<std::string>& include,
                                              const std::vector<std::string>& exclude,
                                              Kind dflt = Kind::kGlob);

// An includematcher over already normalized patterns (as hg's ignore
// matcher is); `regexText` receives hg's joined regular expression.
Result<std::unique_ptr<Matcher>> buildIncludeMatcher(const MatchOptions& options,
                                                     const std::vector<KindPat>& kindpats,
                                                     std::string* regexText);

}  // namespace hgvfs::match
