// The sizes of a directory's files, computed together: one parallel batch
// instead of one filelog open per entry, each waiting for the last.
//
// A listing with attributes (readdirplus; the kernel asks for one on every
// first read of a directory) cannot tell `find`, which needs no size, from
// `ls -l`, which needs every one. Files whose size is unknown are listed
// without attributes, as plain readdir would list them, so `find` costs
// no sizing at all; a stat of such a file then costs a lookup, which sizes
// its whole directory at once. While processes look at single files (a
// stat that needed a size, an extended attribute read, which `ls -l` does
// for every entry) the listing computes its directory's sizes first and
// lists every file with attributes: an `ls -lR` pays one batch per
// directory and no lookup per file. Sizing costs the disk reads of a
// filelog index per file; which files get attributes never changes what a
// stat answers.

#include <chrono>

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {

std::vector<store::FileRef> FileSystem::unsizedFiles(InodeNumber dir, std::vector<Bytes>* names,
                                                     std::vector<store::FileRef>* below) {
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
    if (e.isDirectory() && below) {
      auto sub = treeOf(e.id);
      if (!sub.ok()) continue;  // its own listing reports it
      Bytes prefix = (source.empty() ? e.name : source + "/" + e.name) + "/";
      for (const store::TreeEntry& f : (*sub)->entries()) {
        if (!f.isDirectory() && !objects_->knownSize(f.id))
          below->push_back({prefix + f.name, f.id});
      }
    }
    if (e.isDirectory() || objects_->knownSize(e.id)) continue;
    files.push_back({source.empty() ? e.name : source + "/" + e.name, e.id});
    if (names) names->push_back(e.name);  // in tree order: sorted by name bytes
  }
  return files;
}

namespace {

// How long a look at single files keeps listings sizing first.
constexpr int64_t kAttentionNs = int64_t{2'000'000'000};

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void FileSystem::noteFileAttention() {
  int64_t now = steadyNs();
  // One store per millisecond at most: every thread writes this line.
  if (now - fileAttentionNs_.load(std::memory_order_relaxed) > 1'000'000) {
    fileAttentionNs_.store(now, std::memory_order_relaxed);
  }
}

bool FileSystem::fileAttentionRecent() const {
  int64_t last = fileAttentionNs_.load(std::memory_order_relaxed);
  return last != 0 && steadyNs() - last < kAttentionNs;
}

std::vector<Bytes> FileSystem::warmSizes(InodeNumber dir) {
  std::vector<Bytes> unknown;
  if (!fileAttentionRecent()) {
    (void)unsizedFiles(dir, &unknown);
    return unknown;
  }
  // One level ahead too: `ls -lR` lists the subdirectories next, and one
  // batch of many files keeps more filelog reads in flight than one per
  // directory of a few (a cold disk is the cost).
  std::vector<store::FileRef> below;
  std::vector<store::FileRef> files = unsizedFiles(dir, &unknown, &below);
  if (files.empty() && below.empty()) return unknown;
  std::vector<store::FileRef> batch = files;
  batch.insert(batch.end(), below.begin(), below.end());
  Status status = objects_->warmSizes(batch);
  if (!status.ok()) log().debug("listing sizes not computed: {}", status.error().message());
  // What could not be sized (a damaged filelog) stays without attributes:
  // a stat of it reports the error.
  std::vector<Bytes> still;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!objects_->knownSize(files[i].node)) still.push_back(std::move(unknown[i]));
  }
  return still;
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
