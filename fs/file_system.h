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
// Where the code lives: inode_table.h (records, names, numbering, the
// namespace lock), overlay_change.h (one transaction and its undo),
// file_system.cpp (lookups, attributes, content), materialize.cpp (copying
// revision objects into the overlay), file_system_changes.cpp (create,
// remove, rename, setattr), working_diff.cpp (diff, for status).
//
// Thread rules: every method may be called from any FUSE worker thread at
// once. The namespace lock (InodeTable::mutex(), a reader/writer lock; its
// lock order is written where it is declared) is held exclusively to change
// names, records or the overlay's records, and shared to read them. Blob
// reads and overlay-file I/O happen outside it: the state they depend on is
// read under the lock, the I/O done without it, and the result checked
// again (or committed) after the lock is taken back. Methods marked
// EXCLUDES must be called without it.

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/thread_annotations.h"
#include "fs/fuse_stats.h"
#include "fs/inode_number.h"
#include "fs/inode_table.h"
#include "fs/kernel_mtime.h"
#include "fs/overlay.h"
#include "fs/overlay_file.h"
#include "store/object_store.h"

namespace hgvfs::fs {

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

// A readable source of a file's bytes: the revision's blob, or an overlay
// file.
struct FileData {
  std::shared_ptr<const Bytes> blob;
  std::shared_ptr<OverlayFile> file;
};

class OverlayChange;

// One file-level step of a checkout, as Mercurial's update decided it.
struct CheckoutAction {
  enum class Kind : uint8_t {
    kGet,     // the path becomes the target revision's file (content, kind)
    kRemove,  // the file at the path goes (then its directories, if empty)
    // The target's flags on the file's own content: done here only when
    // the mount's file is the target's file node, unmaterialized (then it
    // is a get); else left to the caller.
    kExec,
  };
  Bytes path;
  Kind kind;
};

struct CheckoutResult {
  size_t applied = 0;
  // Flag changes not applied (the mount's file has its own content): the
  // caller's, through the mount.
  std::vector<Bytes> left;
  // When not empty, nothing was applied: these actions need the other kind
  // of entry at their path (a directory where a file is got, a file above
  // a got path, a directory to remove), which the caller's own update
  // handles (or stops at).
  std::vector<Bytes> refused;
  size_t directoriesSwapped = 0;  // unmaterialized directories given the target's tree whole
  size_t directoriesMaterialized = 0;
  size_t directoriesDematerialized = 0;  // equal to the target's once done
};

// Where kernel caches of names and inodes are dropped (the FUSE server).
// Called without any FileSystem lock held, never from a FUSE request.
class KernelCache {
 public:
  virtual ~KernelCache() = default;
  virtual void invalidateEntry(InodeNumber parent, ByteView name) = 0;
  virtual void invalidateInode(InodeNumber ino) = 0;
};

class FileSystem {
 public:
  // `overlay` null: a read-only view (every change answers EROFS).
  FileSystem(std::shared_ptr<store::ObjectStore> objects, const store::TreeId& root,
             std::unique_ptr<Overlay> overlay, FileSystemOptions options);
  ~FileSystem();

  // Reads the overlay's root and reserves inode numbers. Call once before
  // serving.
  Status start() EXCLUDES(inodes_.mutex());
  // Shows `.hg` in the root as a symlink to `target`. Call before start().
  void setDotHg(Bytes target) EXCLUDES(inodes_.mutex());

  // The difference between the mount and the tree `revision` (status). Cost:
  // the materialized directories and the changed subtrees, not the size of
  // the tree. The names are read at one instant (under the namespace lock);
  // the contents of changed files are compared after it is let go.
  // `revision` nullopt: the empty tree (the null revision).
  Result<WorkingDiff> diff(const std::optional<store::TreeId>& revision, const DiffOptions& options)
      EXCLUDES(inodes_.mutex());
  // Whether `path` (repository-relative) names a file or symlink in the mount.
  Result<bool> fileExists(ByteView path) EXCLUDES(inodes_.mutex());
  bool writable() const { return overlay_ != nullptr; }

