#pragma once
// The difference between two directory trees (tree.h), as the file paths
// that were added, removed or modified — what diffing the two flat
// manifests would give, for the entries the trees hold.
//
// Trees are compared from the top: a subtree whose id is the same on both
// sides is skipped without being loaded (content addressing), so the work
// follows the size of the change, not of the trees. Changes come out in
// bytewise order of the full path, the order of a flat manifest (a
// directory "d" sorts as "d/": after "d.txt", before "d0"). A path that is a
// file on one side and a directory on the other is a removal plus additions
// below it (or the reverse). Directories themselves are never reported.
//
// Thread rules: a pure function of the trees; any thread, as the loader
// allows (ObjectStore::tree may be called from any thread).

#include <functional>
#include <memory>
#include <optional>

#include "base/result.h"
#include "store/tree.h"

namespace hgvfs::store {

class ObjectStore;

struct TreeChange {
  enum Kind { kAdded, kRemoved, kModified };
  Kind kind;
  Bytes path;                       // full path: prefix + "/" + name below it (no leading "/")
  std::optional<TreeEntry> before;  // the file in `a` (kRemoved, kModified)
  std::optional<TreeEntry> after;   // the file in `b` (kAdded, kModified)
};

using TreeChangeVisitor = std::function<void(const TreeChange&)>;
using TreeSource = std::function<Result<std::shared_ptr<const Tree>>(const TreeId&)>;

// Calls `visit` for every changed file between trees `a` and `b` (nullopt:
// an empty directory), which are the directory at `prefix` ("" for the
// root) in each. Stops at the first tree that cannot be loaded and returns
// its error; changes before it have been visited.
Status diffTrees(const TreeSource& load, const std::optional<TreeId>& a,
                 const std::optional<TreeId>& b, ByteView prefix, const TreeChangeVisitor& visit);

// The same, loading trees from `store`.
Status diffTrees(ObjectStore& store, const std::optional<TreeId>& a, const std::optional<TreeId>& b,
                 ByteView prefix, const TreeChangeVisitor& visit);

}  // namespace hgvfs::store
