// FileSystem: construction, names (lookup, forget, listings), attributes and
// content. Changes to names are in file_system_changes.cpp, copies into the
// overlay in materialize.cpp, the diff for status in working_diff.cpp.

#include "fs/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/file_system_internal.h"
#include "fs/log.h"

namespace hgvfs::fs {
namespace {

// Up to `max` entries of a loaded directory with a cookie above `after`.
void listDir(const DirState& dir, uint64_t after, size_t max, std::vector<ListedEntry>& out) {
  for (auto it = dir.byCookie.upper_bound(after); it != dir.byCookie.end() && out.size() < max;
       ++it) {
    const DirState::Entry& e = dir.entries.at(it->second);
    out.push_back({it->second, e.rec.ino, e.rec.mode & S_IFMT, it->first});
  }
}

}  // namespace

FileSystem::FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
                       std::unique_ptr<Overlay> overlay, FileSystemOptions options)
    : objects_(std::move(objects)),
      overlay_(std::move(overlay)),
      options_(options),
      remover_(overlay_.get()),
      inodes_(root.raw(), overlay_.get()) {}

FileSystem::~FileSystem() = default;

void FileSystem::setDotHg(Bytes target) {
  WriterLock lock(inodes_.mutex());
  dotHgTarget_ = std::move(target);
  Inode& inode = inodes_.insert(kDotHgInode, kRootInode, ".hg", S_IFLNK | 0777, false, hg::Node());
  inode.nlookup = 1;  // never freed
  inode.size = dotHgTarget_.size();
}

Status FileSystem::start() {
  if (!overlay_) return okStatus();
  // Nothing else runs yet: the overlay's own checks need no lock of ours.
  HG_ASSIGN_OR_RETURN(auto report, overlay_->check());
  if (report.orphanFiles || report.orphanDirectories || report.danglingEntries) {
    log().warn(
        "overlay repaired at mount: {} orphan overlay files, {} unreachable directory records and "
        "{} dangling entries removed",
        report.orphanFiles, report.orphanDirectories, report.danglingEntries);
  }
  if (report.orphanXattrs) {
    log().info("overlay: extended attributes of {} inodes no entry names removed at mount",
               report.orphanXattrs);
  }
  HG_RETURN_IF_ERROR(
      inodes_.startNumbering(std::max(overlay_->reservedInodes(), report.maxInode + 1)));
  if (!report.links.empty()) {
    WriterLock lock(inodes_.mutex());
    for (auto& [ino, names] : report.links) {
      std::vector<InodeTable::LinkName> linkNames;
      for (auto& [dir, name] : names) linkNames.push_back({InodeNumber(dir), std::move(name)});
      inodes_.setLinkNames(InodeNumber(ino), std::move(linkNames));
    }
    log().info("overlay: {} files with more than one name (hard links)", report.links.size());
  }
  HG_ASSIGN_OR_RETURN(auto root, overlay_->loadDirectory(kRootInode.value()));
  if (root) {
    WriterLock lock(inodes_.mutex());
    Inode* inode = inodes_.find(kRootInode);
    inode->materialized = true;
    inode->mode = root->header.mode;
    Materialized& m = inodes_.materializedState(kRootInode);
    m.uid = root->header.uid;
    m.gid = root->header.gid;
  }
  log().info("overlay: {} materialized directories, {} overlay files, next inode {}",
             report.directories, report.files, inodes_.nextNumber());
  return okStatus();
}

Status FileSystem::readOnly() const { return errnoError(EROFS, "read-only mount"); }

Error FileSystem::annotate(Error e, InodeNumber ino) {
  std::optional<Bytes> path;
  {
    ReaderLock lock(inodes_.mutex());
    path = inodes_.path(ino);
  }
  if (path) e.what += " (reading '" + printable(*path) + "')";
  return e;
}

Result<std::shared_ptr<const store::Tree>> FileSystem::treeOf(const hg::Node& id) {
  return objects_->tree(store::TreeId(id));
}

FileSystem::Snapshot FileSystem::snapshotLocked(InodeNumber ino, const Inode& inode) const {
  Snapshot s{ino,        inode.parent, inode.mode,   inode.materialized, inode.id,
             inode.size, options_.uid, options_.gid, std::nullopt,       inodes_.nlink(ino)};
  if (inode.materialized) {
    if (const Materialized* m = inodes_.materialized(ino)) {
      s.uid = m->uid;
      s.gid = m->gid;
      if (m->dir) s.header = m->dir->header;
    }
  }
  return s;
}

