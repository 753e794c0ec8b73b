#pragma once
// The overlay of one client: what the user changed, on local disk, so that
// it survives unmount and a killed daemon.
//
// Two parts, both in the client directory:
//  - overlay/meta: an LMDB environment holding every materialized
//    directory. Key `ino` (8 bytes, big-endian) is the directory's header
//    (mode, owner, times); key `ino ‖ name` is one entry of it. An entry is
//    either materialized (its content lives in the overlay: a file in
//    overlay/files, or a directory record of its own) or still the
//    revision's object (file node or tree id, and the path it has in the
//    revision, so its blob can be read even after it was moved).
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
// Thread rules: any thread; LMDB serializes writers. The caller (the
// FileSystem) orders transactions under its own lock.

#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hgbridge/bytes.h"
#include "hgbridge/node.h"
#include "hgbridge/result.h"
#include "store/lmdb_env.h"

namespace hgvfs::fs {

using hg::Bytes;
using hg::ByteView;

// One entry of a materialized directory.
struct OverlayEntry {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool materialized = false;
  hg::Node id;   // when !materialized: the file node or tree id
  Bytes source;  // when !materialized: its path in the revision

  Bytes encode() const;
  static hg::Result<OverlayEntry> decode(ByteView data);
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
  static hg::Result<OverlayDirHeader> decode(ByteView data);
};

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
  uint64_t maxInode = 1;
};

class Overlay {
 public:
  // Opens (creating) the overlay under `directory` (the client's
  // overlay/ directory).
  static hg::Result<std::unique_ptr<Overlay>> open(const std::string& directory);

  // The materialized directory `ino`, or nullopt if it is not one.
  hg::Result<std::optional<OverlayDir>> loadDirectory(uint64_t ino);
  bool hasDirectory(uint64_t ino);

  hg::Status commit(const OverlayBatch& batch);
  // fsync of the metadata (fsyncdir, fsync).
  hg::Status sync() { return env_->sync(); }

  // Inode numbers: every number below the reserved mark may have been used
  // by an earlier run. reserveInodes() moves the mark (and persists it).
  uint64_t reservedInodes() const { return reserved_; }
  hg::Status reserveInodes(uint64_t upTo);

  // The overlay file of `ino`.
  std::string filePath(uint64_t ino) const;
  // Creates it empty (O_EXCL) and returns an fd open for reading and writing.
  hg::Result<int> createFile(uint64_t ino);
  // Creates it with `content`, complete before it appears under its name.
  hg::Result<int> createFileWith(uint64_t ino, ByteView content);
  hg::Result<int> openFile(uint64_t ino);
  void removeFile(uint64_t ino);

  // Walks every record reachable from the root (inode 1), removes what a
  // killed daemon left behind (see above) and reports what it did.
  hg::Result<OverlayCheckReport> check();

  const std::string& directory() const { return directory_; }

 private:
  Overlay() = default;
  hg::Status commitOnce(const OverlayBatch& batch);
  void takeReserve();
  void releaseReserve();
  std::string directory_;
  bool reserveHeld_ = false;
  std::unique_ptr<store::LmdbEnv> env_;
  uint64_t reserved_ = 2;
};

}  // namespace hgvfs::fs
