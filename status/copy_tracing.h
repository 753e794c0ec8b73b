#pragma once
// The copies `hg status --rev REV -C` shows: for each added file, its copy
// source in REV — from the dirstate (copied since p1), else followed back
// through the copy metadata of its file revisions from p1 (committed
// copies), as Mercurial's pathcopies does for a linear history.
//
// Thread rules: plain function; the object store is thread-safe.

#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "store/object_store.h"

namespace hgvfs::status {

// Sorted (destination, source) pairs. `p1Tree` nullopt: p1 is null.
Result<std::vector<std::pair<Bytes, Bytes>>> copiesAgainst(
    store::ObjectStore& objects, const std::optional<store::TreeId>& p1Tree,
    const store::TreeId& baseTree, const std::map<Bytes, Bytes, std::less<>>& dirstateCopies,
    const std::vector<Bytes>& added);

}  // namespace hgvfs::status
