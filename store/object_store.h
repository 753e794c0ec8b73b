#pragma once
// The object cache of one backing repository: directory trees synthesized
// from manifests, file contents (blobs) and file sizes, kept in LMDB and in
// memory, fetched through hgbridge on a miss.
//
// LMDB layout (one environment per backing repository, shared by every
// mount of it; database names are stable):
//   "trees"          TreeId (20 bytes)        → Tree::serialize()
//   "manifest-trees" manifest node (20 bytes) → root TreeId (20 bytes)
//   "blobs"          file node (20 bytes)     → working-copy content
//   "sizes"          file node (20 bytes)     → content length, u64 big-endian
// A file node names one content whatever the path (it hashes the text and
// its parents), so blobs and sizes are keyed by node alone.
//
// Importing a commit stores every directory tree of its manifest once, in
// one transaction; importing it again is one lookup. Reads fill an
// in-memory LRU (trees and blobs, one byte budget each) and queue their
// results for a single background writer thread that commits them to
// LMDB in batches, so a FUSE read never waits for a disk commit. A failed
// cache write (full disk) is logged and the read still answers.
//
// Thread rules: every method may be called from any number of threads.

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hgbridge/repository.h"
#include "store/lmdb_env.h"
#include "store/lru_cache.h"
#include "store/tree.h"

namespace hgvfs::store {

struct ObjectStoreOptions {
  size_t treeCacheBytes = size_t{64} << 20;
  size_t blobCacheBytes = size_t{256} << 20;
  LmdbEnv::Options lmdb;
};

struct ObjectStoreStats {
  uint64_t blobHgReads = 0;    // blobs read through hgbridge
  uint64_t blobLmdbHits = 0;   // blobs found in LMDB
  uint64_t treeLmdbReads = 0;  // trees read from LMDB
  uint64_t pendingWrites = 0;
  uint64_t failedWrites = 0;
  uint64_t treeCacheBytes = 0;  // held by the in-memory LRUs
  uint64_t blobCacheBytes = 0;
};

// Progress of a first import: `done` of `total` directories written.
using ImportProgress = std::function<void(const char* phase, size_t done, size_t total)>;

class ObjectStore {
 public:
  // `cacheDir` holds the LMDB environment (created if needed).
  static hg::Result<std::unique_ptr<ObjectStore>> open(std::shared_ptr<const hg::Repository> repo,
                                                       const std::string& cacheDir,
                                                       const ObjectStoreOptions& options = {});
  ~ObjectStore();

  // The repository snapshot objects are read from; setRepository() swaps
  // in a newer snapshot (commits made since), for every later read.
  std::shared_ptr<const hg::Repository> repo() const;
  void setRepository(std::shared_ptr<const hg::Repository> repo);
  const std::string& cacheDirectory() const { return env_->path(); }

  // The root tree of changeset `rev`, importing its manifest if needed.
  hg::Result<TreeId> importCommit(hg::Revision rev, const ImportProgress& progress = {});
  // Whether the manifest of `rev` is already imported (no work to do).
  hg::Result<bool> isImported(hg::Revision rev);

  hg::Result<std::shared_ptr<const Tree>> tree(const TreeId& id);
  // The content of file revision `node` of tracked path `path`.
  hg::Result<std::shared_ptr<const Bytes>> blob(ByteView path, const hg::Node& node);
  hg::Result<uint64_t> fileSize(ByteView path, const hg::Node& node);

  ObjectStoreStats stats() const;
  // Waits until every queued cache write is committed (tests, shutdown).
  void flush();

 private:
  ObjectStore() = default;
  // Queues a cache write; false (and nothing queued) when `droppable` and
  // the queue already holds too many bytes: the cache is only a cache.
  bool queueWrite(size_t db, const hg::Node& key, Bytes value, bool droppable = false);
  void writerLoop();
  hg::Result<hg::Node> manifestNodeOf(hg::Revision rev) const;

  enum Db : size_t { kTrees = 0, kManifestTrees = 1, kBlobs = 2, kSizes = 3 };

  mutable std::mutex repoMutex_;  // a leaf
  std::shared_ptr<const hg::Repository> repo_;
  std::unique_ptr<LmdbEnv> env_;
  std::unique_ptr<LruCache<TreeId, Tree>> trees_;
  std::unique_ptr<LruCache<hg::Node, Bytes>> blobs_;
  // Blobs too big for the LRU: the last few read stay here, so a large file
  // read in many pieces is fetched once. Lock order: a leaf.
  static constexpr size_t kLargeSlots = 2;
  std::mutex largeMutex_;
  std::array<std::pair<hg::Node, std::shared_ptr<const Bytes>>, kLargeSlots> large_;
  size_t nextLarge_ = 0;
  size_t blobBudget_ = 0;

  struct PendingWrite {
    size_t db;
    hg::Node key;
    Bytes value;
  };
  // Lock order: queueMutex_ is a leaf.
  mutable std::mutex queueMutex_;
  std::condition_variable queueCv_;
  std::condition_variable flushedCv_;
  std::vector<PendingWrite> queue_;
  size_t queuedBytes_ = 0;  // bounded: past kMaxQueuedBytes, blob writes are dropped
  size_t inFlight_ = 0;
  bool stopping_ = false;
  std::thread writer_;

  std::atomic<uint64_t> blobHgReads_{0}, blobLmdbHits_{0}, treeLmdbReads_{0}, failedWrites_{0};
};

}  // namespace hgvfs::store
