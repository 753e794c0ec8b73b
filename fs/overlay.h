#pragma once
// The overlay of one client: what the user changed, on local disk, so that
// it survives unmount and a killed daemon.
//
// Two parts, both in the client directory:
//  - overlay/meta: an LMDB environment holding every materialized
//    directory (its layout is below). An entry is either materialized (its
//    content lives in the overlay: a file in overlay/files, or a directory
//    record of its own) or still the revision's object (file node or tree
//    id, and the path it has in the revision, so its blob can be read even
//    after it was moved).
//  - overlay/files/XX/INO: the content of each materialized file (and the
//    target of each symlink made in the mount), a plain file whose own
//    mtime/atime/ctime are the file's times.
//
// Crash safety comes from ordering: an overlay file is written completely
// before the transaction that names it commits, and removed only after the
// transaction that forgets it. A killed daemon can therefore leave only
// overlay files that no entry names (and, for the same reason, directory
// records no entry reaches); check() finds and removes both at mount.
// Every transaction is one rename, create or removal: a directory is never
// seen half-renamed.
//
// On-disk format 4 (kOverlayFormat). Every integer is big-endian, whatever
// the host; every value starts with a version byte, equal to the format.
//
//   database "meta", key "format" (the format marker; written when the
//   overlay is created, so an overlay with records but no marker is
//   format 1, see below; every later format must keep this key here):
//     u8  version              1 byte    kOverlayFormat
//   database "meta", key "reserved" (the inode mark, kOverlayReservedSize):
//     u8  version              1 byte
//     u64 reserved inodes      8 bytes
//   database "dirs", key `ino` (u64, 8 bytes): a directory header,
//   kOverlayDirHeaderSize bytes:
//     u8  version              1 byte
//     u32 mode                 4 bytes   S_IFMT | permission bits
//     u32 uid, u32 gid         4 + 4 bytes
//     i64 atime sec, i64 nsec  8 + 8 bytes (two's complement)
//     i64 mtime sec, i64 nsec  8 + 8 bytes
//     i64 ctime sec, i64 nsec  8 + 8 bytes
//   database "dirs", key `ino ‖ name` (8 bytes, then the name's bytes as
//   they are, not text): one entry, kOverlayEntryFixedSize bytes, then more
//   when it is not materialized:
//     u8  version              1 byte
//     u8  flags                1 byte    bit 0: materialized; others zero
//     u64 ino                  8 bytes
//     u32 mode                 4 bytes
//     u32 uid, u32 gid         4 + 4 bytes
//     when not materialized:
//     node                     20 bytes  file node or tree id
//     u32 source length        4 bytes
//     source                   that many bytes: the path in the revision
//
//   database "xattrs": extended attributes by inode (overlay_xattrs.cpp).
//   A character or block device's overlay file holds its number (u64).
//
// Hard links: several materialized entries (never directories) may carry
// one inode number; they share its overlay file, its attributes and its
// extended attributes, and each entry repeats the mode and owner. The
// link count is the number of such entries (check() counts them at
// mount); the overlay file goes when the last of them does.
//
// Every length is exact: a shorter or longer value is Corrupt, a version or
// marker above kOverlayFormat is Unsupported (a newer hgvfs wrote it, and
// open() refuses the overlay rather than misread it).
//
// Format 3 was format 4 without hard links (no two entries named one
// inode); format 2 was format 3 without the "xattrs" database (and without
// device files). open() raises every version byte of either to 4, in one
// transaction. An older hgvfs refuses a format 4 overlay (its marker is
// newer) rather than remove a file another name still holds.
//
// Format 1 (hgvfs up to commit 401fa2a: `git show 401fa2a:fs/overlay.cpp`)
// had no format marker and the same databases, keys and fields, but no
// version bytes and host byte order: a header was mode, uid, gid and each
// time as two 8-byte integers (60 bytes); an entry was ino, mode, uid, gid,
// a flag byte (21 bytes), then when not materialized the node and the
// source as the rest of the value; "reserved" was 8 bytes. open() rewrites
// such an overlay as format 4 in one transaction and logs it. It reads
// format 1 in this host's byte order: an overlay never leaves the machine
// that wrote it.
//
// Thread rules: any thread; LMDB serializes writers. The caller (the
// FileSystem) orders transactions under its own lock.

