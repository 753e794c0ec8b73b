#include "hgbridge/verify.h"

#include <tbb/parallel_for.h>

#include <atomic>
#include <optional>

namespace hgvfs::hg {
namespace {

// Reads every revision of `revlog` in order (the revlog's one-text cache makes
// each step cost one delta). `check` sees each text.
template <typename Check>
Status verifyRevlog(const Revlog& revlog, size_t& count, Check&& check) {
  for (size_t i = 0; i < revlog.size(); ++i) {
    Revision r(static_cast<int32_t>(i));
    if (revlog.isCensored(r)) continue;  // hg verify accepts censored revisions
    HG_ASSIGN_OR_RETURN(Bytes text, revlog.rawText(r));
    HG_RETURN_IF_ERROR(check(r, text));
    ++count;
  }
  return okStatus();
}

}  // namespace

Result<VerifyStats> verifyRepository(const Repository& repo) {
  VerifyStats stats;
  const Revlog& cl = repo.changelog().revlog();
  HG_RETURN_IF_ERROR(verifyRevlog(cl, stats.changesets, [&](Revision r, const Bytes& text) {
    auto cs = parseChangeset(text, cl.name() + " revision " + std::to_string(r.value()));
    return cs.ok() ? okStatus() : Status(cs.error());
  }));
  const Revlog& ml = repo.manifestRevlog();
  HG_RETURN_IF_ERROR(verifyRevlog(ml, stats.manifests, [&](Revision r, const Bytes& text) {
    auto m = Manifest::parse(text, ml.name() + " revision " + std::to_string(r.value()));
    return m.ok() ? okStatus() : Status(m.error());
  }));

  HG_ASSIGN_OR_RETURN(std::vector<Bytes> paths, repo.filelogPaths());
  // Filelogs are independent: check them in parallel, and report the failure
  // of the first path in sorted order so the answer does not depend on timing.
  std::vector<std::optional<Error>> errors(paths.size());
  std::atomic<size_t> firstFailure{paths.size()};
  std::atomic<size_t> revisions{0};
  tbb::parallel_for(size_t{0}, paths.size(), [&](size_t i) {
    if (i > firstFailure.load(std::memory_order_relaxed)) return;
    size_t count = 0;
    Status status = [&]() -> Status {
      HG_ASSIGN_OR_RETURN(Filelog fl, repo.filelog(paths[i]));
      return verifyRevlog(fl.revlog(), count, [](Revision, const Bytes&) { return okStatus(); });
    }();
    revisions += count;
    if (!status.ok()) {
      errors[i] = status.error();
      size_t cur = firstFailure.load();
      while (i < cur && !firstFailure.compare_exchange_weak(cur, i)) {
      }
    }
  });
  if (firstFailure < paths.size()) return *errors[firstFailure];
  stats.filelogs = paths.size();
  stats.fileRevisions = revisions;
  return stats;
}

}  // namespace hgvfs::hg
