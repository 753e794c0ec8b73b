#pragma once
// Overlay files as the FileSystem holds them: an open one (OverlayFile), and
// the ones to delete once the namespace lock is let go (FileReaper, handing
// them to the mount's FileRemover).
//
// Deleting is I/O, so it never happens under the namespace lock: an
// operation declares its FileReaper before it takes the lock, and the
// reaper's destructor (after the lock's) deletes what the operation gave it.
// A file no entry names any more may still be read by a status walk that
// saw it before (FileSystem::diff compares overlay files without the
// namespace lock); while such a walk runs, FileRemover keeps those files and
// deletes them when the last walk ends. A number is never reused, so a file
// kept a little longer is never mistaken for another.
//
// Thread rules: OverlayFile and FileRemover, any thread. A FileReaper
// belongs to one operation on one thread.

#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

#include "base/thread_annotations.h"
#include "fs/inode_number.h"
#include "fs/overlay.h"

namespace hgvfs::fs {

// An open overlay file; `count` counts the open ones (a budget).
class OverlayFile {
 public:
  OverlayFile(int fd, std::atomic<int>& count) : fd_(fd), count_(count) { ++count_; }
  ~OverlayFile() {
    ::close(fd_);
    --count_;
  }
  OverlayFile(const OverlayFile&) = delete;
  OverlayFile& operator=(const OverlayFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
  std::atomic<int>& count_;
};

class FileRemover {
 public:
  explicit FileRemover(Overlay* overlay) : overlay_(overlay) {}

  // Files some committed change stopped naming: deleted now, or when the
  // last running walk ends.
  void retire(const std::vector<InodeNumber>& files) EXCLUDES(mutex_);
  // Files no committed record ever named (a failed change's): deleted now.
  void discard(const std::vector<InodeNumber>& files);

  // While a Walk lives, retired files stay (see above).
  class Walk {
   public:
    explicit Walk(FileRemover& remover) EXCLUDES(remover.mutex_);
    ~Walk();
    Walk(const Walk&) = delete;
    Walk& operator=(const Walk&) = delete;

   private:
    FileRemover& remover_;
  };

 private:
  Overlay* const overlay_;
  // Lock order: a leaf (nothing is taken, and no file deleted, under it).
  Mutex mutex_;
  int walks_ GUARDED_BY(mutex_) = 0;
  std::vector<InodeNumber> kept_ GUARDED_BY(mutex_);
};

// The overlay files one operation leaves to delete; see above.
class FileReaper {
 public:
  explicit FileReaper(FileRemover& remover) : remover_(remover) {}
  ~FileReaper() {
    remover_.discard(discard_);
    remover_.retire(retire_);
  }
  FileReaper(const FileReaper&) = delete;
  FileReaper& operator=(const FileReaper&) = delete;

  void retire(InodeNumber ino) { retire_.push_back(ino); }
  void discard(InodeNumber ino) { discard_.push_back(ino); }
  // An open file to close after the lock, not under it.
  void close(std::shared_ptr<OverlayFile> file) {
    if (file) closing_.push_back(std::move(file));
  }

 private:
  FileRemover& remover_;
  std::vector<InodeNumber> retire_;
  std::vector<InodeNumber> discard_;
  std::vector<std::shared_ptr<OverlayFile>> closing_;
};

}  // namespace hgvfs::fs
