#pragma once
// Directory trees synthesized from Mercurial's flat manifests.
//
// A Tree is one directory: its entries sorted by name bytes, each a name, a
// kind (regular file, executable, symlink, directory) and an id — the file
// revision's node for files, the child Tree's id for directories. A tree's
// id is the SHA-1 of its serialized form, so a directory whose contents did
// not change has the same id in every commit (content addressing), and two
// commits are diffed by comparing ids from the root down.
//
// Serialized form (the LMDB value; version byte first so it can change):
//   u8 version (1) | u32 count (BE) | count × { u8 kind | u16 name length (BE)
//   | name | 20-byte id }
//
// Thread rules: a Tree is immutable once built; any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "hgbridge/node.h"

namespace hgvfs::store {

// The id of a Tree (SHA-1 of its serialized form). Distinct from hg::Node so
// a tree id is never passed where a file node is meant.
class TreeId {
 public:
  TreeId() = default;
  explicit TreeId(const hg::Node& raw) : raw_(raw) {}
  static TreeId fromRaw(const void* raw) { return TreeId(hg::Node::fromRaw(raw)); }
  const hg::Node& raw() const { return raw_; }
  ByteView view() const { return raw_.view(); }
  std::string hex() const { return raw_.hex(); }
  friend bool operator==(const TreeId&, const TreeId&) = default;

 private:
  hg::Node raw_;
};

enum class EntryKind : uint8_t { kRegular = 0, kExecutable = 1, kSymlink = 2, kDirectory = 3 };

struct TreeEntry {
  Bytes name;
  EntryKind kind;
  hg::Node id;  // file node, or the raw bytes of the child TreeId

  bool isDirectory() const { return kind == EntryKind::kDirectory; }
  TreeId treeId() const { return TreeId(id); }
};

class Tree {
 public:
  // `entries` must be sorted by name with unique names.
  explicit Tree(std::vector<TreeEntry> entries);

  static Result<Tree> deserialize(ByteView data, const std::string& where = {});
  Bytes serialize() const;
  TreeId computeId() const;

  const std::vector<TreeEntry>& entries() const { return entries_; }
  const TreeEntry* find(ByteView name) const;
  // Approximate bytes held, for cache budgets.
  size_t memoryUsage() const;

 private:
  std::vector<TreeEntry> entries_;
};

// Why a name cannot be presented as a directory entry, or nullopt if it can:
// empty, ".", "..", ".hg", containing '/' or NUL, longer than NAME_MAX.
std::optional<std::string> invalidNameReason(ByteView name);

}  // namespace hgvfs::store

template <>
struct std::hash<hgvfs::store::TreeId> {
  size_t operator()(const hgvfs::store::TreeId& id) const noexcept {
    return std::hash<hgvfs::hg::Node>()(id.raw());
  }
};
