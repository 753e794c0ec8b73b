#pragma once
// `hg status` from the filesystem's own record: the mount's difference
// from the dirstate's first parent (FileSystem::diff), combined with the
// dirstate's non-normal entries (added, removed, merged, copies, second
// parent) the way Mercurial combines them, and with .hgignore.
//
// The dirstate is the client's own `.hg/dirstate`, re-read only when the
// file changed; p1 comes from it, so commits and updates made by stock hg
// are followed with no help. The ignore rules are re-read when `.hgignore`
// (read through the mount) or the hgrc changed.
//
// Cost: the materialized part of the mount, the changed subtrees and the
// dirstate's non-normal entries — not the size of the repository (except
// that a changed .hg/dirstate is scanned once, in C++, and `clean` lists
// every tracked file).
//
// Thread rules: status() may be called from any thread; calls are
// serialized by an internal mutex (a leaf below FileSystem's).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fs/file_system.h"
#include "hgbridge/dirstate.h"
#include "hgbridge/ignore.h"

namespace hgvfs::fs {

struct StatusRequest {
  bool unknown = true;
  bool ignored = false;
  bool clean = false;
  std::optional<std::string> rev;  // compare with this revision instead of p1
};

struct StatusResult {
  hg::Node p1;
  std::vector<Bytes> modified, added, removed, deleted, unknown, ignored, clean;
  std::vector<std::pair<Bytes, Bytes>> copies;  // destination, source (sorted)
  std::vector<std::string> warnings;            // e.g. an unreadable ignore file
};

class StatusEngine {
 public:
  // `dotHg`: the client's .hg directory; `mountPoint`: where .hgignore is
  // read from.
  StatusEngine(FileSystem& fs, std::shared_ptr<store::ObjectStore> objects,
               std::string repositoryRoot, std::string dotHg, std::string mountPoint);

  hg::Result<StatusResult> status(const StatusRequest& request);

 private:
  struct DirstateCache {
    struct timespec mtime {};
    off_t size = -1;
    ino_t ino = 0;
    hg::Node p1, p2;
    // Entries hg does not treat as clean-if-unchanged: state a/r/m, size -2
    // (from p2), or a copy.
    std::map<Bytes, hg::DirstateEntry, std::less<>> special;
    std::map<Bytes, Bytes, std::less<>> copies;  // destination → source
  };
  hg::Status refreshDirstate();
  hg::Status refreshIgnore(std::vector<std::string>& warnings);
  hg::Result<store::TreeId> treeOf(const hg::Node& node);
  hg::Result<hg::Node> resolve(const std::string& rev);
  hg::Result<std::vector<Bytes>> trackedNormal();
  hg::Status copiesAgainst(const hg::Node& base, StatusResult& result);

  FileSystem& fs_;
  std::shared_ptr<store::ObjectStore> objects_;
  std::string repositoryRoot_;
  std::string dotHg_;
  std::string mountPoint_;
  std::mutex mutex_;
  DirstateCache dirstate_;
  std::optional<hg::IgnoreMatcher> ignore_;
  std::string ignoreIdentity_;
  std::map<hg::Node, store::TreeId> trees_;
};

// The `[ui] ignore` / `ignore.*` values of an hgrc (later ones win per key).
std::vector<std::string> uiIgnoreValues(const std::string& hgrc);

}  // namespace hgvfs::fs
