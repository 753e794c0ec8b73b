// FileSystem::diff: what differs between the mount and a revision's tree.
//
// Walks materialized directories from the root against the revision's
// trees. A directory that is not materialized is compared tree to tree
// (store/tree_diff.h), which skips equal subtrees without loading them; an
// unmaterialized file is equal when its file node is. A materialized file is
// compared by kind and exec bit, then size, then bytes; the answer is kept
// per overlay file (by its size, mtime and ctime) so the next status reads
// nothing.
//
// Two steps, so that no blob or overlay file is read under the namespace
// lock:
//  1. the plan (planLocked), under the lock held shared: the walk of the
//     materialized directories, in memory, against the revision's trees.
//     What names and ids tell goes straight to the answer; what needs
//     reading is left as work: files to compare, unmaterialized subtrees to
//     diff, whole subtrees to list. The names are thus those of one instant.
//  2. the work (runPlan), without the lock. An overlay file the plan named
//     stays on disk until the diff ends even if it is unlinked meanwhile
//     (FileRemover::Walk); its bytes are those of when it is read.
// A materialized directory not in memory (after a remount, or dropped when
// the kernel forgot it) makes the plan incomplete: then every materialized
// directory is read into memory under the lock held exclusively, and the
// plan is made again under it.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"
#include "store/tree_diff.h"

namespace hgvfs::fs {

struct FileSystem::DiffPlan {
  explicit DiffPlan(const DiffOptions& o) : options(o) {}

  const DiffOptions& options;
  WorkingDiff out;
  bool incomplete = false;  // a materialized directory was not in memory

