#include "match/dirstate_walk.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace hgvfs::match {
namespace {

// dirstate._walkexplicit's badtype.
std::string badType(unsigned mode) {
  const char* kind = "unknown";
  if (S_ISCHR(mode)) {
    kind = "character device";
  } else if (S_ISBLK(mode)) {
    kind = "block device";
  } else if (S_ISFIFO(mode)) {
    kind = "fifo";
  } else if (S_ISSOCK(mode)) {
    kind = "socket";
  } else if (S_ISDIR(mode)) {
    kind = "directory";
  }
  return std::string("unsupported file type (type is ") + kind + ")";
}

}  // namespace

WalkView::WalkView(const Matcher& matcher, const Probe& probe) : matcher_(matcher) {
  std::vector<std::string> files = matcher.files();
  std::sort(files.begin(), files.end());
  bool dirsNotFound = false;
  if (files.empty() || std::find(files.begin(), files.end(), "") != files.end()) {
    work_.insert("");  // the root, always a directory
  } else {
    results_.insert(".hg");
    for (const auto& f : files) {
      if (results_.count(f)) continue;  // a duplicate already found
      PathKind kind = probe.lstat(f);
      switch (kind.type) {
        case PathKind::kDirectory:
          work_.insert(f);
          break;
        case PathKind::kFile:
          results_.insert(f);
          found_.insert(f);
          break;
        case PathKind::kOther:
          bad_.emplace_back(f, badType(kind.mode));
          if (probe.inDirstate(f)) results_.insert(f);
          break;
        case PathKind::kMissing:
          if (probe.inDirstate(f)) {
            results_.insert(f);
          } else if (probe.dirstateHasDir(f)) {
            dirsNotFound = true;
          } else {
            bad_.emplace_back(f, std::strerror(kind.err));
          }
          break;
      }
    }
  }
  // An exact matcher walks nothing; one of only path patterns skips the
  // dirstate's other files unless a named directory was found.
  if (matcher.isExact()) {
    work_.clear();
    skipTracked_ = true;
  } else {
    skipTracked_ = matcher.prefix() && work_.empty() && !dirsNotFound;
  }
}

bool WalkView::showsTracked(ByteView path) const {
  return matcher_.matches(path) && (!skipTracked_ || results_.count(path));
}

bool WalkView::showsUntracked(ByteView path) {
  if (!matcher_.matches(path)) return false;
  std::string p(path);
  if (found_.count(p)) return true;
  size_t slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? std::string() : p.substr(0, slash);
  return traversed(parent) &&
         visit(parent).includes(slash == std::string::npos ? path : path.substr(slash + 1));
}

// Whether the walk lists directory `dir`: a start, or a child its parent's
// visitChildrenSet lets through.
bool WalkView::traversed(const std::string& dir) {
  if (work_.count(dir)) return true;
  if (dir.empty()) return false;
  auto it = traversed_.find(dir);
  if (it != traversed_.end()) return it->second;
  size_t slash = dir.rfind('/');
  std::string parent = slash == std::string::npos ? std::string() : dir.substr(0, slash);
  bool result =
      traversed(parent) &&
      visit(parent).includes(ByteView(dir).substr(slash == std::string::npos ? 0 : slash + 1));
  traversed_.emplace(dir, result);
  return result;
}

const VisitChildren& WalkView::visit(const std::string& dir) {
  auto it = visits_.find(dir);
  if (it == visits_.end()) it = visits_.emplace(dir, matcher_.visitChildrenSet(dir)).first;
  return it->second;
}

}  // namespace hgvfs::match
