#pragma once
// The FUSE low-level session of one mount: the only code that speaks
// libfuse. It turns kernel requests into FileSystem calls and their answers
// into replies — exactly one reply per request, never while holding a lock,
// and never an exception into libfuse (every handler catches everything).
//
// Errors become errno here: NotFound → ENOENT (a cached negative entry for
// lookups), Io → its errno, Corrupt/Unsupported/Censored → EIO with one
// error log line naming the file and the cause.
//
// Thread rules: run() serves requests on libfuse's worker threads until the
// file system is unmounted or requestExit() is called (any thread, or a
// signal handler installed by run()).

#include <memory>
#include <string>
#include <unordered_set>

#include "base/thread_annotations.h"
#include "fs/file_system.h"

struct fuse_session;

namespace hgvfs::fs {

struct MountOptions {
  std::string mountPoint;
  std::string fsName = "hgvfs";
  bool allowOther = false;
  bool debugFuse = false;
  // Every change goes through the kernel (which updates or drops what it
  // cached), so it may keep names and attributes as long as it likes.
  double entryTimeout = 86400;
  double attrTimeout = 86400;
  double negativeTimeout = 86400;
  // Kernel caching switches; all on by default. The benchmark turns them off
  // one at a time to measure what each buys (scripts/bench-mount).
  bool keepCache = true;           // FOPEN_KEEP_CACHE on files
  bool cacheReaddir = true;        // FOPEN_CACHE_DIR on directories
  bool readdirplus = true;         // listings carry attributes
  bool zeroMessageOpen = true;     // files: no OPEN/RELEASE round trips
  bool zeroMessageOpendir = true;  // directories: no OPENDIR/RELEASEDIR
  // Writes land in the kernel's page cache and reach the daemon in large
  // blocks: at the latest when the file is closed, fsynced, or its times,
  // mode or owner are set (see "What close guarantees" in
  // docs/ARCHITECTURE.md). The kernel then owns the size, mtime and ctime of
  // a regular file it holds, and sends its mtime in a setattr. Off unless
  // asked for (`hgvfs mount --writeback-cache`).
  bool writebackCache = false;
  // Extended attributes; off, the kernel is told ENOSYS once and asks no
  // more (no GETXATTR of security.capability before writes).
  bool xattrs = true;
  // Mount read-only (MS_RDONLY): the kernel refuses writes itself and does
  // not invalidate atime after every read (one GETATTR per file saved).
  bool readOnly = false;
  unsigned maxIdleThreads = 16;
  unsigned maxThreads = 64;
};

class FuseServer : public KernelCache {
 public:
  // Creates the session and mounts it (requests queue until run()).
  static Result<std::unique_ptr<FuseServer>> mount(FileSystem& fs, const MountOptions& options);
  ~FuseServer() override;  // unmounts if still mounted

  // Serves until unmounted or told to exit; returns 0 on a clean end.
  int run();
  void requestExit();

  const MountOptions& options() const { return options_; }

  // KernelCache: the kernel drops its entry or its cached attributes,
  // listing and pages (an error, such as an inode it never knew, is
  // ignored: it has nothing to drop).
  void invalidateEntry(InodeNumber parent, ByteView name) override;
  void invalidateInode(InodeNumber ino) override;

 private:
  FuseServer(FileSystem& fs, MountOptions options) : fs_(fs), options_(std::move(options)) {}
  FileSystem& fs_;
  MountOptions options_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  // Set in init when the kernel supports opens without a request.
  bool noOpen_ = false;
  bool noOpendir_ = false;
  // Causes already logged, so each is logged once. Lock order: a leaf
  // (taken with no lock of the FileSystem held: after its call returned).
  bool firstReport(const std::string& message) EXCLUDES(reportedMutex_);
  Mutex reportedMutex_;
  std::unordered_set<std::string> reported_ GUARDED_BY(reportedMutex_);

  friend struct FuseOps;
};

}  // namespace hgvfs::fs
