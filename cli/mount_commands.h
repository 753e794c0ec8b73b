#pragma once
// `hgvfs mount`, `hgvfs unmount`, `hgvfs list`, and the hidden daemon entry
// point that `hgvfs mount` starts. Each returns the process exit code.

#include <string>
#include <vector>

namespace hgvfs::cli {

struct MountArgs {
  std::string repository;
  std::string mountPoint;
  std::string revision;  // empty: the client's revision if it exists, else tip
  bool readOnly = false;
  bool foreground = false;
  bool allowOther = false;
  bool debugFuse = false;
  bool writebackCache = false;
  std::string logLevel = "info";
  size_t blobCacheMb = 256;
  size_t treeCacheMb = 256;  // a 1,000,000-file update diffs ~48,000 trees (~78 MB)
  // Kernel caching features to turn off, for measuring what each buys:
  // keep-cache, cache-readdir, readdirplus, timeouts, zero-message-open.
  std::vector<std::string> noKernelCache;
  bool noXattrs = false;
};

int mountCommand(const MountArgs& args);

// The options a client's config remembers (daemon::ClientConfig::
// mountOptions, the daemon's flags) as MountArgs; unknown words are
// skipped, so an older or newer hgvfs's options still give a mount.
MountArgs mountArgsFromOptions(const std::vector<std::string>& options);

// For `hgvfs doctor`: the absolute, normalized form of a mount point (the
// last component not resolved: a dead FUSE mount cannot be stat'ed);
// whether an hgvfs mount is at `path`; and its unmount, lazily when busy
// (`*lazy` says so), returning an empty string or the error.
std::string mountPointPath(const std::string& path);
bool isHgvfsMountAt(const std::string& path);
std::string unmountAt(const std::string& path, bool* lazy);
int unmountCommand(const std::string& mountPoint);
int listCommand();
// The daemon: `hgvfs __daemon CLIENT_DIR READY_FD [--allow-other] ...`.
int daemonCommand(const std::string& clientDirectory, int readyFd, const MountArgs& args);

}  // namespace hgvfs::cli
