// The sizes of a directory's files, computed together the first time a
// listing with attributes (readdirplus) meets them: one parallel batch in
// the background instead of one filelog open per entry, each waiting for
// the last. The listing does not wait for it: the entries whose size is not
// known yet are listed without attributes (as plain readdir would), so
// `find` never needs a size, and a later stat finds the batch's result (or
// computes its own when it comes first).

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {

std::vector<Bytes> FileSystem::warmSizes(InodeNumber dir) {
  hg::Node id;
  Bytes source;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* d = inodes_.get(dir);
    // A materialized directory's entries may come from anywhere: each is
    // sized on its own when asked.
    if (!d || !S_ISDIR(d->mode) || d->materialized) return {};
    auto src = inodes_.sourcePath(dir);
    if (!src.ok()) return {};
    id = d->id;
    source = std::move(src).value();
  }
  auto tree = treeOf(id);
  if (!tree.ok()) return {};
  std::vector<store::FileRef> files;
  std::vector<Bytes> unknown;
  for (const store::TreeEntry& e : (*tree)->entries()) {
    if (e.isDirectory() || objects_->knownSize(e.id)) continue;
    files.push_back({source.empty() ? e.name : source + "/" + e.name, e.id});
    unknown.push_back(e.name);
  }
  if (!files.empty()) objects_->warmSizesLater(std::move(files));
  return unknown;  // in tree order: sorted by name bytes
}

}  // namespace hgvfs::fs
