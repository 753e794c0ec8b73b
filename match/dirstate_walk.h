#pragma once
// What `hg status PATTERNS` can see besides a matcher's yes or no: the parts
// of mercurial/dirstate.py `walk` and `_walkexplicit` that decide it.
//
// hg's status walk does not simply filter every path through the matcher:
//  - it stats the matcher's files() first and warns about each one that is
//    missing and unknown to the dirstate ("PATH: No such file or
//    directory"), or of an unsupported type;
//  - it looks for untracked files (? and I) only where it walks: from the
//    explicitly named directories (or the root), into the children
//    visitChildrenSet allows, and at explicitly named files;
//  - with only path:/relpath: patterns naming files, it skips its last step
//    and shows no tracked file but the named ones.
// A caller that has the complete status of the working copy (as the daemon
// gives it) filters it with WalkView to get exactly what hg prints.
//
// Thread rules: a WalkView is used by one thread (it memoizes).

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "match/matcher.h"

namespace hgvfs::match {

// What lstat says about an explicitly named path.
struct PathKind {
  enum Type { kMissing, kFile, kDirectory, kOther } type = kMissing;
  int err = 0;        // errno when missing
  unsigned mode = 0;  // st_mode when kOther
};

class WalkView {
 public:
  struct Probe {
    // lstat of a repository-relative path.
    std::function<PathKind(const std::string&)> lstat;
    // The dirstate holds this path (in any state), and holds a path under
    // this directory. Asked only about paths lstat found missing.
    std::function<bool(const std::string&)> inDirstate;
    std::function<bool(const std::string&)> dirstateHasDir;
  };

  WalkView(const Matcher& matcher, const Probe& probe);

  // The warnings hg's walk prints, in its order: (repository-relative path,
  // message), e.g. ("a/b", "No such file or directory").
  const std::vector<std::pair<std::string, std::string>>& bad() const { return bad_; }

  // The explicitly named paths lstat found, sorted (what the caller may
  // want to check further).
  const std::set<std::string>& explicitFound() const { return found_; }

  // Whether hg shows a path of the dirstate's status (M, A, R, !, C) /
  // an untracked one (?, I). Both include the matcher's own verdict.
  bool showsTracked(ByteView path) const;
  bool showsUntracked(ByteView path);

 private:
  bool traversed(const std::string& dir);
  const VisitChildren& visit(const std::string& dir);

  const Matcher& matcher_;
  std::vector<std::pair<std::string, std::string>> bad_;
  std::set<std::string, std::less<>> results_;  // explicit paths walk() has a result for
  std::set<std::string> found_;                 // explicit files and symlinks on disk
  std::set<std::string> work_;                  // where the traversal starts
  bool skipTracked_ = false;                    // walk's skipstep3
  std::map<std::string, bool> traversed_;
  std::map<std::string, VisitChildren> visits_;
};

}  // namespace hgvfs::match
