#include "fs/file_system.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {
namespace {

// An error with the errno the kernel should see.
hg::Error errnoError(int err, std::string what) {
  hg::Error e = hg::invalidArgument(std::move(what));
  e.err = err;
  return e;
}

hg::Error sysError(const char* what) {
  int err = errno;
  return hg::ioError(err, std::string(what) + ": " + std::strerror(err));
}

uint32_t modeOf(store::EntryKind kind) {
  switch (kind) {
    case store::EntryKind::kDirectory:
      return S_IFDIR | 0755;
    case store::EntryKind::kExecutable:
      return S_IFREG | 0755;
    case store::EntryKind::kSymlink:
      return S_IFLNK | 0777;
    case store::EntryKind::kRegular:
      break;
  }
  return S_IFREG | 0644;
}

struct timespec now() {
  struct timespec t {};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

hg::Status checkName(ByteView name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != ByteView::npos ||
      name.find('\0') != ByteView::npos) {
    return errnoError(EINVAL, "invalid name");
  }
  if (name.size() > NAME_MAX) return errnoError(ENAMETOOLONG, "name too long");
  return hg::okStatus();
}

}  // namespace

// The writes of one change and how to undo its in-memory effects if the
// commit fails.
struct FileSystem::Change {
  OverlayBatch batch;
  std::vector<std::function<void()>> undo;
  std::vector<uint64_t> createdFiles;  // overlay files to remove on failure
  Overlay* overlay = nullptr;
  bool done = false;

  ~Change() {
    if (done) return;
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
    for (uint64_t ino : createdFiles) overlay->removeFile(ino);
  }
};

size_t FileSystem::ChildHash::operator()(const ChildKey& k) const {
  return std::hash<ByteView>()(k.name) * 31 + std::hash<uint64_t>()(k.parent);
}

size_t FileSystem::ChildHash::operator()(uint64_t ino) const {
  const Inode& n = fs->inodes_.at(ino);
  return (*this)(ChildKey{n.parent, n.name});
}

bool FileSystem::ChildEqual::operator()(const ChildKey& k, uint64_t ino) const {
  const Inode& n = fs->inodes_.at(ino);
  return n.parent == k.parent && ByteView(n.name) == k.name;
}

FileSystem::FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
                       std::unique_ptr<Overlay> overlay, FileSystemOptions options)
    : objects_(std::move(objects)),
      overlay_(std::move(overlay)),
      options_(options),
      rootTree_(root),
      byName_(16, ChildHash{this}, ChildEqual{this}) {
  Inode inode{};
  inode.parent = kRootInode.value();
  inode.nlookup = 1;  // the kernel never forgets the root
  inode.size = kUnknownSize;
  inode.id = root.raw();
  inode.mode = S_IFDIR | 0755;
  inodes_.emplace(kRootInode.value(), std::move(inode));
}

FileSystem::~FileSystem() = default;

void FileSystem::setDotHg(Bytes target) {
  std::unique_lock lock(mutex_);
  dotHgTarget_ = std::move(target);
  Inode inode{};
  inode.parent = kRootInode.value();
  inode.nlookup = 1;  // never freed
  inode.size = dotHgTarget_.size();
  inode.mode = S_IFLNK | 0777;
  inode.name = ".hg";
  inodes_.emplace(kDotHgInode.value(), std::move(inode));
  byName_.insert(kDotHgInode.value());
  ++inodes_.at(kRootInode.value()).children;
}

hg::Status FileSystem::start() {
  std::unique_lock lock(mutex_);
  if (!overlay_) return hg::okStatus();
  HG_ASSIGN_OR_RETURN(auto report, overlay_->check());
  if (report.orphanFiles || report.orphanDirectories || report.danglingEntries) {
    log().warn(
        "overlay repaired at mount: {} orphan overlay files, {} unreachable directory records and "
        "{} dangling entries removed",
        report.orphanFiles, report.orphanDirectories, report.danglingEntries);
  }
  next_ = std::max(overlay_->reservedInodes(), report.maxInode + 1);
  HG_RETURN_IF_ERROR(overlay_->reserveInodes(next_ + 65536));
  HG_ASSIGN_OR_RETURN(auto root, overlay_->loadDirectory(kRootInode.value()));
  if (root) {
    Inode& inode = inodes_.at(kRootInode.value());
    inode.materialized = true;
    inode.mode = root->header.mode;
    Materialized& m = materialized_[kRootInode.value()];
    m.uid = root->header.uid;
    m.gid = root->header.gid;
  }
  log().info("overlay: {} materialized directories, {} overlay files, next inode {}",
             report.directories, report.files, next_);
  return hg::okStatus();
}

hg::Status FileSystem::readOnly() const { return errnoError(EROFS, "read-only mount"); }

hg::Error FileSystem::annotate(hg::Error e, uint64_t ino) {
  std::optional<Bytes> path;
  {
    std::shared_lock lock(mutex_);
    path = pathLocked(ino);
  }
  if (path) e.what += " (reading '" + hg::printable(*path) + "')";
  return e;
}

FileSystem::Inode* FileSystem::findLocked(uint64_t ino) {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : &it->second;
}

