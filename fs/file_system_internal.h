#pragma once
// Helpers shared by FileSystem's source files (no other file includes this).

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
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

}  // namespace hgvfs::fs
