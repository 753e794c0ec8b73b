#include "status/dirstate_cache.h"

#include <cerrno>

#include "base/io.h"

namespace hgvfs::status {

Status DirstateCache::refresh(bool wantNormal, const FilesOf& p1Files) {
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
  std::vector<ByteView> listed;  // every path, viewing `data`
  auto parents = hg::visitDirstateV1(
      data,
      [&](const hg::DirstateEntryView& v) {
        if (v.copySource) copies.emplace(Bytes(v.path), Bytes(*v.copySource));
        if (v.state != 'n' || v.size == -2 || v.copySource) {
          special.emplace(Bytes(v.path), hg::DirstateEntry::from(v));
        }
        if (wantNormal && v.state == 'n') normal.emplace_back(v.path);
        listed.push_back(v.path);
      },
      path_);
  if (!parents.ok()) return std::move(parents).takeError();
  std::vector<Bytes> untracked;
  if (!parents->first.isNull()) {
    HG_ASSIGN_OR_RETURN(std::vector<Bytes> files, p1Files(parents->first));
    std::sort(files.begin(), files.end());
    std::sort(listed.begin(), listed.end());
    std::set_difference(files.begin(), files.end(), listed.begin(), listed.end(),
                        std::back_inserter(untracked),
                        [](ByteView a, ByteView b) { return a < b; });
  }
  untrackedInP1_ = std::move(untracked);
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