std::optional<Bytes> FileSystem::pathLocked(uint64_t ino) const {
  std::vector<const Bytes*> parts;
  uint64_t cur = ino;
  while (cur != kRootInode.value()) {
    auto it = inodes_.find(cur);
    if (it == inodes_.end() || it->second.parent == 0) return std::nullopt;
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

hg::Result<Bytes> FileSystem::sourcePathLocked(uint64_t ino) {
  std::vector<const Bytes*> parts;
  Bytes path;
  uint64_t cur = ino;
  while (cur != kRootInode.value()) {
    auto src = sources_.find(cur);
    if (src != sources_.end()) {
      path = src->second;
      break;
    }
    auto it = inodes_.find(cur);
    if (it == inodes_.end() || it->second.parent == 0) {
      return hg::notFound("the revision path of inode " + std::to_string(ino) + " is unknown");
    }
    parts.push_back(&it->second.name);
    cur = it->second.parent;
  }
  for (auto i = parts.rbegin(); i != parts.rend(); ++i) {
    if (!path.empty()) path.push_back('/');
    path += **i;
  }
  return path;
}

FileSystem::Snapshot FileSystem::snapshotLocked(uint64_t ino, const Inode& inode) {
  Snapshot s{ino,        inode.parent, inode.mode,   inode.materialized, inode.id,
             inode.size, options_.uid, options_.gid, std::nullopt};
  if (inode.materialized) {
    auto m = materialized_.find(ino);
    if (m != materialized_.end()) {
      s.uid = m->second.uid;
      s.gid = m->second.gid;
      if (m->second.dir) s.header = m->second.dir->header;
    }
  }
  return s;
}

hg::Result<std::shared_ptr<const store::Tree>> FileSystem::treeOf(const hg::Node& id) {
  return objects_->tree(store::TreeId(id));
}

hg::Result<struct stat> FileSystem::attributes(const Snapshot& s) {
  struct stat st {};
  st.st_ino = s.ino;
  st.st_mode = s.mode;
  st.st_uid = s.uid;
  st.st_gid = s.gid;
  st.st_nlink = s.parent == 0 && s.ino != kRootInode.value() ? 0 : 1;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = options_.time;
  if (S_ISDIR(s.mode)) {
    // 1 like btrfs: tools read it as "count unknown" and never skip a
    // directory because of it; counting subdirectories would cost a tree
    // load per directory attribute.
    if (st.st_nlink) st.st_nlink = 1;
    st.st_size = 4096;
    if (s.materialized) {
      OverlayDirHeader header;
      if (s.header) {
        header = *s.header;
      } else {
        std::unique_lock lock(mutex_);
        HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(s.ino));
        header = dir->header;
      }
      st.st_atim = header.atime;
      st.st_mtim = header.mtime;
      st.st_ctim = header.ctime;
    }
  } else if (s.materialized) {
    struct stat real {};
    if (::stat(overlay_->filePath(s.ino).c_str(), &real) != 0) {
      hg::Error e = sysError("cannot stat overlay file");
      e.where = overlay_->filePath(s.ino);
      return e;
    }
    st.st_size = S_ISREG(s.mode) || S_ISLNK(s.mode) ? real.st_size : 0;
    st.st_blocks = real.st_blocks;
    st.st_atim = real.st_atim;
    st.st_mtim = real.st_mtim;
    st.st_ctim = real.st_ctim;
    return st;
  } else {
    uint64_t size = s.size;
    if (size == kUnknownSize) {
      Bytes source;
      {
        std::shared_lock lock(mutex_);
        HG_ASSIGN_OR_RETURN(source, sourcePathLocked(s.ino));
      }
      auto got = objects_->fileSize(source, s.id);
      if (!got.ok()) return annotate(std::move(got).takeError(), s.ino);
      size = *got;
      std::unique_lock lock(mutex_);
      if (Inode* inode = findLocked(s.ino); inode && !inode->materialized) inode->size = size;
    }
    st.st_size = static_cast<off_t>(size);
  }
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

uint64_t FileSystem::insertInodeLocked(uint64_t ino, uint64_t parent, ByteView name, uint32_t mode,
                                       bool materialized, const hg::Node& id) {
  Inode n{};
  n.parent = parent;
  n.size = kUnknownSize;
  n.id = id;
  n.mode = mode;
  n.materialized = materialized;
  n.name = Bytes(name);
  inodes_.emplace(ino, std::move(n));
  byName_.insert(ino);  // hashes through inodes_, so after the emplace
  ++inodes_.at(parent).children;
  return ino;
}

hg::Result<FileSystem::Snapshot> FileSystem::lookupLocked(uint64_t parent, ByteView name) {
  Inode* dir = findLocked(parent);
  if (!dir) return hg::notFound("unknown inode");
  if (!S_ISDIR(dir->mode)) return errnoError(ENOTDIR, "not a directory");
  auto existing = byName_.find(ChildKey{parent, name});
  if (existing != byName_.end()) {
    Inode& n = inodes_.at(*existing);
    ++n.nlookup;
    return snapshotLocked(*existing, n);
  }
  uint64_t ino;
  if (dir->materialized) {
    HG_ASSIGN_OR_RETURN(DirState * state, loadedDirLocked(parent));
    DirState::Entry* entry = state->find(name);
    if (!entry) return hg::notFound("no such entry");
    const OverlayEntry& rec = entry->rec;
    ino = insertInodeLocked(rec.ino, parent, name, rec.mode, rec.materialized, rec.id);
    if (rec.materialized) {
      Materialized& m = materialized_[ino];
      m.uid = rec.uid;
      m.gid = rec.gid;
    } else {
      sources_[ino] = rec.source;
    }
  } else {
    hg::Node treeId = dir->id;
    HG_ASSIGN_OR_RETURN(auto tree, treeOf(treeId));  // the store's LRU: cheap when warm
    const store::TreeEntry* entry = tree->find(name);
    if (!entry) return hg::notFound("no such entry");
    HG_ASSIGN_OR_RETURN(ino, allocateInodeLocked());
    insertInodeLocked(ino, parent, name, modeOf(entry->kind), false, entry->id);
  }
  Inode& n = inodes_.at(ino);
  ++n.nlookup;
  return snapshotLocked(ino, n);
}

hg::Result<struct stat> FileSystem::lookup(InodeNumber parent, ByteView name) {
  if (name.size() > NAME_MAX) return errnoError(ENAMETOOLONG, "name too long");
  // Warm the tree outside the lock, so a cold directory load does not stall
  // every other request.
  {
    std::optional<hg::Node> id;
    {
      std::shared_lock lock(mutex_);
      Inode* dir = findLocked(parent.value());
      if (dir && S_ISDIR(dir->mode) && !dir->materialized) id = dir->id;
    }
    if (id) (void)treeOf(*id);
  }
  Snapshot s;
  {
    std::unique_lock lock(mutex_);
    auto found = lookupLocked(parent.value(), name);
    if (!found.ok()) {
      hg::Error e = std::move(found).takeError();
      return e;
    }
    s = std::move(found).value();
  }
  auto st = attributes(s);
  if (!st.ok()) forget(InodeNumber(s.ino), 1);  // the kernel will not learn of it
  return st;
}

void FileSystem::forget(InodeNumber ino, uint64_t n) {
  if (ino == kRootInode) return;
  std::unique_lock lock(mutex_);
  Inode* inode = findLocked(ino.value());
  if (!inode) return;
  inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
  releaseLocked(ino.value());
}

// Frees `ino` if nothing refers to it any more, then its parent likewise.
void FileSystem::releaseLocked(uint64_t ino) {
  while (ino != kRootInode.value() && ino != kDotHgInode.value()) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return;
    Inode& n = it->second;
    if (n.nlookup > 0 || n.children > 0) return;
    uint64_t parent = n.parent;
    bool unlinkedFile = parent == 0 && n.materialized && !S_ISDIR(n.mode);
    if (parent != 0) byName_.erase(ino);  // hashes through inodes_, so before the erase
    inodes_.erase(it);
    materialized_.erase(ino);
    sources_.erase(ino);
    if (unlinkedFile && overlay_) overlay_->removeFile(ino);
    if (parent == 0) return;
    auto p = inodes_.find(parent);
    if (p == inodes_.end()) return;
    --p->second.children;
    ino = parent;
  }
}

void FileSystem::detachLocked(uint64_t ino) {
  Inode* n = findLocked(ino);
  if (!n || n->parent == 0) return;
  uint64_t parent = n->parent;
  byName_.erase(ino);
  n->parent = 0;
  if (Inode* p = findLocked(parent)) --p->children;
  releaseLocked(ino);
  releaseLocked(parent);
}

void FileSystem::reparentLocked(uint64_t ino, uint64_t parent, ByteView name) {
  Inode* n = findLocked(ino);
  if (!n) return;
  uint64_t old = n->parent;
  if (old != 0) byName_.erase(ino);
  n->parent = parent;
  n->name = Bytes(name);
  byName_.insert(ino);
  ++inodes_.at(parent).children;
  if (old != 0) {
    if (Inode* p = findLocked(old)) --p->children;
    releaseLocked(old);
  }
}

hg::Result<uint64_t> FileSystem::allocateInodeLocked() {
  if (overlay_ && next_ >= overlay_->reservedInodes()) {
    HG_RETURN_IF_ERROR(overlay_->reserveInodes(next_ + 65536));
  }
  return next_++;
}

hg::Result<FileSystem::DirState*> FileSystem::loadedDirLocked(uint64_t ino) {
  Materialized& m = materialized_[ino];
  if (m.dir) return m.dir.get();
  HG_ASSIGN_OR_RETURN(auto loaded, overlay_->loadDirectory(ino));
  if (!loaded)
    return hg::corrupt("materialized directory has no overlay record",
                       overlay_->directory() + " (inode " + std::to_string(ino) + ")");
  auto state = std::make_unique<DirState>();
  state->header = loaded->header;
  for (auto& [name, rec] : loaded->entries) state->insert(name, rec);
  m.uid = state->header.uid;
  m.gid = state->header.gid;
  m.dir = std::move(state);
  return m.dir.get();
}

hg::Result<FileSystem::DirState*> FileSystem::materializeDirLocked(uint64_t ino, Change& change) {
  Inode* inode = findLocked(ino);
  if (!inode) return hg::notFound("unknown inode");
  if (!S_ISDIR(inode->mode)) return errnoError(ENOTDIR, "not a directory");
  if (inode->materialized) return loadedDirLocked(ino);
  if (inode->parent == 0) return hg::notFound("directory was removed");
  HG_ASSIGN_OR_RETURN(Bytes source, sourcePathLocked(ino));
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(inode->id));
  DirState* parentState = nullptr;
  if (ino != kRootInode.value()) {
    HG_ASSIGN_OR_RETURN(parentState, materializeDirLocked(inode->parent, change));
    inode = findLocked(ino);
  }
  auto state = std::make_unique<DirState>();
  state->header.mode = inode->mode;
  state->header.uid = options_.uid;
  state->header.gid = options_.gid;
  state->header.atime = state->header.mtime = state->header.ctime = options_.time;
  change.batch.putHeader(ino, state->header);
  for (const auto& entry : tree->entries()) {
    OverlayEntry rec;
    auto live = byName_.find(ChildKey{ino, entry.name});
    if (live != byName_.end()) {
      rec.ino = *live;
    } else {
      HG_ASSIGN_OR_RETURN(rec.ino, allocateInodeLocked());
    }
    rec.mode = modeOf(entry.kind);
    rec.uid = options_.uid;
    rec.gid = options_.gid;
    rec.id = entry.id;
    rec.source = source.empty() ? entry.name : source + "/" + entry.name;
    if (live != byName_.end() && !sources_.count(rec.ino)) {
      sources_[rec.ino] = rec.source;
      uint64_t child = rec.ino;
      change.undo.push_back([this, child] { sources_.erase(child); });
    }
    change.batch.putEntry(ino, entry.name, rec);
    state->insert(entry.name, rec);
  }
  DirState* result = state.get();
  Materialized& m = materialized_[ino];
  m.uid = options_.uid;
  m.gid = options_.gid;
  m.dir = std::move(state);
  inode->materialized = true;
  change.undo.push_back([this, ino] {
    materialized_.erase(ino);
    if (Inode* n = findLocked(ino)) n->materialized = false;
  });
  if (parentState) {
    DirState::Entry* e = parentState->find(inode->name);
    if (!e) return hg::corrupt("directory missing from its parent's overlay record");
    OverlayEntry before = e->rec;
    e->rec.materialized = true;
    e->rec.id = hg::Node();
    e->rec.source.clear();
    change.batch.putEntry(inode->parent, inode->name, e->rec);
    Bytes name = inode->name;
    change.undo.push_back([parentState, name, before] {
      if (auto* entry = parentState->find(name)) entry->rec = before;
    });
  }
  auto src = sources_.find(ino);
  if (src != sources_.end()) {
    Bytes saved = src->second;
    sources_.erase(src);
    change.undo.push_back([this, ino, saved] { sources_[ino] = saved; });
  }
  return result;
}

