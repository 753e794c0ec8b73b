#include "fs/overlay_file.h"

namespace hgvfs::fs {

void FileRemover::retire(const std::vector<InodeNumber>& files) {
  if (files.empty() || !overlay_) return;
  {
    MutexLock lock(mutex_);
    if (walks_ > 0) {
      kept_.insert(kept_.end(), files.begin(), files.end());
      return;
    }
  }
  // A walk that starts now cannot see these files: the changes that
  // stopped naming them committed before this call.
  for (InodeNumber ino : files) overlay_->removeFile(ino.value());
}

void FileRemover::discard(const std::vector<InodeNumber>& files) {
  if (!overlay_) return;
  for (InodeNumber ino : files) overlay_->removeFile(ino.value());
}

FileRemover::Walk::Walk(FileRemover& remover) : remover_(remover) {
  MutexLock lock(remover_.mutex_);
  ++remover_.walks_;
}

FileRemover::Walk::~Walk() {
  std::vector<InodeNumber> files;
  {
    MutexLock lock(remover_.mutex_);
    if (--remover_.walks_ == 0) files.swap(remover_.kept_);
  }
  if (remover_.overlay_) {
    for (InodeNumber ino : files) remover_.overlay_->removeFile(ino.value());
  }
}

}  // namespace hgvfs::fs
