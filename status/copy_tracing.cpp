#include "status/copy_tracing.h"

#include <algorithm>

#include "hgbridge/filelog.h"

namespace hgvfs::status {
namespace {

// The file (not directory) at `path` in `tree`.
Result<std::optional<hg::Node>> fileIn(store::ObjectStore& objects, const store::TreeId& tree,
                                       ByteView path) {
  HG_ASSIGN_OR_RETURN(auto e, objects.findEntry(tree, path));
  if (!e || e->isDirectory()) return std::optional<hg::Node>();
  return std::optional<hg::Node>(e->id);
}

// How many copy records are followed back at most.
constexpr int kMaxCopySteps = 32;

}  // namespace

Result<std::vector<std::pair<Bytes, Bytes>>> copiesAgainst(
    store::ObjectStore& objects, const std::optional<store::TreeId>& p1Tree,
    const store::TreeId& baseTree, const std::map<Bytes, Bytes, std::less<>>& dirstateCopies,
    const std::vector<Bytes>& added) {
  std::vector<std::pair<Bytes, Bytes>> out;
  auto repo = objects.repo();
  for (const auto& dest : added) {
    Bytes path = dest;
    std::optional<hg::Node> node;
    auto copied = dirstateCopies.find(dest);
    if (copied != dirstateCopies.end()) path = copied->second;
    if (p1Tree) {
      HG_ASSIGN_OR_RETURN(node, fileIn(objects, *p1Tree, path));
    }
    if (copied != dirstateCopies.end()) {
      HG_ASSIGN_OR_RETURN(auto inBase, fileIn(objects, baseTree, path));
      if (inBase) {
        if (path != dest) out.emplace_back(dest, path);
        continue;
      }
    }
    for (int step = 0; node && step < kMaxCopySteps; ++step) {
      HG_ASSIGN_OR_RETURN(hg::Filelog log, repo->filelog(path));
      HG_ASSIGN_OR_RETURN(auto text, log.readWithMetadata(*node));
      if (!text.metadata.copy) break;
      path = text.metadata.copy->path;
      node = text.metadata.copy->node;
      HG_ASSIGN_OR_RETURN(auto inBase, fileIn(objects, baseTree, path));
      if (inBase) {
        if (path != dest) out.emplace_back(dest, path);
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hgvfs::status
