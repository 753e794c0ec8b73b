#pragma once
// Helpers shared by FileSystem's source files (no other file includes this).

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "fs/file_system.h"
#include "store/tree.h"

namespace hgvfs::fs {

// An error with the errno the kernel should see.
inline Error errnoError(int err, std::string what) {
  Error e = invalidArgument(std::move(what));
  e.err = err;
  return e;
}

// The failure of the system call that just set errno.
inline Error sysError(const char* what) {
  int err = errno;
  return ioError(err, std::string(what) + ": " + std::strerror(err));
}

inline uint32_t modeOf(store::EntryKind kind) {
  switch (kind) {
    case store::EntryKind::kDirectory:
      return S_IFDIR | 0755;
    case store::EntryKind::kExecutable:
      return S_IFREG | 0755;
    case store::EntryKind::kSymlink:
      return S_IFLNK | 0777;
    case store::EntryKind::kRegular:
      break;
  }
  return S_IFREG | 0644;
}

inline Status checkName(ByteView name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != ByteView::npos ||
      name.find('\0') != ByteView::npos) {
    return errnoError(EINVAL, "invalid name");
  }
  if (name.size() > NAME_MAX) return errnoError(ENAMETOOLONG, "name too long");
  return okStatus();
}

// A device's number, as its overlay file holds it: 8 bytes, big-endian.
inline Bytes encodeRdev(dev_t rdev) {
  Bytes out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t{rdev} >> (56 - 8 * i)) & 0xff);
  return out;
}

// A directory found equal to a revision's tree (dematerialize.cpp).
struct FileSystem::DirDemotion {
  InodeNumber parent;
  Bytes name;
  OverlayEntry rec;  // the parent's new entry for it
};

// Only one thread copies a given file into the overlay at a time. The
// claimant writes the overlay file without the namespace lock, so nothing
// else may create or remove that file meanwhile: other threads that want the
// same file wait here, then find it materialized.
class FileSystem::MaterializeClaim {
 public:
  MaterializeClaim(FileSystem& fs, InodeNumber ino) EXCLUDES(fs.claimsMutex_) : fs_(fs), ino_(ino) {
    MutexLock lock(fs_.claimsMutex_);
    while (fs_.claims_.count(ino_.value())) fs_.claimsCv_.wait();
    fs_.claims_.insert(ino_.value());
  }
  ~MaterializeClaim() {
    MutexLock lock(fs_.claimsMutex_);
    fs_.claims_.erase(ino_.value());
    fs_.claimsCv_.signalAll();
  }
  MaterializeClaim(const MaterializeClaim&) = delete;
  MaterializeClaim& operator=(const MaterializeClaim&) = delete;

 private:
  FileSystem& fs_;
  InodeNumber ino_;
};

}  // namespace hgvfs::fs
