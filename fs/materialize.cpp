// Copying revision objects into the overlay: a directory's entry list (its
// tree, as overlay records), a file's content (its blob, as an overlay
// file), and the ancestors of either.
//
// A directory is materialized under the namespace lock, in the change that
// needs it: its tree comes from the object store's cache, warmed before the
// lock is taken (warmForChange). A file's blob is read, and its overlay file
// written, without the lock (see materializeFile).

#include <sys/stat.h>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"
#include "fs/overlay_change.h"

namespace hgvfs::fs {

void FileSystem::warmForChange(InodeNumber dir, ByteView name) {
  std::vector<hg::Node> trees;
  std::optional<hg::Node> nameIn;  // the tree to find `name` in, once loaded
  {
    ReaderLock lock(inodes_.mutex());
    if (!name.empty()) {
      if (std::optional<InodeNumber> child = inodes_.child(dir, name)) {
        const Inode* n = inodes_.get(*child);
        if (n && S_ISDIR(n->mode) && !n->materialized) trees.push_back(n->id);
      } else if (const DirState* d = cachedDirLocked(dir)) {
        const DirState::Entry* e = d->find(name);
        if (e && S_ISDIR(e->rec.mode) && !e->rec.materialized) trees.push_back(e->rec.id);
      } else if (const Inode* n = inodes_.get(dir); n && !n->materialized) {
        nameIn = n->id;
      }
    }
    for (InodeNumber cur = dir; cur.valid();) {
      const Inode* n = inodes_.get(cur);
      if (!n || n->materialized || !S_ISDIR(n->mode)) break;
      trees.push_back(n->id);
      if (cur == kRootInode) break;
      cur = n->parent;
    }
  }
  for (const hg::Node& id : trees) (void)treeOf(id);
  if (nameIn) {
    auto tree = treeOf(*nameIn);
    const store::TreeEntry* e = tree.ok() ? (*tree)->find(name) : nullptr;
    if (e && e->isDirectory()) (void)treeOf(e->id);
  }
}

Result<DirState*> FileSystem::materializeDirLocked(InodeNumber ino, OverlayChange& change) {
  Inode* inode = inodes_.find(ino);
  if (!inode) return notFound("unknown inode");
  if (!S_ISDIR(inode->mode)) return errnoError(ENOTDIR, "not a directory");
  if (inode->materialized) return loadedDirLocked(ino);
  if (!inode->parent.valid()) return notFound("directory was removed");
  HG_ASSIGN_OR_RETURN(Bytes source, inodes_.sourcePath(ino));
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(inode->id));
  DirState* parentState = nullptr;
  if (ino != kRootInode) {
    HG_ASSIGN_OR_RETURN(parentState, materializeDirLocked(inode->parent, change));
    inode = inodes_.find(ino);
  }
  auto state = std::make_unique<DirState>();
  state->header.mode = inode->mode;
  state->header.uid = options_.uid;
  state->header.gid = options_.gid;
  state->header.atime = state->header.mtime = state->header.ctime = options_.time;
  change.batch().putHeader(ino.value(), state->header);
  for (const store::TreeEntry& entry : tree->entries()) {
    OverlayEntry rec;
    std::optional<InodeNumber> live = inodes_.child(ino, entry.name);
    if (!live) {
      HG_ASSIGN_OR_RETURN(InodeNumber fresh, inodes_.allocate());
      rec.ino = fresh.value();
    } else {
      rec.ino = live->value();
    }
    rec.mode = modeOf(entry.kind);
    rec.uid = options_.uid;
    rec.gid = options_.gid;
    rec.id = entry.id;
    rec.source = source.empty() ? entry.name : source + "/" + entry.name;
    // A live child keeps reading its revision path, which its parent can no
    // longer give it.
    if (live && !inodes_.hasSource(*live)) {
      inodes_.setSource(*live, rec.source);
      InodeNumber child = *live;
      change.onUndo([this, child]() REQUIRES(inodes_.mutex()) { inodes_.takeSource(child); });
    }
    change.batch().putEntry(ino.value(), entry.name, rec);
    state->insert(entry.name, rec);
  }
  DirState* result = state.get();
  Materialized& m = inodes_.materializedState(ino);
  m.uid = options_.uid;
  m.gid = options_.gid;
  m.dir = std::move(state);
  inode->materialized = true;
  change.onUndo([this, ino]() REQUIRES(inodes_.mutex()) {
    inodes_.dropMaterialized(ino);
    if (Inode* n = inodes_.find(ino)) n->materialized = false;
  });
  if (parentState) {
    HG_RETURN_IF_ERROR(change.markMaterialized(*parentState, inode->parent, inode->name));
  }
  if (std::optional<Bytes> saved = inodes_.takeSource(ino)) {
    Bytes src = std::move(*saved);
    change.onUndo([this, ino, src]() REQUIRES(inodes_.mutex()) { inodes_.setSource(ino, src); });
  }
  return result;
}

