// FileSystem::checkout: `hg update` as a change of the mount's names, not
// a rewrite of its files.
//
// Mercurial decides what an update does, file by file (its merge actions);
// the extension hands the plain ones here: a file to get from the target
// revision, a file to remove. They are applied as a walk of the mount
// along the actions' paths, in one overlay transaction:
//  - a directory the mount still has as the source revision's tree (an
//    unmaterialized entry with that tree id), whose actions are exactly the
//    difference between the two revisions there, takes the target's tree
//    id: one record, nothing read below it;
//  - any other directory on a changed path is materialized (or is already)
//    and edited entry by entry: a got file becomes the target's
//    unmaterialized file under a new inode number, a removed one goes, and
//    a directory left empty by removals goes too (as hg's removal does);
//  - what needs the other kind of entry at a path (a directory where a file
//    is got, a file above a got path, a directory to remove) makes the
//    whole checkout refused: nothing is applied, and the caller does the
//    update through the mount as stock hg does (which may stop half-way
//    there, and must stop at the same point);
//  - a flag change on a file with its own content is left to the caller (a
//    chmod), the rest is applied.
// After the commit the memory follows: live inodes whose entry was replaced
// or removed are unlinked (a process holding one open keeps reading what
// it opened), live unmaterialized directories that took a new tree take it
// in memory too (their loaded children likewise), and the directories that
// equal the target's trees again are dematerialized in a second
// transaction. A killed daemon leaves the first transaction's result or
// nothing: one revision's names, never a mix. Kernel caches of every name
// and directory that changed are dropped once the namespace lock is let go.

#include <sys/stat.h>

#include <map>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"
#include "fs/log.h"
#include "fs/overlay_change.h"
#include "store/tree_diff.h"