  // Names. Lookup counts one kernel lookup; NotFound when there is no such
  // entry (the kernel caches that).
  Result<struct stat> lookup(InodeNumber parent, ByteView name) EXCLUDES(inodes_.mutex());
  void forget(InodeNumber ino, uint64_t n) EXCLUDES(inodes_.mutex());
  Result<struct stat> getattr(InodeNumber ino) EXCLUDES(inodes_.mutex());
  // Up to `max` entries with a cookie above `after`.
  Result<std::vector<ListedEntry>> list(InodeNumber dir, uint64_t after, size_t max)
      EXCLUDES(inodes_.mutex());
  InodeNumber parentOf(InodeNumber dir) EXCLUDES(inodes_.mutex());
  // For the first listing with attributes (readdirplus) of an
  // unmaterialized directory (warm_sizes.cpp): the names, sorted, of its
  // files whose size the cache does not know, which the listing gives
  // without attributes. While processes look at single files (a stat that
  // needed a size, an extended attribute read: ls -l, ls -lR, indexers),
  // those sizes are first computed in one parallel batch, so the listing
  // carries every file's attributes and no lookup per file follows; when
  // nothing has looked at files lately (find, a listing by name) nothing
  // is computed, and a stat later sizes its whole directory at once.
  std::vector<Bytes> warmSizes(InodeNumber dir) EXCLUDES(inodes_.mutex());
  // Sizes, in one parallel batch, every file of `file`'s directory whose
  // size the cache does not know (before a stat computes its own).
  void warmSiblingSizes(InodeNumber file) EXCLUDES(inodes_.mutex());
  Result<Bytes> readlink(InodeNumber ino) EXCLUDES(inodes_.mutex());

  // Content.
  Result<FileData> data(InodeNumber ino) EXCLUDES(inodes_.mutex());
  Result<size_t> read(InodeNumber ino, char* buf, size_t size, uint64_t offset)
      EXCLUDES(inodes_.mutex());
  Result<size_t> write(InodeNumber ino, const char* buf, size_t size, uint64_t offset)
      EXCLUDES(inodes_.mutex());
  // The open overlay file to write `ino` through (materializing it first):
  // the FUSE layer copies a write request into it without an intermediate
  // buffer (splice). Keep the handle for the duration of the copy.
  Result<std::shared_ptr<OverlayFile>> writableFile(InodeNumber ino) EXCLUDES(inodes_.mutex());
  // The descriptor of an overlay file handle.
  static int fdOf(const OverlayFile& file);
  Result<struct stat> setattr(InodeNumber ino, const AttrChange& change) EXCLUDES(inodes_.mutex());
  Status fallocate(InodeNumber ino, int mode, uint64_t offset, uint64_t length)
      EXCLUDES(inodes_.mutex());
  Status fsync(InodeNumber ino, bool dataOnly) EXCLUDES(inodes_.mutex());
  Status syncMetadata();

  // Extended attributes (xattrs.cpp): user.*, trusted.* and security.*
  // on any inode, kept in the overlay by inode number (setting one
  // materializes a file or directory, so its number lasts); system.* is
  // EOPNOTSUPP (no ACLs). Errors carry the errno ext4 gives.
  Result<Bytes> getxattr(InodeNumber ino, ByteView name, const Caller& caller)
      EXCLUDES(inodes_.mutex());
  // The names, each followed by a NUL (trusted.* only for root).
  Result<Bytes> listxattr(InodeNumber ino, const Caller& caller) EXCLUDES(inodes_.mutex());
  Status setxattr(InodeNumber ino, ByteView name, ByteView value, int flags, const Caller& caller)
      EXCLUDES(inodes_.mutex());
  Status removexattr(InodeNumber ino, ByteView name, const Caller& caller)
      EXCLUDES(inodes_.mutex());

