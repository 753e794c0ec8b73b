#pragma once
// Which untracked paths of a working copy Mercurial ignores: `.hgignore` and
// `ui.ignore` files read and matched exactly as stock hg 6.3 does
// (mercurial/dirstate.py `_ignore`/`_dirignore`: an includematcher over
// `include:FILE` for each file, matcher.h).
//
// Tracked files are never ignored in hg; that is the caller's rule. The
// matcher only answers "would hg ignore this path if it were untracked".
//
// Paths are repository-relative bytes with '/' separators, no leading or
// trailing '/', any byte except '/' and NUL in a component.
//
// Thread rules: load() builds an immutable matcher; every const method may be
// called from any number of threads at once. IgnoreDirCache is per thread.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "match/matcher.h"

namespace hgvfs::match {

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
  // prints them (hg prints none for subincluded files), and so does a
  // subinclude inside a file included by a relative path (hg 6.3 fails an
  // assertion on it).
  // Errors, all naming "file:line": kInvalidArgument for what hg rejects
  // (an invalid regexp: "invalid pattern (KIND): PATTERN: PYTHON'S REASON";
  // a pattern too long, a subinclude outside the root: hg's message);
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
  const std::string& hgRegex() const { return regex_; }

 private:
  IgnoreMatcher();
  std::unique_ptr<Matcher> matcher_;
  std::string regex_;
  std::vector<std::string> warnings_;
  bool rootIgnored_ = false;
};

}  // namespace hgvfs::match