#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/thread_annotations.h"
#include "fs/overlay_check.h"
#include "hgbridge/node.h"
#include "store/lmdb_env.h"

namespace hgvfs::fs {

inline constexpr uint8_t kOverlayFormat = 4;
inline constexpr size_t kOverlayEntryFixedSize = 1 + 1 + 8 + 4 + 4 + 4;
inline constexpr size_t kOverlayDirHeaderSize = 1 + 4 + 4 + 4 + 3 * (8 + 8);
inline constexpr size_t kOverlayReservedSize = 1 + 8;
static_assert(kOverlayEntryFixedSize == 22 && kOverlayDirHeaderSize == 61 &&
              kOverlayReservedSize == 9);

// One entry of a materialized directory.
struct OverlayEntry {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool materialized = false;
  hg::Node id;   // when !materialized: the file node or tree id
  Bytes source;  // when !materialized: its path in the revision

  // The format 2 value (see above); decode() checks every length.
  Bytes encode() const;
  static Result<OverlayEntry> decode(ByteView data);
};

// The header of a materialized directory.
struct OverlayDirHeader {
  uint32_t mode = S_IFDIR | 0755;
  uint32_t uid = 0;
  uint32_t gid = 0;
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};

  Bytes encode() const;
  static Result<OverlayDirHeader> decode(ByteView data);
};

// The in-memory fields must fit the on-disk ones exactly.
static_assert(sizeof(OverlayEntry::ino) == 8 && sizeof(OverlayEntry::mode) == 4 &&
              sizeof(OverlayEntry::uid) == 4 && sizeof(OverlayEntry::gid) == 4);
static_assert(sizeof(OverlayDirHeader::mode) == 4 && sizeof(OverlayDirHeader::uid) == 4 &&
              sizeof(OverlayDirHeader::gid) == 4);
static_assert(sizeof(time_t) <= 8 && sizeof(long) <= 8);  // timespec fields
static_assert(hg::Node::kSize == 20);

struct OverlayDir {
  OverlayDirHeader header;
  std::map<Bytes, OverlayEntry, std::less<>> entries;
};

// The writes of one change, committed together.
class OverlayBatch {
 public:
  void putHeader(uint64_t dir, const OverlayDirHeader& header);
  void putEntry(uint64_t dir, ByteView name, const OverlayEntry& entry);
  void removeEntry(uint64_t dir, ByteView name);
  // Removes a directory's header and all its entries.
  void removeDirectory(uint64_t dir);
  // Overlay files to delete once the batch committed.
  void removeFileAfter(uint64_t ino) { filesToRemove_.push_back(ino); }
  bool empty() const { return ops_.empty() && filesToRemove_.empty(); }

 private:
  friend class Overlay;
  struct Op {
    enum Kind { kPut, kDelete, kDeleteDirectory } kind;
    Bytes key;
    Bytes value;
  };
  std::vector<Op> ops_;
  std::vector<uint64_t> filesToRemove_;
};

struct OverlayCheckReport {
  size_t directories = 0;        // reachable materialized directories
  size_t files = 0;              // reachable overlay files
  size_t orphanFiles = 0;        // overlay files removed (no entry named them)
  size_t orphanDirectories = 0;  // directory records removed (unreachable)
  size_t danglingEntries = 0;    // entries removed (their overlay file was gone)
  size_t orphanXattrs = 0;       // inodes whose extended attributes were removed
  uint64_t maxInode = 1;
  // The names (directory inode, entry name) of every inode more than one
  // entry names (hard links).
  std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, Bytes>>> links;
};

class Overlay {
 public:
  // Opens (creating) the overlay under `directory` (the client's
  // overlay/ directory). A format 1 overlay is upgraded first (one
  // transaction, one info log line); a corrupt one is Corrupt, and one of a
  // newer format is Unsupported and left untouched.
  static Result<std::unique_ptr<Overlay>> open(const std::string& directory);

