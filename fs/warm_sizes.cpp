// The sizes of a directory's files, computed together the first time a
// listing with attributes (readdirplus) meets them: one parallel batch in
// the background instead of one filelog open per entry, each waiting for
// the last. The listing does not wait for it: the entries whose size is not
// known yet are listed without attributes (as plain readdir would), so
// `find` never needs a size. A stat that finds its size unknown (the batch
// not done yet, or no listing before) sizes all of its directory's unknown
// files at once, in parallel, so `ls -l` pays one batch per directory.

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {

std::vector<store::FileRef> FileSystem::unsizedFiles(InodeNumber dir, std::vector<Bytes>* names) {
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
  for (const store::TreeEntry& e : (*tree)->entries()) {
    if (e.isDirectory() || objects_->knownSize(e.id)) continue;
    files.push_back({source.empty() ? e.name : source + "/" + e.name, e.id});
    if (names) names->push_back(e.name);  // in tree order: sorted by name bytes
  }
  return files;
}

std::vector<Bytes> FileSystem::warmSizes(InodeNumber dir) {
  std::vector<Bytes> unknown;
  std::vector<store::FileRef> files = unsizedFiles(dir, &unknown);
  if (!files.empty()) objects_->warmSizesLater(std::move(files));
  return unknown;
}

void FileSystem::warmSiblingSizes(InodeNumber file) {
  InodeNumber parent;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* f = inodes_.get(file);
    if (!f) return;
    parent = f->parent;
  }
  if (!parent.valid()) return;
  // One stat after a listing (ls -l) is usually followed by its siblings':
  // size them all at once, in parallel, rather than one filelog at a time.
  Status status = objects_->warmSizes(unsizedFiles(parent, nullptr));
  if (!status.ok()) log().debug("sibling sizes not computed: {}", status.error().message());
}

}  // namespace hgvfs::fs
