#pragma once
// `hgvfs prefetch`, `hgvfs gc` and `hgvfs du`: the object caches under
// $HGVFS_HOME/repos, worked on directly (LMDB lets this process and the
// daemons share them), so no daemon needs to be asked. Each returns the
// process exit code.

#include <string>
#include <vector>

namespace hgvfs::cli {

struct PrefetchArgs {
  std::string rev;         // empty: the mount's working-copy parent
  std::string repository;  // empty: the mount holding the current directory
  std::vector<std::string> patterns;
  unsigned threads = 8;
};

int prefetchCommand(const PrefetchArgs& args);
// `to` empty: the configured [cache] max-size.
int gcCommand(const std::string& to);
int duCommand();

}  // namespace hgvfs::cli
