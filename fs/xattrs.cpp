// FileSystem: extended attributes (file_system.h). They are kept in the
// overlay by inode number (overlay_xattrs.cpp), so setting the first one
// materializes the inode (its number then lasts across remounts; a file's
// attributes go when its overlay file does, a directory's with its record).
// An inode that is not materialized has none.
//
// Namespaces, as ext4 without ACLs: user.*, trusted.* (root) and
// security.*; system.* and anything else is EOPNOTSUPP. The kernel checks
// permissions first (write access for user.*, CAP_SYS_ADMIN for trusted.*,
// user.* only on files and directories); these checks repeat the ones that
// need no kernel help, for callers that are not the kernel.

#include <sys/xattr.h>
#include <unistd.h>

#include "fs/file_system.h"
#include "fs/file_system_internal.h"

namespace hgvfs::fs {
namespace {

bool startsWith(ByteView name, ByteView prefix) { return name.substr(0, prefix.size()) == prefix; }

// EOPNOTSUPP for names outside the namespaces kept, ERANGE for bad lengths.
Status checkXattrName(ByteView name) {
  if (name.empty() || name.size() > XATTR_NAME_MAX) return errnoError(ERANGE, "bad attribute name");
  for (ByteView prefix : {ByteView("user."), ByteView("trusted."), ByteView("security.")}) {
    if (startsWith(name, prefix)) {
      if (name.size() == prefix.size()) return errnoError(EINVAL, "attribute name without suffix");
      return okStatus();
    }
  }
  return errnoError(EOPNOTSUPP, "attribute namespace not supported");
}

bool isTrusted(ByteView name) { return startsWith(name, "trusted."); }

}  // namespace

Result<Bytes> FileSystem::getxattr(InodeNumber ino, ByteView name, const Caller& caller) {
  HG_RETURN_IF_ERROR(checkXattrName(name));
  if (isTrusted(name) && caller.uid != 0) return errnoError(ENODATA, "no such attribute");
  noteFileAttention();  // ls -l reads one per entry
  // Without the namespace lock: an inode with no attributes (every write
  // asks for security.capability) costs one lookup in memory.
  if (!overlay_ || !overlay_->hasXattrs(ino.value())) {
    return errnoError(ENODATA, "no such attribute");
  }
  HG_ASSIGN_OR_RETURN(auto value, overlay_->getXattr(ino.value(), name));
  if (!value) return errnoError(ENODATA, "no such attribute");
  return std::move(*value);
}

Result<Bytes> FileSystem::listxattr(InodeNumber ino, const Caller& caller) {
  Bytes out;
  if (!overlay_ || !overlay_->hasXattrs(ino.value())) return out;
  HG_ASSIGN_OR_RETURN(auto names, overlay_->listXattrs(ino.value()));
  for (const Bytes& name : names) {
    if (isTrusted(name) && caller.uid != 0) continue;
    out += name;
    out.push_back('\0');
  }
  return out;
}

Result<InodeNumber> FileSystem::xattrHolder(InodeNumber ino) {
  if (ino == kDotHgInode && !dotHgTarget_.empty()) {
    return errnoError(EPERM, "the mount's .hg cannot be changed");
  }
  uint32_t mode;
  bool materialized;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return notFound("unknown inode");
    mode = inode->mode;
    materialized = inode->materialized;
  }
  if (S_ISDIR(mode)) {
    if (!materialized) HG_RETURN_IF_ERROR(setDirAttributes(ino, AttrChange{}));
  } else {
    auto file = materializeFile(ino, false);
    if (!file.ok()) return std::move(file).takeError();
  }
  return ino;
}

Status FileSystem::touchCtime(InodeNumber ino) {
  bool directory;
  {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (!inode) return okStatus();  // gone meanwhile: nothing shows a time
    directory = S_ISDIR(inode->mode);
  }
  if (directory) return setDirAttributes(ino, AttrChange{});
  HG_ASSIGN_OR_RETURN(std::shared_ptr<OverlayFile> file, materializeFile(ino, false));
  // The overlay file's ctime is the file's ctime; its own mode is fixed.
  if (::fchmod(file->fd(), 0600) != 0) return sysError("cannot change overlay file");
  return okStatus();
}

Status FileSystem::setxattr(InodeNumber ino, ByteView name, ByteView value, int flags,
                            const Caller& caller) {
  HG_RETURN_IF_ERROR(checkXattrName(name));
  if (!overlay_) return readOnly();
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return errnoError(EINVAL, "unknown flags");
  if (isTrusted(name) && caller.uid != 0) return errnoError(EPERM, "trusted.* is root's");
  if (startsWith(name, "user.")) {
    ReaderLock lock(inodes_.mutex());
    const Inode* inode = inodes_.get(ino);
    if (inode && !S_ISREG(inode->mode) && !S_ISDIR(inode->mode)) {
      return errnoError(EPERM, "user.* attributes only on files and directories");
    }
  }
  HG_ASSIGN_OR_RETURN(InodeNumber holder, xattrHolder(ino));
  ChangeMark mark(*this);
  HG_RETURN_IF_ERROR(overlay_->setXattr(holder.value(), name, value, flags));
  return touchCtime(holder);
}

Status FileSystem::removexattr(InodeNumber ino, ByteView name, const Caller& caller) {
  HG_RETURN_IF_ERROR(checkXattrName(name));
  if (!overlay_) return readOnly();
  if (isTrusted(name) && caller.uid != 0) return errnoError(EPERM, "trusted.* is root's");
  if (!overlay_->hasXattrs(ino.value())) return errnoError(ENODATA, "no such attribute");
  ChangeMark mark(*this);
  HG_RETURN_IF_ERROR(overlay_->removeXattr(ino.value(), name));
  return touchCtime(ino);
}

}  // namespace hgvfs::fs
