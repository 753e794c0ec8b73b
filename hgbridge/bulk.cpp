#include "hgbridge/bulk.h"

#include <tbb/parallel_for.h>
#include <tbb/task_group.h>

#include <optional>

#include "base/thread_annotations.h"

namespace hgvfs::hg {

Status readAllFiles(const Repository& repo, const Manifest& manifest, const FileSink& sink,
                    VerifyHash verify) {
  auto entries = manifest.entries();
  struct {
    Mutex mutex;  // a leaf: only the first failure is kept under it
    std::optional<Error> error GUARDED_BY(mutex);
  } first;
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
            {
              MutexLock lock(first.mutex);
              if (!first.error) first.error = status.error();
            }
            context.cancel_group_execution();
            return;
          }
        }
      },
      context);
  MutexLock lock(first.mutex);
  if (first.error) return *first.error;
  return okStatus();
}

}  // namespace hgvfs::hg