hg::Status FileSystem::commitLocked(Change& change) {
  HG_RETURN_IF_ERROR(overlay_->commit(change.batch));
  change.done = true;
  return hg::okStatus();
}

hg::Result<std::shared_ptr<OverlayFile>> FileSystem::openFileLocked(uint64_t ino) {
  Materialized& m = materialized_[ino];
  if (m.file) return m.file;
  HG_ASSIGN_OR_RETURN(int fd, overlay_->openFile(ino));
  auto file = std::make_shared<OverlayFile>(fd, openFiles_);
  // Keep descriptors for the files being written, within a budget.
  if (openFiles_ < 4096) m.file = file;
  return file;
}

hg::Result<std::shared_ptr<OverlayFile>> FileSystem::materializeFileLocked(uint64_t ino,
                                                                           bool empty) {
  if (!overlay_) return readOnly().takeError();
  Inode* inode = findLocked(ino);
  if (!inode) return hg::notFound("unknown inode");
  if (S_ISDIR(inode->mode)) return errnoError(EISDIR, "is a directory");
  if (inode->materialized) return openFileLocked(ino);
  std::shared_ptr<const Bytes> blob;
  if (!empty) {
    HG_ASSIGN_OR_RETURN(Bytes source, sourcePathLocked(ino));
    auto got = objects_->blob(source, inode->id);
    if (!got.ok()) return std::move(got).takeError();
    blob = std::move(got).value();
  }
  Change change;
  change.overlay = overlay_.get();
  HG_ASSIGN_OR_RETURN(int fd, overlay_->createFileWith(ino, blob ? ByteView(*blob) : ByteView()));
  auto file = std::make_shared<OverlayFile>(fd, openFiles_);
  change.createdFiles.push_back(ino);
  inode = findLocked(ino);
  if (inode->parent != 0) {
    HG_ASSIGN_OR_RETURN(DirState * parent, materializeDirLocked(inode->parent, change));
    inode = findLocked(ino);
    DirState::Entry* e = parent->find(inode->name);
    if (!e) return hg::corrupt("file missing from its parent's overlay record");
    OverlayEntry before = e->rec;
    e->rec.materialized = true;
    e->rec.id = hg::Node();
    e->rec.source.clear();
    change.batch.putEntry(inode->parent, inode->name, e->rec);
    Bytes name = inode->name;
    change.undo.push_back([parent, name, before] {
      if (auto* entry = parent->find(name)) entry->rec = before;
    });
  }
  HG_RETURN_IF_ERROR(commitLocked(change));
  inode->materialized = true;
  Materialized& m = materialized_[ino];
  m.uid = options_.uid;
  m.gid = options_.gid;
  if (openFiles_ < 4096) m.file = file;
  sources_.erase(ino);
  return file;
}

