// FileSystem's changes to names and attributes: create, mknod, mkdir,
// symlink, unlink, rmdir, rename, setattr.
//
// Each is one OverlayChange made under the namespace lock (exclusive) and
// committed before the reply. What needs I/O is done before the lock is
// taken (the trees to materialize are warmed, a new file's overlay file is
// made) or after it is let go (overlay files deleted, a file's size and
// times set).

#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"
#include "fs/overlay_change.h"

namespace hgvfs::fs {

Result<struct stat> FileSystem::newEntry(InodeNumber parent, ByteView name, mode_t mode,
                                         const Caller& caller, ByteView symlinkTarget) {
  HG_RETURN_IF_ERROR(checkName(name));
  if (isDotHg(parent, name)) return errnoError(EEXIST, "exists");
  if (!overlay_) return readOnly().takeError();
  warmForChange(parent);
  OverlayEntry rec;
  rec.mode = mode;
  rec.uid = caller.uid;
  rec.gid = caller.gid;
  rec.materialized = true;
  std::shared_ptr<OverlayFile> file;
  if (!S_ISDIR(mode)) {
    // Made before the lock: the number is new, so no one else can name
    // this file yet. A failed change deletes it again.
    HG_ASSIGN_OR_RETURN(InodeNumber ino, inodes_.allocate());
    rec.ino = ino.value();
    // A symlink's overlay file holds its target, a device's its number.
    HG_ASSIGN_OR_RETURN(int fd, S_ISLNK(mode) || S_ISCHR(mode) || S_ISBLK(mode)
                                    ? overlay_->createFileWith(rec.ino, symlinkTarget)
                                    : overlay_->createFile(rec.ino));
    file = std::make_shared<OverlayFile>(fd, openFiles_);
  }
  Snapshot s;
  {
    FileReaper reaper(remover_);
    ChangeMark mark(*this);
    WriterLock lock(inodes_.mutex());
    OverlayChange change(*overlay_, reaper);
    if (file) change.createdFile(InodeNumber(rec.ino));
    HG_ASSIGN_OR_RETURN(s, addEntryLocked(parent, name, rec, file, change));
  }
  return attributes(s);
}

Result<FileSystem::Snapshot> FileSystem::addEntryLocked(InodeNumber parent, ByteView name,
                                                        OverlayEntry rec,
                                                        const std::shared_ptr<OverlayFile>& file,
                                                        OverlayChange& change) {
  HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(parent, change));
  if (dir->find(name)) return errnoError(EEXIST, "exists");
  if (!rec.ino) {
    HG_ASSIGN_OR_RETURN(InodeNumber fresh, inodes_.allocate());
    rec.ino = fresh.value();
  }
  // A set-group-ID directory passes its group on (and the bit, to
  // directories), as local filesystems do; the kernel leaves it to us.
  if (dir->header.mode & S_ISGID) {
    rec.gid = dir->header.gid;
    if (S_ISDIR(rec.mode)) rec.mode |= S_ISGID;
  }
  InodeNumber ino(rec.ino);
  std::unique_ptr<DirState> newDir;
  if (S_ISDIR(rec.mode)) {
    newDir = std::make_unique<DirState>();
    newDir->header.mode = rec.mode;
    newDir->header.uid = rec.uid;
    newDir->header.gid = rec.gid;
    newDir->header.atime = newDir->header.mtime = newDir->header.ctime = now();
    change.batch().putHeader(rec.ino, newDir->header);
  }
  change.addEntry(*dir, parent, name, rec);
  change.touch(*dir, parent);
  HG_RETURN_IF_ERROR(change.commit());
  Inode& inode = inodes_.insert(ino, parent, name, rec.mode, true, hg::Node());
  inode.nlookup = 1;
  Materialized& m = inodes_.materializedState(ino);
  m.uid = rec.uid;
  m.gid = rec.gid;
  m.dir = std::move(newDir);
  if (file && openFiles_ < 4096) m.file = file;
  return snapshotLocked(ino, inode);
}

Result<struct stat> FileSystem::create(InodeNumber parent, ByteView name, mode_t mode,
                                       const Caller& caller) {
  return newEntry(parent, name, S_IFREG | (mode & 07777), caller, {});
}

