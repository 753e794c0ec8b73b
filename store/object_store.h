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
//   "manifest-skips" manifest node (20 bytes) → how many of its entries the
//                    trees leave out (tree_builder.h), u64 big-endian; absent
//                    when not known (imported by an older hgvfs, or from the
//                    delta against a parent whose count was not known)
//   "uses"           file node (20 bytes)     → last use of its blob,
//                    microseconds since the epoch, u64 big-endian
// A file node names one content whatever the path (it hashes the text and
// its parents), so blobs and sizes are keyed by node alone.
//
// Importing a commit stores every directory tree of its manifest once, in
// one transaction; importing it again is one lookup. A commit (not a merge)
// whose manifest is stored as a delta against its parent's imported
// manifest is imported from that delta alone (the changed paths, checked
// against the parent's trees and the changeset's files), in time
// proportional to the change; any other commit, or a delta that does not
// check out, is imported from its full manifest. Reads fill an
// in-memory LRU (trees and blobs, one byte budget each) and queue their
// results for a single background writer thread that commits them to
// LMDB in batches, so a FUSE read never waits for a disk commit. A failed
// cache write (full disk) is logged and the read still answers.
//
// The blobs are bounded (cache_maintenance.cpp): each blob read notes its
// time in memory, and the writer thread records those times in "uses" every
// few seconds. When the blobs written since the last count may pass
// `maxBlobBytes`, the writer drops the least recently used blobs down to
// 90% of it. Trees and sizes are never dropped: they are small and make
// listings fast. A listing's missing sizes are computed in one parallel
// batch (warmSizes), and prefetch() fills the blobs of many files at once.
//
// Thread rules: every method may be called from any number of threads.
// The store's own mutexes are leaves (see their declarations): none is held
// while calling into LmdbEnv, hgbridge, an LruCache or a caller's callback.

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/thread_annotations.h"
#include "hgbridge/repository.h"
#include "store/lmdb_env.h"
#include "store/lru_cache.h"
#include "store/tree.h"

namespace hgvfs::store {

struct ObjectStoreOptions {
  size_t treeCacheBytes = size_t{256} << 20;
  size_t blobCacheBytes = size_t{256} << 20;
  // The bound of the blobs in LMDB (the sum of their lengths); 0: none.
  uint64_t maxBlobBytes = uint64_t{4} << 30;
  LmdbEnv::Options lmdb;
};

struct ObjectStoreStats {
  uint64_t blobHgReads = 0;    // blobs read through hgbridge
  uint64_t blobLmdbHits = 0;   // blobs found in LMDB
  uint64_t treeLmdbReads = 0;  // trees read from LMDB
  uint64_t deltaImports = 0;   // commits imported from their manifest delta alone
  uint64_t pendingWrites = 0;
  uint64_t failedWrites = 0;
  uint64_t treeCacheBytes = 0;  // held by the in-memory LRUs
  uint64_t blobCacheBytes = 0;
  // Lookups in the in-memory LRUs (a file's size is looked up in the blob
  // LRU first, so its lookups count there too).
  uint64_t treeCacheHits = 0, treeCacheMisses = 0, blobCacheHits = 0, blobCacheMisses = 0;
  uint64_t sizeLmdbHits = 0;   // file sizes found in LMDB
  uint64_t sizeHgReads = 0;    // file sizes read through hgbridge
  uint64_t lmdbFileBytes = 0;  // the LMDB data file on disk
};

// A file revision to size or fetch: its tracked path and node.
struct FileRef {
  Bytes path;
  hg::Node node;
};

struct PrefetchResult {
  uint64_t files = 0;   // fetched from the repository now
  uint64_t bytes = 0;   // their content bytes
  uint64_t cached = 0;  // already in the cache, left alone
  bool interrupted = false;
};
// Progress of prefetch(): `done` of `total` files, `bytes` fetched so far.
using PrefetchProgress = std::function<void(uint64_t done, uint64_t total, uint64_t bytes)>;

struct GcResult {
  uint64_t droppedBlobs = 0;
  uint64_t droppedBytes = 0;
  uint64_t keptBlobs = 0;
  uint64_t keptBytes = 0;
};

// What one cache holds. Blob bytes are the sum of the contents' lengths;
// the others are LMDB pages in use.
struct CacheUsage {
  uint64_t blobs = 0, blobBytes = 0;
  uint64_t trees = 0, treeBytes = 0;
  uint64_t sizes = 0, otherBytes = 0;  // sizes, uses and the manifest maps
  uint64_t fileBytes = 0;              // the environment's file on disk
};

// Progress of a first import: `done` of `total` directories written.
using ImportProgress = std::function<void(const char* phase, size_t done, size_t total)>;

class ObjectStore {
 public:
  // `cacheDir` holds the LMDB environment (created if needed).
  static Result<std::unique_ptr<ObjectStore>> open(std::shared_ptr<const hg::Repository> repo,
                                                   const std::string& cacheDir,
                                                   const ObjectStoreOptions& options = {});
  ~ObjectStore();

