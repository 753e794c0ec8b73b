// The sizes of a directory's files, computed together the first time a
// listing with attributes (readdirplus) needs them: one parallel batch
// instead of one filelog open per entry, each waiting for the last.

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {

void FileSystem::warmSizes(InodeNumber dir) {
  hg::Node id;
  Bytes source;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* d = inodes_.get(dir);
    // A materialized directory's entries may come from anywhere: each is
    // sized on its own when asked.
    if (!d || !S_ISDIR(d->mode) || d->materialized) return;
    auto src = inodes_.sourcePath(dir);
    if (!src.ok()) return;
    id = d->id;
    source = std::move(src).value();
  }
  auto tree = treeOf(id);
  if (!tree.ok()) return;
  std::vector<store::FileRef> files;
  for (const store::TreeEntry& e : (*tree)->entries()) {
    if (e.isDirectory()) continue;
    files.push_back({source.empty() ? e.name : source + "/" + e.name, e.id});
  }
  Status status = objects_->warmSizes(files);
  if (!status.ok()) log().debug("sizes of {} not computed together: {}", source, status.error().message());
}

}  // namespace hgvfs::fs