  // Changes to names. Each returns the new entry's attributes (one lookup
  // counted).
  Result<struct stat> create(InodeNumber parent, ByteView name, mode_t mode, const Caller& caller)
      EXCLUDES(inodes_.mutex());
  // Regular files, FIFOs, sockets and (`rdev`) block and character devices
  // (the kernel checks the caller may make those).
  Result<struct stat> mknod(InodeNumber parent, ByteView name, mode_t mode, const Caller& caller,
                            dev_t rdev = 0) EXCLUDES(inodes_.mutex());
  Result<struct stat> mkdir(InodeNumber parent, ByteView name, mode_t mode, const Caller& caller)
      EXCLUDES(inodes_.mutex());
  Result<struct stat> symlink(InodeNumber parent, ByteView name, ByteView target,
                              const Caller& caller) EXCLUDES(inodes_.mutex());
  Status unlink(InodeNumber parent, ByteView name) EXCLUDES(inodes_.mutex());
  // A hard link: `newName` in `newParent` names file `ino` too (which
  // materializes first, so that both names share its overlay file). EPERM
  // for a directory, ENOENT once it has no name, EMLINK past kMaxLinks.
  Result<struct stat> link(InodeNumber ino, InodeNumber newParent, ByteView newName)
      EXCLUDES(inodes_.mutex());
  static constexpr uint32_t kMaxLinks = 65000;  // ext4's
  Status rmdir(InodeNumber parent, ByteView name) EXCLUDES(inodes_.mutex());
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  Status rename(InodeNumber parent, ByteView name, InodeNumber newParent, ByteView newName,
                unsigned flags) EXCLUDES(inodes_.mutex());

  // A count of changes: it moves after every change to names, records,
  // modes or file contents has become visible, so a diff taken while it
  // stayed the same would give the same answer (the status engine keeps
  // its last diff by it). It may move without a change.
  uint64_t changeGeneration() const { return changes_.load(std::memory_order_acquire); }
  // For writes made through writableFile()'s handle: call once the bytes
  // are in the file.
  void noteChange() { changes_.fetch_add(1, std::memory_order_acq_rel); }
  // Whether the kernel owns regular files' mtimes (the writeback cache is
  // on), and the per-file locks that keep them (kernel_mtime.h).
  KernelMtime& kernelMtime() { return kernelMtime_; }

  // After the working copy's parent moved to `base` (a commit): every
  // materialized regular file whose bytes equal base's file at its path,
  // with the mode and owner an unmaterialized file of that kind shows,
  // becomes base's file again (its blob, no overlay file), keeping its
  // inode number. Left as they are: files open for writing or being
  // written, directories, symlinks, and what is not in memory. Returns how
  // many. Cost: the materialized directories, and one comparison per
  // candidate (kept by diff()).
  Result<size_t> dematerializeUnchanged(const store::TreeId& base) EXCLUDES(inodes_.mutex());

  // Checkout (checkout.cpp): applies `actions` (Mercurial's, for an update
  // from revision tree `from` to `to`) to the mount in one overlay
  // transaction, without writing a file, or nothing when an action is
  // refused (CheckoutResult::refused). A directory the mount still has
  // as `from`'s tree, whose actions are exactly the difference between
  // `from` and `to` there, takes `to`'s tree whole (no I/O below it); other
  // directories on changed paths are materialized and edited entry by
  // entry, each got file becoming `to`'s unmaterialized file. Then the
  // directories that equal `to`'s again are dematerialized. A file a
  // process has open keeps what it had (its inode is unlinked, a new one
  // takes its name); kernel caches are dropped for every changed name once
  // the lock is let go. The root stays materialized. Cost: the changed
  // directories the mount has loaded or materialized and the actions, not
  // the size of the trees.
  Result<CheckoutResult> checkout(const std::optional<store::TreeId>& from,
                                  const std::optional<store::TreeId>& to,
                                  std::vector<CheckoutAction> actions) EXCLUDES(inodes_.mutex());
  // Set once before serving (the FUSE server); null: no kernel to tell.
  void setKernelCache(KernelCache* cache) { kernelCache_.store(cache); }

