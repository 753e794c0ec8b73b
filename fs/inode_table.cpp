#include "fs/inode_table.h"

#include <cstring>
#include <mutex>

namespace hgvfs::fs {

InodeTable::InodeTable(const store::TreeId& rootTree) {
  Inode root{};
  root.parent = kRootInode.value();
  root.nlookup = 1;  // the kernel never forgets the root
  root.size = kUnknownSize;
  root.id = rootTree.raw();
  root.kind = store::EntryKind::kDirectory;
  inodes_.emplace(kRootInode.value(), std::move(root));
}

Bytes InodeTable::childKey(uint64_t parent, ByteView name) {
  Bytes key(sizeof parent + name.size(), '\0');
  std::memcpy(key.data(), &parent, sizeof parent);
  std::memcpy(key.data() + sizeof parent, name.data(), name.size());
  return key;
}

std::optional<InodeInfo> InodeTable::get(InodeNumber ino) const {
  std::shared_lock lock(mutex_);
  auto it = inodes_.find(ino.value());
  if (it == inodes_.end()) return std::nullopt;
  const Inode& n = it->second;
  return InodeInfo{ino, InodeNumber(n.parent), n.kind, n.id, n.size};
}

InodeInfo InodeTable::lookupChild(InodeNumber parent, const store::TreeEntry& entry,
                                  bool countLookup) {
  Bytes key = childKey(parent.value(), entry.name);
  {
    std::shared_lock lock(mutex_);
    auto it = byName_.find(key);
    if (it != byName_.end() && !countLookup) {
      const Inode& n = inodes_.at(it->second);
      return InodeInfo{InodeNumber(it->second), parent, n.kind, n.id, n.size};
    }
  }
  std::unique_lock lock(mutex_);
  auto it = byName_.find(key);
  uint64_t ino;
  if (it != byName_.end()) {
    ino = it->second;
  } else {
    ino = next_++;
    Inode n{};
    n.parent = parent.value();
    n.size = kUnknownSize;
    n.id = entry.id;
    n.kind = entry.kind;
    n.name = entry.name;
    inodes_.emplace(ino, std::move(n));
    byName_.emplace(std::move(key), ino);
    ++inodes_.at(parent.value()).children;
  }
  Inode& n = inodes_.at(ino);
  if (countLookup) ++n.nlookup;
  return InodeInfo{InodeNumber(ino), parent, n.kind, n.id, n.size};
}

void InodeTable::forget(InodeNumber ino, uint64_t n) {
  if (ino == kRootInode) return;
  std::unique_lock lock(mutex_);
  auto it = inodes_.find(ino.value());
  if (it == inodes_.end()) return;
  it->second.nlookup = n >= it->second.nlookup ? 0 : it->second.nlookup - n;
  releaseLocked(ino.value());
}

// Frees `ino` if nothing refers to it any more, then its parent likewise.
void InodeTable::releaseLocked(uint64_t ino) {
  while (ino != kRootInode.value()) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return;
    Inode& n = it->second;
    if (n.nlookup > 0 || n.children > 0) return;
    uint64_t parent = n.parent;
    byName_.erase(childKey(parent, n.name));
    inodes_.erase(it);
    auto p = inodes_.find(parent);
    if (p == inodes_.end()) return;
    --p->second.children;
    ino = parent;
  }
}

std::optional<Bytes> InodeTable::pathOf(InodeNumber ino) const {
  std::shared_lock lock(mutex_);
  std::vector<const Bytes*> parts;
  uint64_t cur = ino.value();
  while (cur != kRootInode.value()) {
    auto it = inodes_.find(cur);
    if (it == inodes_.end()) return std::nullopt;
    parts.push_back(&it->second.name);
    cur = it->second.parent;
  }
  Bytes path;
  for (auto i = parts.rbegin(); i != parts.rend(); ++i) {
    if (!path.empty()) path.push_back('/');
    path += **i;
  }
  return path;
}

void InodeTable::setSize(InodeNumber ino, uint64_t size) {
  std::unique_lock lock(mutex_);
  auto it = inodes_.find(ino.value());
  if (it != inodes_.end()) it->second.size = size;
}

size_t InodeTable::size() const {
  std::shared_lock lock(mutex_);
  return inodes_.size();
}

size_t InodeTable::memoryUsage() const {
  std::shared_lock lock(mutex_);
  // Node allocations of both maps plus their bucket arrays, and names
  // that do not fit in the string's inline buffer.
  size_t bytes = inodes_.bucket_count() * sizeof(void*) + byName_.bucket_count() * sizeof(void*);
  bytes += inodes_.size() * (sizeof(std::pair<const uint64_t, Inode>) + sizeof(void*));
  bytes += byName_.size() * (sizeof(std::pair<const Bytes, uint64_t>) + 2 * sizeof(void*));
  for (const auto& [ino, n] : inodes_) {
    if (n.name.size() > 15) bytes += n.name.capacity() + 1;
  }
  for (const auto& [key, ino] : byName_) {
    if (key.size() > 15) bytes += key.capacity() + 1;
  }
  return bytes;
}

}  // namespace hgvfs::fs
