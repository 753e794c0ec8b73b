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

#include <string>
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

EntryKind entryKind(hg::FileKind kind);

}  // namespace hgvfs::store