  // The materialized directory `ino`, or nullopt if it is not one.
  Result<std::optional<OverlayDir>> loadDirectory(uint64_t ino);
  bool hasDirectory(uint64_t ino);

  Status commit(const OverlayBatch& batch);
  // fsync of the metadata (fsyncdir, fsync).
  Status sync() { return env_->sync(); }

  // Inode numbers: every number below the reserved mark may have been used
  // by an earlier run. reserveInodes() moves the mark (and persists it).
  uint64_t reservedInodes() const { return reserved_; }
  Status reserveInodes(uint64_t upTo);

  // The overlay file of `ino`.
  std::string filePath(uint64_t ino) const;
  // Creates it empty (O_EXCL) and returns an fd open for reading and writing.
  Result<int> createFile(uint64_t ino);
  // Creates it with `content`, complete before it appears under its name.
  Result<int> createFileWith(uint64_t ino, ByteView content);
  Result<int> openFile(uint64_t ino);
  void removeFile(uint64_t ino);

  // Walks every record reachable from the root (inode 1), removes what a
  // killed daemon left behind (see above) and reports what it did.
  Result<OverlayCheckReport> check();
  // Reads every record and overlay file and reports each broken invariant;
  // with `fix`, repairs them, moving user bytes to `lostFound` instead of
  // deleting them (overlay_check.h).
  Result<std::vector<OverlayFinding>> examine(bool fix, const std::string& lostFound);

  const std::string& directory() const { return directory_; }

  // Extended attributes (overlay_xattrs.cpp), by inode number: those of a
  // file go with its overlay file (removeFile), those of a directory with
  // its record (removeDirectory). Each call is one transaction.
  static constexpr size_t kXattrsDb = 2;
  // Whether `ino` has any (in memory: no transaction when it has none).
  bool hasXattrs(uint64_t ino) const EXCLUDES(xattrMutex_);
  Result<std::optional<Bytes>> getXattr(uint64_t ino, ByteView name);
  // The names, in key (bytewise) order.
  Result<std::vector<Bytes>> listXattrs(uint64_t ino);
  // `flags`: XATTR_CREATE (EEXIST when it exists), XATTR_REPLACE (ENODATA
  // when it does not). ENOSPC when the inode's attributes would pass
  // kOverlayXattrSpace (see overlay_xattrs.cpp).
  Status setXattr(uint64_t ino, ByteView name, ByteView value, int flags) EXCLUDES(xattrMutex_);
  Status removeXattr(uint64_t ino, ByteView name) EXCLUDES(xattrMutex_);
  Status removeXattrs(uint64_t ino) EXCLUDES(xattrMutex_);

 private:
  Status loadXattrInodes() EXCLUDES(xattrMutex_);
  // Inside a commit: removes the attributes of `ino` on disk; once it is
  // committed, forgetXattrs(ino) (a failed commit leaves both as they were).
  Status deleteXattrsIn(MDB_txn* txn, uint64_t ino) EXCLUDES(xattrMutex_);
  void forgetXattrs(uint64_t ino) EXCLUDES(xattrMutex_);
  // Removes the attributes of every inode `keep` refuses; returns how many.
  Result<size_t> dropXattrsExcept(const std::function<bool(uint64_t)>& keep) EXCLUDES(xattrMutex_);
  Overlay() = default;
  Status commitOnce(const OverlayBatch& batch);
  void takeReserve();
  void releaseReserve();
  std::string directory_;
  bool reserveHeld_ = false;
  std::unique_ptr<store::LmdbEnv> env_;
  uint64_t reserved_ = 2;
  // Inodes with extended attributes. Lock order: a leaf (taken inside
  // LMDB write callbacks, which lock nothing else).
  mutable Mutex xattrMutex_;
  std::unordered_set<uint64_t> xattrInodes_ GUARDED_BY(xattrMutex_);
};

}  // namespace hgvfs::fs
