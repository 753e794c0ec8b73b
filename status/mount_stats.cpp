#include "status/mount_stats.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "control/protocol.h"

namespace hgvfs::status {
namespace {

using nlohmann::json;

json overlayStats(const fs::Overlay* overlay) {
  if (!overlay) return json{{"files", 0}, {"file_bytes", 0}, {"meta_bytes", 0}};
  uint64_t files = 0, bytes = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(overlay->directory() + "/files", ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    struct stat fileSt;
    if (::lstat(it->path().c_str(), &fileSt) != 0) continue;  // removed meanwhile
    ++files;
    bytes += static_cast<uint64_t>(fileSt.st_size);
  }
  struct stat st;
  uint64_t meta = 0;
  if (::stat((overlay->directory() + "/meta/data.mdb").c_str(), &st) == 0) {
    meta = static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return json{{"files", files}, {"file_bytes", bytes}, {"meta_bytes", meta}};
}

}  // namespace

json mountStats(const fs::FileSystem& fs, const store::ObjectStore& objects) {
  fs::InodeCounts inodes = fs.inodeCounts();
  store::ObjectStoreStats cache = objects.stats();
  json fuse = json::object();
  for (size_t i = 0; i < static_cast<size_t>(fs::FuseOp::kCount); ++i) {
    auto op = static_cast<fs::FuseOp>(i);
    LatencySummary s = fs.fuseStats().summary(op);
    if (s.count) fuse[fs::fuseOpName(op)] = control::latencyToJson(s);
  }
  return json{
      {"inodes",
       {{"directories", inodes.directories},
        {"files", inodes.files},
        {"materialized_directories", inodes.materializedDirectories},
        {"materialized_files", inodes.materializedFiles},
        {"memory_bytes", fs.memoryUsage()}}},
      {"overlay", overlayStats(fs.overlay())},
      {"cache",
       {{"memory",
         {{"tree_bytes", cache.treeCacheBytes},
          {"tree_hits", cache.treeCacheHits},
          {"tree_misses", cache.treeCacheMisses},
          {"blob_bytes", cache.blobCacheBytes},
          {"blob_hits", cache.blobCacheHits},
          {"blob_misses", cache.blobCacheMisses}}},
        {"lmdb",
         {{"file_bytes", cache.lmdbFileBytes},
          {"blob_hits", cache.blobLmdbHits},
          {"size_hits", cache.sizeLmdbHits},
          {"tree_reads", cache.treeLmdbReads},
          {"pending_writes", cache.pendingWrites},
          {"failed_writes", cache.failedWrites}}},
        {"repository", {{"blob_reads", cache.blobHgReads}, {"size_reads", cache.sizeHgReads}}}}},
      {"fuse", fuse}};
}

}  // namespace hgvfs::status