Result<struct stat> FileSystem::mknod(InodeNumber parent, ByteView name, mode_t mode,
                                      const Caller& caller, dev_t rdev) {
  if ((mode & S_IFMT) == 0) mode |= S_IFREG;
  if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISCHR(mode) && !S_ISBLK(mode)) {
    return errnoError(EINVAL, "not a kind of file mknod makes");
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) {
    return newEntry(parent, name, mode, caller, encodeRdev(rdev));
  }
  return newEntry(parent, name, mode, caller, {});
}

Result<struct stat> FileSystem::mkdir(InodeNumber parent, ByteView name, mode_t mode,
                                      const Caller& caller) {
  return newEntry(parent, name, S_IFDIR | (mode & 07777), caller, {});
}

Result<struct stat> FileSystem::symlink(InodeNumber parent, ByteView name, ByteView target,
                                        const Caller& caller) {
  if (target.empty()) return errnoError(ENOENT, "empty symlink target");
  return newEntry(parent, name, S_IFLNK | 0777, caller, target);
}

Result<bool> FileSystem::isEmptyDirLocked(const OverlayEntry& entry) {
  if (entry.materialized) {
    const Materialized* m = inodes_.materialized(InodeNumber(entry.ino));
    if (m && m->dir) return m->dir->entries.empty();
    HG_ASSIGN_OR_RETURN(auto loaded, overlay_->loadDirectory(entry.ino));
    return !loaded || loaded->entries.empty();
  }
  HG_ASSIGN_OR_RETURN(auto tree, treeOf(entry.id));  // warmed by warmForChange
  return tree->entries().empty();
}

Status FileSystem::unlink(InodeNumber parent, ByteView name) {
  if (isDotHg(parent, name)) return errnoError(EPERM, "the mount's .hg cannot be removed");
  return removeName(parent, name, false);
}

Status FileSystem::rmdir(InodeNumber parent, ByteView name) {
  if (name == ".") return errnoError(EINVAL, "cannot remove '.'");
  if (isDotHg(parent, name)) return errnoError(ENOTDIR, "the mount's .hg is a symlink");
  return removeName(parent, name, true);
}

// unlink (`directory` false) and rmdir (true).
Status FileSystem::removeName(InodeNumber parent, ByteView name, bool directory) {
  if (!overlay_) return readOnly();
  if (directory) {
    warmForChange(parent, name);
  } else {
    warmForChange(parent);
  }
  FileReaper reaper(remover_);
  ChangeMark mark(*this);
  bool touchCtime = false;
  InodeNumber ino;
  {
    WriterLock lock(inodes_.mutex());
    OverlayChange change(*overlay_, reaper);
    HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(parent, change));
    const DirState::Entry* e = dir->find(name);
    if (!e) return notFound("no such entry");
    if (directory && !S_ISDIR(e->rec.mode)) return errnoError(ENOTDIR, "not a directory");
    if (!directory && S_ISDIR(e->rec.mode)) return errnoError(EISDIR, "is a directory");
    if (directory) {
      HG_ASSIGN_OR_RETURN(bool empty, isEmptyDirLocked(e->rec));
      if (!empty) return errnoError(ENOTEMPTY, "directory not empty");
    }
    OverlayEntry rec = e->rec;
    ino = InodeNumber(rec.ino);
    change.removeEntry(*dir, parent, name);
    change.touch(*dir, parent);
    // A live inode keeps its overlay file until the kernel forgets it, and
    // a file with another name keeps it anyway.
    bool live = inodes_.get(ino) != nullptr;
    if (directory && rec.materialized) change.batch().removeDirectory(rec.ino);
    if (!directory && !live && lastNameLocked(rec)) change.removeFileAfter(ino);
    HG_RETURN_IF_ERROR(change.commit());
    unnameLocked(ino, parent, name, rec, reaper);
    // A file that keeps another name has one name less: its ctime moves.
    if (!directory && rec.materialized && inodes_.linkNames(ino)) touchCtime = true;
  }
  if (touchCtime) touchFileCtime(ino);
  return okStatus();
}

bool FileSystem::lastNameLocked(const OverlayEntry& rec) const {
  return rec.materialized && !S_ISDIR(rec.mode) && !inodes_.linkNames(InodeNumber(rec.ino));
}

void FileSystem::unnameLocked(InodeNumber ino, InodeNumber dir, ByteView name,
                              const OverlayEntry& rec, FileReaper& reaper) {
  if (inodes_.placedAt(ino, dir, name) && !rec.materialized) {
    inodes_.setSource(ino, rec.source);  // what is held open still reads its objects
  }
  inodes_.unname(ino, dir, name, reaper);
}

