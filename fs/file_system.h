#pragma once
// The working copy of one mount, as a filesystem: what every FUSE operation
// answers, without the FUSE types (fuse_server.cpp turns these answers into
// replies). Keeping the logic apart from libfuse lets tests drive it.
//
// Every inode is either still the revision's object or materialized:
//  - An unmaterialized directory holds only its tree id; its listing comes
//    from the object store when the kernel asks, and a child inode is made
//    when the kernel looks it up. An unmaterialized file is its file node;
//    its content comes from the object store.
//  - The first write, truncate, chmod, chown or utimes of a file copies its
//    blob into an overlay file (overlay.h); from then on it is read and
//    written there. A directory materializes when an entry is created,
//    removed or renamed in it (or its own attributes change): its entry
//    list then lives in the overlay's records, and so do its parent's, up
//    to the root. The set of changes is therefore found by walking
//    materialized directories from the root, and nothing else.
//
// Each change is one overlay transaction, committed before the reply; if it
// fails (a full disk), the in-memory state is rolled back and the caller
// gets the error, so memory and disk never disagree.
//
// Inode numbers: 64-bit, never reused within a client (the overlay keeps a
// high-water mark), root 1. Entries of materialized directories keep their
// numbers across remounts. The kernel's lookup count (nlookup) is kept
// apart from `children` (live child inodes naming this one as parent); an
// inode is freed when both are zero. An unlinked inode stays readable and
// writable until the kernel forgets it; then its overlay file goes.
//
// Thread rules: every method may be called from any FUSE worker thread at
// once. One shared_mutex guards the namespace (exclusive for changes and
// inode creation, shared for data and attribute access); object-store and
// overlay-file I/O is done outside it where the result can be revalidated.

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fs/overlay.h"
#include "store/object_store.h"

namespace hgvfs::fs {

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
// `.hg` in the mount root: a symlink to the client's own .hg directory on
// local disk (FileSystem::setDotHg). Not part of the overlay; it cannot be
// changed through the mount.
inline constexpr InodeNumber kDotHgInode{UINT64_MAX - 1};
inline constexpr uint64_t kUnknownSize = UINT64_MAX;

struct FileSystemOptions {
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec time {};  // atime, mtime and ctime of every unchanged entry
};

// Who asks (for the owner of what they create).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The attribute changes of one setattr.
struct AttrChange {
  std::optional<mode_t> mode;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<uint64_t> size;
  // A time to set; tv_nsec UTIME_NOW means now.
  std::optional<struct timespec> atime;
  std::optional<struct timespec> mtime;
};

// One entry of a listing. Offsets: entries carry increasing cookies (≥ 4;
// 1 and 2 are "." and "..", 3 is .hg in the root), stable while the
// directory is loaded, so a
// listing resumed after changes neither repeats nor skips an entry that
// stayed.
struct ListedEntry {
  Bytes name;
  uint64_t ino;
  mode_t type;  // S_IFMT bits
  uint64_t cookie;
};

// A readable source of a file's bytes: the revision's blob, or an overlay
// file.
// What differs between the mount and a revision's tree, for status. Paths
// are repository-relative; every list is sorted bytewise.
struct WorkingDiff {
  std::vector<Bytes> modified;      // a file in both whose kind, exec bit or bytes differ
  std::vector<Bytes> added;         // a file only in the mount (not ignored, unless asked)
  std::vector<Bytes> addedIgnored;  // the same, ignored (only when asked)
  std::vector<Bytes> removed;       // a file only in the revision
};
struct DiffOptions {
  // Whether an untracked path (file or directory) is ignored; null: nothing is.
  std::function<bool(ByteView path)> ignored;
  bool listIgnored = false;
};

class OverlayFile;
struct FileData {
  std::shared_ptr<const Bytes> blob;
  std::shared_ptr<OverlayFile> file;
};

class FileSystem {
 public:
  // `overlay` null: a read-only view (every change answers EROFS).
  FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
             std::unique_ptr<Overlay> overlay, FileSystemOptions options);
  ~FileSystem();

  // Reads the overlay's root and reserves inode numbers. Call once before
  // serving.
  hg::Status start();
  // Shows `.hg` in the root as a symlink to `target`. Call before start().
  void setDotHg(Bytes target);

