#pragma once
// Whole-repository integrity check: every revision of the changelog, of the
// manifest revlog and of every filelog is read, decoded and hash-checked;
// changesets and manifests are also parsed. Stops at the first problem and
// names the revlog and revision.
//
// Thread rules: reads `repo` only; any thread. Work is spread over TBB.

#include <cstddef>
#include <functional>

#include "hgbridge/repository.h"

namespace hgvfs::hg {

struct VerifyStats {
  size_t changesets = 0;
  size_t manifests = 0;
  size_t filelogs = 0;
  size_t fileRevisions = 0;
};

Result<VerifyStats> verifyRepository(const Repository& repo);

}  // namespace hgvfs::hg