  store::ObjectStore& objects() { return *objects_; }
  const Overlay* overlay() const { return overlay_.get(); }
  size_t inodeCount() const EXCLUDES(inodes_.mutex());
  size_t memoryUsage() const EXCLUDES(inodes_.mutex());  // bytes held by the inode table
  // The loaded inodes by kind, and how many of them are materialized.
  InodeCounts inodeCounts() const EXCLUDES(inodes_.mutex());
  // Requests served since the mount (the FUSE server records them).
  FuseStats& fuseStats() { return fuseStats_; }
  const FuseStats& fuseStats() const { return fuseStats_; }

 private:
  struct Snapshot {  // an inode's fields, copied under the lock
    InodeNumber ino;
    InodeNumber parent;
    uint32_t mode;
    bool materialized;
    hg::Node id;
    uint64_t size;
    uid_t uid;
    gid_t gid;
    std::optional<OverlayDirHeader> header;  // materialized directories
    uint32_t nlink;
  };
  class MaterializeClaim;
  struct RenameEnds;
  struct DiffPlan;

  // file_system.cpp: names, attributes, content.
  Snapshot snapshotLocked(InodeNumber ino, const Inode& inode) const
      REQUIRES_SHARED(inodes_.mutex());
  Result<struct stat> attributes(const Snapshot& s) EXCLUDES(inodes_.mutex());
  // The number of device `ino` (materialized), from its overlay file.
  Result<dev_t> readRdev(InodeNumber ino);
  Result<Snapshot> lookupLocked(InodeNumber parent, ByteView name) REQUIRES(inodes_.mutex());
  // A materialized directory's entries, read from the overlay if needed.
  Result<DirState*> loadedDirLocked(InodeNumber ino) REQUIRES(inodes_.mutex());
  // The same if already in memory, else null.
  const DirState* cachedDirLocked(InodeNumber ino) const REQUIRES_SHARED(inodes_.mutex());
  Status listTreeLocked(InodeNumber dir, const store::Tree& tree, uint64_t after, size_t max,
                        std::vector<ListedEntry>& out) REQUIRES(inodes_.mutex());
  Result<std::shared_ptr<const store::Tree>> treeOf(const hg::Node& id);
  // The files of unmaterialized directory `dir` whose size the cache does
  // not know; their names go to `names` (sorted) when given, and those of
  // its subdirectories (one level down) to `below` when given.
  std::vector<store::FileRef> unsizedFiles(InodeNumber dir, std::vector<Bytes>* names,
                                           std::vector<store::FileRef>* below = nullptr)
      EXCLUDES(inodes_.mutex());
  Error annotate(Error e, InodeNumber ino) EXCLUDES(inodes_.mutex());
  Status readOnly() const;
  bool isDotHg(InodeNumber parent, ByteView name) const {
    return !dotHgTarget_.empty() && parent == kRootInode && name == ".hg";
  }

