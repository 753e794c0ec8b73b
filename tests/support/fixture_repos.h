#pragma once
// The repositories made by tests/fixtures/make_repos.py (the real hg) and
// the oracle dumps tests/oracle/hg_dump.py writes for each of them.
//
// CTest runs every GoogleTest case as its own process, so "once per test
// program" would mean once per case. Instead the set is made once per build
// tree: under <build>/test-fixtures/<set>-<key>, where the key hashes both
// scripts and the installed Mercurial's version, guarded by an flock so
// parallel test processes wait for the one that builds it. A directory
// without its READY marker (an interrupted run) is rebuilt.
// HGVFS_TEST_FIXTURES=DIR uses DIR instead (already made, with dumps).
//
// Tests must not modify these repositories: copy one (copyTree) first.
//
// Thread rules: get() may be called from any thread; the result is
// immutable and lives until the program exits.

#include <string>
#include <vector>

namespace hgvfs::test {

enum class FixtureSet { kFull, kQuick };

class FixtureRepos {
 public:
  // Makes the set on first use (in this or another process). Throws
  // std::runtime_error with the scripts' output when they fail.
  static const FixtureRepos& get(FixtureSet set = FixtureSet::kFull);

  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& names() const { return names_; }  // repos.txt
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dumpPath(const std::string& name) const { return dir_ + "/" + name + ".dump"; }

 private:
  std::string dir_;
  std::vector<std::string> names_;
};

// Copies a directory tree (cp -a: symlinks, modes kept) to `to`, which must
// not exist yet. Throws on failure.
void copyTree(const std::string& from, const std::string& to);

}  // namespace hgvfs::test
