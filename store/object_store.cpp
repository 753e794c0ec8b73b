#include "store/object_store.h"

#include <chrono>

#include "store/log.h"
#include "store/tree_builder.h"

namespace hgvfs::store {
namespace {

Bytes encodeSize(uint64_t v) {
  Bytes out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

constexpr size_t kMaxBatch = 4096;
// Blob writes queued beyond this are dropped rather than held in memory (a
// cold `cat` of a whole tree reads faster than LMDB commits).
constexpr size_t kMaxQueuedBytes = size_t{64} << 20;

}  // namespace

Result<std::unique_ptr<ObjectStore>> ObjectStore::open(std::shared_ptr<const hg::Repository> repo,
                                                       const std::string& cacheDir,
                                                       const ObjectStoreOptions& options) {
  std::unique_ptr<ObjectStore> s(new ObjectStore());
  s->setRepository(std::move(repo));
  HG_ASSIGN_OR_RETURN(
      s->env_,
      LmdbEnv::open(cacheDir, {"trees", "manifest-trees", "blobs", "sizes"}, options.lmdb));
  s->trees_ = std::make_unique<LruCache<TreeId, Tree>>(options.treeCacheBytes);
  s->blobs_ = std::make_unique<LruCache<hg::Node, Bytes>>(options.blobCacheBytes);
  s->blobBudget_ = options.blobCacheBytes;
  s->writer_ = std::thread([p = s.get()] { p->writerLoop(); });
  return s;
}

ObjectStore::~ObjectStore() {
  {
    MutexLock lock(queueMutex_);
    stopping_ = true;
  }
  queueCv_.signalAll();
  if (writer_.joinable()) writer_.join();
}

bool ObjectStore::queueWrite(size_t db, const hg::Node& key, Bytes value, bool droppable) {
  {
    MutexLock lock(queueMutex_);
    if (droppable && queuedBytes_ + value.size() > kMaxQueuedBytes) return false;
    queuedBytes_ += value.size();
    queue_.push_back({db, key, std::move(value)});
  }
  queueCv_.signal();
  return true;
}

void ObjectStore::writerLoop() {
  std::vector<PendingWrite> batch;
  while (true) {
    {
      MutexLock lock(queueMutex_);
      while (!stopping_ && queue_.empty()) queueCv_.wait();
      if (queue_.empty() && stopping_) return;
      size_t n = std::min(queue_.size(), kMaxBatch);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
      for (const auto& w : batch) queuedBytes_ -= w.value.size();
      inFlight_ = batch.size();
    }
    Status status = env_->write([&](MDB_txn* txn) -> Status {
      for (const auto& w : batch) {
        HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(w.db), w.key.view(), w.value, false));
      }
      return okStatus();
    });
    if (!status.ok()) {
      failedWrites_ += batch.size();
      log().warn("object cache write of {} objects failed (the data is still served): {}",
                 batch.size(), status.error().message());
    }
    batch.clear();
    {
      MutexLock lock(queueMutex_);
      inFlight_ = 0;
    }
    flushedCv_.signalAll();
  }
}

void ObjectStore::flush() {
  MutexLock lock(queueMutex_);
  while (!queue_.empty() || inFlight_ != 0) flushedCv_.wait();
}

Result<hg::Node> ObjectStore::manifestNodeOf(hg::Revision rev) const {
  if (rev.isNull()) return hg::kNullNode;
  HG_ASSIGN_OR_RETURN(hg::Changeset cs, repo()->changeset(rev));
  return cs.manifest;
}

Result<bool> ObjectStore::isImported(hg::Revision rev) {
  HG_ASSIGN_OR_RETURN(hg::Node mf, manifestNodeOf(rev));
  HG_ASSIGN_OR_RETURN(auto found, env_->get(env_->dbi(kManifestTrees), mf.view()));
  return found.has_value();
}

Result<TreeId> ObjectStore::importCommit(hg::Revision rev, const ImportProgress& progress) {
  HG_ASSIGN_OR_RETURN(hg::Node mf, manifestNodeOf(rev));
  HG_ASSIGN_OR_RETURN(auto found, env_->get(env_->dbi(kManifestTrees), mf.view()));
  if (found) {
    if (found->size() != hg::Node::kSize) {
      return corrupt("manifest-trees entry has the wrong size", env_->path());
    }
    return TreeId::fromRaw(found->data());
  }
  auto start = std::chrono::steady_clock::now();
  if (progress) progress("reading manifest", 0, 0);
  HG_ASSIGN_OR_RETURN(hg::Manifest manifest, repo()->manifest(mf));
  if (progress) progress("building trees", 0, manifest.size());
  // A parent whose manifest is imported lets us rebuild only the
  // directories on changed paths.
  BuiltTrees built;
  bool incremental = false;
  const hg::Revlog& cl = repo()->changelog().revlog();
  for (hg::Revision parent : rev.isNull()
                                 ? std::vector<hg::Revision>{}
                                 : std::vector<hg::Revision>{cl.entry(rev).p1, cl.entry(rev).p2}) {
    if (parent.isNull()) continue;
    auto parentMf = manifestNodeOf(parent);
    if (!parentMf.ok()) continue;
    auto parentRoot = env_->get(env_->dbi(kManifestTrees), parentMf->view());
    if (!parentRoot.ok() || !*parentRoot || (*parentRoot)->size() != hg::Node::kSize) continue;
    auto base = repo()->manifest(*parentMf);
    if (!base.ok()) continue;
    built = buildTreesFrom(manifest, *base, TreeId::fromRaw((*parentRoot)->data()),
                           [this](const TreeId& id) -> std::shared_ptr<const Tree> {
                             auto t = tree(id);
                             return t.ok() ? *t : nullptr;
                           });
    incremental = true;
    break;
  }
  if (!incremental) built = buildTrees(manifest);
  for (const auto& s : built.skipped) {
    log().error("manifest {} of {}: entry left out: {}", mf.shortHex(), repo()->root(), s);
  }
  size_t total = built.trees.size();
  size_t done = 0;
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
    done = 0;
    for (const auto& [id, data] : built.trees) {
      HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(kTrees), id.view(), data, false));
      if (progress && (++done % 4096 == 0)) progress("storing trees", done, total);
    }
    return LmdbEnv::put(txn, env_->dbi(kManifestTrees), mf.view(), built.root.view());
  }));
  if (progress) progress("done", total, total);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  log().info("imported manifest {} ({} files, {} directories {}) in {:.1f} ms", mf.shortHex(),
             manifest.size(), total, incremental ? "rebuilt from its parent's" : "built", ms);
  return built.root;
}