Result<DirState*> FileSystem::loadedDirLocked(InodeNumber ino) {
  Materialized& m = inodes_.materializedState(ino);
  if (m.dir) return m.dir.get();
  HG_ASSIGN_OR_RETURN(auto loaded, overlay_->loadDirectory(ino.value()));
  if (!loaded) {
    return corrupt("materialized directory has no overlay record",
                   overlay_->directory() + " (inode " + std::to_string(ino.value()) + ")");
  }
  auto state = std::make_unique<DirState>();
  state->header = loaded->header;
  for (auto& [name, rec] : loaded->entries) state->insert(name, rec);
  m.uid = state->header.uid;
  m.gid = state->header.gid;
  m.dir = std::move(state);
  return m.dir.get();
}

const DirState* FileSystem::cachedDirLocked(InodeNumber ino) const {
  const Materialized* m = inodes_.materialized(ino);
  return m ? m->dir.get() : nullptr;
}

Result<struct stat> FileSystem::attributes(const Snapshot& s) {
  struct stat st {};
  st.st_ino = s.ino.value();
  st.st_mode = s.mode;
  st.st_uid = s.uid;
  st.st_gid = s.gid;
  st.st_nlink = s.nlink;
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
        WriterLock lock(inodes_.mutex());
        HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(s.ino));
        header = dir->header;
      }
      st.st_atim = header.atime;
      st.st_mtim = header.mtime;
      st.st_ctim = header.ctime;
    }
  } else if (s.materialized) {
    struct stat real {};
    if (::stat(overlay_->filePath(s.ino.value()).c_str(), &real) != 0) {
      Error e = sysError("cannot stat overlay file");
      e.where = overlay_->filePath(s.ino.value());
      return e;
    }
    st.st_size = S_ISREG(s.mode) || S_ISLNK(s.mode) ? real.st_size : 0;
    st.st_blocks = S_ISREG(s.mode) || S_ISLNK(s.mode) ? real.st_blocks : 0;
    if (S_ISCHR(s.mode) || S_ISBLK(s.mode)) {
      HG_ASSIGN_OR_RETURN(st.st_rdev, readRdev(s.ino));
    }
    st.st_atim = real.st_atim;
    st.st_mtim = real.st_mtim;
    st.st_ctim = real.st_ctim;
    return st;
  } else {
    uint64_t size = s.size;
    if (size == kUnknownSize) {
      Bytes source;
      {
        ReaderLock lock(inodes_.mutex());
        HG_ASSIGN_OR_RETURN(source, inodes_.sourcePath(s.ino));
      }
      noteFileAttention();
      if (!objects_->knownSize(s.id)) warmSiblingSizes(s.ino);
      auto got = objects_->fileSize(source, s.id);
      if (!got.ok()) return annotate(std::move(got).takeError(), s.ino);
      size = *got;
      WriterLock lock(inodes_.mutex());
      if (Inode* inode = inodes_.find(s.ino); inode && !inode->materialized) inode->size = size;
    }
    st.st_size = static_cast<off_t>(size);
  }
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

Result<dev_t> FileSystem::readRdev(InodeNumber ino) {
  std::string path = overlay_->filePath(ino.value());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Error e = sysError("cannot open overlay file");
    e.where = path;
    return e;
  }
  unsigned char raw[8];
  ssize_t n = ::pread(fd, raw, sizeof raw, 0);
  ::close(fd);
  if (n != sizeof raw) return corrupt("a device's overlay file does not hold its number", path);
  uint64_t rdev = 0;
  for (unsigned char c : raw) rdev = (rdev << 8) | c;
  return static_cast<dev_t>(rdev);
}