Result<struct stat> FileSystem::link(InodeNumber ino, InodeNumber newParent, ByteView newName) {
  HG_RETURN_IF_ERROR(checkName(newName));
  if (isDotHg(newParent, newName)) return errnoError(EEXIST, "exists");
  if (ino == kDotHgInode) return errnoError(EPERM, "the mount's .hg cannot be linked");
  if (!overlay_) return readOnly().takeError();
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* n = inodes_.get(ino);
    if (!n) return notFound("unknown inode");
    if (S_ISDIR(n->mode)) return errnoError(EPERM, "a directory cannot be hard-linked");
  }
  warmForChange(newParent);
  // Both names share the file's overlay file: it materializes first. A
  // dematerialization can come between (after a commit): then again.
  for (int attempt = 0;; ++attempt) {
    HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, materializeFile(ino, false));
    Snapshot s;
    {
      FileReaper reaper(remover_);
      ChangeMark mark(*this);
      WriterLock lock(inodes_.mutex());
      Inode* n = inodes_.find(ino);
      if (!n) return notFound("unknown inode");
      if (!n->materialized) {
        if (attempt < 3) continue;
        return errnoError(EAGAIN, "the file keeps changing");
      }
      uint32_t count = inodes_.nlink(ino);
      if (count == 0) return notFound("the file was removed");
      if (count >= kMaxLinks) return errnoError(EMLINK, "too many links");
      // The entry of one of its names, which the new one repeats.
      InodeTable::LinkName first{n->parent, n->name};
      if (!n->parent.valid()) first = inodes_.linkNames(ino)->front();
      HG_ASSIGN_OR_RETURN(DirState * from, loadedDirLocked(first.dir));
      const DirState::Entry* e = from->find(first.name);
      if (!e || e->rec.ino != ino.value() || !e->rec.materialized) {
        return corrupt("a file's entry is missing from its directory's overlay record");
      }
      OverlayEntry rec = e->rec;
      OverlayChange change(*overlay_, reaper);
      HG_ASSIGN_OR_RETURN(DirState * dir, changeableParentLocked(newParent, change));
      if (dir->find(newName)) return errnoError(EEXIST, "exists");
      change.addEntry(*dir, newParent, newName, rec);
      change.touch(*dir, newParent);
      HG_RETURN_IF_ERROR(change.commit());
      inodes_.addLinkName(ino, n->parent.valid() ? first : InodeTable::LinkName{},
                          {newParent, Bytes(newName)});
      n = inodes_.find(ino);
      ++n->nlookup;
      s = snapshotLocked(ino, *n);
    }
    // A new link is a change of the file's ctime: its overlay file's.
    (void)::fchmod(file->fd(), 0600);
    auto st = attributes(s);
    if (!st.ok()) forget(ino, 1);
    return st;
  }
}

// Both ends of a rename, their directories materialized.
struct FileSystem::RenameEnds {
  InodeNumber fromIno;
  DirState* from;
  Bytes name;
  InodeNumber toIno;
  DirState* to;
  Bytes newName;
  OverlayEntry src;
  std::optional<OverlayEntry> dst;  // what `newName` names now, if anything
};

Status FileSystem::rename(InodeNumber parent, ByteView name, InodeNumber newParent,
                          ByteView newName, unsigned flags) {
  HG_RETURN_IF_ERROR(checkName(newName));
  if (isDotHg(parent, name) || isDotHg(newParent, newName)) {
    return errnoError(EPERM, "the mount's .hg cannot be renamed or replaced");
  }
  if ((flags & RENAME_EXCHANGE) && (flags & RENAME_NOREPLACE)) {
    return errnoError(EINVAL, "invalid flags");
  }
  if (flags & ~(RENAME_EXCHANGE | RENAME_NOREPLACE)) return errnoError(EINVAL, "invalid flags");
  if (!overlay_) return readOnly();
  warmForChange(parent);
  warmForChange(newParent, newName);
  FileReaper reaper(remover_);
  ChangeMark mark(*this);
  std::vector<uint64_t> ctimes;
  {
    WriterLock lock(inodes_.mutex());
    OverlayChange change(*overlay_, reaper);
    HG_ASSIGN_OR_RETURN(RenameEnds ends,
                        renameEndsLocked(parent, name, newParent, newName, change));
    if (flags & RENAME_EXCHANGE) {
      HG_RETURN_IF_ERROR(exchangeLocked(ends, change));
    } else {
      if (ends.dst) {
        if (flags & RENAME_NOREPLACE) return errnoError(EEXIST, "target exists");
        if (ends.dst->ino == ends.src.ino) return okStatus();
        HG_RETURN_IF_ERROR(checkReplaceableLocked(ends));
      }
      HG_RETURN_IF_ERROR(moveLocked(ends, change, reaper));
      // A file that keeps another name has one name less.
      if (ends.dst && lastNameLocked(*ends.dst) && inodes_.nlink(InodeNumber(ends.dst->ino))) {
        ctimes.push_back(ends.dst->ino);
      }
    }
    // A renamed file's ctime moves, as on a local filesystem (one still
    // the revision's has no times of its own).
    if (ends.src.materialized && !S_ISDIR(ends.src.mode)) ctimes.push_back(ends.src.ino);
    if ((flags & RENAME_EXCHANGE) && ends.dst->materialized && !S_ISDIR(ends.dst->mode)) {
      ctimes.push_back(ends.dst->ino);
    }
  }
  for (uint64_t ino : ctimes) touchFileCtime(InodeNumber(ino));
  return okStatus();
}