Result<std::shared_ptr<const Tree>> ObjectStore::tree(const TreeId& id) {
  if (auto cached = trees_->get(id)) return cached;
  HG_ASSIGN_OR_RETURN(auto data, env_->get(env_->dbi(kTrees), id.view()));
  if (!data) return notFound("tree " + id.hex() + " is not in the object cache", env_->path());
  ++treeLmdbReads_;
  HG_ASSIGN_OR_RETURN(Tree t, Tree::deserialize(*data, "tree " + id.hex()));
  auto shared = std::make_shared<const Tree>(std::move(t));
  trees_->put(id, shared, shared->memoryUsage());
  return shared;
}

Result<std::shared_ptr<const Bytes>> ObjectStore::blob(ByteView path, const hg::Node& node) {
  if (auto cached = blobs_->get(node)) return cached;
  {
    MutexLock lock(largeMutex_);
    for (const auto& [n, b] : large_) {
      if (b && n == node) return b;
    }
  }
  HG_ASSIGN_OR_RETURN(auto stored, env_->get(env_->dbi(kBlobs), node.view()));
  std::shared_ptr<const Bytes> content;
  if (stored) {
    ++blobLmdbHits_;
    content = std::make_shared<const Bytes>(std::move(*stored));
  } else {
    HG_ASSIGN_OR_RETURN(hg::Filelog fl, repo()->filelog(path));
    HG_ASSIGN_OR_RETURN(Bytes text, fl.read(node));
    ++blobHgReads_;
    content = std::make_shared<const Bytes>(std::move(text));
    queueWrite(kBlobs, node, *content, /*droppable=*/true);
    queueWrite(kSizes, node, encodeSize(content->size()));
  }
  size_t cost = content->size() + sizeof(Bytes) + 64;
  if (cost > blobBudget_) {
    MutexLock lock(largeMutex_);
    large_[nextLarge_++ % kLargeSlots] = {node, content};
  } else {
    blobs_->put(node, content, cost);
  }
  return content;
}

Result<uint64_t> ObjectStore::fileSize(ByteView path, const hg::Node& node) {
  if (auto cached = blobs_->get(node)) return static_cast<uint64_t>(cached->size());
  HG_ASSIGN_OR_RETURN(auto stored, env_->get(env_->dbi(kSizes), node.view()));
  if (stored && stored->size() == 8) return be64At(*stored, 0);
  HG_ASSIGN_OR_RETURN(hg::Filelog fl, repo()->filelog(path));
  HG_ASSIGN_OR_RETURN(uint64_t size, fl.size(node));
  queueWrite(kSizes, node, encodeSize(size));
  return size;
}

ObjectStoreStats ObjectStore::stats() const {
  ObjectStoreStats s;
  s.blobHgReads = blobHgReads_;
  s.blobLmdbHits = blobLmdbHits_;
  s.treeLmdbReads = treeLmdbReads_;
  s.failedWrites = failedWrites_;
  s.treeCacheBytes = trees_->stats().bytes;
  s.blobCacheBytes = blobs_->stats().bytes;
  {
    MutexLock lock(queueMutex_);
    s.pendingWrites = queue_.size() + inFlight_;
  }
  return s;
}

std::shared_ptr<const hg::Repository> ObjectStore::repo() const {
  MutexLock lock(repoMutex_);
  return repo_;
}

void ObjectStore::setRepository(std::shared_ptr<const hg::Repository> repo) {
  {
    MutexLock lock(repoMutex_);
    repo_.swap(repo);
  }
  // The old snapshot, now in `repo`, is released after the lock is.
}

Result<std::optional<TreeEntry>> ObjectStore::findEntry(const TreeId& root, ByteView path) {
  TreeId dir = root;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    ByteView name = path.substr(start, slash == ByteView::npos ? ByteView::npos : slash - start);
    if (name.empty()) return std::optional<TreeEntry>();
    HG_ASSIGN_OR_RETURN(auto t, tree(dir));
    const TreeEntry* e = t->find(name);
    if (!e) return std::optional<TreeEntry>();
    if (slash == ByteView::npos) return std::optional<TreeEntry>(*e);
    if (!e->isDirectory()) return std::optional<TreeEntry>();
    dir = e->treeId();
    start = slash + 1;
  }
}

Status ObjectStore::listFiles(const TreeId& root, const Bytes& prefix, std::vector<Bytes>& out) {
  HG_ASSIGN_OR_RETURN(auto t, tree(root));
  for (const auto& e : t->entries()) {
    Bytes child = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.isDirectory()) {
      HG_RETURN_IF_ERROR(listFiles(e.treeId(), child, out));
    } else {
      out.push_back(std::move(child));
    }
  }
  return okStatus();
}

}  // namespace hgvfs::store