  // materialize.cpp: copying revision objects into the overlay.
  //
  // Loads (into the object store's cache, without the lock) the trees a
  // change at `dir` will read under the lock: those of `dir` and its
  // unmaterialized ancestors, and of `name` in it when given.
  void warmForChange(InodeNumber dir, ByteView name = {}) EXCLUDES(inodes_.mutex());
  // Makes directory `ino` and its ancestors materialized within `change`
  // (their trees are read from the store's cache: warmForChange first).
  Result<DirState*> materializeDirLocked(InodeNumber ino, OverlayChange& change)
      REQUIRES(inodes_.mutex());
  // materializeDirLocked for a directory about to gain or lose an entry.
  Result<DirState*> changeableParentLocked(InodeNumber parent, OverlayChange& change)
      REQUIRES(inodes_.mutex());
  // The overlay file of file `ino`, materializing it first (`empty`: with
  // no content, for a truncation to 0, instead of the revision's).
  Result<std::shared_ptr<OverlayFile>> materializeFile(InodeNumber ino, bool empty)
      EXCLUDES(inodes_.mutex());
  // One try of the copy; nullopt when the inode changed meanwhile.
  Result<std::optional<std::shared_ptr<OverlayFile>>> copyToOverlay(InodeNumber ino, bool empty)
      EXCLUDES(inodes_.mutex());
  Result<std::optional<std::shared_ptr<OverlayFile>>> commitCopy(InodeNumber ino,
                                                                 const hg::Node& id,
                                                                 std::shared_ptr<OverlayFile> file)
      EXCLUDES(inodes_.mutex());
  // The open overlay file of materialized file `ino` (opened without the
  // lock); null when the file stopped being materialized meanwhile
  // (dematerializeUnchanged): read its revision's blob instead.
  Result<std::shared_ptr<OverlayFile>> openFile(InodeNumber ino) EXCLUDES(inodes_.mutex());

  // file_system_changes.cpp: create, remove, rename, setattr.
  Result<struct stat> newEntry(InodeNumber parent, ByteView name, mode_t mode, const Caller& caller,
                               ByteView symlinkTarget) EXCLUDES(inodes_.mutex());
  Result<Snapshot> addEntryLocked(InodeNumber parent, ByteView name, OverlayEntry rec,
                                  const std::shared_ptr<OverlayFile>& file, OverlayChange& change)
      REQUIRES(inodes_.mutex());
  Result<bool> isEmptyDirLocked(const OverlayEntry& entry) REQUIRES_SHARED(inodes_.mutex());
  Status removeName(InodeNumber parent, ByteView name, bool directory) EXCLUDES(inodes_.mutex());
  // Where a file's content comes from, read under the shared lock: its
  // overlay file (open or not yet), or its node and (if `wantSource`) its
  // path in the revision.
  struct ContentSource {
    bool materialized = false;
    std::shared_ptr<OverlayFile> file;
    Bytes source;
    hg::Node id;
    InodeNumber parent;
  };
  Result<ContentSource> contentSource(InodeNumber ino, bool wantSource) EXCLUDES(inodes_.mutex());
  Result<RenameEnds> renameEndsLocked(InodeNumber parent, ByteView name, InodeNumber newParent,
                                      ByteView newName, OverlayChange& change)
      REQUIRES(inodes_.mutex());
  Status exchangeLocked(RenameEnds& ends, OverlayChange& change) REQUIRES(inodes_.mutex());
  Status checkReplaceableLocked(const RenameEnds& ends) REQUIRES(inodes_.mutex());
  Status moveLocked(RenameEnds& ends, OverlayChange& change, FileReaper& reaper)
      REQUIRES(inodes_.mutex());
  // Moves the ctime of materialized file `ino` to now (call without the
  // namespace lock).
  void touchFileCtime(InodeNumber ino) EXCLUDES(inodes_.mutex());
  // After a change committed that removed entry (dir, name) naming `ino`
  // (`live`: loaded when the change was made): the inode table follows.
  void unnameLocked(InodeNumber ino, InodeNumber dir, ByteView name, const OverlayEntry& rec,
                    FileReaper& reaper) REQUIRES(inodes_.mutex());
  // Whether removing one entry of file `rec` leaves its overlay file
  // unnamed (it has no other name).
  bool lastNameLocked(const OverlayEntry& rec) const REQUIRES_SHARED(inodes_.mutex());
  Status setDirAttributes(InodeNumber ino, const AttrChange& attrs) EXCLUDES(inodes_.mutex());
  // `mode`: the file's, as read before (its type cannot change).
  Status setFileAttributes(InodeNumber ino, const AttrChange& attrs, uint32_t mode)
      EXCLUDES(inodes_.mutex());
  // A file's new mode and owner, in memory and (committed) in its parent's
  // record.
  Status setOwnerAndModeLocked(InodeNumber ino, const AttrChange& attrs, OverlayChange& change)
      REQUIRES(inodes_.mutex());
  // Puts them into `ino`'s entry in its parent's record (where a lookup
  // reads them), within `change`; nothing when it has no parent.
  Status recordOwnerAndModeLocked(InodeNumber ino, uint32_t mode, uid_t uid, gid_t gid,
                                  OverlayChange& change) REQUIRES(inodes_.mutex());

