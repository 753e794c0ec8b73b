#pragma once
// The client's `.hg/dirstate` as the status engine needs it: the parents,
// the entries hg does not treat as clean-if-unchanged (state a/r/m, size -2
// for "from p2", or a copy), and the copies. The file is parsed once per
// change of it (its inode, size and mtime); the tracked normal paths are
// kept from that same parse when a caller asks for them (status -c).
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

  // The files of a revision (any order), for untrackedInP1().
  using FilesOf = std::function<Result<std::vector<Bytes>>(const hg::Node& revision)>;

  // Brings the cache up to date with the file. `wantNormal`: also keep the
  // paths in state 'n' (parsed again only if an earlier parse of the same
  // file skipped them). `p1Files` lists p1's files when the file changed.
  Status refresh(bool wantNormal, const FilesOf& p1Files);

  const hg::Node& p1() const { return p1_; }
  const hg::Node& p2() const { return p2_; }
  const std::map<Bytes, hg::DirstateEntry, std::less<>>& special() const { return special_; }
  const std::map<Bytes, Bytes, std::less<>>& copies() const { return copies_; }
  // Valid after refresh(true).
  const std::vector<Bytes>& normal() const { return normal_; }
  // The files of p1 the dirstate does not list at all, sorted: untracked,
  // as for hg (`hg remove` then an update that keeps the removal leaves
  // them so). Usually empty. Until the mount's dirstate lists only changes,
  // finding them costs a pass over p1's files and the dirstate's paths each
  // time the file changes.
  const std::vector<Bytes>& untrackedInP1() const { return untrackedInP1_; }
  bool isUntrackedInP1(ByteView path) const {
    return std::binary_search(untrackedInP1_.begin(), untrackedInP1_.end(), path);
  }

 private:
  std::string path_;
  struct timespec mtime_ {};
  off_t size_ = -1;
  ino_t ino_ = 0;
  bool haveNormal_ = false;
  hg::Node p1_, p2_;
  std::map<Bytes, hg::DirstateEntry, std::less<>> special_;
  std::map<Bytes, Bytes, std::less<>> copies_;
  std::vector<Bytes> normal_;
  std::vector<Bytes> untrackedInP1_;
};

}  // namespace hgvfs::status