void FileSystem::touchFileCtime(InodeNumber ino) {
  // Only an overlay file's ctime is the file's: a chmod to the mode it
  // always has moves it.
  (void)::chmod(overlay_->filePath(ino.value()).c_str(), 0600);
}

Result<FileSystem::RenameEnds> FileSystem::renameEndsLocked(InodeNumber parent, ByteView name,
                                                            InodeNumber newParent, ByteView newName,
                                                            OverlayChange& change) {
  RenameEnds ends{parent, nullptr, Bytes(name), newParent, nullptr, Bytes(newName), {}, {}};
  HG_ASSIGN_OR_RETURN(ends.from, changeableParentLocked(parent, change));
  HG_ASSIGN_OR_RETURN(ends.to, changeableParentLocked(newParent, change));
  const DirState::Entry* src = ends.from->find(name);
  if (!src) return notFound("no such entry");
  ends.src = src->rec;
  if (const DirState::Entry* dst = ends.to->find(newName)) ends.dst = dst->rec;
  // A directory may not move below itself.
  if (S_ISDIR(ends.src.mode) && inodes_.isWithin(newParent, InodeNumber(ends.src.ino))) {
    return errnoError(EINVAL, "cannot move a directory below itself");
  }
  return ends;
}

Status FileSystem::exchangeLocked(RenameEnds& ends, OverlayChange& change) {
  if (!ends.dst) return notFound("no such entry");
  if (S_ISDIR(ends.dst->mode) && inodes_.isWithin(ends.fromIno, InodeNumber(ends.dst->ino))) {
    return errnoError(EINVAL, "cannot move a directory below itself");
  }
  change.setEntry(*ends.from, ends.fromIno, *ends.from->find(ends.name), ends.name, *ends.dst);
  change.setEntry(*ends.to, ends.toIno, *ends.to->find(ends.newName), ends.newName, ends.src);
  change.touch(*ends.from, ends.fromIno);
  if (ends.to != ends.from) change.touch(*ends.to, ends.toIno);
  HG_RETURN_IF_ERROR(change.commit());
  InodeNumber a(ends.src.ino), b(ends.dst->ino);
  // A record named elsewhere (a hard link's other name) stays where it is.
  InodeNumber liveA = inodes_.placedAt(a, ends.fromIno, ends.name) ? a : InodeNumber();
  InodeNumber liveB = inodes_.placedAt(b, ends.toIno, ends.newName) ? b : InodeNumber();
  inodes_.exchange(liveA, ends.fromIno, ends.name, liveB, ends.toIno, ends.newName);
  inodes_.renameLinkNames(a, {ends.fromIno, ends.name}, {ends.toIno, ends.newName});
  inodes_.renameLinkNames(b, {ends.toIno, ends.newName}, {ends.fromIno, ends.name});
  return okStatus();
}

Status FileSystem::checkReplaceableLocked(const RenameEnds& ends) {
  if (S_ISDIR(ends.src.mode)) {
    if (!S_ISDIR(ends.dst->mode)) return errnoError(ENOTDIR, "target is not a directory");
    HG_ASSIGN_OR_RETURN(bool empty, isEmptyDirLocked(*ends.dst));
    if (!empty) return errnoError(ENOTEMPTY, "target directory not empty");
  } else if (S_ISDIR(ends.dst->mode)) {
    return errnoError(EISDIR, "target is a directory");
  }
  return okStatus();
}