  // xattrs.cpp: the number attributes of `ino` are kept under, once it is
  // materialized (a directory's record, a file's overlay file).
  Result<InodeNumber> xattrHolder(InodeNumber ino) EXCLUDES(inodes_.mutex());
  // A change of an attribute is a change of ctime.
  Status touchCtime(InodeNumber ino) EXCLUDES(inodes_.mutex());

  // dematerialize.cpp.
  struct Demotion;
  Status findDemotionsLocked(InodeNumber ino, const Bytes& path, const store::TreeId& base,
                             std::vector<Demotion>& out) REQUIRES_SHARED(inodes_.mutex());
  Result<std::vector<uint64_t>> demoteLocked(const std::vector<Demotion>& equal, FileReaper& reaper)
      REQUIRES(inodes_.mutex());
  struct DirDemotion;
  // Whether directory `ino` equals `base`; the directories below it that
  // do are listed in `out` and their changes put in `batch`.
  Result<bool> findEqualDirsLocked(InodeNumber ino, const Bytes& path, const store::TreeId& base,
                                   OverlayBatch& batch, std::vector<DirDemotion>& out)
      REQUIRES(inodes_.mutex());
  void applyDirDemotionLocked(const DirDemotion& d) REQUIRES(inodes_.mutex());

  // checkout.cpp.
  struct CheckoutNode;
  struct CheckoutRun;
  Status checkoutDirLocked(InodeNumber dirIno, DirState& dir, const Bytes& path,
                           const std::optional<store::TreeId>& from,
                           const std::optional<store::TreeId>& to, CheckoutNode& node,
                           CheckoutRun& run, bool& removedBelow) REQUIRES(inodes_.mutex());
  Result<bool> coversExactly(const CheckoutNode& node, const std::optional<store::TreeId>& from,
                             const std::optional<store::TreeId>& to, const Bytes& path)
      REQUIRES(inodes_.mutex());
  // The entry `name` of `dir`, an unmaterialized directory, materialized
  // within `change`.
  Result<DirState*> materializeChildLocked(InodeNumber dirIno, DirState& dir, ByteView name,
                                           OverlayChange& change) REQUIRES(inodes_.mutex());
  // Removes entry `name` of `dir` within the run's change (`keepRecord`:
  // a put of the same name follows).
  void dropEntryLocked(InodeNumber dirIno, DirState& dir, ByteView name, bool keepRecord,
                       CheckoutRun& run) REQUIRES(inodes_.mutex());
  // After the commit: the live inode `ino` (an unmaterialized directory
  // that was `from`) is `to` now; its loaded children follow.
  void swapLoadedLocked(InodeNumber ino, const store::TreeId& from,
                        const std::optional<store::TreeId>& to, CheckoutRun& run,
                        FileReaper& reaper) REQUIRES(inodes_.mutex());

