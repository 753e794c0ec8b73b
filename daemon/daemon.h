#pragma once
// The daemon of one mount: opens the repository and its object cache,
// imports the revision if needed, mounts, tells whoever started it that the
// mount is up (through `readyFd`), and serves until unmounted.
//
// Runs in the process that `hgvfs mount` starts (or in the foreground with
// --foreground). Logging must be set up before.

#include <string>

#include "daemon/client_dir.h"

namespace hgvfs::daemon {

struct DaemonOptions {
  ClientConfig client;
  bool allowOther = false;
  bool debugFuse = false;
  size_t blobCacheBytes = size_t{256} << 20;
  size_t treeCacheBytes = size_t{256} << 20;
  // Kernel caching switches and timeouts (benchmarks turn them off).
  bool keepCache = true;
  bool cacheReaddir = true;
  bool readdirplus = true;
  bool zeroMessageOpen = true;
  bool writebackCache = false;  // --writeback-cache
  bool xattrs = true;           // extended attributes (off: EOPNOTSUPP)
  // No overlay: every change answers EROFS, and the superblock is read-only
  // (the kernel then need not refresh atime after reads).
  bool readOnly = false;
  double cacheTimeout = 86400;
};

// Returns the process exit code. Before the mount is up, failures are
// written to `readyFd` as "error: MESSAGE\n"; once it is up, "ok\n" is
// written and the fd closed. `readyFd` may be -1.
int runDaemon(const DaemonOptions& options, int readyFd);

// The Mercurial extension the mount's .hg/hgrc enables, and the lines that
// enable it and name the daemon's socket, as `hgvfs mount` writes them
// (`hgvfs doctor --fix` writes them again).
std::string hgvfsExtensionPath();
std::string mountHgrcLines(const std::string& socket);

}  // namespace hgvfs::daemon
