#pragma once
// The client's `.hg/dirstate` in the mount's format (docs/DIRSTATE.md) as
// the status engine needs it: the parents, the entries that are not implied
// by p1 (state a/r/m, size -2 for "from p2", a copy, or an 'n' entry for a
// file p1 lacks), the copies, and the files of p1 the working copy does not
// track (the 'u' entries). The file lists only changes, so parsing it costs
// O(changes); it is parsed once per change of it (its inode, size and
// mtime). Only `normal()` (status -c) costs a pass over p1's files, as it
// does in hg.
//
// Thread rules: not thread-safe; the status engine calls it under its lock.

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "hgbridge/dirstate.h"
#include "hgbridge/node.h"

namespace hgvfs::status {

class DirstateCache {
 public:
  explicit DirstateCache(std::string path) : path_(std::move(path)) {}

  // Whether revision `p1` has a file (not a directory) at `path`.
  using InP1 = std::function<Result<bool>(const hg::Node& p1, ByteView path)>;
  // The files of revision `p1`, any order.
  using FilesOf = std::function<Result<std::vector<Bytes>>(const hg::Node& p1)>;

  // Brings the cache up to date with the file. `inP1` is asked about the
  // file's plain 'n' and 'u' entries when the file changed; `p1Files` is
  // called only when `wantNormal` and the tracked normal paths are not
  // known yet for this version of the file.
  Status refresh(bool wantNormal, const InP1& inP1, const FilesOf& p1Files);

  const hg::Node& p1() const { return p1_; }
  const hg::Node& p2() const { return p2_; }
  // Entries a status must look at, by path: every entry but the implied
  // ones (plain 'n' for a file of p1) and 'u'. An 'n' entry here is tracked
  // and modified (from p2, a copy) or tracked though p1 lacks it (as hg's
  // debugsetparents can leave): modified if on disk, deleted if not.
  const std::map<Bytes, hg::DirstateEntry, std::less<>>& special() const { return special_; }
  const std::map<Bytes, Bytes, std::less<>>& copies() const { return copies_; }
  // The tracked files in state 'n': p1's files minus 'u' entries minus
  // entries in another state, plus 'n' entries for files p1 lacks. Sorted.
  // Valid after refresh(true, ...).
  const std::vector<Bytes>& normal() const { return normal_; }
  // The files of p1 the working copy does not track ('u' entries), sorted:
  // untracked, as for hg (`hg remove` then an update that keeps the removal
  // leaves them so). Usually empty. A 'u' entry for a file p1 lacks says
  // nothing (such a file is untracked anyway) and is left out.
  const std::vector<Bytes>& untrackedInP1() const { return untrackedInP1_; }
  bool isUntrackedInP1(ByteView path) const {
    return std::binary_search(untrackedInP1_.begin(), untrackedInP1_.end(), path);
  }

 private:
  Status computeNormal(const FilesOf& p1Files);

  std::string path_;
  struct timespec mtime_ {};
  off_t size_ = -1;
  ino_t ino_ = 0;
  bool parsed_ = false;
  bool haveNormal_ = false;
  hg::Node p1_, p2_;
  std::map<Bytes, hg::DirstateEntry, std::less<>> special_;
  std::map<Bytes, Bytes, std::less<>> copies_;
  std::vector<Bytes> normal_;
  std::vector<Bytes> untrackedInP1_;
};

}  // namespace hgvfs::status
