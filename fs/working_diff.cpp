// FileSystem::diff: what differs between the mount and a revision's tree.
//
// Walks materialized directories from the root against the revision's
// trees. A directory that is not materialized is compared tree to tree
// (store/tree_diff.h), which skips equal subtrees without loading them; an
// unmaterialized file is equal when its file node is. A materialized file is
// compared by kind and exec bit, then size, then bytes; the answer is kept
// per overlay file (by its size, mtime and ctime) so the next status reads
// nothing.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"
#include "store/tree_diff.h"

namespace hgvfs::fs {

struct FileSystem::DiffContext {
  const DiffOptions& options;
  WorkingDiff out;

  // An untracked path: listed as added (or ignored, when asked).
  void addedPath(const Bytes& path) {
    if (options.ignored && options.ignored(path)) {
      if (options.listIgnored) out.addedIgnored.push_back(path);
      return;
    }
    out.added.push_back(path);
  }
  // Whether to descend into an untracked directory.
  bool enterUntracked(const Bytes& path) {
    return options.listIgnored || !options.ignored || !options.ignored(path);
  }
};

namespace {

Bytes join(const Bytes& dir, ByteView name) {
  return dir.empty() ? Bytes(name) : dir + "/" + Bytes(name);
}

bool isFileMode(uint32_t mode) { return S_ISREG(mode) || S_ISLNK(mode); }

bool sameKind(uint32_t mode, store::EntryKind kind) {
  switch (kind) {
    case store::EntryKind::kSymlink:
      return S_ISLNK(mode);
    case store::EntryKind::kExecutable:
      return S_ISREG(mode) && (mode & S_IXUSR);
    case store::EntryKind::kRegular:
      return S_ISREG(mode) && !(mode & S_IXUSR);
    case store::EntryKind::kDirectory:
      return S_ISDIR(mode);
  }
  return false;
}

}  // namespace

hg::Status FileSystem::listTree(const store::TreeId& tree, const Bytes& path,
                                std::vector<Bytes>& out) {
  HG_ASSIGN_OR_RETURN(auto t, treeOf(tree.raw()));
  for (const auto& e : t->entries()) {
    Bytes child = join(path, e.name);
    if (e.isDirectory()) {
      HG_RETURN_IF_ERROR(listTree(e.treeId(), child, out));
    } else {
      out.push_back(std::move(child));
    }
  }
  return hg::okStatus();
}

hg::Status FileSystem::listOnlyInMountLocked(const OverlayEntry& entry, const Bytes& path,
                                             DiffContext& ctx) {
  if (!S_ISDIR(entry.mode)) {
    if (isFileMode(entry.mode)) ctx.addedPath(path);
    return hg::okStatus();
  }
  if (!ctx.enterUntracked(path)) return hg::okStatus();
  if (!entry.materialized) {
    std::vector<Bytes> files;
    HG_RETURN_IF_ERROR(listTree(store::TreeId(entry.id), path, files));
    for (const auto& f : files) ctx.addedPath(f);
    return hg::okStatus();
  }
  HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(entry.ino));
  // A nested repository (a directory holding a .hg directory) is not part
  // of this working copy: hg shows nothing of it.
  if (auto* nested = dir->find(".hg"); nested && S_ISDIR(nested->rec.mode)) {
    return hg::okStatus();
  }
  for (const auto& [name, e] : dir->entries) {
    HG_RETURN_IF_ERROR(listOnlyInMountLocked(e.rec, join(path, name), ctx));
  }
  return hg::okStatus();
}

