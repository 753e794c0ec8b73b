#include "status/dirstate_cache.h"

#include <cerrno>

#include "base/io.h"

namespace hgvfs::status {

Status DirstateCache::refresh(bool wantNormal, const InP1& inP1, const FilesOf& p1Files) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    int err = errno;
    return ioError(err, "cannot read the dirstate", path_);
  }
  bool same = parsed_ && st.st_ino == ino_ && st.st_size == size_ &&
              st.st_mtim.tv_sec == mtime_.tv_sec && st.st_mtim.tv_nsec == mtime_.tv_nsec;
  if (same) {
    if (wantNormal && !haveNormal_) return computeNormal(p1Files);
    return okStatus();
  }
  HG_ASSIGN_OR_RETURN(Bytes data, readFile(path_));
  std::map<Bytes, hg::DirstateEntry, std::less<>> special;
  std::map<Bytes, Bytes, std::less<>> copies;
  std::vector<hg::DirstateEntryView> plainNormal;  // viewing `data`
  std::vector<ByteView> untrackedListed;
  auto parents = hg::visitDirstateV1(
      data,
      [&](const hg::DirstateEntryView& v) {
        if (v.state == hg::kDirstateStateUntracked) {
          untrackedListed.push_back(v.path);
          return;
        }
        if (v.copySource) copies.emplace(Bytes(v.path), Bytes(*v.copySource));
        if (v.state == 'n' && v.size != hg::kDirstateSizeFromP2 && !v.copySource) {
          plainNormal.push_back(v);  // implied if p1 has it; asked below
          return;
        }
        special.emplace(Bytes(v.path), hg::DirstateEntry::from(v));
      },
      path_, hg::DirstateFormat::kHgvfs);
  if (!parents.ok()) return std::move(parents).takeError();
  const hg::Node& p1 = parents->first;
  // One lookup per listed entry: the file holds only changes, so this is
  // O(changes), never O(files).
  for (const auto& v : plainNormal) {
    bool inP1Too = false;
    if (!p1.isNull()) {
      HG_ASSIGN_OR_RETURN(inP1Too, inP1(p1, v.path));
    }
    // Tracked though p1 lacks it: status must name it (M or !).
    if (!inP1Too) special.emplace(Bytes(v.path), hg::DirstateEntry::from(v));
  }
  std::vector<Bytes> untracked;
  untracked.reserve(untrackedListed.size());
  for (ByteView path : untrackedListed) {
    bool inP1Too = false;
    if (!p1.isNull()) {
      HG_ASSIGN_OR_RETURN(inP1Too, inP1(p1, path));
    }
    // A file p1 lacks is untracked without saying so; keeping it would make
    // status call it "on disk as in p1".
    if (inP1Too) untracked.emplace_back(path);
  }
  std::sort(untracked.begin(), untracked.end());
  untracked.erase(std::unique(untracked.begin(), untracked.end()), untracked.end());
  untrackedInP1_ = std::move(untracked);
  p1_ = p1;
  p2_ = parents->second;
  special_ = std::move(special);
  copies_ = std::move(copies);
  normal_.clear();
  haveNormal_ = false;
  parsed_ = true;
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  ino_ = st.st_ino;
  if (wantNormal) return computeNormal(p1Files);
  return okStatus();
}

// hg's own cost for `status -c`: every tracked file is listed.
Status DirstateCache::computeNormal(const FilesOf& p1Files) {
  std::vector<Bytes> files;
  if (!p1_.isNull()) {
    HG_ASSIGN_OR_RETURN(files, p1Files(p1_));
    std::sort(files.begin(), files.end());
  }
  std::vector<Bytes> normal;
  normal.reserve(files.size());
  for (auto& f : files) {
    if (isUntrackedInP1(f)) continue;
    auto it = special_.find(f);
    if (it != special_.end() && it->second.state != 'n') continue;
    normal.push_back(std::move(f));
  }
  size_t fromP1 = normal.size();
  for (const auto& [path, entry] : special_) {
    if (entry.state != 'n') continue;
    if (!std::binary_search(normal.begin(), normal.begin() + static_cast<ptrdiff_t>(fromP1),
                            path)) {
      normal.push_back(path);
    }
  }
  std::sort(normal.begin(), normal.end());
  normal_ = std::move(normal);
  haveNormal_ = true;
  return okStatus();
}

}  // namespace hgvfs::status