hg::Result<struct stat> FileSystem::getattr(InodeNumber ino) {
  Snapshot s;
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    s = snapshotLocked(ino.value(), *inode);
  }
  return attributes(s);
}

InodeNumber FileSystem::parentOf(InodeNumber dir) {
  std::shared_lock lock(mutex_);
  Inode* inode = findLocked(dir.value());
  if (!inode || inode->parent == 0) return dir;
  return InodeNumber(inode->parent);
}

hg::Result<std::vector<ListedEntry>> FileSystem::list(InodeNumber dir, uint64_t after, size_t max) {
  std::vector<ListedEntry> out;
  std::optional<hg::Node> treeId;
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(dir.value());
    if (!inode) return hg::notFound("unknown inode");
    if (!S_ISDIR(inode->mode)) return errnoError(ENOTDIR, "not a directory");
    if (!inode->materialized) treeId = inode->id;
  }
  if (dir == kRootInode && !dotHgTarget_.empty() && after < 3 && max > 0) {
    out.push_back({".hg", kDotHgInode.value(), S_IFLNK, 3});
    --max;
  }
  if (treeId) {
    auto tree = treeOf(*treeId);
    if (!tree.ok()) return annotate(std::move(tree).takeError(), dir.value());
    std::unique_lock lock(mutex_);
    Inode* inode = findLocked(dir.value());
    if (!inode) return hg::notFound("unknown inode");
    if (!inode->materialized) {
      const auto& entries = (*tree)->entries();
      size_t first = after < 4 ? 0 : after - 3;
      for (size_t i = first; i < entries.size() && out.size() < max; ++i) {
        const auto& entry = entries[i];
        uint64_t ino;
        auto live = byName_.find(ChildKey{dir.value(), entry.name});
        if (live != byName_.end()) {
          ino = *live;
        } else {
          HG_ASSIGN_OR_RETURN(ino, allocateInodeLocked());
          insertInodeLocked(ino, dir.value(), entry.name, modeOf(entry.kind), false, entry.id);
        }
        out.push_back({entry.name, ino, modeOf(entry.kind) & S_IFMT, i + 4});
      }
      return out;
    }
    // Materialized meanwhile: its cookies continue the tree's numbering.
  }
  std::unique_lock lock(mutex_);
  HG_ASSIGN_OR_RETURN(DirState * state, loadedDirLocked(dir.value()));
  for (auto it = state->byCookie.upper_bound(after);
       it != state->byCookie.end() && out.size() < max; ++it) {
    const DirState::Entry& e = state->entries.at(it->second);
    out.push_back({it->second, e.rec.ino, e.rec.mode & S_IFMT, it->first});
  }
  return out;
}

