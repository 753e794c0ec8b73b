#pragma once
// Which untracked paths of a working copy Mercurial ignores: `.hgignore` and
// `ui.ignore` files read and matched exactly as stock hg 6.3 does
// (mercurial/dirstate.py `_ignore`/`_dirignore`, mercurial/match.py
// `readpatternfile`, `_donormalize`, `_buildmatch`, `_regex`, `_globre`).
//
// hg turns every ignore line into a Python `re` regular expression and joins
// them with '|'. PyRegex re-implements Python 3.11's `re` parser for bytes
// patterns (Lib/re/_parser.py), so a pattern hg rejects is rejected here with
// the same message, and emits an equivalent PCRE2 pattern, so a pattern hg
// accepts matches the same paths.
//
// Tracked files are never ignored in hg; that is the caller's rule. The
// matcher only answers "would hg ignore this path if it were untracked".
//
// Paths are repository-relative bytes with '/' separators, no leading or
// trailing '/', any byte except '/' and NUL in a component.
//
// Thread rules: load() builds an immutable matcher; every const method may be
// called from any number of threads at once.

#include <memory>
#include <string>
#include <vector>

#include "hgbridge/bytes.h"
#include "hgbridge/result.h"

namespace hgvfs::hg {

// One Python `re` pattern (bytes, no flags) compiled with PCRE2; match() is
// `re.match(pattern, subject) is not None` under Python 3.11.2, the Python
// stock hg 6.3 runs on here. Differences that remain, all in constructs no
// ignore file uses:
//  - possessive quantifiers (*+, ++, ?+, {m,n}+) and atomic groups (?>...)
//    follow PCRE2; CPython 3.11.2 matches some possessive repeats wrongly
//    (python/cpython gh-106052, fixed in 3.11.5);
//  - a backreference or conditional that looks at a group captured inside a
//    repeat, from within that repeat or after backtracking out of it, can see
//    a different capture (sre keeps iterating after an empty iteration and
//    restores captures differently from PCRE2);
//  - a repeat count above 65535 is clamped (exact for subjects shorter than
//    64 KiB); a large count on a group can make PCRE2 fail with kUnsupported;
//  - the L (locale) flag is taken as ASCII, as in a C or UTF-8 locale.
class PyRegex {
 public:
  // Errors: kInvalidArgument with Python's own message ("missing ), unterminated
  // subpattern at position 3") when `re.compile` raises re.error; kUnsupported
  // for its other exceptions ("OverflowError: ...") and when PCRE2 cannot
  // compile the translation of a pattern Python accepts.
  static Result<PyRegex> compile(ByteView pattern);

  PyRegex(PyRegex&&) noexcept;
  PyRegex& operator=(PyRegex&&) noexcept;
  ~PyRegex();

  bool match(ByteView subject) const;
  // The PCRE2 pattern and options the Python pattern became (for messages).
  const std::string& pcre2Pattern() const;

 private:
  struct Impl;
  explicit PyRegex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Caches, for one thread, which directories IgnoreMatcher::ignored found
// ignored, so asking about many paths under the same directories matches each
// directory once. Not thread-safe: one per thread (or per walk).
class IgnoreDirCache {
 public:
  void clear() { dirs_.clear(); }

 private:
  friend class IgnoreMatcher;
  std::vector<std::pair<std::string, bool>> dirs_;  // small, most recent last
};

class IgnoreMatcher {
 public:
  // The ignore files hg reads for the working copy at `root` (as hg sees it,
  // i.e. realpath'd), in hg's order: `root/.hgignore` when it exists, then
  // every `ui.ignore` / `ui.ignore.*` value in config order, with `~` and
  // `$VAR` expanded and relative values taken relative to `root`
  // (dirstate._ignorefiles). Missing ui.ignore files stay in the list: load()
  // warns about them as hg does.
  static std::vector<std::string> ignoreFiles(const std::string& root,
                                              const std::vector<std::string>& uiIgnoreValues);

  // Reads `files` (absolute paths, normally ignoreFiles()) as hg reads
  // `include:<file>` for each, with `include:` and `subinclude:` lines followed
  // (an `include:` path is relative to `root`, or to the subincluded file's
  // directory inside a subincluded file; a `subinclude:` path is relative to
  // the directory of the file naming it).
  // Unlike hg, which reads a subincluded file the first time it matches a path
  // under it, everything is read and compiled here, so an error in a
  // subincluded file fails load() even when no path under it exists.
  // Unreadable files and invalid `syntax:` lines become warnings(), as hg
  // prints them, and so does a subinclude inside a file included by a
  // relative path (hg 6.3 fails an assertion on it).
  // Errors, all naming "file:line": kInvalidArgument for what hg rejects
  // (invalid regexp, pattern too long, subinclude outside the root);
  // kUnsupported for what hg crashes on (include cycles, a repetition count
  // beyond Python's limit) and what PCRE2 cannot express.
  static Result<IgnoreMatcher> load(const std::string& root, const std::vector<std::string>& files);

  IgnoreMatcher(IgnoreMatcher&&) noexcept;
  IgnoreMatcher& operator=(IgnoreMatcher&&) noexcept;
  ~IgnoreMatcher();

  // hg's `dirstate._ignore(path)`: the patterns match the path itself. A
  // top-down walk that has already found no ancestor ignored needs only this.
  bool matchesSelf(ByteView path) const;

  // hg's `dirstate._dirignore(path)`: the path or any ancestor directory,
  // including the root "" itself, matches. This is what `hg status` reports
  // as ignored ('I') for an untracked file.
  bool ignored(ByteView path) const;
  bool ignored(ByteView path, IgnoreDirCache& cache) const;

  // Whether a walk skips directory `dir` ("" is the root) and everything
  // under it: the same test as ignored().
  bool directoryIgnored(ByteView dir) const { return ignored(dir); }

  // Nothing can be ignored (no ignore file had a pattern).
  bool empty() const;

  // The warnings hg prints while reading the files (one line each, no '\n').
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The regular expression hg builds for the top-level patterns
  // (`hg debugignore` shows it as `<includematcher includes=...>`); subincluded
  // files are matched separately and not part of it.
  const std::string& hgRegex() const;

  struct Level;  // one match.match(): opaque, defined in ignore.cpp

 private:
  IgnoreMatcher();
  std::unique_ptr<Level> top_;
  std::vector<std::string> warnings_;
  bool rootIgnored_ = false;
};

}  // namespace hgvfs::hg
