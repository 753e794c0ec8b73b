// FileSystem::dematerializeUnchanged: after the working copy's parent moved
// (a commit), materialized files whose bytes equal the new parent's become
// that revision's files again.
//
// Three steps, as for a copy into the overlay (materialize.cpp):
//  1. under the lock (shared): the walk of the materialized directories
//     against the base's trees, naming each materialized regular file
//     whose mode and owner are exactly what an unmaterialized entry of the
//     base's kind would show;
//  2. without it: each candidate's overlay file compared with the base's
//     blob (sameFile, whose answer is kept by the overlay file's stat), with
//     the stat taken before the comparison; the candidates' materialization
//     claims are taken, so no copy into the overlay runs for them;
//  3. under the lock (exclusive): a candidate whose entry, inode and
//     overlay file (the same stat) did not change, and whose overlay file
//     nobody else holds open, gets a record naming the base's file node;
//     the records are committed in one transaction, then the memory follows
//     and the overlay files are removed (under the lock: the inode number
//     may be materialized again right after, and its new overlay file must
//     not be the one removed).
// A killed daemon between the commit and the removals leaves overlay files
// no entry names, which Overlay::check() removes at the next mount.

#include <sys/stat.h>

#include <unordered_set>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"

namespace hgvfs::fs {

struct FileSystem::Demotion {
  InodeNumber dir;
  Bytes name;
  Bytes path;
  OverlayEntry mine;
  store::TreeEntry base;
  struct stat before {};
};

Status FileSystem::findDemotionsLocked(InodeNumber ino, const Bytes& path,
                                       const store::TreeId& base, std::vector<Demotion>& out) {
  const DirState* dir = cachedDirLocked(ino);
  if (!dir) return okStatus();  // not in memory: left as it is
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(base.raw()));
  for (const auto& [name, entry] : dir->entries) {
    const OverlayEntry& rec = entry.rec;
    if (!rec.materialized) continue;
    const store::TreeEntry* t = tree->find(name);
    if (!t) continue;
    Bytes child = path.empty() ? name : path + "/" + name;
    if (S_ISDIR(rec.mode)) {
      if (t->isDirectory()) {
        HG_RETURN_IF_ERROR(findDemotionsLocked(InodeNumber(rec.ino), child, t->treeId(), out));
      }
      continue;
    }
    if (!S_ISREG(rec.mode) || t->isDirectory() || t->kind == store::EntryKind::kSymlink) continue;
    if (rec.mode != modeOf(t->kind) || rec.uid != options_.uid || rec.gid != options_.gid) continue;
    if (overlay_->hasXattrs(rec.ino)) continue;             // they live with its overlay file
    if (inodes_.linkNames(InodeNumber(rec.ino))) continue;  // its names share one file
    out.push_back(Demotion{ino, name, std::move(child), rec, *t, {}});
  }
  return okStatus();
}

Result<size_t> FileSystem::dematerializeUnchanged(const store::TreeId& base) {
  if (!overlay_) return size_t{0};
  std::vector<Demotion> found;
  {
    ReaderLock lock(inodes_.mutex());
    // The root stays materialized whatever it holds: a remount shows the
    // mounted revision under it unless the overlay says otherwise.
    if (!inodes_.get(kRootInode)->materialized) return size_t{0};
    HG_RETURN_IF_ERROR(findDemotionsLocked(kRootInode, Bytes(), base, found));
  }
  std::vector<Demotion> equal;
  for (Demotion& d : found) {
    if (::stat(overlay_->filePath(d.mine.ino).c_str(), &d.before) != 0) continue;
    auto same = sameFile(d.mine, d.base, d.path);
    if (!same.ok() || !*same) continue;
    equal.push_back(std::move(d));
  }
  // Awaited before the namespace lock, as materializeFile does.
  std::vector<std::unique_ptr<MaterializeClaim>> claims;
  claims.reserve(equal.size());
  for (const Demotion& d : equal) {
    claims.push_back(std::make_unique<MaterializeClaim>(*this, InodeNumber(d.mine.ino)));
  }
  std::vector<uint64_t> demoted;
  {
    FileReaper reaper(remover_);  // closes the overlay files after the lock
    ChangeMark mark(*this);
    WriterLock lock(inodes_.mutex());
    HG_ASSIGN_OR_RETURN(demoted, demoteLocked(equal, reaper));
    // Then the directories that hold nothing but base's entries.
    OverlayBatch batch;
    std::vector<DirDemotion> dirs;
    HG_ASSIGN_OR_RETURN(bool rootEqual,
                        findEqualDirsLocked(kRootInode, Bytes(), base, batch, dirs));
    (void)rootEqual;  // the root stays materialized
    if (!dirs.empty()) {
      HG_RETURN_IF_ERROR(overlay_->commit(batch));
      // Parents after children, as found: each entry as committed.
      for (const DirDemotion& d : dirs) applyDirDemotionLocked(d);
    }
  }
  // A leaf lock, never held with the namespace lock.
  MutexLock comparisons(comparisonsMutex_);
  for (uint64_t ino : demoted) comparisons_.erase(ino);
  return demoted.size();
}