  // The repository snapshot objects are read from; setRepository() swaps
  // in a newer snapshot (commits made since), for every later read.
  std::shared_ptr<const hg::Repository> repo() const EXCLUDES(repoMutex_);
  void setRepository(std::shared_ptr<const hg::Repository> repo) EXCLUDES(repoMutex_);
  const std::string& cacheDirectory() const { return env_->path(); }

  // The root tree of changeset `rev`, importing its manifest if needed.
  // `progress` is called while LmdbEnv's resizeMutex_ is held (shared): it
  // must not use this store's LMDB environment.
  Result<TreeId> importCommit(hg::Revision rev, const ImportProgress& progress = {})
      EXCLUDES(repoMutex_);
  // Whether the manifest of `rev` is already imported (no work to do).
  Result<bool> isImported(hg::Revision rev) EXCLUDES(repoMutex_);

  Result<std::shared_ptr<const Tree>> tree(const TreeId& id);
  // The entry at `path` ('/'-separated, relative to `root`), file or
  // directory; nullopt when there is none. One tree load per component.
  Result<std::optional<TreeEntry>> findEntry(const TreeId& root, ByteView path);
  // Appends every file below `root` to `out`, each as `prefix/path` (just
  // `path` when `prefix` is empty), depth first in tree order.
  Status listFiles(const TreeId& root, const Bytes& prefix, std::vector<Bytes>& out);
  // The content of file revision `node` of tracked path `path`.
  Result<std::shared_ptr<const Bytes>> blob(ByteView path, const hg::Node& node)
      EXCLUDES(repoMutex_, largeMutex_, queueMutex_);
  Result<uint64_t> fileSize(ByteView path, const hg::Node& node) EXCLUDES(repoMutex_, queueMutex_);

  ObjectStoreStats stats() const EXCLUDES(queueMutex_);
  // Waits until every queued cache write is committed, and records the
  // blob uses noted so far (tests, shutdown).
  void flush() EXCLUDES(queueMutex_, usesMutex_);

  // Cache maintenance (cache_maintenance.cpp); any thread.
  //
  // Computes, in parallel, the sizes of `files` that neither LMDB nor the
  // blob LRU knows, and stores them in one write transaction, so the
  // fileSize() calls of a listing that follow are lookups.
  Status warmSizes(const std::vector<FileRef>& files) EXCLUDES(repoMutex_);
  // The size of `node` if LMDB holds it (no repository read).
  std::optional<uint64_t> knownSize(const hg::Node& node);
  // Reads the blobs (and sizes) of `files` missing from LMDB through
  // hgbridge on `threads` threads and stores them in batches. Stops early,
  // keeping what was stored, once `*cancel` is set. `progress` is called
  // on the calling thread a few times a second.
  Result<PrefetchResult> prefetch(const std::vector<FileRef>& files, unsigned threads,
                                  const PrefetchProgress& progress, const std::atomic<bool>* cancel)
      EXCLUDES(repoMutex_, usesMutex_);
  // Drops the least recently used blobs from LMDB until their bytes are at
  // most `targetBytes` (trees and sizes stay). Blobs with no recorded use
  // go first. Records the uses noted so far before choosing.
  Result<GcResult> collectGarbage(uint64_t targetBytes) EXCLUDES(usesMutex_);
  Result<CacheUsage> usage();
  // Every file below `root` with its node, as `prefix/path`.
  Status listFileRefs(const TreeId& root, const Bytes& prefix, std::vector<FileRef>& out);

 private:
  ObjectStore() = default;
  // Queues a cache write; false (and nothing queued) when `droppable` and
  // the queue already holds too many bytes: the cache is only a cache.
  bool queueWrite(size_t db, const hg::Node& key, Bytes value, bool droppable = false)
      EXCLUDES(queueMutex_);
  void writerLoop() EXCLUDES(queueMutex_);
  static Result<hg::Node> manifestNodeOf(const hg::Repository& repo, hg::Revision rev);