Result<FileSystem::Snapshot> FileSystem::lookupLocked(InodeNumber parent, ByteView name) {
  const Inode* dir = inodes_.get(parent);
  if (!dir) return notFound("unknown inode");
  if (!S_ISDIR(dir->mode)) return errnoError(ENOTDIR, "not a directory");
  if (std::optional<InodeNumber> existing = inodes_.child(parent, name)) {
    Inode* n = inodes_.find(*existing);
    ++n->nlookup;
    return snapshotLocked(*existing, *n);
  }
  InodeNumber ino;
  if (dir->materialized) {
    HG_ASSIGN_OR_RETURN(DirState * state, loadedDirLocked(parent));
    const DirState::Entry* entry = state->find(name);
    if (!entry) return notFound("no such entry");
    const OverlayEntry& rec = entry->rec;
    ino = InodeNumber(rec.ino);
    if (Inode* other = inodes_.find(ino)) {
      // Loaded through another of its names (a hard link).
      inodes_.placeIfUnplaced(ino, parent, name);
      ++other->nlookup;
      return snapshotLocked(ino, *other);
    }
    inodes_.insert(ino, parent, name, rec.mode, rec.materialized, rec.id);
    if (rec.materialized) {
      Materialized& m = inodes_.materializedState(ino);
      m.uid = rec.uid;
      m.gid = rec.gid;
    } else {
      inodes_.setSource(ino, rec.source);
    }
  } else {
    HG_ASSIGN_OR_RETURN(auto tree, treeOf(dir->id));  // the store's LRU: warmed by lookup()
    const store::TreeEntry* entry = tree->find(name);
    if (!entry) return notFound("no such entry");
    HG_ASSIGN_OR_RETURN(ino, inodes_.allocate());
    inodes_.insert(ino, parent, name, modeOf(entry->kind), false, entry->id);
  }
  Inode* n = inodes_.find(ino);
  ++n->nlookup;
  return snapshotLocked(ino, *n);
}

Result<struct stat> FileSystem::lookup(InodeNumber parent, ByteView name) {
  if (name.size() > NAME_MAX) return errnoError(ENAMETOOLONG, "name too long");
  // Warm the tree outside the lock, so a cold directory load does not stall
  // every other request.
  {
    std::optional<hg::Node> id;
    {
      ReaderLock lock(inodes_.mutex());
      const Inode* dir = inodes_.get(parent);
      if (dir && S_ISDIR(dir->mode) && !dir->materialized) id = dir->id;
    }
    if (id) (void)treeOf(*id);
  }
  Snapshot s;
  {
    WriterLock lock(inodes_.mutex());
    HG_ASSIGN_OR_RETURN(s, lookupLocked(parent, name));
  }
  auto st = attributes(s);
  if (!st.ok()) forget(s.ino, 1);  // the kernel will not learn of it
  return st;
}

void FileSystem::forget(InodeNumber ino, uint64_t n) {
  if (ino == kRootInode) return;
  FileReaper reaper(remover_);  // after the lock: what dies with the inode
  WriterLock lock(inodes_.mutex());
  Inode* inode = inodes_.find(ino);
  if (!inode) return;
  inode->nlookup = n >= inode->nlookup ? 0 : inode->nlookup - n;
  inodes_.release(ino, reaper);
}

Result<struct stat> FileSystem::getattr(InodeNumber ino) {
  Snapshot s;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    s = snapshotLocked(ino, *inode);
  }
  return attributes(s);
}

InodeNumber FileSystem::parentOf(InodeNumber dir) {
  ReaderLock lock(inodes_.mutex());
  const Inode* inode = inodes_.get(dir);
  if (!inode || !inode->parent.valid()) return dir;
  return inode->parent;
}

Status FileSystem::listTreeLocked(InodeNumber dir, const store::Tree& tree, uint64_t after,
                                  size_t max, std::vector<ListedEntry>& out) {
  const auto& entries = tree.entries();
  for (size_t i = after < 4 ? 0 : after - 3; i < entries.size() && out.size() < max; ++i) {
    const store::TreeEntry& entry = entries[i];
    std::optional<InodeNumber> ino = inodes_.child(dir, entry.name);
    if (!ino) {
      HG_ASSIGN_OR_RETURN(ino, inodes_.allocate());
      inodes_.insert(*ino, dir, entry.name, modeOf(entry.kind), false, entry.id);
    }
    out.push_back({entry.name, ino->value(), modeOf(entry.kind) & S_IFMT, i + 4});
  }
  return okStatus();
}

Result<std::vector<ListedEntry>> FileSystem::list(InodeNumber dir, uint64_t after, size_t max) {
  std::vector<ListedEntry> out;
  std::optional<hg::Node> treeId;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(dir);
    if (!inode) return notFound("unknown inode");
    if (!S_ISDIR(inode->mode)) return errnoError(ENOTDIR, "not a directory");
    if (!inode->materialized) treeId = inode->id;
  }
  if (dir == kRootInode && !dotHgTarget_.empty() && after < 3 && max > 0) {
    out.push_back({".hg", kDotHgInode.value(), S_IFLNK, 3});
    --max;
  }
  if (treeId) {
    auto tree = treeOf(*treeId);
    if (!tree.ok()) return annotate(std::move(tree).takeError(), dir);
    WriterLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(dir);
    if (!inode) return notFound("unknown inode");
    if (!inode->materialized) {
      HG_RETURN_IF_ERROR(listTreeLocked(dir, **tree, after, max, out));
      return out;
    }
    // Materialized meanwhile: its cookies continue the tree's numbering.
  }
  {
    ReaderLock lock(inodes_.mutex());
    if (const DirState* state = cachedDirLocked(dir)) {
      listDir(*state, after, max, out);
      return out;
    }
  }
  WriterLock lock(inodes_.mutex());
  HG_ASSIGN_OR_RETURN(DirState * state, loadedDirLocked(dir));
  listDir(*state, after, max, out);
  return out;
}

