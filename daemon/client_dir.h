#pragma once
// The client directory of one mount: $HGVFS_HOME/clients/NAME, holding the
// client's config, its daemon's pid and log, and its overlay (overlay.h)
// (and, later, its .hg). NAME is derived from the mount point, so mounting the same
// place again finds the same client. The object cache of a backing
// repository lives apart, in $HGVFS_HOME/repos/KEY/cache, shared by every
// client of that repository (KEY: a hash of the repository's store path).
//
// $HGVFS_HOME defaults to ~/.local/share/hgvfs.
//
// Thread rules: plain functions over the file system; any thread.

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace hgvfs::daemon {

std::string hgvfsHome();

struct ClientConfig {
  std::string name;
  std::string directory;   // the client directory
  std::string repository;  // the backing repository's root
  std::string mountPoint;
  std::string revision;  // the mounted changeset, full hex
  // The options of the last `hgvfs mount` (the daemon's flags, e.g.
  // "--read-only"), so a repair can mount it again as it was. None of them
  // holds a blank.
  std::vector<std::string> mountOptions;
};

// The client directory for mount point `mountPoint` (an absolute path).
std::string clientDirectoryFor(const std::string& mountPoint);
// The object cache directory of a repository whose store is `storePath`.
std::string cacheDirectoryFor(const std::string& storePath);

Status writeClientConfig(const ClientConfig& config);
Result<ClientConfig> readClientConfig(const std::string& directory);
std::vector<ClientConfig> listClients();

std::string pidFile(const std::string& clientDirectory);
std::string logFile(const std::string& clientDirectory);
// The pid of the client's running daemon, if its pid file names a live one.
std::optional<int> runningDaemon(const std::string& clientDirectory);

// The overlay directory of a client, and whether it holds any change.
std::string overlayDirectory(const std::string& clientDirectory);
bool clientHasChanges(const std::string& clientDirectory);

// Creates a directory and its parents (mode 0700 for the ones created).
Status makeDirectories(const std::string& path);

}  // namespace hgvfs::daemon
