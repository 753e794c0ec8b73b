#pragma once
// The object caches under $HGVFS_HOME/repos and their settings, read from
// $HGVFS_HOME/config (hgrc syntax):
//
//   [cache]
//   max-size = 4G     # bound of each repository's blobs; 0: no bound
//
// Each cache directory's parent holds a file "repository" naming the
// repository it caches (written when a daemon or prefetch opens it), so
// `hgvfs du` and `hgvfs gc` can say whose cache they look at.
//
// Thread rules: plain functions over files; any thread.

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace hgvfs::daemon {

constexpr uint64_t kDefaultCacheMaxSize = uint64_t{4} << 30;

// [cache] max-size from $HGVFS_HOME/config, else kDefaultCacheMaxSize. A
// value that is not a size is kInvalidArgument naming the file.
Result<uint64_t> cacheMaxSize();

// Records that `cacheDir` caches the repository at `repoRoot` (best effort).
void recordCacheOwner(const std::string& cacheDir, const std::string& repoRoot);

struct CacheDirectory {
  std::string directory;   // .../repos/KEY/cache
  std::string repository;  // from the "repository" file; "" when unknown
};
// Every cache directory under $HGVFS_HOME/repos, in name order.
std::vector<CacheDirectory> listCaches();

}  // namespace hgvfs::daemon
