#pragma once
// The numbers `hgvfs stats` shows, gathered by the daemon for one mount:
//   "inodes":  loaded directories and files, and how many of them are
//              materialized;
//   "overlay": files in the overlay and their bytes, and the bytes of its
//              metadata (the overlay is the materialized part on disk);
//   "cache":   the object store: in-memory LRUs (bytes, entries, hits,
//              misses), LMDB (blob and size hits, tree reads, file bytes),
//              and reads that had to go to the repository;
//   "fuse":    per request kind seen since the mount, its count, total and
//              latency percentiles in microseconds (fs/fuse_stats.h).
// The control server adds "calls" (control/server.h).
//
// Thread rules: any thread; reads atomics and takes the inode table's
// shared lock once (the overlay walk holds no lock).

#include <nlohmann/json.hpp>

#include "fs/file_system.h"
#include "store/object_store.h"

namespace hgvfs::status {

nlohmann::json mountStats(const fs::FileSystem& fs, const store::ObjectStore& objects);

}  // namespace hgvfs::status
