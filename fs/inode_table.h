#pragma once
// The inode table of one mount.
//
// An inode exists once the kernel has looked it up (lookup, readdirplus) or
// while a looked-up descendant still needs it to know its path. Each inode
// records its parent, its name, what it is (kind and id: the file node or the
// directory's tree id) and its size once known — nothing else: directory
// listings come from the object store, never from here, so an inode costs
// the same whatever the size of its directory.
//
// Two counts are kept apart: `nlookup`, the kernel's lookup count (raised by
// lookup/readdirplus replies, lowered by forget), and `children`, the number
// of live child inodes that name this one as parent. An inode is freed when
// both reach zero; freeing a child may free its parent in turn.
//
// Inode numbers are 64-bit, handed out in increasing order and never reused
// within a mount; the root is 1 and is never freed.
//
// Thread rules: any thread. One shared_mutex guards the table (shared for
// reads, exclusive to create or free); it is a leaf lock, and no FUSE reply
// is ever made while holding it.

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "hgbridge/bytes.h"
#include "hgbridge/node.h"
#include "store/tree.h"

namespace hgvfs::fs {

using hg::Bytes;
using hg::ByteView;

class InodeNumber {
 public:
  constexpr InodeNumber() = default;
  constexpr explicit InodeNumber(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool valid() const { return v_ != 0; }
  friend constexpr bool operator==(InodeNumber, InodeNumber) = default;

 private:
  uint64_t v_ = 0;
};

inline constexpr InodeNumber kRootInode{1};
inline constexpr uint64_t kUnknownSize = UINT64_MAX;

// A copy of one inode's fields, safe to use after the lock is released.
struct InodeInfo {
  InodeNumber ino;
  InodeNumber parent;
  store::EntryKind kind;
  hg::Node id;
  uint64_t size = kUnknownSize;
};

class InodeTable {
 public:
  explicit InodeTable(const store::TreeId& rootTree);

  std::optional<InodeInfo> get(InodeNumber ino) const;

  // The inode of `entry` in directory `parent`, created if needed. When
  // `countLookup` the kernel's lookup count is raised by one.
  InodeInfo lookupChild(InodeNumber parent, const store::TreeEntry& entry, bool countLookup);
  // The kernel forgets `n` lookups.
  void forget(InodeNumber ino, uint64_t n);

  // The repository-relative path of `ino` ("" for the root); nullopt if the
  // inode is unknown.
  std::optional<Bytes> pathOf(InodeNumber ino) const;
  void setSize(InodeNumber ino, uint64_t size);

  size_t size() const;
  // Bytes held by the table (approximate, for the memory benchmark).
  size_t memoryUsage() const;

 private:
  struct Inode {
    uint64_t parent;
    uint64_t nlookup;
    uint64_t size;
    hg::Node id;
    uint32_t children;
    store::EntryKind kind;
    Bytes name;
  };
  // The child index holds inode numbers only; hashing and comparing look
  // the parent and name up in inodes_, so each name is stored once.
  struct ChildKey {
    uint64_t parent;
    ByteView name;
  };
  struct ChildHash {
    using is_transparent = void;
    const InodeTable* table;
    size_t operator()(const ChildKey& k) const;
    size_t operator()(uint64_t ino) const;
  };
  struct ChildEqual {
    using is_transparent = void;
    const InodeTable* table;
    bool operator()(uint64_t a, uint64_t b) const { return a == b; }
    bool operator()(const ChildKey& k, uint64_t ino) const;
    bool operator()(uint64_t ino, const ChildKey& k) const { return (*this)(k, ino); }
  };
  void releaseLocked(uint64_t ino);

  mutable std::shared_mutex mutex_;
  uint64_t next_ = 2;
  std::unordered_map<uint64_t, Inode> inodes_;
  std::unordered_set<uint64_t, ChildHash, ChildEqual> byName_;
};

}  // namespace hgvfs::fs
