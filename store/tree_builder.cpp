#include "store/tree_builder.h"

#include <algorithm>
#include <map>
#include <optional>

#include "hgbridge/sha1.h"

namespace hgvfs::store {
namespace {

// Serializes `tree` into `out` (after every tree already there) and returns
// its id: the hash of the stored bytes, as Tree::computeId, serialized once.
TreeId emitTree(const Tree& tree, BuiltTrees& out) {
  Bytes data = tree.serialize();
  TreeId id(hg::sha1Of(data));
  out.trees.emplace_back(id, std::move(data));
  return id;
}

// Builds directories from the sorted manifest. Each directory's entries are
// the contiguous range of paths under its prefix; a subdirectory's range is
// found by binary search, so a directory costs O(children · log n) whatever
// the size of its subtree. With a base (incremental build), a subdirectory
// not on a changed path keeps its id from the base tree instead of being
// rebuilt.
class Builder {
 public:
  Builder(std::span<const hg::ManifestEntry> entries, const std::unordered_set<Bytes>* changed,
          const TreeLoader* loadTree)
      : entries_(entries), changed_(changed), loadTree_(loadTree) {}

  BuiltTrees run(std::shared_ptr<const Tree> baseRoot) {
    out_.root = buildDir(0, entries_.size(), 0, baseRoot.get());
    return std::move(out_);
  }

 private:
  // End of the range of paths starting with `prefix` (which ends in '/').
  size_t rangeEnd(size_t from, size_t hi, ByteView prefix) const {
    auto it = std::partition_point(
        entries_.begin() + static_cast<long>(from), entries_.begin() + static_cast<long>(hi),
        [&](const hg::ManifestEntry& e) { return e.path.substr(0, prefix.size()) <= prefix; });
    return static_cast<size_t>(it - entries_.begin());
  }

  bool isChanged(ByteView dirPath) const {
    return !changed_ || changed_->count(Bytes(dirPath)) > 0;
  }

