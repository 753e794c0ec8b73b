#include "fs/inode_table.h"

#include <cstring>
#include <mutex>

namespace hgvfs::fs {

size_t InodeTable::ChildHash::operator()(const ChildKey& k) const {
  return std::hash<ByteView>()(k.name) * 31 + std::hash<uint64_t>()(k.parent);
}

size_t InodeTable::ChildHash::operator()(uint64_t ino) const {
  const Inode& n = table->inodes_.at(ino);
  return (*this)(ChildKey{n.parent, n.name});
}

bool InodeTable::ChildEqual::operator()(const ChildKey& k, uint64_t ino) const {
  const Inode& n = table->inodes_.at(ino);
  return n.parent == k.parent && ByteView(n.name) == k.name;
}

InodeTable::InodeTable(const store::TreeId& rootTree)
    : byName_(16, ChildHash{this}, ChildEqual{this}) {
  Inode root{};
  root.parent = kRootInode.value();
  root.nlookup = 1;  // the kernel never forgets the root
  root.size = kUnknownSize;
  root.id = rootTree.raw();
  root.kind = store::EntryKind::kDirectory;
  inodes_.emplace(kRootInode.value(), std::move(root));
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
  ChildKey key{parent.value(), entry.name};
  if (!countLookup) {
    std::shared_lock lock(mutex_);
    auto it = byName_.find(key);
    if (it != byName_.end()) {
      const Inode& n = inodes_.at(*it);
      return InodeInfo{InodeNumber(*it), parent, n.kind, n.id, n.size};
    }
  }
  std::unique_lock lock(mutex_);
  auto it = byName_.find(key);
  uint64_t ino;
  if (it != byName_.end()) {
    ino = *it;
  } else {
    ino = next_++;
    Inode n{};
    n.parent = parent.value();
    n.size = kUnknownSize;
    n.id = entry.id;
    n.kind = entry.kind;
    n.name = entry.name;
    inodes_.emplace(ino, std::move(n));
    byName_.insert(ino);  // hashes through inodes_, so after the emplace
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
    byName_.erase(ino);  // hashes through inodes_, so before the erase
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
  // Per inode: one node in each table (malloc rounds to 16 bytes, plus its
  // 8-byte header), the bucket pointers, and names too long to be inline.
  auto chunk = [](size_t n) { return (n + 8 + 15) / 16 * 16; };
  size_t mapNode = chunk(sizeof(void*) + sizeof(std::pair<const uint64_t, Inode>));
  size_t setNode = chunk(sizeof(void*) + sizeof(uint64_t) + sizeof(size_t));
  size_t bytes = (inodes_.bucket_count() + byName_.bucket_count()) * sizeof(void*);
  bytes += inodes_.size() * mapNode + byName_.size() * setNode;
  for (const auto& [ino, n] : inodes_) {
    if (n.name.size() > 15) bytes += chunk(n.name.capacity() + 1);
  }
  return bytes;
}

}  // namespace hgvfs::fs
