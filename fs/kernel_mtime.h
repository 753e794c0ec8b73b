#pragma once
// Who owns a regular file's mtime: the overlay file, or the kernel.
//
// Without the kernel's writeback cache, every write reaches the daemon when
// it happens, and the overlay file's own mtime (stamped by the write into
// it) is the file's mtime. With it, the kernel stamps a write when the
// process makes it and sends that time in a setattr when it writes the file
// back (at the latest on close, fsync, utime, chmod or chown) — possibly
// while write requests for the same pages are still being served on other
// threads. The daemon's late write would then stamp a newer time over the
// kernel's, and after a remount (or once the kernel forgot the inode) the
// file would show a time no process saw (by a few milliseconds, or by a
// second in `hg diff`'s header).
//
// So while the kernel owns mtimes, a write or truncation into an overlay
// file puts back the mtime it found (Keep), and only a setattr carrying a
// time moves it. Keep and such a setattr take the same per-file lock, so
// the one that comes second is the one that stays.
//
// Thread rules: any thread. The per-file locks are leaves: nothing else is
// taken while one is held, and they are taken after the namespace lock is
// let go.

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <mutex>

#include "fs/inode_number.h"

namespace hgvfs::fs {

class KernelMtime {
 public:
  // Set once the FUSE session knows whether the writeback cache is on.
  void setKernelOwns(bool owns) { owns_.store(owns, std::memory_order_release); }
  bool kernelOwns() const { return owns_.load(std::memory_order_acquire); }

  // Around a write or truncation of `fd`, the overlay file of `ino`: when
  // the kernel owns mtimes, holds the file's lock and puts the mtime back
  // at the end of the scope (errors ignored: the bytes are what matter).
  class Keep {
   public:
    Keep(KernelMtime& owner, InodeNumber ino, int fd);
    ~Keep();
    Keep(const Keep&) = delete;
    Keep& operator=(const Keep&) = delete;

   private:
    std::unique_lock<std::mutex> lock_;
    int fd_ = -1;
    struct timespec mtime_ {};
  };

  // A setattr that sets times: holds the file's lock (when the kernel owns
  // mtimes) while they are written.
  std::unique_lock<std::mutex> lockForTimes(InodeNumber ino);

 private:
  std::mutex& mutexOf(InodeNumber ino) { return mutexes_[ino.value() % mutexes_.size()]; }
  std::atomic<bool> owns_{false};
  std::array<std::mutex, 64> mutexes_;
};

}  // namespace hgvfs::fs