  // The difference between the mount and the tree `revision` (status). Cost:
  // the materialized directories and the changed subtrees, not the size of
  // the tree.
  // `revision` nullopt: the empty tree (the null revision).
  hg::Result<WorkingDiff> diff(const std::optional<store::TreeId>& revision,
                               const DiffOptions& options);
  // Whether `path` (repository-relative) names a file or symlink in the mount.
  hg::Result<bool> fileExists(ByteView path);
  bool writable() const { return overlay_ != nullptr; }

  // Names. Lookup counts one kernel lookup; NotFound when there is no such
  // entry (the kernel caches that).
  hg::Result<struct stat> lookup(InodeNumber parent, ByteView name);
  void forget(InodeNumber ino, uint64_t n);
  hg::Result<struct stat> getattr(InodeNumber ino);
  // Up to `max` entries with a cookie above `after`.
  hg::Result<std::vector<ListedEntry>> list(InodeNumber dir, uint64_t after, size_t max);
  InodeNumber parentOf(InodeNumber dir);
  hg::Result<Bytes> readlink(InodeNumber ino);

  // Content.
  hg::Result<FileData> data(InodeNumber ino);
  hg::Result<size_t> read(InodeNumber ino, char* buf, size_t size, uint64_t offset);
  hg::Result<size_t> write(InodeNumber ino, const char* buf, size_t size, uint64_t offset);
  // The open overlay file to write `ino` through (materializing it first):
  // the FUSE layer copies a write request into it without an intermediate
  // buffer (splice). Keep the handle for the duration of the copy.
  hg::Result<std::shared_ptr<OverlayFile>> writableFile(InodeNumber ino);
  // The descriptor of an overlay file handle.
  static int fdOf(const OverlayFile& file);
  hg::Result<struct stat> setattr(InodeNumber ino, const AttrChange& change);
  hg::Status fallocate(InodeNumber ino, int mode, uint64_t offset, uint64_t length);
  hg::Status fsync(InodeNumber ino, bool dataOnly);
  hg::Status syncMetadata();

  // Changes to names. Each returns the new entry's attributes (one lookup
  // counted).
  hg::Result<struct stat> create(InodeNumber parent, ByteView name, mode_t mode,
                                 const Caller& caller);
  hg::Result<struct stat> mknod(InodeNumber parent, ByteView name, mode_t mode,
                                const Caller& caller);
  hg::Result<struct stat> mkdir(InodeNumber parent, ByteView name, mode_t mode,
                                const Caller& caller);
  hg::Result<struct stat> symlink(InodeNumber parent, ByteView name, ByteView target,
                                  const Caller& caller);
  hg::Status unlink(InodeNumber parent, ByteView name);
  hg::Status rmdir(InodeNumber parent, ByteView name);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  hg::Status rename(InodeNumber parent, ByteView name, InodeNumber newParent, ByteView newName,
                    unsigned flags);

  store::ObjectStore& objects() { return *objects_; }
  const Overlay* overlay() const { return overlay_.get(); }
  size_t inodeCount() const;
  size_t memoryUsage() const;  // bytes held by the inode table (approximate)

 private:
  struct Inode {
    uint64_t parent;  // 0 once unlinked
    uint64_t nlookup;
    uint64_t size;  // unmaterialized files: kUnknownSize until known
    hg::Node id;    // unmaterialized: file node or tree id
    uint32_t children;
    uint32_t mode;  // S_IFMT | permission bits
    bool materialized;
    Bytes name;
  };
  struct DirState;
  struct Materialized;
  struct Change;
  struct ChildKey {
    uint64_t parent;
    ByteView name;
  };
  struct ChildHash {
    using is_transparent = void;
    const FileSystem* fs;
    size_t operator()(const ChildKey& k) const;
    size_t operator()(uint64_t ino) const;
  };
  struct ChildEqual {
    using is_transparent = void;
    const FileSystem* fs;
    bool operator()(uint64_t a, uint64_t b) const { return a == b; }
    bool operator()(const ChildKey& k, uint64_t ino) const;
    bool operator()(uint64_t ino, const ChildKey& k) const { return (*this)(k, ino); }
  };
  struct Snapshot {  // an inode's fields, copied under the lock
    uint64_t ino;
    uint64_t parent;
    uint32_t mode;
    bool materialized;
    hg::Node id;
    uint64_t size;
    uid_t uid;
    gid_t gid;
    std::optional<OverlayDirHeader> header;  // materialized directories
  };