hg::Result<bool> FileSystem::sameFileLocked(const OverlayEntry& mine, const store::TreeEntry& base,
                                            const Bytes& path) {
  if (!sameKind(mine.mode, base.kind)) return false;
  if (!mine.materialized) {
    if (mine.id == base.id) return true;
    // Another file revision may still hold the same bytes.
    HG_ASSIGN_OR_RETURN(uint64_t a, objects_->fileSize(mine.source, mine.id));
    HG_ASSIGN_OR_RETURN(uint64_t b, objects_->fileSize(path, base.id));
    if (a != b) return false;
    HG_ASSIGN_OR_RETURN(auto blobA, objects_->blob(mine.source, mine.id));
    HG_ASSIGN_OR_RETURN(auto blobB, objects_->blob(path, base.id));
    return *blobA == *blobB;
  }
  struct stat st {};
  if (::stat(overlay_->filePath(mine.ino).c_str(), &st) != 0) {
    int err = errno;
    return hg::ioError(err, "cannot stat overlay file", overlay_->filePath(mine.ino));
  }
  auto cached = comparisons_.find(mine.ino);
  if (cached != comparisons_.end()) {
    const Comparison& c = cached->second;
    if (c.size == st.st_size && c.mtime.tv_sec == st.st_mtim.tv_sec &&
        c.mtime.tv_nsec == st.st_mtim.tv_nsec && c.ctime.tv_sec == st.st_ctim.tv_sec &&
        c.ctime.tv_nsec == st.st_ctim.tv_nsec && c.base == base.id) {
      return c.equal;
    }
  }
  HG_ASSIGN_OR_RETURN(uint64_t baseSize, objects_->fileSize(path, base.id));
  bool equal = false;
  if (baseSize == static_cast<uint64_t>(st.st_size)) {
    HG_ASSIGN_OR_RETURN(auto blob, objects_->blob(path, base.id));
    HG_ASSIGN_OR_RETURN(int fd, overlay_->openFile(mine.ino));
    Bytes bytes(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    equal = done == bytes.size() && bytes == *blob;
  }
  comparisons_[mine.ino] = Comparison{st.st_size, st.st_mtim, st.st_ctim, base.id, equal};
  return equal;
}

hg::Status FileSystem::diffSubtrees(const std::optional<store::TreeId>& base,
                                    const store::TreeId& mine, const Bytes& mineSource,
                                    const Bytes& path, DiffContext& ctx) {
  hg::Status inner = hg::okStatus();
  // Untracked directories below: their files are added unless ignored.
  auto visit = [&](const store::TreeChange& change) {
    if (!inner.ok()) return;
    switch (change.kind) {
      case store::TreeChange::kAdded:
        ctx.addedPath(change.path);
        break;
      case store::TreeChange::kRemoved:
        ctx.out.removed.push_back(change.path);
        break;
      case store::TreeChange::kModified: {
        OverlayEntry mineEntry;
        mineEntry.mode = change.after->kind == store::EntryKind::kSymlink      ? (S_IFLNK | 0777)
                         : change.after->kind == store::EntryKind::kExecutable ? (S_IFREG | 0755)
                                                                               : (S_IFREG | 0644);
        mineEntry.id = change.after->id;
        // The mount's file is read where it lives in its own revision.
        mineEntry.source = mineSource + change.path.substr(path.size());
        auto same = sameFileLocked(mineEntry, *change.before, change.path);
        if (!same.ok()) {
          inner = std::move(same).takeError();
          return;
        }
        if (!*same) ctx.out.modified.push_back(change.path);
        break;
      }
    }
  };
  HG_RETURN_IF_ERROR(store::diffTrees(*objects_, base, mine, path, visit));
  return inner;
}

hg::Status FileSystem::diffDirLocked(uint64_t ino, const Bytes& path,
                                     std::optional<store::TreeId> base, DiffContext& ctx) {
  HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(ino));
  // Iterated in place: the walk below changes no entry list (it may load
  // other directories, which does not touch this one).
  const auto& mine = dir->entries;
  std::shared_ptr<const store::Tree> baseTree;
  if (base) {
    HG_ASSIGN_OR_RETURN(baseTree, treeOf(base->raw()));
  }
  static const std::vector<store::TreeEntry> kNone;
  const auto& theirs = baseTree ? baseTree->entries() : kNone;
  auto i = mine.begin();
  size_t j = 0;
  while (i != mine.end() || j < theirs.size()) {
    int order = i == mine.end()      ? 1
                : j == theirs.size() ? -1
                                     : ByteView(i->first).compare(theirs[j].name);
    if (order < 0) {  // only in the mount
      const Bytes& name = i->first;
      const OverlayEntry& rec = i->second.rec;
      ++i;
      HG_RETURN_IF_ERROR(listOnlyInMountLocked(rec, join(path, name), ctx));
      continue;
    }
    if (order > 0) {  // only in the revision
      const store::TreeEntry& t = theirs[j++];
      Bytes child = join(path, t.name);
      if (t.isDirectory()) {
        HG_RETURN_IF_ERROR(listTree(t.treeId(), child, ctx.out.removed));
      } else {
        ctx.out.removed.push_back(child);
      }
      continue;
    }
    const Bytes& name = i->first;
    const OverlayEntry& rec = i->second.rec;
    ++i;
    const store::TreeEntry& t = theirs[j++];
    bool mineDir = S_ISDIR(rec.mode);
    if (!rec.materialized && rec.id == t.id && sameKind(rec.mode, t.kind)) continue;  // unchanged
    Bytes child = join(path, name);
    if (mineDir && t.isDirectory()) {
      if (rec.materialized) {
        HG_RETURN_IF_ERROR(diffDirLocked(rec.ino, child, t.treeId(), ctx));
      } else if (rec.id != t.id) {
        HG_RETURN_IF_ERROR(diffSubtrees(t.treeId(), store::TreeId(rec.id), rec.source, child, ctx));
      }
    } else if (!mineDir && !t.isDirectory()) {
      if (!isFileMode(rec.mode)) {  // a fifo or socket where the revision has a file
        ctx.out.removed.push_back(child);
        continue;
      }
      HG_ASSIGN_OR_RETURN(bool same, sameFileLocked(rec, t, child));
      if (!same) ctx.out.modified.push_back(child);
    } else if (mineDir) {  // a directory where the revision has a file
      ctx.out.removed.push_back(child);
      HG_RETURN_IF_ERROR(listOnlyInMountLocked(rec, child, ctx));
    } else {  // a file where the revision has a directory
      if (isFileMode(rec.mode)) ctx.addedPath(child);
      HG_RETURN_IF_ERROR(listTree(t.treeId(), child, ctx.out.removed));
    }
  }
  return hg::okStatus();
}