Result<DirState*> FileSystem::changeableParentLocked(InodeNumber parent, OverlayChange& change) {
  if (!overlay_) return readOnly().takeError();
  const Inode* dir = inodes_.get(parent);
  if (!dir) return notFound("unknown inode");
  if (!S_ISDIR(dir->mode)) return errnoError(ENOTDIR, "not a directory");
  if (!dir->parent.valid() && parent != kRootInode) return notFound("directory was removed");
  return materializeDirLocked(parent, change);
}

// The copy happens in three steps, so that neither the blob read nor the
// overlay file's write holds the namespace lock:
//  1. under the lock (shared): the inode's revision path and file node;
//  2. without it: the blob, written to the inode's overlay file;
//  3. under the lock (exclusive): if the inode is still there with the same
//     file node, the parent directories are materialized and the change
//     committed; if it was forgotten meanwhile, the copy is discarded; if
//     its node changed, the copy is discarded and made again.
// The claim keeps other copies of the same file out during all three.
Result<std::shared_ptr<OverlayFile>> FileSystem::materializeFile(InodeNumber ino, bool empty) {
  if (!overlay_) return readOnly().takeError();
  MaterializeClaim claim(*this, ino);
  while (true) {
    HG_ASSIGN_OR_RETURN(std::optional<std::shared_ptr<OverlayFile>> file,
                        copyToOverlay(ino, empty));
    if (file) return std::move(*file);
  }
}

Result<std::optional<std::shared_ptr<OverlayFile>>> FileSystem::copyToOverlay(InodeNumber ino,
                                                                              bool empty) {
  HG_ASSIGN_OR_RETURN(ContentSource from, contentSource(ino, !empty));
  if (from.materialized) {
    if (from.file) return std::optional(std::move(from.file));
    HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, openFile(ino));
    if (!file) return std::optional<std::shared_ptr<OverlayFile>>();  // dematerialized: again
    return std::optional(std::move(file));
  }
  if (from.parent.valid()) warmForChange(from.parent);
  std::shared_ptr<const Bytes> blob;
  if (!empty) {
    HG_ASSIGN_OR_RETURN(blob, objects_->blob(from.source, from.id));
  }
  HG_ASSIGN_OR_RETURN(int fd,
                      overlay_->createFileWith(ino.value(), blob ? ByteView(*blob) : ByteView()));
  return commitCopy(ino, from.id, std::make_shared<OverlayFile>(fd, openFiles_));
}

Result<std::optional<std::shared_ptr<OverlayFile>>> FileSystem::commitCopy(
    InodeNumber ino, const hg::Node& id, std::shared_ptr<OverlayFile> file) {
  FileReaper reaper(remover_);  // after the lock: a discarded copy
  ChangeMark mark(*this);
  WriterLock lock(inodes_.mutex());
  Inode* inode = inodes_.find(ino);
  if (inode && inode->materialized) {
    // Only the claimant materializes a file, and it holds the claim.
    return corrupt("inode " + std::to_string(ino.value()) + " was copied into the overlay twice");
  }
  OverlayChange change(*overlay_, reaper);
  change.createdFile(ino);
  if (!inode) return notFound("unknown inode");  // forgotten meanwhile
  if (inode->id != id) return std::optional<std::shared_ptr<OverlayFile>>();
  if (inode->parent.valid()) {
    HG_ASSIGN_OR_RETURN(DirState * parent, materializeDirLocked(inode->parent, change));
    inode = inodes_.find(ino);
    HG_RETURN_IF_ERROR(change.markMaterialized(*parent, inode->parent, inode->name));
  }
  HG_RETURN_IF_ERROR(change.commit());
  inode->materialized = true;
  Materialized& m = inodes_.materializedState(ino);
  m.uid = options_.uid;
  m.gid = options_.gid;
  if (openFiles_ < 4096) m.file = file;
  inodes_.takeSource(ino);
  return std::optional(std::move(file));
}

Result<std::shared_ptr<OverlayFile>> FileSystem::openFile(InodeNumber ino) {
  {
    ReaderLock lock(inodes_.mutex());
    const Materialized* m = inodes_.materialized(ino);
    if (m && m->file) return m->file;
  }
  auto fd = overlay_->openFile(ino.value());
  if (!fd.ok()) {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    // Given back its revision's identity meanwhile: no overlay file.
    if (!inode->materialized) return std::shared_ptr<OverlayFile>();
    return std::move(fd).takeError();
  }
  // Declared before the lock: a file that loses the race below closes after it.
  auto file = std::make_shared<OverlayFile>(*fd, openFiles_);
  WriterLock lock(inodes_.mutex());
  const Inode* inode = inodes_.get(ino);
  if (!inode) return notFound("unknown inode");
  // Given back its revision's identity meanwhile (dematerialize.cpp): the
  // file opened holds the same bytes; a reader may use it, nothing keeps it.
  // (A writer never gets here for such a file: it holds the claim.)
  if (!inode->materialized) return file;
  Materialized& m = inodes_.materializedState(ino);
  if (m.file) return m.file;
  // Keep descriptors for the files being written, within a budget.
  if (openFiles_ < 4096) m.file = file;
  return file;
}

}  // namespace hgvfs::fs
