#pragma once
// Mercurial's pattern language (`hg help patterns`), from what a user types
// to the regular expression hg matches paths with, as mercurial/match.py
// does it: `_patsplit` (KIND:PATTERN), `_donormalize` (paths made
// repository-relative, `listfile:` and `include:` files read and expanded),
// `_globre` and `_regex`. matcher.h builds matchers from the result.
//
// Kinds: re, relre (Python regular expressions; relre need not match at the
// start), glob, relglob, rootglob (globs relative to the current directory,
// anywhere, and to the root), path, relpath, rootfilesin (paths relative to
// the root or the current directory, recursive or not), listfile, listfile0
// (a file of patterns, one per line or NUL-separated), include, subinclude
// (pattern files) and set (filesets, which this library does not evaluate).
//
// Thread rules: plain functions; any thread.

#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "match/paths.h"

namespace hgvfs::match {

enum class Kind {
  kRe,
  kGlob,
  kPath,
  kRelglob,
  kRelpath,
  kRelre,
  kRootglob,
  kListfile,
  kListfile0,
  kSet,
  kInclude,
  kSubinclude,
  kRootfilesin,
};

const char* kindName(Kind kind);

// match._patsplit: (kind, pattern) for "KIND:PATTERN" when KIND is one of
// hg's kinds, else (dflt, the whole text).
std::pair<Kind, std::string> patSplit(ByteView pattern, Kind dflt);

// One normalized pattern: match._donormalize's (kind, pat, source) and where
// it was read.
struct KindPat {
  Kind kind;
  std::string pat;
  std::string source;  // hg's source: the include/listfile path it came from, "" if typed
  std::string file;    // the file actually read ("" if typed), for messages
  int lineno = 0;      // its line in `file`
};

// match._globre: an extended glob as a Python regular expression.
std::string globRe(ByteView glob);

// match._regex(kind, pat, globsuffix) for the kinds that become regular
// expressions (every kind but listfile*, set, include and subinclude).
std::string regexFor(Kind kind, ByteView pat, ByteView globSuffix);

// Where patterns are read: the working copy's real path, the current
// directory relative to it, the auditor for paths the user names, and where
// hg's `warn` goes (null: hg was given no warn function, as for
// `hg status PATTERN`, and says nothing).
struct PatternContext {
  std::string root;
  std::string cwd;
  PathAuditor auditor;
  std::vector<std::string>* warnings = nullptr;
};

// match._donormalize(patterns, default, root, cwd): relpath and glob
// patterns made repository-relative through canonPath, relglob, path,
// rootfilesin and rootglob through normpath; `listfile:FILE` read (FILE
// relative to the process's current directory, as hg opens it) and its lines
// normalized in turn; `include:FILE` (relative to the root) read as a pattern
// file and expanded; re, relre, subinclude and set kept as they are.
// An unreadable include file is a warning ("skipping unreadable pattern file
// 'F': REASON"), not an error.
// Errors: kInvalidArgument with hg's abort message, prefixed "INCLUDE: " for
// each include file it happened in ("unable to read file list (F)",
// "X not under root 'R'", ...); kUnsupported where hg itself would crash
// (include or listfile cycles).
Result<std::vector<KindPat>> normalizePatterns(const std::vector<std::string>& patterns, Kind dflt,
                                               const PatternContext& context);

}  // namespace hgvfs::match
