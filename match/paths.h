#pragma once
// Path arithmetic as Mercurial does it for patterns: posixpath's normpath,
// join, split and dirname on bytes, and mercurial/pathutil.py's canonpath and
// pathauditor, which turn what a user typed into a repository-relative path
// or refuse it with hg's own message.
//
// Paths are bytes; no encoding is assumed. A repository-relative path uses
// '/' and has no leading or trailing '/'; "" is the root.
//
// Thread rules: plain functions and an immutable auditor; any thread. The
// auditor's file-system checks lstat paths under the root as they are now.

#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace hgvfs::match {

// posixpath.normpath ("" becomes ".").
std::string normpath(ByteView path);
// posixpath.join(a, b): b when b is absolute.
std::string pyJoin(ByteView a, ByteView b);
// posixpath.split / posixpath.dirname.
std::pair<std::string, std::string> pySplit(ByteView path);
std::string pyDirname(ByteView path);

// pathutil.finddirs: every ancestor directory of `path`, deepest first,
// ending with "" (the root).
std::vector<ByteView> findDirs(ByteView path);

// util.pathto(root, cwd, path) for a repository-relative `cwd` and `path`:
// how `path` is written from `cwd` ("." when they are the same).
std::string pathTo(ByteView cwd, ByteView path);

// pathutil.pathauditor: refuses a repository-relative path that names
// something hg must not touch. Lexical checks always (a trailing '/', a first
// component .hg, a '..' component, Windows short names of .hg, .hg inside);
// with `fileSystem`, also what is on disk now: a symlink or a nested
// repository (a directory holding .hg) on the way to the path. Subrepository
// approval (hg's callback) is not modelled: a caller that cares checks for
// .hgsub itself.
class PathAuditor {
 public:
  PathAuditor(std::string root, bool fileSystem) : root_(std::move(root)), fs_(fileSystem) {}

  // Errors: kInvalidArgument with hg's abort message ("path contains illegal
  // component: .hg/x", "path 'a/b' traverses symbolic link 'a'"); kUnsupported
  // when lstat fails in a way hg would not survive (EACCES, ...).
  Status check(ByteView path) const;

 private:
  std::string root_;
  bool fs_;
};

// pathutil.canonpath(root, root/cwd, name): `name` as typed (relative to
// `cwd`, which is relative to `root`, or absolute) as a repository-relative
// path, audited. `root` is the repository's real path.
// Errors: the auditor's, and kInvalidArgument "NAME not under root 'ROOT'"
// (followed by "\n(consider using '--cwd DIR')" when hg gives that hint).
Result<std::string> canonPath(const std::string& root, ByteView cwd, ByteView name,
                              const PathAuditor& auditor);

}  // namespace hgvfs::match
