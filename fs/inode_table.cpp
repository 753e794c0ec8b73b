#include "fs/inode_table.h"

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

namespace hgvfs::fs {

size_t InodeTable::ChildHash::operator()(const ChildKey& k) const {
  return std::hash<ByteView>()(k.name) * 31 + std::hash<uint64_t>()(k.parent.value());
}

size_t InodeTable::ChildHash::operator()(uint64_t ino) const {
  const Inode& n = records->at(ino);
  return (*this)(ChildKey{n.parent, n.name});
}

bool InodeTable::ChildEqual::operator()(const ChildKey& k, uint64_t ino) const {
  const Inode& n = records->at(ino);
  return n.parent == k.parent && ByteView(n.name) == k.name;
}

InodeTable::InodeTable(const hg::Node& rootTree, Overlay* overlay)
    : overlay_(overlay), byName_(16, ChildHash{&inodes_}, ChildEqual{&inodes_}) {
  Inode root;
  root.parent = kRootInode;
  root.nlookup = 1;  // the kernel never forgets the root
  root.id = rootTree;
  root.mode = S_IFDIR | 0755;
  inodes_.emplace(kRootInode.value(), std::move(root));
}

const Inode* InodeTable::get(InodeNumber ino) const {
  auto it = inodes_.find(ino.value());
  return it == inodes_.end() ? nullptr : &it->second;
}

Inode* InodeTable::find(InodeNumber ino) {
  auto it = inodes_.find(ino.value());
  return it == inodes_.end() ? nullptr : &it->second;
}

std::optional<InodeNumber> InodeTable::child(InodeNumber parent, ByteView name) const {
  auto it = byName_.find(ChildKey{parent, name});
  if (it == byName_.end()) return std::nullopt;
  return InodeNumber(*it);
}

Inode& InodeTable::insert(InodeNumber ino, InodeNumber parent, ByteView name, uint32_t mode,
                          bool materialized, const hg::Node& id) {
  Inode n;
  n.parent = parent;
  n.id = id;
  n.mode = mode;
  n.materialized = materialized;
  n.name = Bytes(name);
  auto [it, added] = inodes_.emplace(ino.value(), std::move(n));
  byName_.insert(ino.value());  // hashes through inodes_, so after the emplace
  ++inodes_.at(parent.value()).children;
  return it->second;
}

void InodeTable::release(InodeNumber ino, FileReaper& reaper) {
  while (ino != kRootInode && ino != kDotHgInode) {
    auto it = inodes_.find(ino.value());
    if (it == inodes_.end()) return;
    Inode& n = it->second;
    if (n.nlookup > 0 || n.children > 0) return;
    InodeNumber parent = n.parent;
    // A file with other names keeps its overlay file.
    bool unlinkedFile =
        !parent.valid() && n.materialized && !S_ISDIR(n.mode) && !links_.count(ino.value());
    if (parent.valid()) byName_.erase(ino.value());  // hashes through inodes_: before the erase
    inodes_.erase(it);
    if (auto m = materialized_.find(ino.value()); m != materialized_.end()) {
      reaper.close(std::move(m->second.file));
      materialized_.erase(m);
    }
    sources_.erase(ino.value());
    if (auto l = links_.find(ino.value()); l != links_.end() && l->second.size() < 2) {
      links_.erase(l);  // its one name is in its directory's record
    }
    if (unlinkedFile && overlay_) reaper.retire(ino);
    if (!parent.valid()) return;
    auto p = inodes_.find(parent.value());
    if (p == inodes_.end()) return;
    --p->second.children;
    ino = parent;
  }
}

void InodeTable::detach(InodeNumber ino, FileReaper& reaper) {
  Inode* n = find(ino);
  if (!n || !n->parent.valid()) return;
  InodeNumber parent = n->parent;
  byName_.erase(ino.value());
  n->parent = InodeNumber();
  if (Inode* p = find(parent)) --p->children;
  release(ino, reaper);
  release(parent, reaper);
}

void InodeTable::reparent(InodeNumber ino, InodeNumber parent, ByteView name, FileReaper& reaper) {
  Inode* n = find(ino);
  if (!n) return;
  InodeNumber old = n->parent;
  if (old.valid()) byName_.erase(ino.value());
  n->parent = parent;
  n->name = Bytes(name);
  byName_.insert(ino.value());
  ++inodes_.at(parent.value()).children;
  if (old.valid()) {
    if (Inode* p = find(old)) --p->children;
    release(old, reaper);
  }
}

void InodeTable::exchange(InodeNumber a, InodeNumber parentA, ByteView nameA, InodeNumber b,
                          InodeNumber parentB, ByteView nameB) {
  Inode* na = find(a);
  Inode* nb = find(b);
  // Both leave the index before either takes its new name.
  if (na) byName_.erase(a.value());
  if (nb) byName_.erase(b.value());
  if (na) place(a, *na, parentB, nameB);
  if (nb) place(b, *nb, parentA, nameA);
}

void InodeTable::place(InodeNumber ino, Inode& n, InodeNumber parent, ByteView name) {
  --inodes_.at(n.parent.value()).children;
  n.parent = parent;
  n.name = Bytes(name);
  ++inodes_.at(parent.value()).children;
  byName_.insert(ino.value());
}

bool InodeTable::isWithin(InodeNumber dir, InodeNumber ancestor) const {
  for (InodeNumber cur = dir; cur.valid();) {
    if (cur == ancestor) return true;
    if (cur == kRootInode) return false;
    const Inode* n = get(cur);
    if (!n) return false;
    cur = n->parent;
  }
  return false;
}

std::optional<Bytes> InodeTable::path(InodeNumber ino) const {
  std::vector<const Bytes*> parts;
  for (InodeNumber cur = ino; cur != kRootInode;) {
    const Inode* n = get(cur);
    if (!n || !n->parent.valid()) return std::nullopt;
    parts.push_back(&n->name);
    cur = n->parent;
  }
  Bytes path;
  for (auto i = parts.rbegin(); i != parts.rend(); ++i) {
    if (!path.empty()) path.push_back('/');
    path += **i;
  }
  return path;
}

Result<Bytes> InodeTable::sourcePath(InodeNumber ino) const {
  std::vector<const Bytes*> parts;
  Bytes path;
  for (InodeNumber cur = ino; cur != kRootInode;) {
    auto src = sources_.find(cur.value());
    if (src != sources_.end()) {
      path = src->second;
      break;
    }
    const Inode* n = get(cur);
    if (!n || !n->parent.valid()) {
      return notFound("the revision path of inode " + std::to_string(ino.value()) + " is unknown");
    }
    parts.push_back(&n->name);
    cur = n->parent;
  }
  for (auto i = parts.rbegin(); i != parts.rend(); ++i) {
    if (!path.empty()) path.push_back('/');
    path += **i;
  }
  return path;
}

void InodeTable::setSource(InodeNumber ino, Bytes source) {
  sources_[ino.value()] = std::move(source);
}

bool InodeTable::hasSource(InodeNumber ino) const { return sources_.count(ino.value()) != 0; }

std::optional<Bytes> InodeTable::takeSource(InodeNumber ino) {
  auto it = sources_.find(ino.value());
  if (it == sources_.end()) return std::nullopt;
  Bytes source = std::move(it->second);
  sources_.erase(it);
  return source;
}

uint32_t InodeTable::nlink(InodeNumber ino) const {
  if (auto it = links_.find(ino.value()); it != links_.end()) {
    return static_cast<uint32_t>(it->second.size());
  }
  const Inode* n = get(ino);
  return n && (n->parent.valid() || ino == kRootInode) ? 1 : 0;
}

const std::vector<InodeTable::LinkName>* InodeTable::linkNames(InodeNumber ino) const {
  auto it = links_.find(ino.value());
  return it == links_.end() ? nullptr : &it->second;
}

void InodeTable::setLinkNames(InodeNumber ino, std::vector<LinkName> names) {
  if (names.size() < 2) {
    links_.erase(ino.value());
  } else {
    links_[ino.value()] = std::move(names);
  }
}

void InodeTable::addLinkName(InodeNumber ino, const LinkName& first, const LinkName& added) {
  auto& names = links_[ino.value()];
  if (names.empty() && first.dir.valid()) names.push_back(first);
  names.push_back(added);
  if (names.size() < 2) links_.erase(ino.value());
}

void InodeTable::settleLinks(InodeNumber ino) {
  auto it = links_.find(ino.value());
  if (it == links_.end() || it->second.size() >= 2) return;
  const Inode* n = get(ino);
  if (it->second.size() == 1 && n && !n->parent.valid()) return;  // its one name, unplaced
  links_.erase(it);
}

bool InodeTable::placedAt(InodeNumber ino, InodeNumber dir, ByteView name) const {
  const Inode* n = get(ino);
  return n && n->parent.valid() && n->parent == dir && ByteView(n->name) == name;
}

void InodeTable::unname(InodeNumber ino, InodeNumber dir, ByteView name, FileReaper& reaper) {
  auto it = links_.find(ino.value());
  if (it != links_.end()) {
    auto& names = it->second;
    for (auto n = names.begin(); n != names.end(); ++n) {
      if (n->dir == dir && ByteView(n->name) == name) {
        names.erase(n);
        break;
      }
    }
    if (names.empty()) links_.erase(it);
  }
  if (placedAt(ino, dir, name)) detach(ino, reaper);  // released here if nothing holds it
  settleLinks(ino);
}

void InodeTable::renameLinkNames(InodeNumber ino, const LinkName& from, const LinkName& to) {
  if (auto it = links_.find(ino.value()); it != links_.end()) {
    for (auto& n : it->second) {
      if (n == from) {
        n = to;
        break;
      }
    }
  }
  settleLinks(ino);
}

void InodeTable::rename(InodeNumber ino, InodeNumber dir, ByteView name, InodeNumber toDir,
                        ByteView toName, FileReaper& reaper) {
  if (get(ino)) reparent(ino, toDir, toName, reaper);
  renameLinkNames(ino, {dir, Bytes(name)}, {toDir, Bytes(toName)});
}

void InodeTable::placeIfUnplaced(InodeNumber ino, InodeNumber dir, ByteView name) {
  Inode* n = find(ino);
  if (!n || n->parent.valid() || !links_.count(ino.value())) return;
  n->parent = dir;
  n->name = Bytes(name);
  byName_.insert(ino.value());
  ++inodes_.at(dir.value()).children;
  settleLinks(ino);
}

const Materialized* InodeTable::materialized(InodeNumber ino) const {
  auto it = materialized_.find(ino.value());
  return it == materialized_.end() ? nullptr : &it->second;
}

Materialized& InodeTable::materializedState(InodeNumber ino) { return materialized_[ino.value()]; }

void InodeTable::dropMaterialized(InodeNumber ino) { materialized_.erase(ino.value()); }

Status InodeTable::startNumbering(uint64_t next) {
  MutexLock lock(numberMutex_);
  next_ = next;
  if (overlay_) HG_RETURN_IF_ERROR(overlay_->reserveInodes(next_ + 65536));
  return okStatus();
}

Result<InodeNumber> InodeTable::allocate() {
  MutexLock lock(numberMutex_);
  if (overlay_ && next_ >= overlay_->reservedInodes()) {
    HG_RETURN_IF_ERROR(overlay_->reserveInodes(next_ + 65536));
  }
  return InodeNumber(next_++);
}

uint64_t InodeTable::nextNumber() const {
  MutexLock lock(numberMutex_);
  return next_;
}

size_t InodeTable::size() const { return inodes_.size(); }

size_t InodeTable::memoryUsage() const {
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

InodeCounts InodeTable::counts() const {
  InodeCounts c;
  for (const auto& [ino, inode] : inodes_) {
    bool dir = S_ISDIR(inode.mode);
    (dir ? c.directories : c.files)++;
    if (inode.materialized) (dir ? c.materializedDirectories : c.materializedFiles)++;
  }
  return c;
}

}  // namespace hgvfs::fs
