#include "fs/file_system.h"

#include "fs/log.h"

namespace hgvfs::fs {
namespace {

// The caller asked for an operation the inode's kind does not have; `err`
// is the errno the kernel should see.
hg::Error typeError(int err, std::string what) {
  hg::Error e = hg::invalidArgument(std::move(what));
  e.err = err;
  return e;
}

}  // namespace

FileSystem::FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
                       FileSystemOptions options)
    : objects_(std::move(objects)), options_(options), inodes_(root) {}

hg::Error FileSystem::annotate(hg::Error e, InodeNumber ino) const {
  if (auto path = inodes_.pathOf(ino)) {
    e.what += " (reading '" + hg::printable(*path) + "')";
  }
  return e;
}

hg::Result<uint64_t> FileSystem::sizeOf(const InodeInfo& info) {
  if (info.size != kUnknownSize) return info.size;
  auto path = inodes_.pathOf(info.ino);
  if (!path) return hg::notFound("inode forgotten");
  auto size = objects_->fileSize(*path, info.id);
  if (!size.ok()) return annotate(std::move(size).takeError(), info.ino);
  inodes_.setSize(info.ino, *size);
  return *size;
}

hg::Result<struct stat> FileSystem::attributes(const InodeInfo& info) {
  struct stat st {};
  st.st_ino = info.ino.value();
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_atim = st.st_mtim = st.st_ctim = options_.time;
  st.st_blksize = 4096;
  switch (info.kind) {
    case store::EntryKind::kDirectory:
      // 1 like btrfs: tools read it as "count unknown" and never skip a
      // directory because of it; counting subdirectories would cost a tree
      // load per directory attribute.
      st.st_mode = S_IFDIR | 0755;
      st.st_nlink = 1;
      st.st_size = 4096;
      break;
    case store::EntryKind::kRegular:
    case store::EntryKind::kExecutable:
    case store::EntryKind::kSymlink: {
      HG_ASSIGN_OR_RETURN(uint64_t size, sizeOf(info));
      st.st_mode = info.kind == store::EntryKind::kSymlink      ? (S_IFLNK | 0777)
                   : info.kind == store::EntryKind::kExecutable ? (S_IFREG | 0755)
                                                                : (S_IFREG | 0644);
      st.st_nlink = 1;
      st.st_size = static_cast<off_t>(size);
      break;
    }
  }
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

hg::Result<std::shared_ptr<const store::Tree>> FileSystem::listing(InodeNumber ino) {
  auto info = inodes_.get(ino);
  if (!info) return hg::notFound("unknown inode");
  if (info->kind != store::EntryKind::kDirectory) return typeError(ENOTDIR, "not a directory");
  auto tree = objects_->tree(store::TreeId(info->id));
  if (!tree.ok()) return annotate(std::move(tree).takeError(), ino);
  return tree;
}

hg::Result<struct stat> FileSystem::lookup(InodeNumber parent, ByteView name) {
  HG_ASSIGN_OR_RETURN(auto tree, listing(parent));
  const store::TreeEntry* entry = tree->find(name);
  if (!entry) return hg::notFound("no such entry");
  return lookupEntry(parent, *entry);
}

hg::Result<struct stat> FileSystem::lookupEntry(InodeNumber parent, const store::TreeEntry& entry) {
  InodeInfo child = inodes_.lookupChild(parent, entry, /*countLookup=*/true);
  auto st = attributes(child);
  if (!st.ok()) inodes_.forget(child.ino, 1);  // the kernel will not learn of it
  return st;
}

InodeNumber FileSystem::entryInode(InodeNumber parent, const store::TreeEntry& entry) {
  return inodes_.lookupChild(parent, entry, /*countLookup=*/false).ino;
}

struct stat FileSystem::parentAttributes(InodeNumber dir) {
  struct stat st {};
  auto info = inodes_.get(dir);
  st.st_ino = info ? info->parent.value() : kRootInode.value();
  st.st_mode = S_IFDIR | 0755;
  return st;
}

hg::Result<struct stat> FileSystem::getattr(InodeNumber ino) {
  auto info = inodes_.get(ino);
  if (!info) return hg::notFound("unknown inode");
  return attributes(*info);
}

hg::Result<std::shared_ptr<const Bytes>> FileSystem::content(InodeNumber ino) {
  auto info = inodes_.get(ino);
  if (!info) return hg::notFound("unknown inode");
  if (info->kind == store::EntryKind::kDirectory) return typeError(EISDIR, "is a directory");
  auto path = inodes_.pathOf(ino);
  if (!path) return hg::notFound("inode forgotten");
  auto blob = objects_->blob(*path, info->id);
  if (!blob.ok()) return annotate(std::move(blob).takeError(), ino);
  if (info->size == kUnknownSize) inodes_.setSize(ino, (*blob)->size());
  return blob;
}

hg::Result<Bytes> FileSystem::readlink(InodeNumber ino) {
  auto info = inodes_.get(ino);
  if (!info) return hg::notFound("unknown inode");
  if (info->kind != store::EntryKind::kSymlink) return typeError(EINVAL, "not a symlink");
  HG_ASSIGN_OR_RETURN(auto blob, content(ino));
  return *blob;
}

}  // namespace hgvfs::fs