Result<FileSystem::ContentSource> FileSystem::contentSource(InodeNumber ino, bool wantSource) {
  ContentSource out;
  ReaderLock lock(inodes_.mutex());
  const Inode* inode = inodes_.get(ino);
  if (!inode) return notFound("unknown inode");
  if (S_ISDIR(inode->mode)) return errnoError(EISDIR, "is a directory");
  out.materialized = inode->materialized;
  if (out.materialized) {
    const Materialized* m = inodes_.materialized(ino);
    if (m) out.file = m->file;
    return out;
  }
  if (wantSource) {
    HG_ASSIGN_OR_RETURN(out.source, inodes_.sourcePath(ino));
  }
  out.id = inode->id;
  out.parent = inode->parent;
  return out;
}

Result<FileData> FileSystem::data(InodeNumber ino) {
  FileData out;
  if (ino == kDotHgInode && !dotHgTarget_.empty()) {
    out.blob = std::make_shared<const Bytes>(dotHgTarget_);
    return out;
  }
  HG_ASSIGN_OR_RETURN(ContentSource from, contentSource(ino, true));
  if (from.materialized) {
    if (from.file) {
      out.file = std::move(from.file);
      return out;
    }
    // Its overlay file is not open yet.
    HG_ASSIGN_OR_RETURN(out.file, openFile(ino));
    if (out.file) return out;
    // Dematerialized meanwhile: its blob now.
    HG_ASSIGN_OR_RETURN(from, contentSource(ino, true));
    if (from.materialized) return ioError(EAGAIN, "the file changed while it was opened");
  }
  auto blob = objects_->blob(from.source, from.id);
  if (!blob.ok()) return annotate(std::move(blob).takeError(), ino);
  out.blob = std::move(blob).value();
  return out;
}

Result<size_t> FileSystem::read(InodeNumber ino, char* buf, size_t size, uint64_t offset) {
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

Result<std::shared_ptr<OverlayFile>> FileSystem::writableFile(InodeNumber ino) {
  if (!overlay_) return readOnly().takeError();
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    if (inode->materialized) {
      const Materialized* m = inodes_.materialized(ino);
      if (m && m->file) return m->file;
    }
  }
  return materializeFile(ino, false);
}

Result<size_t> FileSystem::write(InodeNumber ino, const char* buf, size_t size, uint64_t offset) {
  HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, writableFile(ino));
  ChangeMark mark(*this);
  KernelMtime::Keep keep(kernelMtime_, ino, file->fd());
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

Status FileSystem::fallocate(InodeNumber ino, int mode, uint64_t offset, uint64_t length) {
  if (!overlay_) return readOnly();
  HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, materializeFile(ino, false));
  ChangeMark mark(*this);
  if (::fallocate(file->fd(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
    return sysError("fallocate");
  }
  return okStatus();
}

Status FileSystem::fsync(InodeNumber ino, bool dataOnly) {
  if (!overlay_) return okStatus();
  bool hasFile = false;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    hasFile = inode->materialized && !S_ISDIR(inode->mode);
  }
  if (hasFile) {
    HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, openFile(ino));
    if (file && (dataOnly ? ::fdatasync(file->fd()) : ::fsync(file->fd())) != 0)
      return sysError("fsync");
  }
  return overlay_->sync();
}

Status FileSystem::syncMetadata() { return overlay_ ? overlay_->sync() : okStatus(); }

Result<Bytes> FileSystem::readlink(InodeNumber ino) {
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
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
  ReaderLock lock(inodes_.mutex());
  return inodes_.size();
}

InodeCounts FileSystem::inodeCounts() const {
  ReaderLock lock(inodes_.mutex());
  return inodes_.counts();
}

size_t FileSystem::memoryUsage() const {
  ReaderLock lock(inodes_.mutex());
  return inodes_.memoryUsage();
}

}  // namespace hgvfs::fs
