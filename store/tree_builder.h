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
// Pure function of the manifest; any thread.

#include <functional>
#include <memory>
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

// The directories ("" for the root) on the paths that differ between two
// manifests: added, removed, or changed in node or kind.
std::unordered_set<Bytes> changedDirectories(const hg::Manifest& a, const hg::Manifest& b);

EntryKind entryKind(hg::FileKind kind);

}  // namespace hgvfs::store