  // working_diff.cpp: diff, for status.
  //
  // The walk of the materialized directories, under the lock: what it can
  // tell from names and ids goes to the plan's answer, what needs reading
  // (file contents, whole subtrees) to the plan's work. `plan.incomplete`
  // when a directory it needs is not in memory.
  Status planLocked(const std::optional<store::TreeId>& revision, DiffPlan& plan)
      REQUIRES_SHARED(inodes_.mutex());
  Status planDirLocked(InodeNumber ino, const Bytes& path, std::optional<store::TreeId> base,
                       DiffPlan& plan) REQUIRES_SHARED(inodes_.mutex());
  Status planOnlyInMountLocked(const OverlayEntry& entry, const Bytes& path, DiffPlan& plan)
      REQUIRES_SHARED(inodes_.mutex());
  // Reads every materialized directory below `dir` into memory.
  Status loadMaterializedDirsLocked(InodeNumber dir) REQUIRES(inodes_.mutex());
  // The plan's work, without the namespace lock.
  Status runPlan(DiffPlan& plan) EXCLUDES(inodes_.mutex());
  Status diffSubtrees(const std::optional<store::TreeId>& base, const store::TreeId& mine,
                      const Bytes& mineSource, const Bytes& path, DiffPlan& plan);
  Status listTree(const store::TreeId& tree, const Bytes& path, std::vector<Bytes>& out);
  Result<bool> sameFile(const OverlayEntry& mine, const store::TreeEntry& base, const Bytes& path)
      EXCLUDES(inodes_.mutex(), comparisonsMutex_);
  // nullopt when directory `missing` on the way is not in memory.
  Result<std::optional<bool>> fileExistsLocked(ByteView path, InodeNumber& missing)
      REQUIRES_SHARED(inodes_.mutex());

  std::shared_ptr<store::ObjectStore> objects_;
  std::unique_ptr<Overlay> overlay_;
  const FileSystemOptions options_;
  // Set by setDotHg() before serving; only read after.
  Bytes dotHgTarget_;
  std::atomic<int> openFiles_{0};
  // When a process last looked at a single file in a way that needs its
  // attributes (steady clock, ns): warmSizes() sizes a listing first while
  // that is recent.
  void noteFileAttention();
  bool fileAttentionRecent() const;
  std::atomic<int64_t> fileAttentionNs_{0};
  std::atomic<uint64_t> changes_{0};
  KernelMtime kernelMtime_;
  // Moves the change count when it goes out of scope: declared before a
  // change's lock, so it moves once the lock is let go.
  class ChangeMark {
   public:
    explicit ChangeMark(FileSystem& fs) : fs_(fs) {}
    ~ChangeMark() { fs_.noteChange(); }
    ChangeMark(const ChangeMark&) = delete;
    ChangeMark& operator=(const ChangeMark&) = delete;

   private:
    FileSystem& fs_;
  };
  std::atomic<KernelCache*> kernelCache_{nullptr};
  FileRemover remover_;
  // Every inode, and the namespace lock (inodes_.mutex()).
  InodeTable inodes_;
  FuseStats fuseStats_;

  // Files being copied into the overlay, one thread each: the overlay file
  // of an inode is written by its claimant alone, without the namespace
  // lock (see MaterializeClaim). Lock order: claimsMutex_ is a leaf, never
  // held with the namespace lock; a claim is awaited before the namespace
  // lock is taken, never while holding it.
  Mutex claimsMutex_;
  CondVar claimsCv_{&claimsMutex_};  // signalled when a claim ends
  std::unordered_set<uint64_t> claims_ GUARDED_BY(claimsMutex_);

  // Materialized files found equal to (or different from) a revision's
  // file, by what the overlay file looked like then: a second status does
  // not read the file again. Lock order: a leaf, never held with the
  // namespace lock nor during I/O.
  struct Comparison {
    off_t size;
    struct timespec mtime, ctime;
    hg::Node base;
    bool equal;
  };
  Mutex comparisonsMutex_;
  std::unordered_map<uint64_t, Comparison> comparisons_ GUARDED_BY(comparisonsMutex_);
};

}  // namespace hgvfs::fs
