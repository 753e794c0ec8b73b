#include "fs/fuse_stats.h"

namespace hgvfs::fs {

const char* fuseOpName(FuseOp op) {
  static constexpr const char* kNames[] = {
      "lookup",    "forget",      "forget_multi", "getattr",  "setattr",  "readlink", "mknod",
      "mkdir",     "unlink",      "rmdir",        "symlink",  "rename",   "link",     "open",
      "read",      "write",       "write_buf",    "flush",    "release",  "fsync",    "opendir",
      "readdir",   "readdirplus", "releasedir",   "fsyncdir", "statfs",   "setxattr", "getxattr",
      "listxattr", "removexattr", "access",       "create",   "fallocate"};
  static_assert(sizeof kNames / sizeof kNames[0] == static_cast<size_t>(FuseOp::kCount));
  return kNames[static_cast<size_t>(op)];
}

}  // namespace hgvfs::fs