hg::Result<WorkingDiff> FileSystem::diff(const std::optional<store::TreeId>& revision,
                                         const DiffOptions& options) {
  DiffContext ctx{options, {}};
  std::unique_lock lock(mutex_);
  Inode* root = findLocked(kRootInode.value());
  if (root->materialized) {
    HG_RETURN_IF_ERROR(diffDirLocked(kRootInode.value(), Bytes(), revision, ctx));
  } else if (!revision || store::TreeId(root->id) != *revision) {
    HG_RETURN_IF_ERROR(diffSubtrees(revision, store::TreeId(root->id), Bytes(), Bytes(), ctx));
  }
  lock.unlock();
  // A file-for-directory swap emits paths out of order; every list sorted.
  for (auto* list : {&ctx.out.modified, &ctx.out.added, &ctx.out.addedIgnored, &ctx.out.removed}) {
    std::sort(list->begin(), list->end());
  }
  return std::move(ctx.out);
}

hg::Result<bool> FileSystem::fileExists(ByteView path) {
  std::unique_lock lock(mutex_);
  uint64_t dirIno = kRootInode.value();
  std::optional<hg::Node> treeId;  // set while walking an unmaterialized subtree
  {
    Inode* root = findLocked(dirIno);
    if (!root->materialized) treeId = root->id;
  }
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    ByteView name = path.substr(start, slash == ByteView::npos ? ByteView::npos : slash - start);
    bool last = slash == ByteView::npos;
    if (name.empty()) return false;
    if (treeId) {
      HG_ASSIGN_OR_RETURN(auto tree, treeOf(*treeId));
      const store::TreeEntry* e = tree->find(name);
      if (!e) return false;
      if (last) return !e->isDirectory();
      if (!e->isDirectory()) return false;
      treeId = e->id;
    } else {
      HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(dirIno));
      DirState::Entry* e = dir->find(name);
      if (!e) return false;
      if (last) return isFileMode(e->rec.mode);
      if (!S_ISDIR(e->rec.mode)) return false;
      if (e->rec.materialized) {
        dirIno = e->rec.ino;
      } else {
        treeId = e->rec.id;
      }
    }
    start = slash + 1;
  }
}

}  // namespace hgvfs::fs
