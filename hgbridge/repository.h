#pragma once
// A local Mercurial repository opened for reading without Python.
//
// open() finds ".hg", follows a share's `sharedpath` (absolute, or relative
// with `relshared`), reads `.hg/requires` and, for share-safe repositories,
// `store/requires` of the source, and refuses any requirement hgbridge does
// not read correctly, naming it (mercurial/requirements.py,
// `hg help internals.requirements`). It then opens the changelog and the
// manifest revlog as they are at that moment: a Repository is a snapshot, and
// revisions committed later are seen by opening it again.
//
// Thread rules: immutable after open; every method may be called from any
// number of threads at once.

#include <memory>
#include <set>
#include <string>

#include "hgbridge/changelog.h"
#include "hgbridge/filelog.h"
#include "hgbridge/manifest.h"
#include "hgbridge/revlog.h"
#include "hgbridge/store_path.h"

namespace hgvfs::hg {

struct Requirements {
  std::set<std::string> working;  // .hg/requires
  std::set<std::string> store;    // store/requires (share-safe), else empty
  bool has(const std::string& r) const { return working.count(r) || store.count(r); }
};

// The requirements hgbridge reads correctly.
const std::set<std::string>& supportedRequirements();

class Repository {
 public:
  // `path` is the working directory root (or any repository root holding
  // ".hg"). NotFound if there is no repository; Unsupported naming the first
  // requirement hgbridge does not support.
  static Result<std::unique_ptr<Repository>> open(const std::string& path);

  const std::string& root() const { return root_; }
  const std::string& dotHg() const { return dotHg_; }         // this repo's .hg
  const std::string& sharedDotHg() const { return shared_; }  // source .hg (== dotHg if not shared)
  const std::string& storePath() const { return store_; }
  const Requirements& requirements() const { return requirements_; }
  StoreLayout layout() const { return layout_; }

  const Changelog& changelog() const { return *changelog_; }
  const Revlog& manifestRevlog() const { return *manifests_; }

  // A changeset revision named the way `hg -r` accepts for these forms:
  // a revision number (negative counts from the end), "tip", "null",
  // a full 40-digit hex node, or a unique hex prefix. NotFound / an
  // ambiguous prefix is InvalidArgument.
  Result<Revision> lookup(ByteView spec) const;
  Result<Changeset> changeset(Revision r) const { return changelog_->read(r); }
  // The manifest of changeset `r` (empty for the null revision).
  Result<Manifest> manifestOf(Revision changeset) const;
  Result<Manifest> manifest(const Node& manifestNode) const;

  // Opens the filelog of a tracked path (not cached: callers keep it).
  Result<Filelog> filelog(ByteView path) const;
  // Every filelog path the store lists (fncache), or, without fncache,
  // every path in any manifest. Sorted, unique.
  Result<std::vector<Bytes>> filelogPaths() const;

 private:
  Repository() = default;
  std::string root_, dotHg_, shared_, store_;
  Requirements requirements_;
  StoreLayout layout_ = StoreLayout::kDotencode;
  std::unique_ptr<Changelog> changelog_;
  std::shared_ptr<Revlog> manifests_;
};

}  // namespace hgvfs::hg