  // The work left for runPlan.
  struct FileComparison {
    OverlayEntry mine;
    store::TreeEntry base;
    Bytes path;
  };
  struct SubtreeDiff {
    std::optional<store::TreeId> base;
    store::TreeId mine;
    Bytes mineSource;  // where `mine` is in its own revision
    Bytes path;
  };
  struct TreeListing {  // every file below `path`: added (untracked) or removed
    store::TreeId tree;
    Bytes path;
    bool added;
  };
  std::vector<FileComparison> comparisons;
  std::vector<SubtreeDiff> subtrees;
  std::vector<TreeListing> listings;

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

Result<WorkingDiff> FileSystem::diff(const std::optional<store::TreeId>& revision,
                                     const DiffOptions& options) {
  FileRemover::Walk walk(remover_);  // before the plan: see above
  std::optional<DiffPlan> plan(std::in_place, options);
  {
    ReaderLock lock(inodes_.mutex());
    HG_RETURN_IF_ERROR(planLocked(revision, *plan));
  }
  if (plan->incomplete) {
    plan.emplace(options);
    WriterLock lock(inodes_.mutex());
    if (inodes_.get(kRootInode)->materialized) {
      HG_RETURN_IF_ERROR(loadMaterializedDirsLocked(kRootInode));
    }
    HG_RETURN_IF_ERROR(planLocked(revision, *plan));
  }
  HG_RETURN_IF_ERROR(runPlan(*plan));
  // A file-for-directory swap or a name sorting before '/' emits paths out
  // of order; every list sorted (checked first: mostly they are).
  WorkingDiff& out = plan->out;
  for (auto* list : {&out.modified, &out.added, &out.addedIgnored, &out.removed}) {
    if (!std::is_sorted(list->begin(), list->end())) std::sort(list->begin(), list->end());
  }
  return std::move(out);
}

Status FileSystem::loadMaterializedDirsLocked(InodeNumber dir) {
  HG_ASSIGN_OR_RETURN(DirState * state, loadedDirLocked(dir));
  std::vector<InodeNumber> below;
  for (const auto& [name, e] : state->entries) {
    if (e.rec.materialized && S_ISDIR(e.rec.mode)) below.push_back(InodeNumber(e.rec.ino));
  }
  for (InodeNumber sub : below) HG_RETURN_IF_ERROR(loadMaterializedDirsLocked(sub));
  return okStatus();
}

Status FileSystem::planLocked(const std::optional<store::TreeId>& revision, DiffPlan& plan) {
  const Inode* root = inodes_.get(kRootInode);
  if (root->materialized) return planDirLocked(kRootInode, Bytes(), revision, plan);
  if (!revision || store::TreeId(root->id) != *revision) {
    plan.subtrees.push_back({revision, store::TreeId(root->id), Bytes(), Bytes()});
  }
  return okStatus();
}

Status FileSystem::planOnlyInMountLocked(const OverlayEntry& entry, const Bytes& path,
                                         DiffPlan& plan) {
  if (!S_ISDIR(entry.mode)) {
    if (isFileMode(entry.mode)) plan.addedPath(path);
    return okStatus();
  }
  if (!plan.enterUntracked(path)) return okStatus();
  if (!entry.materialized) {
    plan.listings.push_back({store::TreeId(entry.id), path, true});
    return okStatus();
  }
  const DirState* dir = cachedDirLocked(InodeNumber(entry.ino));
  if (!dir) {
    plan.incomplete = true;
    return okStatus();
  }
  // A nested repository (a directory holding a .hg directory) is not part
  // of this working copy: hg shows nothing of it.
  if (const auto* nested = dir->find(".hg"); nested && S_ISDIR(nested->rec.mode)) {
    return okStatus();
  }
  for (const auto& [name, e] : dir->entries) {
    HG_RETURN_IF_ERROR(planOnlyInMountLocked(e.rec, join(path, name), plan));
  }
  return okStatus();
}

Status FileSystem::planDirLocked(InodeNumber ino, const Bytes& path,
                                 std::optional<store::TreeId> base, DiffPlan& plan) {
  const DirState* dir = cachedDirLocked(ino);
  if (!dir) {
    plan.incomplete = true;
    return okStatus();
  }
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
      HG_RETURN_IF_ERROR(planOnlyInMountLocked(rec, join(path, name), plan));
      continue;
    }
    if (order > 0) {  // only in the revision
      const store::TreeEntry& t = theirs[j++];
      Bytes child = join(path, t.name);
      if (t.isDirectory()) {
        plan.listings.push_back({t.treeId(), std::move(child), false});
      } else {
        plan.out.removed.push_back(std::move(child));
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
        HG_RETURN_IF_ERROR(planDirLocked(InodeNumber(rec.ino), child, t.treeId(), plan));
      } else if (rec.id != t.id) {
        plan.subtrees.push_back({t.treeId(), store::TreeId(rec.id), rec.source, child});
      }
    } else if (!mineDir && !t.isDirectory()) {
      if (!isFileMode(rec.mode)) {  // a fifo or socket where the revision has a file
        plan.out.removed.push_back(child);
      } else if (!sameKind(rec.mode, t.kind)) {
        plan.out.modified.push_back(child);
      } else {
        plan.comparisons.push_back({rec, t, child});
      }
    } else if (mineDir) {  // a directory where the revision has a file
      plan.out.removed.push_back(child);
      HG_RETURN_IF_ERROR(planOnlyInMountLocked(rec, child, plan));
    } else {  // a file where the revision has a directory
      if (isFileMode(rec.mode)) plan.addedPath(child);
      plan.listings.push_back({t.treeId(), child, false});
    }
    if (plan.incomplete) return okStatus();
  }
  return okStatus();
}

Status FileSystem::runPlan(DiffPlan& plan) {
  for (const DiffPlan::TreeListing& listing : plan.listings) {
    std::vector<Bytes> files;
    HG_RETURN_IF_ERROR(listTree(listing.tree, listing.path, files));
    for (Bytes& f : files) {
      if (listing.added) {
        plan.addedPath(f);
      } else {
        plan.out.removed.push_back(std::move(f));
      }
    }
  }
  for (const DiffPlan::SubtreeDiff& s : plan.subtrees) {
    HG_RETURN_IF_ERROR(diffSubtrees(s.base, s.mine, s.mineSource, s.path, plan));
  }
  for (const DiffPlan::FileComparison& c : plan.comparisons) {
    HG_ASSIGN_OR_RETURN(bool same, sameFile(c.mine, c.base, c.path));
    if (!same) plan.out.modified.push_back(c.path);
  }
  return okStatus();
}

Status FileSystem::listTree(const store::TreeId& tree, const Bytes& path, std::vector<Bytes>& out) {
  return objects_->listFiles(tree, path, out);
}

