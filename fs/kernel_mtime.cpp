#include "fs/kernel_mtime.h"

#include <fcntl.h>

namespace hgvfs::fs {

KernelMtime::Keep::Keep(KernelMtime& owner, InodeNumber ino, int fd) {
  if (!owner.kernelOwns()) return;
  lock_ = std::unique_lock<std::mutex>(owner.mutexOf(ino));
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    fd_ = fd;
    mtime_ = st.st_mtim;
  }
}

KernelMtime::Keep::~Keep() {
  if (fd_ < 0) return;
  const struct timespec times[2] = {{0, UTIME_OMIT}, mtime_};
  (void)::futimens(fd_, times);
}

std::unique_lock<std::mutex> KernelMtime::lockForTimes(InodeNumber ino) {
  if (!kernelOwns()) return {};
  return std::unique_lock<std::mutex>(mutexOf(ino));
}

}  // namespace hgvfs::fs
