#include "status/dirstate_cache.h"

#include <cerrno>

#include "base/io.h"

namespace hgvfs::status {

Status DirstateCache::refresh(bool wantNormal) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    int err = errno;
    return ioError(err, "cannot read the dirstate", path_);
  }
  bool same = st.st_ino == ino_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
              st.st_mtim.tv_nsec == mtime_.tv_nsec;
  if (same && (haveNormal_ || !wantNormal)) return okStatus();
  HG_ASSIGN_OR_RETURN(Bytes data, readFile(path_));
  std::map<Bytes, hg::DirstateEntry, std::less<>> special;
  std::map<Bytes, Bytes, std::less<>> copies;
  std::vector<Bytes> normal;
  auto parents = hg::visitDirstateV1(
      data,
      [&](const hg::DirstateEntryView& v) {
        if (v.copySource) copies.emplace(Bytes(v.path), Bytes(*v.copySource));
        if (v.state != 'n' || v.size == -2 || v.copySource) {
          special.emplace(Bytes(v.path), hg::DirstateEntry::from(v));
        }
        if (wantNormal && v.state == 'n') normal.emplace_back(v.path);
      },
      path_);
  if (!parents.ok()) return std::move(parents).takeError();
  p1_ = parents->first;
  p2_ = parents->second;
  special_ = std::move(special);
  copies_ = std::move(copies);
  normal_ = std::move(normal);
  haveNormal_ = wantNormal;
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  ino_ = st.st_ino;
  return okStatus();
}

}  // namespace hgvfs::status
