#pragma once
// `hg status` from the filesystem's own record: the mount's difference
// from the dirstate's first parent (fs::FileSystem::diff), combined with the
// dirstate's non-normal entries (added, removed, merged, copies, second
// parent) the way Mercurial combines them, and with .hgignore.
//
// The dirstate is the client's own `.hg/dirstate`, re-read only when the
// file changed (dirstate_cache.h); p1 comes from it, so commits and updates
// made by stock hg are followed with no help. The ignore rules are re-read
// when `.hgignore` (read through the mount) or the hgrc changed.
//
// Cost: the materialized part of the mount, the changed subtrees and the
// dirstate's entries, which in the mount's format (docs/DIRSTATE.md) are
// only the changes — not the size of the repository (except that `clean`
// lists every tracked file, as hg does).
//
// Thread rules: status() may be called from any thread; calls are
// serialized by mutex_. Lock order: mutex_ is taken before the
// FileSystem's namespace lock (status() holds it while fs::FileSystem::diff
// and fileExists take theirs), never after.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/thread_annotations.h"
#include "control/server.h"
#include "fs/file_system.h"
#include "match/ignore.h"
#include "status/dirstate_cache.h"

namespace hgvfs::status {

// A control::Handler: the daemon hands the engine to the control server,
// which answers `status` requests with it.
class StatusEngine : public control::Handler {
 public:
  // `dotHg`: the client's .hg directory; `mountPoint`: where .hgignore is
  // read from.
  StatusEngine(fs::FileSystem& fs, std::shared_ptr<store::ObjectStore> objects,
               std::string repositoryRoot, std::string dotHg, std::string mountPoint);

  // The status asked for; `rev` compares with that revision instead of p1.
  // Every list sorted bytewise; copies (destination, source) sorted.
  Result<control::StatusReply> status(const control::StatusRequest& request) override
      EXCLUDES(mutex_);
  // The `files` and `revision-diff` requests of the extension's dirstate
  // map (docs/DIRSTATE.md), answered from the store's trees: a path costs
  // one tree load per component, a revision diff the changed directories.
  Result<control::FilesReply> files(const control::FilesRequest& request) override EXCLUDES(mutex_);
  Result<control::RevisionDiffReply> revisionDiff(
      const control::RevisionDiffRequest& request) override EXCLUDES(mutex_);
  // The extension's native update: the plain file actions of `hg update`
  // applied to the mount by fs::FileSystem::checkout.
  Result<control::CheckoutReply> checkout(const control::CheckoutRequest& request) override
      EXCLUDES(mutex_);
  // `hgvfs stats` (status/mount_stats.h); takes none of the engine's locks.
  Result<control::StatsReply> stats(const control::StatsRequest& request) override;

 private:
  // The two ways of combining the mount's diff with the dirstate.
  Status combineWithP1(const fs::WorkingDiff& diff, const control::StatusRequest& request,
                       control::StatusReply& result) REQUIRES(mutex_);
  Status combineWithRev(const fs::WorkingDiff& diff, const std::optional<store::TreeId>& revTree,
                        const control::StatusRequest& request, control::StatusReply& result)
      REQUIRES(mutex_);
  Status refreshIgnore() REQUIRES(mutex_);
  // Whether a path is ignored, for the status call under way (the answer
  // reads state mutex_ guards: use it only while holding mutex_).
  std::function<bool(ByteView)> ignoredPaths() REQUIRES(mutex_);
  // The changeset `node` names, from a fresh look at the repository when
  // the current one lacks it; never through revision names.
  Result<hg::Revision> revisionOf(const hg::Node& node) REQUIRES(mutex_);
  Result<store::TreeId> treeOf(const hg::Node& node) REQUIRES(mutex_);
  // The root tree of a full hex node from a request; nullopt for the null
  // revision. An unknown node is an error naming it.
  Result<std::optional<store::TreeId>> treeOfHex(const std::string& hex) REQUIRES(mutex_);
  // Whether `tree` (the directory `prefix`) holds a file not in `except`.
  Result<bool> hasFileOutside(const store::TreeId& tree, const Bytes& prefix,
                              const std::set<Bytes, std::less<>>& except) REQUIRES(mutex_);
  Result<hg::Node> resolve(const std::string& rev) REQUIRES(mutex_);

  fs::FileSystem& fs_;
  std::shared_ptr<store::ObjectStore> objects_;
  const std::string repositoryRoot_;
  const std::string dotHg_;
  const std::string mountPoint_;
  Mutex mutex_;
  DirstateCache dirstate_ GUARDED_BY(mutex_);
  std::optional<match::IgnoreMatcher> ignore_ GUARDED_BY(mutex_);
  // The last diff of the mount against a tree, kept while nothing it
  // depends on moved: the mount (FileSystem::changeGeneration), the tree,
  // and the ignore rules it was taken with. A status repeated without a
  // change between costs the combination with the dirstate only.
  struct DiffKey {
    uint64_t generation = 0;
    std::optional<store::TreeId> tree;
    bool ignoring = false;
    std::string ignoreIdentity;
    bool listIgnored = false;
    bool operator==(const DiffKey&) const = default;
  };
  std::optional<std::pair<DiffKey, fs::WorkingDiff>> lastDiff_ GUARDED_BY(mutex_);
  // The parent the mount's files were last dematerialized for.
  std::optional<hg::Node> dematerializedFor_ GUARDED_BY(mutex_);
  Result<fs::WorkingDiff> diffOf(const std::optional<store::TreeId>& tree,
                                 const fs::DiffOptions& options) REQUIRES(mutex_);
  std::string ignoreIdentity_ GUARDED_BY(mutex_);
  match::IgnoreDirCache ignoreDirs_ GUARDED_BY(mutex_);  // for one status call
  bool useIgnore_ GUARDED_BY(mutex_) = false;            // for one status call
  std::map<hg::Node, store::TreeId> trees_ GUARDED_BY(mutex_);
};

// The `[ui] ignore` / `ignore.*` values of an hgrc, in hg's order.
std::vector<std::string> uiIgnoreValues(const std::string& hgrc);

}  // namespace hgvfs::status