hg::Result<FileData> FileSystem::data(InodeNumber ino) {
  FileData out;
  if (ino == kDotHgInode && !dotHgTarget_.empty()) {
    out.blob = std::make_shared<const Bytes>(dotHgTarget_);
    return out;
  }
  Bytes source;
  hg::Node id;
  bool needFile = false;
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (S_ISDIR(inode->mode)) return errnoError(EISDIR, "is a directory");
    if (inode->materialized) {
      auto m = materialized_.find(ino.value());
      if (m != materialized_.end() && m->second.file) {
        out.file = m->second.file;
        return out;
      }
      needFile = true;
    } else {
      HG_ASSIGN_OR_RETURN(source, sourcePathLocked(ino.value()));
      id = inode->id;
    }
  }
  if (needFile) {
    std::unique_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (inode->materialized) {
      HG_ASSIGN_OR_RETURN(out.file, openFileLocked(ino.value()));
      return out;
    }
    HG_ASSIGN_OR_RETURN(source, sourcePathLocked(ino.value()));
    id = inode->id;
  }
  auto blob = objects_->blob(source, id);
  if (!blob.ok()) return annotate(std::move(blob).takeError(), ino.value());
  out.blob = std::move(blob).value();
  return out;
}

hg::Result<size_t> FileSystem::read(InodeNumber ino, char* buf, size_t size, uint64_t offset) {
  HG_ASSIGN_OR_RETURN(FileData d, data(ino));
  if (d.blob) {
    const Bytes& bytes = *d.blob;
    size_t start = std::min<uint64_t>(offset, bytes.size());
    size_t len = std::min(size, bytes.size() - start);
    std::memcpy(buf, bytes.data() + start, len);
    return len;
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(d.file->fd(), buf + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sysError("cannot read overlay file");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

int FileSystem::fdOf(const OverlayFile& file) { return file.fd(); }

hg::Result<std::shared_ptr<OverlayFile>> FileSystem::writableFile(InodeNumber ino) {
  if (!overlay_) return readOnly().takeError();
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (inode->materialized) {
      auto m = materialized_.find(ino.value());
      if (m != materialized_.end() && m->second.file) return m->second.file;
    }
  }
  std::unique_lock lock(mutex_);
  return materializeFileLocked(ino.value(), false);
}

hg::Result<size_t> FileSystem::write(InodeNumber ino, const char* buf, size_t size,
                                     uint64_t offset) {
  if (!overlay_) return readOnly().takeError();
  std::shared_ptr<OverlayFile> file;
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (inode->materialized) {
      auto m = materialized_.find(ino.value());
      if (m != materialized_.end()) file = m->second.file;
    }
  }
  if (!file) {
    std::unique_lock lock(mutex_);
    HG_ASSIGN_OR_RETURN(file, materializeFileLocked(ino.value(), false));
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(file->fd(), buf + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (done > 0) break;
      return sysError("cannot write overlay file");
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

hg::Result<struct stat> FileSystem::setattr(InodeNumber ino, const AttrChange& change) {
  if (!overlay_) return readOnly().takeError();
  if (ino == kDotHgInode) return errnoError(EPERM, "the mount's .hg cannot be changed");
  {
    std::unique_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (S_ISDIR(inode->mode)) {
      if (change.size) return errnoError(EISDIR, "is a directory");
      Change ch;
      ch.overlay = overlay_.get();
      HG_ASSIGN_OR_RETURN(DirState * dir, materializeDirLocked(ino.value(), ch));
      inode = findLocked(ino.value());
      OverlayDirHeader& h = dir->header;
      OverlayDirHeader before = h;
      uint32_t modeBefore = inode->mode;
      struct timespec t = now();
      if (change.mode) h.mode = (h.mode & S_IFMT) | (*change.mode & 07777);
      if (change.uid) h.uid = *change.uid;
      if (change.gid) h.gid = *change.gid;
      if (change.atime) h.atime = change.atime->tv_nsec == UTIME_NOW ? t : *change.atime;
      if (change.mtime) h.mtime = change.mtime->tv_nsec == UTIME_NOW ? t : *change.mtime;
      h.ctime = t;
      inode->mode = h.mode;
      Materialized& m = materialized_[ino.value()];
      uid_t uidBefore = m.uid;
      gid_t gidBefore = m.gid;
      m.uid = h.uid;
      m.gid = h.gid;
      ch.undo.push_back([this, dir, before, modeBefore, uidBefore, gidBefore, i = ino.value()] {
        dir->header = before;
        if (Inode* n = findLocked(i)) n->mode = modeBefore;
        auto mm = materialized_.find(i);
        if (mm != materialized_.end()) {
          mm->second.uid = uidBefore;
          mm->second.gid = gidBefore;
        }
      });
      ch.batch.putHeader(ino.value(), h);
      HG_RETURN_IF_ERROR(commitLocked(ch));
    } else {
      if (S_ISLNK(inode->mode) && (change.size || change.mode)) {
        return errnoError(EINVAL, "cannot change a symlink's size or mode");
      }
      bool empty = change.size && *change.size == 0;
      HG_ASSIGN_OR_RETURN(auto file, materializeFileLocked(ino.value(), empty));
      inode = findLocked(ino.value());
      if (change.size && ::ftruncate(file->fd(), static_cast<off_t>(*change.size)) != 0) {
        return sysError("cannot truncate overlay file");
      }
      if (change.mode || change.uid || change.gid) {
        Materialized& m = materialized_[ino.value()];
        uint32_t newMode =
            change.mode ? ((inode->mode & S_IFMT) | (*change.mode & 07777)) : inode->mode;
        uid_t newUid = change.uid ? *change.uid : m.uid;
        gid_t newGid = change.gid ? *change.gid : m.gid;
        if (inode->parent != 0) {
          Change ch;
          ch.overlay = overlay_.get();
          HG_ASSIGN_OR_RETURN(DirState * parent, materializeDirLocked(inode->parent, ch));
          inode = findLocked(ino.value());
          DirState::Entry* e = parent->find(inode->name);
          if (!e) return hg::corrupt("file missing from its parent's overlay record");
          OverlayEntry rec = e->rec;
          rec.mode = newMode;
          rec.uid = newUid;
          rec.gid = newGid;
          ch.batch.putEntry(inode->parent, inode->name, rec);
          HG_RETURN_IF_ERROR(commitLocked(ch));
          e->rec = rec;
        }
        inode->mode = newMode;
        m.uid = newUid;
        m.gid = newGid;
        // The overlay file's ctime is the file's ctime.
        (void)::fchmod(file->fd(), 0600);
      }
      if (change.atime || change.mtime) {
        struct timespec times[2];
        times[0] = change.atime ? *change.atime : timespec{0, UTIME_OMIT};
        times[1] = change.mtime ? *change.mtime : timespec{0, UTIME_OMIT};
        if (::futimens(file->fd(), times) != 0) return sysError("cannot set times");
      }
    }
  }
  return getattr(ino);
}

hg::Status FileSystem::fallocate(InodeNumber ino, int mode, uint64_t offset, uint64_t length) {
  if (!overlay_) return readOnly();
  std::shared_ptr<OverlayFile> file;
  {
    std::unique_lock lock(mutex_);
    HG_ASSIGN_OR_RETURN(file, materializeFileLocked(ino.value(), false));
  }
  if (::fallocate(file->fd(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
    return sysError("fallocate");
  }
  return hg::okStatus();
}

hg::Status FileSystem::fsync(InodeNumber ino, bool dataOnly) {
  if (!overlay_) return hg::okStatus();
  std::shared_ptr<OverlayFile> file;
  {
    std::unique_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (inode->materialized && !S_ISDIR(inode->mode)) {
      HG_ASSIGN_OR_RETURN(file, openFileLocked(ino.value()));
    }
  }
  if (file && (dataOnly ? ::fdatasync(file->fd()) : ::fsync(file->fd())) != 0) {
    return sysError("fsync");
  }
  return overlay_->sync();
}

hg::Status FileSystem::syncMetadata() { return overlay_ ? overlay_->sync() : hg::okStatus(); }

hg::Result<FileSystem::DirState*> FileSystem::changeableParentLocked(uint64_t parent,
                                                                     Change& change) {
  if (!overlay_) return readOnly().takeError();
  Inode* dir = findLocked(parent);
  if (!dir) return hg::notFound("unknown inode");
  if (!S_ISDIR(dir->mode)) return errnoError(ENOTDIR, "not a directory");
  if (dir->parent == 0 && parent != kRootInode.value()) {
    return hg::notFound("directory was removed");
  }
  change.overlay = overlay_.get();
  return materializeDirLocked(parent, change);
}

void FileSystem::touchDirLocked(DirState& dir, Change& change, uint64_t ino) {
  OverlayDirHeader before = dir.header;
  dir.header.mtime = dir.header.ctime = now();
  change.batch.putHeader(ino, dir.header);
  DirState* d = &dir;
  change.undo.push_back([d, before] { d->header = before; });
}

hg::Result<struct stat> FileSystem::newEntry(InodeNumber parent, ByteView name, mode_t mode,
                                             const Caller& caller, ByteView symlinkTarget) {
  HG_RETURN_IF_ERROR(checkName(name));
  if (isDotHg(parent.value(), name)) return errnoError(EEXIST, "exists");
  if (S_ISCHR(mode) || S_ISBLK(mode)) {
    return errnoError(EPERM, "device files are not supported");
  }
  Snapshot s;
  {
    std::unique_lock lock(mutex_);
    Change change;
    HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(parent.value(), change));
    if (dir->find(name)) return errnoError(EEXIST, "exists");
    HG_ASSIGN_OR_RETURN(uint64_t ino, allocateInodeLocked());
    OverlayEntry rec;
    rec.ino = ino;
    rec.mode = mode;
    rec.uid = caller.uid;
    rec.gid = caller.gid;
    rec.materialized = true;
    // A set-group-ID directory passes its group on (and the bit, to
    // directories), as local filesystems do; the kernel leaves it to us.
    if (dir->header.mode & S_ISGID) {
      rec.gid = dir->header.gid;
      if (S_ISDIR(mode)) rec.mode |= S_ISGID;
    }
    mode = rec.mode;
    std::unique_ptr<DirState> newDir;
    std::shared_ptr<OverlayFile> file;
    if (S_ISDIR(mode)) {
      newDir = std::make_unique<DirState>();
      newDir->header.mode = mode;
      newDir->header.uid = rec.uid;
      newDir->header.gid = rec.gid;
      newDir->header.atime = newDir->header.mtime = newDir->header.ctime = now();
      change.batch.putHeader(ino, newDir->header);
    } else {
      HG_ASSIGN_OR_RETURN(int fd, S_ISLNK(mode) ? overlay_->createFileWith(ino, symlinkTarget)
                                                : overlay_->createFile(ino));
      change.createdFiles.push_back(ino);
      file = std::make_shared<OverlayFile>(fd, openFiles_);
    }
    dir->insert(name, rec);
    Bytes key(name);
    change.undo.push_back([dir, key] { dir->erase(key); });
    change.batch.putEntry(parent.value(), name, rec);
    touchDirLocked(*dir, change, parent.value());
    HG_RETURN_IF_ERROR(commitLocked(change));
    insertInodeLocked(ino, parent.value(), name, mode, true, hg::Node());
    Inode& inode = inodes_.at(ino);
    inode.nlookup = 1;
    Materialized& m = materialized_[ino];
    m.uid = rec.uid;
    m.gid = rec.gid;
    m.dir = std::move(newDir);
    if (file && openFiles_ < 4096) m.file = file;
    s = snapshotLocked(ino, inode);
  }
  return attributes(s);
}

hg::Result<struct stat> FileSystem::create(InodeNumber parent, ByteView name, mode_t mode,
                                           const Caller& caller) {
  return newEntry(parent, name, S_IFREG | (mode & 07777), caller, {});
}

hg::Result<struct stat> FileSystem::mknod(InodeNumber parent, ByteView name, mode_t mode,
                                          const Caller& caller) {
  if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) && (mode & S_IFMT) != 0) {
    return errnoError(EPERM, "device files are not supported");
  }
  if ((mode & S_IFMT) == 0) mode |= S_IFREG;
  return newEntry(parent, name, mode, caller, {});
}

hg::Result<struct stat> FileSystem::mkdir(InodeNumber parent, ByteView name, mode_t mode,
                                          const Caller& caller) {
  return newEntry(parent, name, S_IFDIR | (mode & 07777), caller, {});
}

hg::Result<struct stat> FileSystem::symlink(InodeNumber parent, ByteView name, ByteView target,
                                            const Caller& caller) {
  if (target.empty()) return errnoError(ENOENT, "empty symlink target");
  return newEntry(parent, name, S_IFLNK | 0777, caller, target);
}

hg::Result<bool> FileSystem::isEmptyDirLocked(const OverlayEntry& entry) {
  if (entry.materialized) {
    auto m = materialized_.find(entry.ino);
    if (m != materialized_.end() && m->second.dir) return m->second.dir->entries.empty();
    HG_ASSIGN_OR_RETURN(auto loaded, overlay_->loadDirectory(entry.ino));
    return !loaded || loaded->entries.empty();
  }
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(entry.id));
  return tree->entries().empty();
}

hg::Status FileSystem::unlink(InodeNumber parent, ByteView name) {
  if (isDotHg(parent.value(), name)) return errnoError(EPERM, "the mount's .hg cannot be removed");
  std::unique_lock lock(mutex_);
  Change change;
  HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(parent.value(), change));
  DirState::Entry* e = dir->find(name);
  if (!e) return hg::notFound("no such entry");
  if (S_ISDIR(e->rec.mode)) return errnoError(EISDIR, "is a directory");
  DirState::Entry saved = *e;
  Bytes key(name);
  dir->erase(name);
  change.undo.push_back([dir, key, saved] { dir->insertWithCookie(key, saved.rec, saved.cookie); });
  change.batch.removeEntry(parent.value(), name);
  touchDirLocked(*dir, change, parent.value());
  bool live = findLocked(saved.rec.ino) != nullptr;
  if (!live && saved.rec.materialized) change.batch.removeFileAfter(saved.rec.ino);
  HG_RETURN_IF_ERROR(commitLocked(change));
  if (live) {
    if (!saved.rec.materialized) sources_[saved.rec.ino] = saved.rec.source;
    detachLocked(saved.rec.ino);
  }
  return hg::okStatus();
}

hg::Status FileSystem::rmdir(InodeNumber parent, ByteView name) {
  if (name == ".") return errnoError(EINVAL, "cannot remove '.'");
  if (isDotHg(parent.value(), name)) return errnoError(ENOTDIR, "the mount's .hg is a symlink");
  std::unique_lock lock(mutex_);
  Change change;
  HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(parent.value(), change));
  DirState::Entry* e = dir->find(name);
  if (!e) return hg::notFound("no such entry");
  if (!S_ISDIR(e->rec.mode)) return errnoError(ENOTDIR, "not a directory");
  HG_ASSIGN_OR_RETURN(bool empty, isEmptyDirLocked(e->rec));
  if (!empty) return errnoError(ENOTEMPTY, "directory not empty");
  DirState::Entry saved = *e;
  Bytes key(name);
  dir->erase(name);
  change.undo.push_back([dir, key, saved] { dir->insertWithCookie(key, saved.rec, saved.cookie); });
  change.batch.removeEntry(parent.value(), name);
  if (saved.rec.materialized) change.batch.removeDirectory(saved.rec.ino);
  touchDirLocked(*dir, change, parent.value());
  HG_RETURN_IF_ERROR(commitLocked(change));
  if (findLocked(saved.rec.ino)) detachLocked(saved.rec.ino);
  return hg::okStatus();
}