  TreeId buildDir(size_t lo, size_t hi, size_t prefixLen, const Tree* base) {
    std::vector<TreeEntry> children;
    size_t i = lo;
    while (i < hi) {
      ByteView path = entries_[i].path;
      ByteView rest = path.substr(prefixLen);
      size_t slash = rest.find('/');
      if (slash == ByteView::npos) {
        if (auto why = invalidNameReason(rest)) {
          skip(path, *why);
        } else {
          children.push_back({Bytes(rest), entryKind(entries_[i].kind), entries_[i].node});
        }
        ++i;
        continue;
      }
      ByteView dirPrefix = path.substr(0, prefixLen + slash + 1);
      size_t end = rangeEnd(i + 1, hi, dirPrefix);
      ByteView name = rest.substr(0, slash);
      if (auto why = invalidNameReason(name)) {
        for (size_t k = i; k < end; ++k) skip(entries_[k].path, "directory " + *why);
      } else {
        children.push_back({Bytes(name), EntryKind::kDirectory,
                            subdirectory(i, end, dirPrefix, name, base).raw()});
      }
      i = end;
    }
    // A file "a" sorts before "a.txt" and "a/..." in the manifest but the
    // tree is ordered by name alone.
    std::stable_sort(children.begin(), children.end(),
                     [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
    for (size_t k = 0; k + 1 < children.size();) {
      if (children[k].name == children[k + 1].name) {
        size_t drop = children[k].isDirectory() ? k + 1 : k;
        // Name the full path (entries_[lo] is in this directory: children is not empty).
        Bytes path(entries_[lo].path.substr(0, prefixLen));
        skip(path + children[drop].name,
             "a file and a directory have this name; the file is left out");
        children.erase(children.begin() + static_cast<long>(drop));
      } else {
        ++k;
      }
    }
    return emitTree(Tree(std::move(children)), out_);
  }

  TreeId subdirectory(size_t lo, size_t hi, ByteView dirPrefix, ByteView name, const Tree* base) {
    std::shared_ptr<const Tree> baseChild;
    if (base) {
      const TreeEntry* old = base->find(name);
      if (old && old->isDirectory()) {
        ByteView dirPath = dirPrefix.substr(0, dirPrefix.size() - 1);
        if (!isChanged(dirPath)) return old->treeId();
        baseChild = (*loadTree_)(old->treeId());
      }
    }
    return buildDir(lo, hi, dirPrefix.size(), baseChild.get());
  }

  void skip(ByteView path, const std::string& why) {
    out_.skipped.push_back(printable(path) + ": " + why);
  }

  std::span<const hg::ManifestEntry> entries_;
  const std::unordered_set<Bytes>* changed_;
  const TreeLoader* loadTree_;
  BuiltTrees out_;
};

// Edits built trees by changed paths (applyTreeChanges). Each directory
// merges its base entries (sorted by name) with the changes grouped by
// their first component (also sorted by name), so a directory costs
// O(entries + changes below it).
class TreeEditor {
 public:
  TreeEditor(const TreeLoader& loadTree, bool baseComplete)
      : loadTree_(loadTree), baseComplete_(baseComplete) {}

  Result<BuiltTrees> run(const TreeId& baseRoot, std::span<const FileChange> changes) {
    std::shared_ptr<const Tree> root = loadTree_(baseRoot);
    if (!root) return notFound("root tree " + baseRoot.hex() + " cannot be loaded");
    if (changes.empty()) return BuiltTrees{baseRoot, {}, {}};
    std::vector<const FileChange*> all;
    all.reserve(changes.size());
    for (const auto& c : changes) all.push_back(&c);
    HG_ASSIGN_OR_RETURN(std::optional<TreeId> id, editDir(root.get(), all, 0));
    out_.root = *id;  // the root is never dropped
    return std::move(out_);
  }

 private:
  // The changes of one name in a directory: the file of that name, and the
  // paths below the directory of that name.
  struct Group {
    const FileChange* file = nullptr;
    std::vector<const FileChange*> below;
  };

  // The new id of the directory whose entries are `base` (nullptr for a new
  // directory) and whose paths start at offset `prefixLen` of each change;
  // nullopt when it ends up empty (never for the root).
  Result<std::optional<TreeId>> editDir(const Tree* base,
                                        const std::vector<const FileChange*>& changes,
                                        size_t prefixLen) {
    std::map<ByteView, Group> groups;
    for (const FileChange* c : changes) {
      ByteView rest = ByteView(c->path).substr(prefixLen);
      size_t slash = rest.find('/');
      ByteView name = rest.substr(0, slash);
      if (auto why = invalidNameReason(name)) {
        return unsupported(printable(c->path) + ": " + *why + " (buildTrees leaves it out)");
      }
      Group& g = groups[name];
      if (slash != ByteView::npos) {
        g.below.push_back(c);
      } else if (g.file) {
        return invalidArgument(printable(c->path) + ": changed twice");
      } else {
        g.file = c;
      }
    }
    static const std::vector<TreeEntry> kNone;
    const std::vector<TreeEntry>& old = base ? base->entries() : kNone;
    std::vector<TreeEntry> entries;
    entries.reserve(old.size() + groups.size());
    auto it = old.begin();
    for (const auto& [name, group] : groups) {
      for (; it != old.end() && ByteView(it->name) < name; ++it) entries.push_back(*it);
      const TreeEntry* previous = nullptr;
      if (it != old.end() && it->name == name) previous = &*it++;
      HG_ASSIGN_OR_RETURN(std::optional<TreeEntry> e, editEntry(name, previous, group, prefixLen));
      if (e) entries.push_back(std::move(*e));
    }
    entries.insert(entries.end(), it, old.end());
    if (entries.empty() && prefixLen > 0) {
      if (!baseComplete_) {
        ByteView dir = ByteView(changes.front()->path).substr(0, prefixLen - 1);
        return unsupported(printable(dir) +
                           ": directory becomes empty, and the base trees may lack entries "
                           "of their manifest that would keep or replace it");
      }
      return std::optional<TreeId>();
    }
    return std::optional<TreeId>(emitTree(Tree(std::move(entries)), out_));
  }

  // The entry `name` becomes: its file as changed or kept, its directory
  // as edited or kept; both at once is what buildTrees would not show.
  Result<std::optional<TreeEntry>> editEntry(ByteView name, const TreeEntry* previous,
                                             const Group& group, size_t prefixLen) {
    std::optional<TreeEntry> file;
    std::optional<TreeId> dir;
    if (previous) {
      if (previous->isDirectory()) {
        dir = previous->treeId();
      } else {
        file = *previous;
      }
    }
    if (const FileChange* c = group.file) {
      if (c->removed) {
        if (!file) return unsupported(printable(c->path) + ": removed but not a file in the base");
        file.reset();
      } else if (c->kind == EntryKind::kDirectory) {
        return invalidArgument(printable(c->path) + ": a change names a file, not a directory");
      } else {
        file = TreeEntry{Bytes(name), c->kind, c->node};
      }
    }
    if (!group.below.empty()) {
      std::shared_ptr<const Tree> child;
      if (dir) {
        child = loadTree_(*dir);
        if (!child) {
          ByteView path = ByteView(group.below.front()->path).substr(0, prefixLen + name.size());
          return notFound("tree " + dir->hex() + " of '" + printable(path) + "' cannot be loaded");
        }
      }
      HG_ASSIGN_OR_RETURN(dir, editDir(child.get(), group.below, prefixLen + name.size() + 1));
    }
    if (file && dir) {
      const FileChange* c = group.file ? group.file : group.below.front();
      ByteView path = ByteView(c->path).substr(0, prefixLen + name.size());
      return unsupported(printable(path) +
                         ": a file and a directory would have this name (buildTrees leaves the "
                         "file out)");
    }
    if (dir) {
      return std::optional<TreeEntry>(TreeEntry{Bytes(name), EntryKind::kDirectory, dir->raw()});
    }
    return file;
  }

  const TreeLoader& loadTree_;
  bool baseComplete_;
  BuiltTrees out_;
};

void addAncestors(ByteView path, std::unordered_set<Bytes>& dirs) {
  size_t slash = path.rfind('/');
  while (true) {
    ByteView dir = slash == ByteView::npos ? ByteView() : path.substr(0, slash);
    if (!dirs.emplace(dir).second) return;  // its ancestors are in already
    if (dir.empty()) return;
    slash = dir.rfind('/');
  }
}

}  // namespace

EntryKind entryKind(hg::FileKind kind) {
  switch (kind) {
    case hg::FileKind::kExecutable:
      return EntryKind::kExecutable;
    case hg::FileKind::kSymlink:
      return EntryKind::kSymlink;
    case hg::FileKind::kRegular:
      break;
  }
  return EntryKind::kRegular;
}

BuiltTrees buildTrees(const hg::Manifest& manifest) {
  return Builder(manifest.entries(), nullptr, nullptr).run(nullptr);
}

std::unordered_set<Bytes> changedDirectories(const hg::Manifest& a, const hg::Manifest& b) {
  std::unordered_set<Bytes> dirs;
  auto x = a.entries(), y = b.entries();
  size_t i = 0, j = 0;
  while (i < x.size() || j < y.size()) {
    if (j == y.size() || (i < x.size() && x[i].path < y[j].path)) {
      addAncestors(x[i++].path, dirs);
    } else if (i == x.size() || y[j].path < x[i].path) {
      addAncestors(y[j++].path, dirs);
    } else {
      if (x[i].node != y[j].node || x[i].kind != y[j].kind) addAncestors(x[i].path, dirs);
      ++i;
      ++j;
    }
  }
  return dirs;
}

BuiltTrees buildTreesFrom(const hg::Manifest& manifest, const hg::Manifest& base,
                          const TreeId& baseRoot, const TreeLoader& loadTree) {
  std::unordered_set<Bytes> changed = changedDirectories(manifest, base);
  std::shared_ptr<const Tree> root = loadTree(baseRoot);
  if (!root) return buildTrees(manifest);
  return Builder(manifest.entries(), &changed, &loadTree).run(root);
}

Result<BuiltTrees> applyTreeChanges(const TreeId& baseRoot, std::span<const FileChange> changes,
                                    const TreeLoader& loadTree, bool baseComplete) {
  return TreeEditor(loadTree, baseComplete).run(baseRoot, changes);
}

}  // namespace hgvfs::store
