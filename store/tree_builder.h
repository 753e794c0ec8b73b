#pragma once
// Builds the directory trees (tree.h) of one flat manifest.
//
// The manifest is sorted by full path, so every directory's entries form one
// contiguous range; the builder walks those ranges recursively and emits the
// trees children first, each with its id, ready to be stored. Entries that
// cannot be presented safely (an invalid name anywhere in the path, or a
// file and a directory of the same name — the directory is kept) are left
// out and listed in `skipped` so the caller can log each once.
//
// applyTreeChanges edits already-built trees instead: given the changed
// paths of a manifest (from its stored delta), it rebuilds only the
// directories on those paths, and refuses (Unsupported) whenever the
// result could differ from buildTrees of the edited manifest, so a caller
// can fall back to building from the full manifest.
//
// Pure functions of their arguments (trees come through the caller's
// loader); any thread.

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "hgbridge/manifest.h"
#include "store/tree.h"

namespace hgvfs::store {

struct BuiltTrees {
  TreeId root;
  // (id, serialized tree), children before their parents, root last.
  std::vector<std::pair<TreeId, Bytes>> trees;
  std::vector<std::string> skipped;  // "path: reason", printable
};

BuiltTrees buildTrees(const hg::Manifest& manifest);

// Incremental build against an already-built manifest `base` whose root
// tree is `baseRoot`: only the directories on paths that differ between the
// two manifests are rebuilt; every other directory keeps its id from the
// base trees, which `loadTree` returns (nullptr if it cannot). Emits only
// the rebuilt trees. The result is the same as buildTrees(manifest).
using TreeLoader = std::function<std::shared_ptr<const Tree>(const TreeId&)>;
BuiltTrees buildTreesFrom(const hg::Manifest& manifest, const hg::Manifest& base,
                          const TreeId& baseRoot, const TreeLoader& loadTree);

// The new state of one path of a manifest: a file of `kind` (not a
// directory) and `node`, or, when `removed`, no file there any more.
struct FileChange {
  Bytes path;  // '/'-separated, as in the manifest
  bool removed = false;
  EntryKind kind = EntryKind::kRegular;
  hg::Node node;
};

// The trees of manifest B, edited from the trees of manifest A (root
// `baseRoot`, read through `loadTree`) where `changes` are every path whose
// entry differs between A and B (an unchanged one may be listed too), each
// path once, in any order. `baseComplete` says A's trees hold every entry
// of A (buildTrees(A) left nothing out). Directories on changed paths are
// rebuilt (children first, root last, as buildTrees emits them), new ones
// created, and one left empty dropped; every other directory keeps its id.
// The result equals buildTrees(B) — or the call fails:
//   Unsupported when buildTrees(B) would leave an entry out (an invalid name
//     on a changed path, a file and a directory of the same name), when a
//     removed path is not a file in A's trees, or when a directory becomes
//     empty while `baseComplete` is false: it may still hold an entry of A
//     that buildTrees(A) left out, or hide a file of its own name, which
//     buildTrees(B) would keep or show.
//   InvalidArgument when a path is changed twice.
//   NotFound when `loadTree` returns nullptr for a tree on a changed path.
// `skipped` of the result is empty.
Result<BuiltTrees> applyTreeChanges(const TreeId& baseRoot, std::span<const FileChange> changes,
                                    const TreeLoader& loadTree, bool baseComplete);

// The directories ("" for the root) on the paths that differ between two
// manifests: added, removed, or changed in node or kind.
std::unordered_set<Bytes> changedDirectories(const hg::Manifest& a, const hg::Manifest& b);

EntryKind entryKind(hg::FileKind kind);

}  // namespace hgvfs::store
