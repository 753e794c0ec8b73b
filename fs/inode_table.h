#pragma once
// Every inode one mount knows, in memory, and the namespace lock that guards
// them: the records (Inode), the index by (parent, name), the extra state of
// materialized inodes (owner, open overlay file, directory entries), the
// revision paths that cannot be derived from a parent, and the numbering.
//
// An inode is either loaded from the revision (an unmaterialized file is
// its file node, an unmaterialized directory its tree id) or materialized
// (its data lives in the overlay; a directory's entries in a DirState once
// loaded). The kernel's lookup count (nlookup) is kept apart from
// `children` (live inodes naming this one as parent); an inode is freed
// when both are zero, then its parent is looked at likewise. An unlinked
// inode (parent invalid) stays until the kernel forgets it.
//
// Thread rules: the namespace lock (mutex()) is held shared to read a
// record and exclusively to change one; every method says which. The lock
// order is written at mutex_ below.

#include <sys/stat.h>

#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/thread_annotations.h"
#include "fs/inode_number.h"
#include "fs/overlay.h"
#include "fs/overlay_file.h"
#include "hgbridge/node.h"

namespace hgvfs::fs {

inline constexpr uint64_t kUnknownSize = UINT64_MAX;

struct Inode {
  InodeNumber parent;  // invalid once unlinked; the root's is the root
  uint64_t nlookup = 0;
  uint64_t size = kUnknownSize;  // unmaterialized files: kUnknownSize until known
  hg::Node id;                   // unmaterialized: file node or tree id
  uint32_t children = 0;
  uint32_t mode = 0;  // S_IFMT | permission bits
  bool materialized = false;
  Bytes name;
};

// The loaded inodes by kind (hgvfs stats).
struct InodeCounts {
  size_t directories = 0, files = 0;  // files: everything not a directory
  size_t materializedDirectories = 0, materializedFiles = 0;
};

// The entries of a materialized directory, in memory. Cookies (listing
// offsets) increase with each insertion and are stable while it is loaded;
// 1 and 2 are "." and "..", 3 is .hg in the root.
struct DirState {
  struct Entry {
    OverlayEntry rec;
    uint64_t cookie;
  };
  OverlayDirHeader header;
  std::map<Bytes, Entry, std::less<>> entries;
  std::map<uint64_t, Bytes> byCookie;
  uint64_t nextCookie = 4;

  Entry* find(ByteView name) {
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : &it->second;
  }
  const Entry* find(ByteView name) const {
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : &it->second;
  }
  void insert(ByteView name, const OverlayEntry& rec) { insertWithCookie(name, rec, nextCookie++); }
  void insertWithCookie(ByteView name, const OverlayEntry& rec, uint64_t cookie) {
    entries[Bytes(name)] = Entry{rec, cookie};
    byCookie[cookie] = Bytes(name);
  }
  void erase(ByteView name) {
    auto it = entries.find(name);
    if (it == entries.end()) return;
    byCookie.erase(it->second.cookie);
    entries.erase(it);
  }
};

// What a materialized inode has beyond its record.
struct Materialized {
  uid_t uid = 0;
  gid_t gid = 0;
  std::shared_ptr<OverlayFile> file;  // files: the open overlay file, once opened
  std::unique_ptr<DirState> dir;      // directories: the entries, once loaded
};

class InodeTable {
 public:
  // The root (inode 1) is the directory `rootTree`, looked up once for
  // good. `overlay` null: a read-only mount (numbers are not reserved).
  InodeTable(const hg::Node& rootTree, Overlay* overlay);

  // The namespace lock; see mutex_.
  SharedMutex& mutex() const RETURN_CAPABILITY(mutex_) { return mutex_; }