Result<std::vector<uint64_t>> FileSystem::demoteLocked(const std::vector<Demotion>& equal,
                                                       FileReaper& reaper) {
  OverlayBatch batch;
  std::vector<std::pair<const Demotion*, OverlayEntry>> done;
  for (const Demotion& d : equal) {
    const DirState* dir = cachedDirLocked(d.dir);
    const DirState::Entry* e = dir ? dir->find(d.name) : nullptr;
    if (!e || e->rec.ino != d.mine.ino || !e->rec.materialized || e->rec.mode != d.mine.mode ||
        e->rec.uid != d.mine.uid || e->rec.gid != d.mine.gid) {
      continue;
    }
    InodeNumber ino(d.mine.ino);
    if (const Inode* n = inodes_.get(ino)) {
      if (!n->materialized || n->parent != d.dir) continue;
      const Materialized* m = inodes_.materialized(ino);
      if (m && m->file) {
        if (m->file.use_count() != 1) continue;  // a reader or writer holds it
      } else if (openFiles_.load() != 0) {
        // An open overlay file is kept in its inode's state unless the
        // budget of open files was reached; a holder of one that was not
        // kept cannot be seen, so with any file open, leave it.
        continue;
      }
    }
    struct stat now {};
    if (::stat(overlay_->filePath(d.mine.ino).c_str(), &now) != 0 ||
        now.st_size != d.before.st_size || now.st_mtim.tv_sec != d.before.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != d.before.st_mtim.tv_nsec ||
        now.st_ctim.tv_sec != d.before.st_ctim.tv_sec ||
        now.st_ctim.tv_nsec != d.before.st_ctim.tv_nsec) {
      continue;  // written since it was compared
    }
    OverlayEntry rec = d.mine;
    rec.materialized = false;
    rec.id = d.base.id;
    rec.source = d.path;
    batch.putEntry(d.dir.value(), d.name, rec);
    done.emplace_back(&d, std::move(rec));
  }
  std::vector<uint64_t> demoted;
  if (done.empty()) return demoted;
  HG_RETURN_IF_ERROR(overlay_->commit(batch));
  for (auto& [d, rec] : done) {
    InodeNumber ino(rec.ino);
    if (DirState* dir = inodes_.materializedState(d->dir).dir.get()) {
      dir->entries[d->name].rec = rec;  // found above; the cookie stays
    }
    if (Inode* n = inodes_.find(ino)) {
      n->materialized = false;
      n->id = rec.id;
      n->size = static_cast<uint64_t>(d->before.st_size);
      if (const Materialized* m = inodes_.materialized(ino)) reaper.close(m->file);
      inodes_.dropMaterialized(ino);
      // Its parent is materialized: it cannot give the revision path.
      inodes_.setSource(ino, rec.source);
    }
    overlay_->removeFile(rec.ino);
    demoted.push_back(rec.ino);
  }
  return demoted;
}

// Depth first, so that a directory is judged after its subdirectories: a
// materialized directory (not the root) whose header is what an
// unmaterialized directory shows and whose entries are exactly base's
// (names, kinds and modes, owners, ids; none materialized, counting the
// subdirectories found equal already) is recorded in its parent as base's
// tree, and its own records go. Nothing changes in memory here: the caller
// commits `batch`, then applies `out`.
Result<bool> FileSystem::findEqualDirsLocked(InodeNumber ino, const Bytes& path,
                                             const store::TreeId& base, OverlayBatch& batch,
                                             std::vector<DirDemotion>& out) {
  const DirState* dir = cachedDirLocked(ino);
  if (!dir) return false;  // not in memory: left as it is
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(base.raw()));
  std::unordered_set<uint64_t> equalChildren;
  for (const auto& [name, entry] : dir->entries) {
    const OverlayEntry& rec = entry.rec;
    if (!rec.materialized || !S_ISDIR(rec.mode)) continue;
    const store::TreeEntry* t = tree->find(name);
    if (!t || !t->isDirectory()) continue;
    Bytes child = path.empty() ? name : path + "/" + name;
    HG_ASSIGN_OR_RETURN(bool equal,
                        findEqualDirsLocked(InodeNumber(rec.ino), child, t->treeId(), batch, out));
    if (!equal) continue;
    OverlayEntry now = rec;
    now.materialized = false;
    now.id = t->id;
    now.source = child;
    batch.putEntry(ino.value(), name, now);
    out.push_back(DirDemotion{ino, name, std::move(now)});
    equalChildren.insert(rec.ino);
  }
  if (ino == kRootInode) return false;
  const OverlayDirHeader& h = dir->header;
  if (h.mode != (S_IFDIR | 0755) || h.uid != options_.uid || h.gid != options_.gid) return false;
  if (overlay_->hasXattrs(ino.value())) return false;  // they live with its record
  const auto& theirs = tree->entries();
  if (theirs.size() != dir->entries.size()) return false;
  size_t j = 0;
  for (const auto& [name, entry] : dir->entries) {
    const OverlayEntry& rec = entry.rec;
    const store::TreeEntry& t = theirs[j++];
    bool materialized = rec.materialized && !equalChildren.count(rec.ino);
    bool sameId = equalChildren.count(rec.ino) ? true : rec.id == t.id;
    if (materialized || name != t.name || !sameId || rec.mode != modeOf(t.kind) ||
        rec.uid != options_.uid || rec.gid != options_.gid) {
      return false;
    }
  }
  batch.removeDirectory(ino.value());
  return true;
}

void FileSystem::applyDirDemotionLocked(const DirDemotion& d) {
  if (DirState* parent = inodes_.materializedState(d.parent).dir.get()) {
    if (DirState::Entry* e = parent->find(d.name)) e->rec = d.rec;
  }
  InodeNumber ino(d.rec.ino);
  if (Inode* n = inodes_.find(ino)) {
    n->materialized = false;
    n->id = d.rec.id;
    // Its parent is materialized: it cannot give the revision path.
    inodes_.setSource(ino, d.rec.source);
  }
  inodes_.dropMaterialized(ino);
}

}  // namespace hgvfs::fs