// A plain move, or one that replaces what `newName` named (checked by
// checkReplaceableLocked).
Status FileSystem::moveLocked(RenameEnds& ends, OverlayChange& change, FileReaper& reaper) {
  change.removeEntry(*ends.from, ends.fromIno, ends.name);
  // The put below overwrites the replaced entry's record.
  if (ends.dst) change.removeEntry(*ends.to, ends.toIno, ends.newName, /*keepRecord=*/true);
  change.addEntry(*ends.to, ends.toIno, ends.newName, ends.src);
  std::optional<InodeNumber> dst;
  if (ends.dst) dst = InodeNumber(ends.dst->ino);
  bool dstLive = dst && inodes_.get(*dst);
  if (dst && ends.dst->materialized) {
    if (S_ISDIR(ends.dst->mode)) {
      change.batch().removeDirectory(dst->value());
    } else if (!dstLive && lastNameLocked(*ends.dst)) {
      change.removeFileAfter(*dst);
    }
  }
  change.touch(*ends.from, ends.fromIno);
  if (ends.to != ends.from) change.touch(*ends.to, ends.toIno);
  HG_RETURN_IF_ERROR(change.commit());
  if (dst) unnameLocked(*dst, ends.toIno, ends.newName, *ends.dst, reaper);
  InodeNumber src(ends.src.ino);
  if (inodes_.get(src) && !ends.src.materialized) inodes_.setSource(src, ends.src.source);
  inodes_.rename(src, ends.fromIno, ends.name, ends.toIno, ends.newName, reaper);
  return okStatus();
}

Result<struct stat> FileSystem::setattr(InodeNumber ino, const AttrChange& change) {
  if (!overlay_) return readOnly().takeError();
  if (ino == kDotHgInode) return errnoError(EPERM, "the mount's .hg cannot be changed");
  uint32_t mode;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    mode = inode->mode;
  }
  HG_RETURN_IF_ERROR(S_ISDIR(mode) ? setDirAttributes(ino, change)
                                   : setFileAttributes(ino, change, mode));
  return getattr(ino);
}

// A directory's attributes are its overlay header.
Status FileSystem::setDirAttributes(InodeNumber ino, const AttrChange& attrs) {
  if (attrs.size) return errnoError(EISDIR, "is a directory");
  warmForChange(ino);
  FileReaper reaper(remover_);
  ChangeMark mark(*this);
  WriterLock lock(inodes_.mutex());
  OverlayChange change(*overlay_, reaper);
  HG_ASSIGN_OR_RETURN(DirState * dir, materializeDirLocked(ino, change));
  OverlayDirHeader h = dir->header;
  struct timespec t = now();
  if (attrs.mode) h.mode = (h.mode & S_IFMT) | (*attrs.mode & 07777);
  if (attrs.uid) h.uid = *attrs.uid;
  if (attrs.gid) h.gid = *attrs.gid;
  if (attrs.atime) h.atime = attrs.atime->tv_nsec == UTIME_NOW ? t : *attrs.atime;
  if (attrs.mtime) h.mtime = attrs.mtime->tv_nsec == UTIME_NOW ? t : *attrs.mtime;
  h.ctime = t;
  change.putHeader(*dir, ino, h);
  Inode* inode = inodes_.find(ino);
  Materialized& m = inodes_.materializedState(ino);
  uint32_t mode = inode->mode;
  uid_t uid = m.uid;
  gid_t gid = m.gid;
  change.onUndo([this, ino, mode, uid, gid]() REQUIRES(inodes_.mutex()) {
    if (Inode* n = inodes_.find(ino)) n->mode = mode;
    Materialized& before = inodes_.materializedState(ino);
    before.uid = uid;
    before.gid = gid;
  });
  inode->mode = h.mode;
  m.uid = h.uid;
  m.gid = h.gid;
  // A lookup through the parent reads them from its record.
  HG_RETURN_IF_ERROR(recordOwnerAndModeLocked(ino, h.mode, h.uid, h.gid, change));
  return change.commit();
}