Result<bool> FileSystem::sameFile(const OverlayEntry& mine, const store::TreeEntry& base,
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
    return ioError(err, "cannot stat overlay file", overlay_->filePath(mine.ino));
  }
  {
    MutexLock lock(comparisonsMutex_);
    auto cached = comparisons_.find(mine.ino);
    if (cached != comparisons_.end()) {
      const Comparison& c = cached->second;
      if (c.size == st.st_size && c.mtime.tv_sec == st.st_mtim.tv_sec &&
          c.mtime.tv_nsec == st.st_mtim.tv_nsec && c.ctime.tv_sec == st.st_ctim.tv_sec &&
          c.ctime.tv_nsec == st.st_ctim.tv_nsec && c.base == base.id) {
        return c.equal;
      }
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
  MutexLock lock(comparisonsMutex_);
  comparisons_[mine.ino] = Comparison{st.st_size, st.st_mtim, st.st_ctim, base.id, equal};
  return equal;
}

Status FileSystem::diffSubtrees(const std::optional<store::TreeId>& base, const store::TreeId& mine,
                                const Bytes& mineSource, const Bytes& path, DiffPlan& plan) {
  Status inner = okStatus();
  // Untracked directories below: their files are added unless ignored.
  auto visit = [&](const store::TreeChange& change) {
    if (!inner.ok()) return;
    switch (change.kind) {
      case store::TreeChange::kAdded:
        plan.addedPath(change.path);
        break;
      case store::TreeChange::kRemoved:
        plan.out.removed.push_back(change.path);
        break;
      case store::TreeChange::kModified: {
        OverlayEntry mineEntry;
        mineEntry.mode = modeOf(change.after->kind);
        mineEntry.id = change.after->id;
        // The mount's file is read where it lives in its own revision.
        mineEntry.source = mineSource + change.path.substr(path.size());
        auto same = sameFile(mineEntry, *change.before, change.path);
        if (!same.ok()) {
          inner = std::move(same).takeError();
          return;
        }
        if (!*same) plan.out.modified.push_back(change.path);
        break;
      }
    }
  };
  HG_RETURN_IF_ERROR(store::diffTrees(*objects_, base, mine, path, visit));
  return inner;
}

Result<bool> FileSystem::fileExists(ByteView path) {
  InodeNumber missing;
  {
    ReaderLock lock(inodes_.mutex());
    HG_ASSIGN_OR_RETURN(std::optional<bool> found, fileExistsLocked(path, missing));
    if (found) return *found;
  }
  // A directory on the way is not in memory: read it (and any below it the
  // path needs) under the exclusive lock.
  WriterLock lock(inodes_.mutex());
  while (true) {
    auto loaded = loadedDirLocked(missing);
    if (!loaded.ok()) return std::move(loaded).takeError();
    HG_ASSIGN_OR_RETURN(std::optional<bool> found, fileExistsLocked(path, missing));
    if (found) return *found;
  }
}

Result<std::optional<bool>> FileSystem::fileExistsLocked(ByteView path, InodeNumber& missing) {
  using Found = std::optional<bool>;
  InodeNumber dirIno = kRootInode;
  std::optional<hg::Node> treeId;  // set while walking an unmaterialized subtree
  if (const Inode* root = inodes_.get(kRootInode); !root->materialized) treeId = root->id;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    ByteView name = path.substr(start, slash == ByteView::npos ? ByteView::npos : slash - start);
    bool last = slash == ByteView::npos;
    if (name.empty()) return Found(false);
    if (treeId) {
      HG_ASSIGN_OR_RETURN(auto tree, treeOf(*treeId));
      const store::TreeEntry* e = tree->find(name);
      if (!e) return Found(false);
      if (last) return Found(!e->isDirectory());
      if (!e->isDirectory()) return Found(false);
      treeId = e->id;
    } else {
      const DirState* dir = cachedDirLocked(dirIno);
      if (!dir) {
        missing = dirIno;
        return Found();
      }
      const DirState::Entry* e = dir->find(name);
      if (!e) return Found(false);
      if (last) return Found(isFileMode(e->rec.mode));
      if (!S_ISDIR(e->rec.mode)) return Found(false);
      if (e->rec.materialized) {
        dirIno = InodeNumber(e->rec.ino);
      } else {
        treeId = e->rec.id;
      }
    }
    start = slash + 1;
  }
}

}  // namespace hgvfs::fs
