#pragma once
// The read-only view of one revision, as a filesystem: what every FUSE
// operation answers, without the FUSE types (fuse_server.cpp turns these
// answers into replies). Keeping the logic apart from libfuse lets tests
// drive it directly.
//
// Directories are lazy: a directory inode holds only its tree id, and its
// listing is fetched from the object store (memory LRU, then LMDB) when the
// kernel asks. A child inode is created when the kernel looks it up.
// File contents and sizes come from the object store, which reads them
// through hgbridge on a miss.
//
// Thread rules: every method may be called from any FUSE worker thread at
// once. Locks: only the inode table's (a leaf).

#include <sys/stat.h>

#include <memory>
#include <optional>
#include <vector>

#include "fs/inode_table.h"
#include "store/object_store.h"

namespace hgvfs::fs {

struct FileSystemOptions {
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec time {};  // reported as atime, mtime and ctime of everything
};

class FileSystem {
 public:
  FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
             FileSystemOptions options);

  // Finds `name` in directory `parent` and counts one kernel lookup.
  // NotFound when there is no such entry (the kernel caches that).
  hg::Result<struct stat> lookup(InodeNumber parent, ByteView name);
  void forget(InodeNumber ino, uint64_t n) { inodes_.forget(ino, n); }
  hg::Result<struct stat> getattr(InodeNumber ino);

  // The listing of a directory inode (InvalidArgument if not a directory).
  hg::Result<std::shared_ptr<const store::Tree>> listing(InodeNumber ino);
  // Like lookup, for an entry already found in the listing (readdirplus,
  // once the entry is known to fit in the reply).
  hg::Result<struct stat> lookupEntry(InodeNumber parent, const store::TreeEntry& entry);
  // The inode number of an entry for plain readdir, which counts no lookup.
  InodeNumber entryInode(InodeNumber parent, const store::TreeEntry& entry);
  struct stat parentAttributes(InodeNumber dir);

  // The content of a regular file or executable.
  hg::Result<std::shared_ptr<const Bytes>> content(InodeNumber ino);
  hg::Result<Bytes> readlink(InodeNumber ino);

  const InodeTable& inodes() const { return inodes_; }
  store::ObjectStore& objects() { return *objects_; }

 private:
  hg::Result<struct stat> attributes(const InodeInfo& info);
  hg::Result<uint64_t> sizeOf(const InodeInfo& info);
  hg::Error annotate(hg::Error e, InodeNumber ino) const;

  std::shared_ptr<store::ObjectStore> objects_;
  FileSystemOptions options_;
  InodeTable inodes_;
};

}  // namespace hgvfs::fs