  // All *Locked methods need mutex_ held exclusively (or shared where noted).
  Inode* findLocked(uint64_t ino);  // shared is enough
  Snapshot snapshotLocked(uint64_t ino, const Inode& inode);
  hg::Result<struct stat> attributes(const Snapshot& s);
  hg::Result<Snapshot> lookupLocked(uint64_t parent, ByteView name);
  uint64_t insertInodeLocked(uint64_t ino, uint64_t parent, ByteView name, uint32_t mode,
                             bool materialized, const hg::Node& id);
  void releaseLocked(uint64_t ino);
  void detachLocked(uint64_t ino);
  void reparentLocked(uint64_t ino, uint64_t parent, ByteView name);
  hg::Result<Bytes> sourcePathLocked(uint64_t ino);
  std::optional<Bytes> pathLocked(uint64_t ino) const;
  hg::Result<uint64_t> allocateInodeLocked();
  hg::Result<DirState*> loadedDirLocked(uint64_t ino);
  hg::Result<DirState*> materializeDirLocked(uint64_t ino, Change& change);
  hg::Result<std::shared_ptr<OverlayFile>> materializeFileLocked(uint64_t ino, bool empty);
  hg::Result<std::shared_ptr<OverlayFile>> openFileLocked(uint64_t ino);
  hg::Result<DirState*> changeableParentLocked(uint64_t parent, Change& change);
  hg::Status commitLocked(Change& change);
  hg::Result<struct stat> newEntry(InodeNumber parent, ByteView name, mode_t mode,
                                   const Caller& caller, ByteView symlinkTarget);
  void touchDirLocked(DirState& dir, Change& change, uint64_t ino);
  hg::Result<bool> isEmptyDirLocked(const OverlayEntry& entry);
  hg::Result<std::shared_ptr<const store::Tree>> treeOf(const hg::Node& id);
  hg::Error annotate(hg::Error e, uint64_t ino);
  hg::Status readOnly() const;
  bool isDotHg(uint64_t parent, ByteView name) const {
    return !dotHgTarget_.empty() && parent == kRootInode.value() && name == ".hg";
  }
  struct DiffContext;
  hg::Status diffDirLocked(uint64_t ino, const Bytes& path, std::optional<store::TreeId> base,
                           DiffContext& ctx);
  hg::Status diffSubtrees(const std::optional<store::TreeId>& base, const store::TreeId& mine,
                          const Bytes& mineSource, const Bytes& path, DiffContext& ctx);
  hg::Status listOnlyInMountLocked(const OverlayEntry& entry, const Bytes& path, DiffContext& ctx);
  hg::Status listTree(const store::TreeId& tree, const Bytes& path, std::vector<Bytes>& out);
  hg::Result<bool> sameFileLocked(const OverlayEntry& mine, const store::TreeEntry& base,
                                  const Bytes& path);

  std::shared_ptr<store::ObjectStore> objects_;
  std::unique_ptr<Overlay> overlay_;
  FileSystemOptions options_;
  store::TreeId rootTree_;

  mutable std::shared_mutex mutex_;
  uint64_t next_ = 2;
  std::unordered_map<uint64_t, Inode> inodes_;
  std::unordered_set<uint64_t, ChildHash, ChildEqual> byName_;
  // Materialized inodes' extra state (owner, open overlay file, entries).
  std::unordered_map<uint64_t, Materialized> materialized_;
  // The revision path of unmaterialized inodes whose parent is materialized
  // (or that were unlinked); others derive it from their parent.
  std::unordered_map<uint64_t, Bytes> sources_;
  std::atomic<int> openFiles_{0};
  Bytes dotHgTarget_;
  // Materialized files found equal to (or different from) a revision's
  // file, by what the overlay file looked like then: a second status does
  // not read the file again.
  struct Comparison {
    off_t size;
    struct timespec mtime, ctime;
    hg::Node base;
    bool equal;
  };
  std::unordered_map<uint64_t, Comparison> comparisons_;
};

}  // namespace hgvfs::fs