  // The trees of one manifest, ready to be stored (defined in the .cpp).
  struct Import;
  // Imports changeset `rev` (not null) from its manifest's stored delta
  // against its parent's imported manifest (not for a merge); an error says
  // why it cannot.
  Result<Import> importFromDelta(const hg::Repository& repo, hg::Revision rev,
                                 const hg::Changeset& changeset);
  // Imports manifest `mf` of `rev` from its full text, rebuilding only the
  // changed directories when a parent's manifest is imported.
  Result<Import> importFromManifest(const hg::Repository& repo, hg::Revision rev,
                                    const hg::Node& mf, const ImportProgress& progress);
  // The root tree of manifest `mf` if it is imported.
  Result<std::optional<TreeId>> importedRoot(const hg::Node& mf);
  // The "manifest-skips" count of `mf`; nullopt when not known.
  std::optional<uint64_t> skippedCount(const hg::Node& mf);

  enum Db : size_t {
    kTrees = 0,
    kManifestTrees = 1,
    kBlobs = 2,
    kSizes = 3,
    kManifestSkips = 4,
    kUses = 5
  };

  // Notes a use of blob `node` now (recorded by recordUses()).
  void noteUse(const hg::Node& node) EXCLUDES(usesMutex_);
  // Writes the noted uses to "uses" in one transaction.
  void recordUses() EXCLUDES(usesMutex_);
  // Called by the writer after it stored `blobBytes` bytes of blobs: drops
  // old blobs when the estimate passes the bound.
  void enforceLimit(uint64_t blobBytes);

  // Lock order: a leaf (held only to copy or swap the pointer).
  mutable Mutex repoMutex_;
  std::shared_ptr<const hg::Repository> repo_ GUARDED_BY(repoMutex_);
  // Set by open() before any other thread sees the store, then only read.
  std::unique_ptr<LmdbEnv> env_;
  std::unique_ptr<LruCache<TreeId, Tree>> trees_;
  std::unique_ptr<LruCache<hg::Node, Bytes>> blobs_;
  size_t blobBudget_ = 0;
  // Blobs too big for the LRU: the last few read stay here, so a large file
  // read in many pieces is fetched once. Lock order: largeMutex_ is a leaf
  // (a replaced blob is freed under it; freeing Bytes locks nothing).
  static constexpr size_t kLargeSlots = 2;
  Mutex largeMutex_;
  std::array<std::pair<hg::Node, std::shared_ptr<const Bytes>>, kLargeSlots> large_
      GUARDED_BY(largeMutex_);
  size_t nextLarge_ GUARDED_BY(largeMutex_) = 0;

  struct PendingWrite {
    size_t db;
    hg::Node key;
    Bytes value;
  };
  // Lock order: queueMutex_ is a leaf (the writer thread lets it go before
  // it writes a batch to LMDB).
  mutable Mutex queueMutex_;
  CondVar queueCv_{&queueMutex_};    // signalled when queue_ grows or stopping_ is set
  CondVar flushedCv_{&queueMutex_};  // signalled when a batch is committed
  std::vector<PendingWrite> queue_ GUARDED_BY(queueMutex_);
  // Bounded: past kMaxQueuedBytes, blob writes are dropped.
  size_t queuedBytes_ GUARDED_BY(queueMutex_) = 0;
  size_t inFlight_ GUARDED_BY(queueMutex_) = 0;
  bool stopping_ GUARDED_BY(queueMutex_) = false;
  std::thread writer_;  // started by open(), joined by the destructor

  uint64_t maxBlobBytes_ = 0;  // set by open()
  // The writer's estimate of the blob bytes in LMDB: counted at its first
  // need, then grown by what it writes (only the writer thread uses it).
  std::optional<uint64_t> blobBytesEstimate_;
  // Blob uses noted since the last recordUses(). Lock order: a leaf.
  Mutex usesMutex_;
  std::unordered_map<hg::Node, uint64_t> uses_ GUARDED_BY(usesMutex_);

  std::atomic<uint64_t> blobHgReads_{0}, blobLmdbHits_{0}, treeLmdbReads_{0}, failedWrites_{0},
      deltaImports_{0}, sizeLmdbHits_{0}, sizeHgReads_{0};
};

}  // namespace hgvfs::store