hg::Status FileSystem::rename(InodeNumber parent, ByteView name, InodeNumber newParent,
                              ByteView newName, unsigned flags) {
  HG_RETURN_IF_ERROR(checkName(newName));
  if (isDotHg(parent.value(), name) || isDotHg(newParent.value(), newName)) {
    return errnoError(EPERM, "the mount's .hg cannot be renamed or replaced");
  }
  if ((flags & RENAME_EXCHANGE) && (flags & RENAME_NOREPLACE)) {
    return errnoError(EINVAL, "invalid flags");
  }
  if (flags & ~(RENAME_EXCHANGE | RENAME_NOREPLACE)) return errnoError(EINVAL, "invalid flags");
  std::unique_lock lock(mutex_);
  Change change;
  HG_ASSIGN_OR_RETURN(DirState * from, changeableParentLocked(parent.value(), change));
  HG_ASSIGN_OR_RETURN(DirState * to, changeableParentLocked(newParent.value(), change));
  DirState::Entry* src = from->find(name);
  if (!src) return hg::notFound("no such entry");
  DirState::Entry* dst = to->find(newName);
  OverlayEntry srcRec = src->rec;
  std::optional<OverlayEntry> dstRec;
  if (dst) dstRec = dst->rec;
  // A directory may not move below itself.
  auto below = [&](uint64_t dirIno, uint64_t ancestor) {
    for (uint64_t cur = dirIno; cur != 0;) {
      if (cur == ancestor) return true;
      if (cur == kRootInode.value()) return false;
      Inode* n = findLocked(cur);
      if (!n) return false;
      cur = n->parent;
    }
    return false;
  };
  if (S_ISDIR(srcRec.mode) && below(newParent.value(), srcRec.ino)) {
    return errnoError(EINVAL, "cannot move a directory below itself");
  }
  if (flags & RENAME_EXCHANGE) {
    if (!dstRec) return hg::notFound("no such entry");
    if (S_ISDIR(dstRec->mode) && below(parent.value(), dstRec->ino)) {
      return errnoError(EINVAL, "cannot move a directory below itself");
    }
    uint64_t srcCookie = src->cookie, dstCookie = dst->cookie;
    src->rec = *dstRec;
    dst->rec = srcRec;
    Bytes n1(name), n2(newName);
    change.undo.push_back([from, to, n1, n2, srcRec, dstRec, srcCookie, dstCookie] {
      from->insertWithCookie(n1, srcRec, srcCookie);
      to->insertWithCookie(n2, *dstRec, dstCookie);
    });
    change.batch.putEntry(parent.value(), name, *dstRec);
    change.batch.putEntry(newParent.value(), newName, srcRec);
    touchDirLocked(*from, change, parent.value());
    if (to != from) touchDirLocked(*to, change, newParent.value());
    HG_RETURN_IF_ERROR(commitLocked(change));
    bool srcLive = findLocked(srcRec.ino) != nullptr;
    bool dstLive = findLocked(dstRec->ino) != nullptr;
    // Move both out of the name index before either takes its new name.
    if (srcLive) byName_.erase(srcRec.ino);
    if (dstLive) byName_.erase(dstRec->ino);
    if (srcLive) {
      Inode& n = inodes_.at(srcRec.ino);
      --inodes_.at(n.parent).children;
      n.parent = newParent.value();
      n.name = n2;
      ++inodes_.at(n.parent).children;
      byName_.insert(srcRec.ino);
    }
    if (dstLive) {
      Inode& n = inodes_.at(dstRec->ino);
      --inodes_.at(n.parent).children;
      n.parent = parent.value();
      n.name = n1;
      ++inodes_.at(n.parent).children;
      byName_.insert(dstRec->ino);
    }
    return hg::okStatus();
  }
  if (dstRec) {
    if (flags & RENAME_NOREPLACE) return errnoError(EEXIST, "target exists");
    if (dstRec->ino == srcRec.ino) return hg::okStatus();
    if (S_ISDIR(srcRec.mode)) {
      if (!S_ISDIR(dstRec->mode)) return errnoError(ENOTDIR, "target is not a directory");
      HG_ASSIGN_OR_RETURN(bool empty, isEmptyDirLocked(*dstRec));
      if (!empty) return errnoError(ENOTEMPTY, "target directory not empty");
    } else if (S_ISDIR(dstRec->mode)) {
      return errnoError(EISDIR, "target is a directory");
    }
  }
  uint64_t srcCookie = src->cookie;
  std::optional<uint64_t> dstCookie;
  if (dst) dstCookie = dst->cookie;
  Bytes n1(name), n2(newName);
  from->erase(name);
  if (dstRec) to->erase(newName);
  to->insert(newName, srcRec);
  change.undo.push_back([from, to, n1, n2, srcRec, dstRec, srcCookie, dstCookie] {
    to->erase(n2);
    if (dstRec) to->insertWithCookie(n2, *dstRec, *dstCookie);
    from->insertWithCookie(n1, srcRec, srcCookie);
  });
  change.batch.removeEntry(parent.value(), name);
  change.batch.putEntry(newParent.value(), newName, srcRec);
  bool dstLive = dstRec && findLocked(dstRec->ino) != nullptr;
  if (dstRec && dstRec->materialized) {
    if (S_ISDIR(dstRec->mode)) {
      change.batch.removeDirectory(dstRec->ino);
    } else if (!dstLive) {
      change.batch.removeFileAfter(dstRec->ino);
    }
  }
  touchDirLocked(*from, change, parent.value());
  if (to != from) touchDirLocked(*to, change, newParent.value());
  HG_RETURN_IF_ERROR(commitLocked(change));
  if (dstLive) {
    if (!dstRec->materialized) sources_[dstRec->ino] = dstRec->source;
    detachLocked(dstRec->ino);
  }
  if (findLocked(srcRec.ino)) {
    if (!srcRec.materialized) sources_[srcRec.ino] = srcRec.source;
    reparentLocked(srcRec.ino, newParent.value(), newName);
  }
  return hg::okStatus();
}

hg::Result<Bytes> FileSystem::readlink(InodeNumber ino) {
  {
    std::shared_lock lock(mutex_);
    Inode* inode = findLocked(ino.value());
    if (!inode) return hg::notFound("unknown inode");
    if (!S_ISLNK(inode->mode)) return errnoError(EINVAL, "not a symlink");
  }
  HG_ASSIGN_OR_RETURN(FileData d, data(ino));
  if (d.blob) return *d.blob;
  struct stat st {};
  if (::fstat(d.file->fd(), &st) != 0) return sysError("cannot stat overlay file");
  Bytes target(static_cast<size_t>(st.st_size), '\0');
  HG_ASSIGN_OR_RETURN(size_t n, read(ino, target.data(), target.size(), 0));
  target.resize(n);
  return target;
}

size_t FileSystem::inodeCount() const {
  std::shared_lock lock(mutex_);
  return inodes_.size();
}

size_t FileSystem::memoryUsage() const {
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
