#include "hgbridge/bulk.h"

#include <tbb/parallel_for.h>
#include <tbb/task_group.h>

#include <mutex>
#include <optional>

namespace hgvfs::hg {

Status readAllFiles(const Repository& repo, const Manifest& manifest, const FileSink& sink,
                    VerifyHash verify) {
  auto entries = manifest.entries();
  std::mutex errorMutex;
  std::optional<Error> firstError;
  tbb::task_group_context context;
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, entries.size(), 16),
      [&](const tbb::blocked_range<size_t>& range) {
        for (size_t i = range.begin(); i != range.end(); ++i) {
          const ManifestEntry& entry = entries[i];
          Status status = [&]() -> Status {
            HG_ASSIGN_OR_RETURN(Filelog fl, repo.filelog(entry.path));
            HG_ASSIGN_OR_RETURN(Bytes content, fl.read(entry.node, verify));
            return sink(entry, content);
          }();
          if (!status.ok()) {
            std::lock_guard lock(errorMutex);
            if (!firstError) firstError = status.error();
            context.cancel_group_execution();
            return;
          }
        }
      },
      context);
  if (firstError) return *firstError;
  return okStatus();
}

}  // namespace hgvfs::hg