namespace hgvfs::fs {

// The actions as a tree of path components.
struct FileSystem::CheckoutNode {
  std::map<Bytes, CheckoutNode, std::less<>> children;
  std::optional<CheckoutAction::Kind> action;  // on this path itself
  size_t actions = 0;                          // in this subtree, its own included
  size_t below() const { return actions - (action ? 1 : 0); }
};

struct FileSystem::CheckoutRun {
  explicit CheckoutRun(OverlayChange& c) : change(c) {}
  OverlayChange& change;
  CheckoutResult result;
  // Done after the commit, in memory.
  struct Detach {  // an entry removed
    InodeNumber ino;
    InodeNumber dir;
    Bytes name;
    OverlayEntry rec;
  };
  std::vector<Detach> detaches;
  struct Swap {
    InodeNumber ino;
    store::TreeId from;
    std::optional<store::TreeId> to;
  };
  std::vector<Swap> swaps;
  std::vector<uint64_t> dropStates;  // materialized directories gone, not live
  // Kernel caches to drop, after the lock.
  std::vector<std::pair<InodeNumber, Bytes>> entries;
  std::vector<InodeNumber> inodes;
};

namespace {

Bytes join(const Bytes& dir, ByteView name) {
  if (dir.empty()) return Bytes(name);
  Bytes out = dir;
  out.push_back('/');
  out.append(name.data(), name.size());
  return out;
}

// Every action path below `node` (its own too when `self`).
template <typename Node>
void collectPaths(const Node& node, const Bytes& path, bool self, std::vector<Bytes>& out) {
  if (self && node.action) out.push_back(path);
  for (const auto& [name, child] : node.children) collectPaths(child, join(path, name), true, out);
}

template <typename Node>
bool hasGetBelow(const Node& node) {
  for (const auto& [name, child] : node.children) {
    if ((child.action && child.action != CheckoutAction::Kind::kRemove) || hasGetBelow(child)) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<CheckoutResult> FileSystem::checkout(const std::optional<store::TreeId>& from,
                                            const std::optional<store::TreeId>& to,
                                            std::vector<CheckoutAction> actions) {
  if (!overlay_) return readOnly().takeError();
  CheckoutNode root;
  for (const CheckoutAction& a : actions) {
    ByteView rest = a.path;
    if (rest.empty()) return invalidArgument("checkout: an empty path");
    CheckoutNode* n = &root;
    ++n->actions;
    bool top = true;
    while (true) {
      size_t slash = rest.find('/');
      ByteView part = rest.substr(0, slash);
      if (!checkName(part).ok() || (top && part == ".hg")) {
        return invalidArgument("checkout: invalid path '" + printable(a.path) + "'");
      }
      top = false;
      n = &n->children[Bytes(part)];
      ++n->actions;
      if (slash == ByteView::npos) break;
      rest = rest.substr(slash + 1);
    }
    if (n->action) return invalidArgument("checkout: '" + printable(a.path) + "' given twice");
    n->action = a.kind;
  }
  // The trees the walk reads under the lock, into the store's cache first.
  HG_RETURN_IF_ERROR(store::diffTrees(*objects_, from, to, ByteView(), [](const auto&) {}));

  FileReaper reaper(remover_);
  CheckoutResult result;
  std::vector<std::pair<InodeNumber, Bytes>> entries;
  std::vector<InodeNumber> inodes;
  {
    ChangeMark mark(*this);
    WriterLock lock(inodes_.mutex());
    {
      OverlayChange change(*overlay_, reaper);
      CheckoutRun run(change);
      // The root stays materialized: its records say what a remount shows.
      HG_ASSIGN_OR_RETURN(DirState * rootDir, materializeDirLocked(kRootInode, change));
      bool removed = false;
      HG_RETURN_IF_ERROR(
          checkoutDirLocked(kRootInode, *rootDir, Bytes(), from, to, root, run, removed));
      if (!run.result.refused.empty()) {
        // Nothing applied: the change is undone as it goes out of scope.
        CheckoutResult refused;
        refused.refused = std::move(run.result.refused);
        return refused;
      }
      HG_RETURN_IF_ERROR(change.commit());
      for (const auto& d : run.detaches) unnameLocked(d.ino, d.dir, d.name, d.rec, reaper);
      for (uint64_t ino : run.dropStates) {
        if (!inodes_.get(InodeNumber(ino))) inodes_.dropMaterialized(InodeNumber(ino));
      }
      for (const auto& s : run.swaps) swapLoadedLocked(s.ino, s.from, s.to, run, reaper);
      result = std::move(run.result);
      entries = std::move(run.entries);
      inodes = std::move(run.inodes);
    }
    // Directories that hold exactly the target's entries again.
    if (to) {
      OverlayBatch batch;
      std::vector<DirDemotion> dirs;
      auto found = findEqualDirsLocked(kRootInode, Bytes(), *to, batch, dirs);
      Status committed = found.ok() ? (dirs.empty() ? okStatus() : overlay_->commit(batch))
                                    : Status(found.error());
      if (!committed.ok()) {
        // The checkout stands; the directories stay materialized.
        log().warn("checkout: directories left materialized: {}", committed.error().message());
      } else {
        for (const DirDemotion& d : dirs) applyDirDemotionLocked(d);
        result.directoriesDematerialized = dirs.size();
      }
    }
  }
  if (KernelCache* kernel = kernelCache_.load()) {
    for (InodeNumber ino : inodes) kernel->invalidateInode(ino);
    for (const auto& [parent, name] : entries) kernel->invalidateEntry(parent, name);
  }
  return result;
}

Result<bool> FileSystem::coversExactly(const CheckoutNode& node,
                                       const std::optional<store::TreeId>& from,
                                       const std::optional<store::TreeId>& to, const Bytes& path) {
  size_t matched = 0;
  bool exact = true;
  HG_RETURN_IF_ERROR(store::diffTrees(*objects_, from, to, path, [&](const store::TreeChange& c) {
    if (!exact) return;
    ByteView rest = ByteView(c.path).substr(path.empty() ? 0 : path.size() + 1);
    const CheckoutNode* n = &node;
    while (true) {
      size_t slash = rest.find('/');
      auto it = n->children.find(rest.substr(0, slash));
      if (it == n->children.end()) {
        exact = false;
        return;
      }
      n = &it->second;
      if (slash == ByteView::npos) break;
      rest = rest.substr(slash + 1);
    }
    auto want = c.kind == store::TreeChange::kRemoved ? CheckoutAction::Kind::kRemove
                                                      : CheckoutAction::Kind::kGet;
    bool same = n->action == want ||
                (want == CheckoutAction::Kind::kGet && n->action == CheckoutAction::Kind::kExec);
    if (!same) {
      exact = false;
      return;
    }
    ++matched;
  }));
  return exact && matched == node.below();
}

Status FileSystem::checkoutDirLocked(InodeNumber dirIno, DirState& dir, const Bytes& path,
                                     const std::optional<store::TreeId>& from,
                                     const std::optional<store::TreeId>& to, CheckoutNode& node,
                                     CheckoutRun& run, bool& removedBelow) {
  std::shared_ptr<const store::Tree> fromTree, toTree;
  if (from) {
    HG_ASSIGN_OR_RETURN(fromTree, treeOf(from->raw()));
  }
  if (to) {
    HG_ASSIGN_OR_RETURN(toTree, treeOf(to->raw()));
  }
  const bool live = inodes_.get(dirIno) != nullptr;
  bool changed = false;
  auto nameChanged = [&](ByteView name) {
    changed = true;
    if (live) run.entries.emplace_back(dirIno, Bytes(name));
  };
  CheckoutResult& result = run.result;
  for (auto& named : node.children) {
    const Bytes& name = named.first;
    CheckoutNode& child = named.second;
    Bytes childPath = join(path, name);
    const store::TreeEntry* fe = fromTree ? fromTree->find(name) : nullptr;
    const store::TreeEntry* te = toTree ? toTree->find(name) : nullptr;
    std::optional<store::TreeId> fromSub, toSub;
    if (fe && fe->isDirectory()) fromSub = fe->treeId();
    if (te && te->isDirectory()) toSub = te->treeId();
    auto own = [&]() REQUIRES(inodes_.mutex()) -> Status {
      DirState::Entry* e = dir.find(name);
      if (*child.action == CheckoutAction::Kind::kRemove) {
        if (e && S_ISDIR(e->rec.mode)) {
          result.refused.push_back(childPath);
        } else {
          if (e) {
            dropEntryLocked(dirIno, dir, name, false, run);
            removedBelow = true;
            nameChanged(name);
          }
          ++result.applied;
        }
        return okStatus();
      }
      if (!te || te->isDirectory()) {
        result.refused.push_back(childPath);  // the target has no file there
        return okStatus();
      }
      if (*child.action == CheckoutAction::Kind::kExec &&
          (!e || S_ISDIR(e->rec.mode) || e->rec.materialized || e->rec.id != te->id)) {
        result.left.push_back(childPath);  // its own content stays: a chmod through the mount
        return okStatus();
      }
      if (e && S_ISDIR(e->rec.mode)) {
        HG_ASSIGN_OR_RETURN(bool empty, isEmptyDirLocked(e->rec));
        if (!empty) {
          result.refused.push_back(childPath);
          return okStatus();
        }
        dropEntryLocked(dirIno, dir, name, false, run);
      } else if (e) {
        dropEntryLocked(dirIno, dir, name, /*keepRecord=*/true, run);
      }
      HG_ASSIGN_OR_RETURN(InodeNumber fresh, inodes_.allocate());
      OverlayEntry rec;
      rec.ino = fresh.value();
      rec.mode = modeOf(te->kind);
      rec.uid = options_.uid;
      rec.gid = options_.gid;
      rec.id = te->id;
      rec.source = childPath;
      run.change.addEntry(dir, dirIno, name, rec);
      ++result.applied;
      nameChanged(name);
      return okStatus();
    };
    // A removal comes before what is below the path (a file that becomes
    // a directory), a get after it (a directory that becomes a file).
    const bool removal = child.action == CheckoutAction::Kind::kRemove;
    if (removal) HG_RETURN_IF_ERROR(own());

    if (child.below() > 0) {
      DirState::Entry* e = dir.find(name);
      bool swapped = false;
      if (e && S_ISDIR(e->rec.mode) && !e->rec.materialized && fromSub &&
          e->rec.id == fromSub->raw()) {
        HG_ASSIGN_OR_RETURN(bool exact, coversExactly(child, fromSub, toSub, childPath));
        if (exact) {
          std::optional<InodeNumber> loaded = inodes_.child(dirIno, name);
          if (toSub) {
            OverlayEntry rec = e->rec;
            rec.id = toSub->raw();
            run.change.setEntry(dir, dirIno, *e, name, rec);
            if (loaded) run.swaps.push_back({*loaded, *fromSub, toSub});
          } else {
            // Every file below goes: so does the directory.
            dropEntryLocked(dirIno, dir, name, false, run);
            removedBelow = true;
            nameChanged(name);
          }
          result.applied += child.below();
          ++result.directoriesSwapped;
          swapped = true;
        }
      }
      if (swapped) {
        // done below
      } else if (e && S_ISDIR(e->rec.mode)) {
        DirState* childDir = nullptr;
        if (e->rec.materialized) {
          HG_ASSIGN_OR_RETURN(childDir, loadedDirLocked(InodeNumber(e->rec.ino)));
        } else {
          HG_ASSIGN_OR_RETURN(childDir, materializeChildLocked(dirIno, dir, name, run.change));
          ++result.directoriesMaterialized;
        }
        InodeNumber childIno(dir.find(name)->rec.ino);
        bool removed = false;
        HG_RETURN_IF_ERROR(
            checkoutDirLocked(childIno, *childDir, childPath, fromSub, toSub, child, run, removed));
        if (removed && childDir->entries.empty()) {
          dropEntryLocked(dirIno, dir, name, false, run);
          removedBelow = true;
          nameChanged(name);
        }
      } else if (e) {
        // A file or symlink where a directory is needed.
        collectPaths(child, childPath, false, result.refused);
      } else if (!hasGetBelow(child)) {
        result.applied += child.below();  // removals of what is not there
      } else {
        HG_ASSIGN_OR_RETURN(bool whole, coversExactly(child, std::nullopt, toSub, childPath));
        HG_ASSIGN_OR_RETURN(InodeNumber fresh, inodes_.allocate());
        OverlayEntry rec;
        rec.ino = fresh.value();
        rec.mode = S_IFDIR | 0755;
        rec.uid = options_.uid;
        rec.gid = options_.gid;
        if (whole && toSub) {
          // A directory only the target has, got whole.
          rec.id = toSub->raw();
          rec.source = childPath;
          run.change.addEntry(dir, dirIno, name, rec);
          result.applied += child.below();
          ++result.directoriesSwapped;
        } else {
          rec.materialized = true;
          auto state = std::make_unique<DirState>();
          state->header.mode = rec.mode;
          state->header.uid = rec.uid;
          state->header.gid = rec.gid;
          state->header.atime = state->header.mtime = state->header.ctime = now();
          run.change.batch().putHeader(rec.ino, state->header);
          run.change.addEntry(dir, dirIno, name, rec);
          DirState* childDir = state.get();
          inodes_.materializedState(fresh).dir = std::move(state);
          run.change.onUndo([this, fresh]()
                                REQUIRES(inodes_.mutex()) { inodes_.dropMaterialized(fresh); });
          bool removed = false;
          HG_RETURN_IF_ERROR(checkoutDirLocked(fresh, *childDir, childPath, std::nullopt, toSub,
                                               child, run, removed));
        }
        nameChanged(name);
      }
    }

    if (child.action && !removal) HG_RETURN_IF_ERROR(own());
  }
  if (changed) {
    run.change.touch(dir, dirIno);
    if (live) run.inodes.push_back(dirIno);
  }
  return okStatus();
}

Result<DirState*> FileSystem::materializeChildLocked(InodeNumber dirIno, DirState& dir,
                                                     ByteView name, OverlayChange& change) {
  if (std::optional<InodeNumber> live = inodes_.child(dirIno, name)) {
    return materializeDirLocked(*live, change);
  }
  const DirState::Entry* e = dir.find(name);
  if (!e) return notFound("no such entry");
  const OverlayEntry rec = e->rec;
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(rec.id));
  auto state = std::make_unique<DirState>();
  state->header.mode = rec.mode;
  state->header.uid = rec.uid;
  state->header.gid = rec.gid;
  state->header.atime = state->header.mtime = state->header.ctime = options_.time;
  change.batch().putHeader(rec.ino, state->header);
  for (const store::TreeEntry& entry : tree->entries()) {
    HG_ASSIGN_OR_RETURN(InodeNumber fresh, inodes_.allocate());
    OverlayEntry child;
    child.ino = fresh.value();
    child.mode = modeOf(entry.kind);
    child.uid = options_.uid;
    child.gid = options_.gid;
    child.id = entry.id;
    child.source = join(rec.source, entry.name);
    change.batch().putEntry(rec.ino, entry.name, child);
    state->insert(entry.name, child);
  }
  InodeNumber ino(rec.ino);
  DirState* result = state.get();
  Materialized& m = inodes_.materializedState(ino);
  m.uid = rec.uid;
  m.gid = rec.gid;
  m.dir = std::move(state);
  change.onUndo([this, ino]() REQUIRES(inodes_.mutex()) { inodes_.dropMaterialized(ino); });
  HG_RETURN_IF_ERROR(change.markMaterialized(dir, dirIno, name));
  return result;
}

void FileSystem::dropEntryLocked(InodeNumber dirIno, DirState& dir, ByteView name, bool keepRecord,
                                 CheckoutRun& run) {
  const DirState::Entry* e = dir.find(name);
  if (!e) return;
  const OverlayEntry rec = e->rec;
  run.change.removeEntry(dir, dirIno, name, keepRecord);
  InodeNumber ino(rec.ino);
  bool live = inodes_.get(ino) != nullptr;
  if (S_ISDIR(rec.mode)) {
    if (rec.materialized) {
      run.change.batch().removeDirectory(rec.ino);  // empty: nothing below it
      if (!live) run.dropStates.push_back(rec.ino);
    }
  } else if (!live && lastNameLocked(rec)) {
    run.change.removeFileAfter(ino);
  }
  if (live || inodes_.linkNames(ino)) run.detaches.push_back({ino, dirIno, Bytes(name), rec});
}

void FileSystem::swapLoadedLocked(InodeNumber ino, const store::TreeId& from,
                                  const std::optional<store::TreeId>& to, CheckoutRun& run,
                                  FileReaper& reaper) {
  Inode* n = inodes_.find(ino);
  if (!n || n->materialized || !S_ISDIR(n->mode) || !to) return;
  auto fromTree = treeOf(from.raw());
  auto toTree = treeOf(to->raw());
  n->id = to->raw();
  run.inodes.push_back(ino);
  if (!fromTree.ok() || !toTree.ok()) {
    // Not expected (both were read by the walk); the loaded children keep
    // what they show until the kernel forgets them.
    log().error("checkout: the trees of inode {} could not be read again", ino.value());
    return;
  }
  const auto& a = (*fromTree)->entries();
  const auto& b = (*toTree)->entries();
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const store::TreeEntry* fe = nullptr;
    const store::TreeEntry* te = nullptr;
    if (j == b.size() || (i < a.size() && a[i].name < b[j].name)) {
      fe = &a[i++];
    } else if (i == a.size() || b[j].name < a[i].name) {
      te = &b[j++];
    } else {
      fe = &a[i++];
      te = &b[j++];
      if (fe->id == te->id && fe->kind == te->kind) continue;
    }
    const Bytes& name = fe ? fe->name : te->name;
    run.entries.emplace_back(ino, name);
    std::optional<InodeNumber> c = inodes_.child(ino, name);
    if (!c) continue;
    const Inode* cn = inodes_.get(*c);
    if (fe && te && fe->isDirectory() && te->isDirectory() && cn && !cn->materialized) {
      swapLoadedLocked(*c, fe->treeId(), te->treeId(), run, reaper);
      continue;
    }
    auto source = inodes_.sourcePath(*c);
    if (source.ok()) inodes_.setSource(*c, *source);
    inodes_.detach(*c, reaper);
  }
}

}  // namespace hgvfs::fs