// A file's attributes: size, times and data are its overlay file's, set
// without the lock; mode and owner are in its parent's record.
Status FileSystem::setFileAttributes(InodeNumber ino, const AttrChange& attrs, uint32_t mode) {
  if (S_ISLNK(mode) && (attrs.size || attrs.mode)) {
    return errnoError(EINVAL, "cannot change a symlink's size or mode");
  }
  bool empty = attrs.size && *attrs.size == 0;
  HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, materializeFile(ino, empty));
  ChangeMark mark(*this);
  // Size and times under the file's mtime lock (kernel_mtime.h; a leaf, so
  // never held while the namespace lock is taken below). When the kernel
  // owns mtimes it sends a truncation's mtime along; without one, a
  // truncation keeps the mtime it found.
  if (attrs.size) {
    std::unique_lock<std::mutex> held = kernelMtime_.lockForTimes(ino);
    struct stat before {};
    bool keep = held.owns_lock() && !attrs.mtime && ::fstat(file->fd(), &before) == 0;
    if (::ftruncate(file->fd(), static_cast<off_t>(*attrs.size)) != 0) {
      return sysError("cannot truncate overlay file");
    }
    if (keep) {
      const struct timespec times[2] = {{0, UTIME_OMIT}, before.st_mtim};
      (void)::futimens(file->fd(), times);
    }
  }
  if (attrs.mode || attrs.uid || attrs.gid) {
    {
      FileReaper reaper(remover_);
      ChangeMark mark(*this);
      WriterLock lock(inodes_.mutex());
      OverlayChange change(*overlay_, reaper);
      HG_RETURN_IF_ERROR(setOwnerAndModeLocked(ino, attrs, change));
    }
    // The overlay file's ctime is the file's ctime.
    (void)::fchmod(file->fd(), 0600);
  }
  if (attrs.atime || attrs.mtime) {
    std::unique_lock<std::mutex> held = kernelMtime_.lockForTimes(ino);
    struct timespec times[2];
    times[0] = attrs.atime ? *attrs.atime : timespec{0, UTIME_OMIT};
    times[1] = attrs.mtime ? *attrs.mtime : timespec{0, UTIME_OMIT};
    if (::futimens(file->fd(), times) != 0) return sysError("cannot set times");
  }
  return okStatus();
}

Status FileSystem::setOwnerAndModeLocked(InodeNumber ino, const AttrChange& attrs,
                                         OverlayChange& change) {
  Inode* inode = inodes_.find(ino);
  if (!inode) return notFound("unknown inode");
  uint32_t mode = attrs.mode ? ((inode->mode & S_IFMT) | (*attrs.mode & 07777)) : inode->mode;
  const Materialized* before = inodes_.materialized(ino);
  uid_t uid = attrs.uid ? *attrs.uid : before ? before->uid : 0;
  gid_t gid = attrs.gid ? *attrs.gid : before ? before->gid : 0;
  if (inode->parent.valid() || inodes_.linkNames(ino)) {
    HG_RETURN_IF_ERROR(recordOwnerAndModeLocked(ino, mode, uid, gid, change));
    HG_RETURN_IF_ERROR(change.commit());
  }
  inode->mode = mode;
  Materialized& m = inodes_.materializedState(ino);
  m.uid = uid;
  m.gid = gid;
  return okStatus();
}

Status FileSystem::recordOwnerAndModeLocked(InodeNumber ino, uint32_t mode, uid_t uid, gid_t gid,
                                            OverlayChange& change) {
  const Inode* inode = inodes_.get(ino);
  if (ino == kRootInode || !inode) return okStatus();
  if (const auto* names = inodes_.linkNames(ino)) {
    // Each name's entry repeats them (its directories are materialized).
    for (const auto& link : std::vector<InodeTable::LinkName>(*names)) {
      HG_ASSIGN_OR_RETURN(DirState * dir, loadedDirLocked(link.dir));
      DirState::Entry* e = dir->find(link.name);
      if (!e || e->rec.ino != ino.value()) {
        return corrupt("a hard link's entry is missing from its directory's overlay record");
      }
      OverlayEntry rec = e->rec;
      rec.mode = mode;
      rec.uid = uid;
      rec.gid = gid;
      change.setEntry(*dir, link.dir, *e, link.name, rec);
    }
    return okStatus();
  }
  if (!inode->parent.valid()) return okStatus();
  HG_ASSIGN_OR_RETURN(DirState * parent, materializeDirLocked(inode->parent, change));
  inode = inodes_.get(ino);
  DirState::Entry* e = parent->find(inode->name);
  if (!e) return corrupt("an entry is missing from its directory's overlay record");
  OverlayEntry rec = e->rec;
  rec.mode = mode;
  rec.uid = uid;
  rec.gid = gid;
  change.setEntry(*parent, inode->parent, *e, inode->name, rec);
  return okStatus();
}

}  // namespace hgvfs::fs