  // Records. get() for reading; find() for changing one.
  const Inode* get(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  Inode* find(InodeNumber ino) REQUIRES(mutex_);
  // The live inode named `name` in `parent`, if any.
  std::optional<InodeNumber> child(InodeNumber parent, ByteView name) const REQUIRES_SHARED(mutex_);
  // Adds a record (nlookup 0) and counts it as a child of `parent`.
  Inode& insert(InodeNumber ino, InodeNumber parent, ByteView name, uint32_t mode,
                bool materialized, const hg::Node& id) REQUIRES(mutex_);
  // Frees `ino` if nothing refers to it any more, then its parent likewise.
  // Overlay files that die with it (unlinked files) go to `reaper`.
  void release(InodeNumber ino, FileReaper& reaper) REQUIRES(mutex_);
  // Unlinks `ino` from its name (it stays while referred to).
  void detach(InodeNumber ino, FileReaper& reaper) REQUIRES(mutex_);
  // Gives `ino` the name `name` in `parent`.
  void reparent(InodeNumber ino, InodeNumber parent, ByteView name, FileReaper& reaper)
      REQUIRES(mutex_);
  // RENAME_EXCHANGE: entry `a` (named `nameA` in `parentA`) and entry `b`
  // (named `nameB` in `parentB`) trade places; either may not be live.
  void exchange(InodeNumber a, InodeNumber parentA, ByteView nameA, InodeNumber b,
                InodeNumber parentB, ByteView nameB) REQUIRES(mutex_);
  // Whether `dir` is `ancestor` or below it.
  bool isWithin(InodeNumber dir, InodeNumber ancestor) const REQUIRES_SHARED(mutex_);

  // The path of `ino` in the mount; nullopt once it or an ancestor was
  // unlinked.
  std::optional<Bytes> path(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  // The path of an unmaterialized inode in the revision it comes from
  // (where its blob or tree is read).
  Result<Bytes> sourcePath(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  // Records the revision path of an unmaterialized inode that cannot derive
  // it from its parent (a materialized parent, or none).
  void setSource(InodeNumber ino, Bytes source) REQUIRES(mutex_);
  bool hasSource(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  // Forgets it, returning what it was.
  std::optional<Bytes> takeSource(InodeNumber ino) REQUIRES(mutex_);

  // Hard links: the names of every file more than one entry names, each
  // (directory inode, name), whether loaded or not. A loaded inode's record
  // carries one of them, or none (the kernel has not looked the others up
  // since its name went): such a record keeps its one name here too, so
  // an inode with names here is never taken for unlinked.
  struct LinkName {
    InodeNumber dir;
    Bytes name;
    bool operator==(const LinkName&) const = default;
  };
  // How many entries name `ino`: its link names, else 1 while it has a
  // name and 0 once unlinked.
  uint32_t nlink(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  // Its names when it has more than one, else null.
  const std::vector<LinkName>* linkNames(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  void setLinkNames(InodeNumber ino, std::vector<LinkName> names) REQUIRES(mutex_);
  // A new name for `ino`, whose one name so far is `first` (when it had one).
  void addLinkName(InodeNumber ino, const LinkName& first, const LinkName& added) REQUIRES(mutex_);
  // The entry (dir, name) of `ino` is gone (unlink, a rename over it, a
  // checkout): `ino`, if loaded, is unlinked when that was its last name,
  // and otherwise loses its record's name if that was the one (a lookup
  // through another name places it again).
  void unname(InodeNumber ino, InodeNumber dir, ByteView name, FileReaper& reaper) REQUIRES(mutex_);
  // The entry (dir, name) of `ino` now is (toDir, toName); its record, if
  // loaded, takes that name.
  void rename(InodeNumber ino, InodeNumber dir, ByteView name, InodeNumber toDir, ByteView toName,
              FileReaper& reaper) REQUIRES(mutex_);
  // The same for the link names alone (the record's name is left to the
  // caller: exchange()).
  void renameLinkNames(InodeNumber ino, const LinkName& from, const LinkName& to) REQUIRES(mutex_);
  // A lookup found loaded `ino` through (dir, name), one of its names: an
  // unplaced record takes it.
  void placeIfUnplaced(InodeNumber ino, InodeNumber dir, ByteView name) REQUIRES(mutex_);
  // Whether the record of `ino` is named (dir, name).
  bool placedAt(InodeNumber ino, InodeNumber dir, ByteView name) const REQUIRES_SHARED(mutex_);

  // The extra state of a materialized inode: null when there is none yet.
  const Materialized* materialized(InodeNumber ino) const REQUIRES_SHARED(mutex_);
  // The same, made when missing. Kept for numbers that are not live too (a
  // loaded directory below a materialized one).
  Materialized& materializedState(InodeNumber ino) REQUIRES(mutex_);
  void dropMaterialized(InodeNumber ino) REQUIRES(mutex_);

  // Numbering: every number below the overlay's reserved mark may have been
  // handed out by an earlier run; `next` is where this one starts (and the
  // mark moves past it).
  Status startNumbering(uint64_t next) EXCLUDES(numberMutex_);
  Result<InodeNumber> allocate() EXCLUDES(numberMutex_);
  uint64_t nextNumber() const EXCLUDES(numberMutex_);

  size_t size() const REQUIRES_SHARED(mutex_);
  InodeCounts counts() const REQUIRES_SHARED(mutex_);
  size_t memoryUsage() const REQUIRES_SHARED(mutex_);  // bytes (approximate)

 private:
  struct ChildKey {
    InodeNumber parent;
    ByteView name;
  };
  // The name index hashes and compares through the records, so that a name
  // is stored once. Used only by byName_'s operations, under mutex_.
  using Records = std::unordered_map<uint64_t, Inode>;
  struct ChildHash {
    using is_transparent = void;
    const Records* records;
    size_t operator()(const ChildKey& k) const;
    size_t operator()(uint64_t ino) const;
  };
  struct ChildEqual {
    using is_transparent = void;
    const Records* records;
    bool operator()(uint64_t a, uint64_t b) const { return a == b; }
    bool operator()(const ChildKey& k, uint64_t ino) const;
    bool operator()(uint64_t ino, const ChildKey& k) const { return (*this)(k, ino); }
  };

  // Forgets the link names of `ino` when it no longer needs them: fewer
  // than two, and its record (if any) carries the one left.
  void settleLinks(InodeNumber ino) REQUIRES(mutex_);
  // Gives a live inode, already out of byName_, the name `name` in `parent`.
  void place(InodeNumber ino, Inode& n, InodeNumber parent, ByteView name) REQUIRES(mutex_);

  Overlay* const overlay_;

  // The namespace lock. Lock order: the status engine's mutex
  // (status/status_engine.h) is taken before it, and a materialization
  // claim (FileSystem::MaterializeClaim) is awaited before it, never while
  // holding it. Taken after it: numberMutex_, then the object store's and
  // LMDB's own locks (tree loads and overlay commits happen under it).
  // Never held while replying to FUSE or notifying the kernel.
  mutable SharedMutex mutex_;
  Records inodes_ GUARDED_BY(mutex_);
  // Live inodes by (parent, name); unlinked ones are not in it.
  std::unordered_set<uint64_t, ChildHash, ChildEqual> byName_ GUARDED_BY(mutex_);
  std::unordered_map<uint64_t, Materialized> materialized_ GUARDED_BY(mutex_);
  // The revision path of unmaterialized inodes whose parent is materialized
  // (or that were unlinked); others derive it from their parent.
  std::unordered_map<uint64_t, Bytes> sources_ GUARDED_BY(mutex_);
  // Files with more than one name, by inode (see linkNames()).
  std::unordered_map<uint64_t, std::vector<LinkName>> links_ GUARDED_BY(mutex_);

  // Lock order: a leaf, taken with or without mutex_ (a reservation
  // commits to LMDB under it, once per 65536 numbers).
  mutable Mutex numberMutex_ ACQUIRED_AFTER(mutex_);
  uint64_t next_ GUARDED_BY(numberMutex_) = 2;
};

}  // namespace hgvfs::fs
