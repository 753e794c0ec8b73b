#include "store/object_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "hgbridge/mpatch.h"
#include "store/log.h"
#include "store/tree_builder.h"

namespace hgvfs::store {
namespace {

Bytes encodeBe64(uint64_t v) {
  Bytes out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

// The length of a manifest line "<path>\0<40 hex><flag>\n" (manifest.h).
size_t manifestLineLength(ByteView path, EntryKind kind) {
  return path.size() + 1 + hg::Node::kHexSize + (kind == EntryKind::kRegular ? 0 : 1) + 1;
}

// The entry at a path of the parent's trees (file or directory), if any.
using ParentLookup = std::function<Result<std::optional<TreeEntry>>(ByteView path)>;

// The changed paths of a manifest read from its delta against its parent's
// manifest (`parentLength` bytes when known), with the changeset's `files`
// and the parent's trees. For a commit with one parent, hg's `files` names
// exactly the paths added, changed (content or flags) or removed.
//
// Each hunk must insert whole manifest lines, in path order across hunks:
// those are the new entries, and each that differs from the parent's must
// be in `files`. A path of `files` not inserted that is a file in the
// parent is removed. Then the reading is checked: with line-aligned hunks
// (what hg's bdiff and manifest fastdelta write), hunk after hunk deletes
// the next parent lines in path order, so the parent lines of the inserted
// paths that were files and of the removed ones, sorted, must fill each
// hunk's deleted range exactly; and the new length from the index must be
// the parent's minus the deleted plus the inserted bytes. Any disagreement
// (a delta not line-aligned, a `files` list that names too much or too
// little, an entry the parent's trees left out) is Unsupported. The check
// counts bytes, not contents: a `files` list naming an unchanged path and
// missing a removed one of the same line length next to it would pass,
// which hg writes for merges only (importFromDelta does not take those).
Result<std::vector<FileChange>> changesFromDelta(ByteView delta,
                                                 std::optional<uint64_t> parentLength,
                                                 std::optional<uint64_t> newLength,
                                                 const std::vector<Bytes>& files,
                                                 const ParentLookup& parentEntry) {
  HG_ASSIGN_OR_RETURN(std::vector<hg::DeltaHunk> hunks,
                      hg::parseDelta(delta, parentLength.value_or(SIZE_MAX)));
  std::unordered_set<ByteView> listed(files.begin(), files.end());
  std::vector<FileChange> changes;
  uint64_t deletedBytes = 0, insertedBytes = 0;
  for (const auto& h : hunks) {
    deletedBytes += h.end - h.start;
    insertedBytes += h.data.size();
    auto lines = hg::Manifest::parse(Bytes(h.data));
    if (!lines.ok()) {
      return unsupported("a hunk inserts more than whole manifest lines (" + lines.error().what +
                         ")");
    }
    for (const auto& e : lines->entries()) {
      if (!changes.empty() && !(ByteView(changes.back().path) < e.path)) {
        return unsupported("the inserted lines are not in path order");
      }
      changes.push_back({Bytes(e.path), false, entryKind(e.kind), e.node});
    }
  }
  // (path, line length) of every parent line the delta must delete.
  std::vector<std::pair<Bytes, size_t>> deleted;
  for (const auto& c : changes) {
    HG_ASSIGN_OR_RETURN(std::optional<TreeEntry> old, parentEntry(c.path));
    bool wasFile = old && !old->isDirectory();
    if (wasFile) deleted.emplace_back(c.path, manifestLineLength(c.path, old->kind));
    if (!listed.count(c.path) && !(wasFile && old->kind == c.kind && old->id == c.node)) {
      return unsupported("the changeset's files do not name " + printable(c.path) +
                         ", which changed");
    }
  }
  size_t inserted = changes.size();
  auto isInserted = [&](ByteView path) {
    auto end = changes.begin() + static_cast<long>(inserted);
    auto it = std::lower_bound(changes.begin(), end, path, [](const FileChange& c, ByteView p) {
      return ByteView(c.path) < p;
    });
    return it != end && it->path == path;
  };
  for (ByteView path : listed) {
    if (isInserted(path)) continue;
    HG_ASSIGN_OR_RETURN(std::optional<TreeEntry> old, parentEntry(path));
    if (!old || old->isDirectory()) continue;  // not in the parent: nothing to remove
    deleted.emplace_back(Bytes(path), manifestLineLength(path, old->kind));
    changes.push_back({Bytes(path), true, EntryKind::kRegular, hg::Node()});
  }
  std::sort(deleted.begin(), deleted.end());
  size_t next = 0;
  for (const auto& h : hunks) {
    size_t want = h.end - h.start;
    while (want > 0 && next < deleted.size() && deleted[next].second <= want) {
      want -= deleted[next++].second;
    }
    if (want > 0) {
      return unsupported("a hunk deletes bytes at " + std::to_string(h.start) +
                         " that are not the parent's lines of the changed paths");
    }
  }
  if (next != deleted.size()) {
    return unsupported("the delta keeps the parent's line of " + printable(deleted[next].first) +
                       ", which changed");
  }
  if (parentLength && newLength && *newLength + deletedBytes != *parentLength + insertedBytes) {
    return unsupported("the delta's length does not match the index");
  }
  return changes;
}

// The revision of manifest `node`; a commit just made has the newest.
Result<hg::Revision> manifestRevision(const hg::Revlog& manifests, const hg::Node& node) {
  if (!manifests.empty() && manifests.node(manifests.tip()) == node) return manifests.tip();
  return manifests.rev(node);
}

std::optional<uint64_t> knownLength(const hg::IndexEntry& e) {
  if (e.uncompressedLength < 0) return std::nullopt;
  return static_cast<uint64_t>(e.uncompressedLength);
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
  HG_ASSIGN_OR_RETURN(s->env_, LmdbEnv::open(cacheDir,
                                             {"trees", "manifest-trees", "blobs", "sizes",
                                              "manifest-skips", "uses"},
                                             options.lmdb));
  s->trees_ = std::make_unique<LruCache<TreeId, Tree>>(options.treeCacheBytes);
  s->blobs_ = std::make_unique<LruCache<hg::Node, Bytes>>(options.blobCacheBytes);
  s->blobBudget_ = options.blobCacheBytes;
  s->maxBlobBytes_ = options.maxBlobBytes;
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
  recordUses();
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
  // Uses are recorded every few seconds, not per read.
  constexpr auto kUsePeriod = std::chrono::seconds(5);
  auto nextUses = std::chrono::steady_clock::now() + kUsePeriod;
  while (true) {
    if (std::chrono::steady_clock::now() >= nextUses) {
      recordUses();
      nextUses = std::chrono::steady_clock::now() + kUsePeriod;
    }
    {
      MutexLock lock(queueMutex_);
      while (!stopping_ && queue_.empty() && std::chrono::steady_clock::now() < nextUses) {
        queueCv_.waitUntil(nextUses);
      }
      if (queue_.empty() && stopping_) return;
      if (queue_.empty()) continue;  // time to record the uses
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
    uint64_t blobBytes = 0;
    if (!status.ok()) {
      failedWrites_ += batch.size();
      log().warn("object cache write of {} objects failed (the data is still served): {}",
                 batch.size(), status.error().message());
    } else {
      for (const auto& w : batch) {
        if (w.db == kBlobs) blobBytes += w.value.size();
      }
    }
    batch.clear();
    if (blobBytes > 0) enforceLimit(blobBytes);
    {
      MutexLock lock(queueMutex_);
      inFlight_ = 0;
    }
    flushedCv_.signalAll();
  }
}

void ObjectStore::flush() {
  {
    MutexLock lock(queueMutex_);
    while (!queue_.empty() || inFlight_ != 0) flushedCv_.wait();
  }
  recordUses();
}

Result<hg::Node> ObjectStore::manifestNodeOf(const hg::Repository& repo, hg::Revision rev) {
  if (rev.isNull()) return hg::kNullNode;
  HG_ASSIGN_OR_RETURN(hg::Changeset cs, repo.changeset(rev));
  return cs.manifest;
}

Result<std::optional<TreeId>> ObjectStore::importedRoot(const hg::Node& mf) {
  HG_ASSIGN_OR_RETURN(auto found, env_->get(env_->dbi(kManifestTrees), mf.view()));
  if (!found) return std::optional<TreeId>();
  if (found->size() != hg::Node::kSize) {
    return corrupt("manifest-trees entry of " + mf.hex() + " has the wrong size", env_->path());
  }
  return std::optional<TreeId>(TreeId::fromRaw(found->data()));
}

std::optional<uint64_t> ObjectStore::skippedCount(const hg::Node& mf) {
  auto found = env_->get(env_->dbi(kManifestSkips), mf.view());
  if (!found.ok() || !*found || (*found)->size() != 8) return std::nullopt;
  return be64At(**found, 0);
}

Result<bool> ObjectStore::isImported(hg::Revision rev) {
  HG_ASSIGN_OR_RETURN(hg::Node mf, manifestNodeOf(*repo(), rev));
  HG_ASSIGN_OR_RETURN(auto found, env_->get(env_->dbi(kManifestTrees), mf.view()));
  return found.has_value();
}

struct ObjectStore::Import {
  BuiltTrees built;
  std::optional<uint64_t> skipped;  // the "manifest-skips" count, when known
  std::string how;                  // for the log line
};

Result<ObjectStore::Import> ObjectStore::importFromDelta(const hg::Repository& repo,
                                                         hg::Revision rev,
                                                         const hg::Changeset& changeset) {
  const hg::Revlog& manifests = repo.manifestRevlog();
  HG_ASSIGN_OR_RETURN(hg::Revision mfRev, manifestRevision(manifests, changeset.manifest));
  const hg::IndexEntry& entry = manifests.entry(mfRev);
  if (entry.flags != 0) return unsupported("the manifest revision has flags");
  std::optional<hg::Revision> deltaBase = manifests.deltaBase(mfRev);
  if (!deltaBase) return unsupported("the manifest is stored as a full text");
  const hg::Node baseNode = manifests.node(*deltaBase);
  const hg::IndexEntry& cl = repo.changelog().revlog().entry(rev);
  // A merge's files need not name the paths taken from the other parent.
  if (!cl.p2.isNull()) return unsupported("a merge");
  if (cl.p1.isNull()) return unsupported("no parent");
  HG_ASSIGN_OR_RETURN(hg::Node parentMf, manifestNodeOf(repo, cl.p1));
  if (parentMf != baseNode) {
    return unsupported("the manifest is a delta against manifest revision " +
                       std::to_string(deltaBase->value()) + ", not its parent's");
  }
  HG_ASSIGN_OR_RETURN(std::optional<TreeId> baseRoot, importedRoot(baseNode));
  if (!baseRoot) return unsupported("the parent's manifest is not imported");
  std::optional<uint64_t> baseSkipped = skippedCount(baseNode);

  HG_ASSIGN_OR_RETURN(Bytes delta, manifests.chunk(mfRev));
  auto parentEntry = [&](ByteView path) { return findEntry(*baseRoot, path); };
  HG_ASSIGN_OR_RETURN(std::vector<FileChange> changes,
                      changesFromDelta(delta, knownLength(manifests.entry(*deltaBase)),
                                       knownLength(entry), changeset.files, parentEntry));
  auto loadTree = [this](const TreeId& id) -> std::shared_ptr<const Tree> {
    auto t = tree(id);
    return t.ok() ? *t : nullptr;
  };
  // A parent whose trees hold every entry of its manifest lets a directory
  // emptied by the change go; otherwise applyTreeChanges refuses that case.
  HG_ASSIGN_OR_RETURN(BuiltTrees built,
                      applyTreeChanges(*baseRoot, changes, loadTree, baseSkipped == uint64_t{0}));
  std::string how = "applied " + std::to_string(changes.size()) +
                    " changed paths from the manifest delta, " +
                    std::to_string(built.trees.size()) + " directories written";
  // The change touches no entry the parent's trees left out (its line would
  // be deleted unaccounted for) and leaves none out itself: same count.
  return Import{std::move(built), baseSkipped, std::move(how)};
}

Result<ObjectStore::Import> ObjectStore::importFromManifest(const hg::Repository& repo,
                                                            hg::Revision rev, const hg::Node& mf,
                                                            const ImportProgress& progress) {
  if (progress) progress("reading manifest", 0, 0);
  HG_ASSIGN_OR_RETURN(hg::Manifest manifest, repo.manifest(mf));
  if (progress) progress("building trees", 0, manifest.size());
  // A parent whose manifest is imported lets us rebuild only the
  // directories on changed paths. Only a parent whose trees hold all of its
  // manifest, though: buildTreesFrom reports only the entries the rebuilt
  // directories leave out, so from any other parent the new count would
  // not be known, and later imports could not drop emptied directories.
  const hg::Revlog& cl = repo.changelog().revlog();
  for (hg::Revision parent : rev.isNull()
                                 ? std::vector<hg::Revision>{}
                                 : std::vector<hg::Revision>{cl.entry(rev).p1, cl.entry(rev).p2}) {
    if (parent.isNull()) continue;
    auto parentMf = manifestNodeOf(repo, parent);
    if (!parentMf.ok()) continue;
    auto parentRoot = importedRoot(*parentMf);
    if (!parentRoot.ok() || !*parentRoot || skippedCount(*parentMf) != uint64_t{0}) continue;
    auto base = repo.manifest(*parentMf);
    if (!base.ok()) continue;
    BuiltTrees built = buildTreesFrom(manifest, *base, **parentRoot,
                                      [this](const TreeId& id) -> std::shared_ptr<const Tree> {
                                        auto t = tree(id);
                                        return t.ok() ? *t : nullptr;
                                      });
    uint64_t skipped = built.skipped.size();
    std::string how = std::to_string(manifest.size()) + " files, " +
                      std::to_string(built.trees.size()) + " directories rebuilt from its parent's";
    return Import{std::move(built), skipped, std::move(how)};
  }
  BuiltTrees built = buildTrees(manifest);
  uint64_t skipped = built.skipped.size();
  std::string how = std::to_string(manifest.size()) + " files, " +
                    std::to_string(built.trees.size()) + " directories built";
  return Import{std::move(built), skipped, std::move(how)};
}

Result<TreeId> ObjectStore::importCommit(hg::Revision rev, const ImportProgress& progress) {
  // One snapshot for the whole import: setRepository() may swap it meanwhile.
  std::shared_ptr<const hg::Repository> repo = this->repo();
  std::optional<hg::Changeset> changeset;
  if (!rev.isNull()) {
    HG_ASSIGN_OR_RETURN(changeset, repo->changeset(rev));
  }
  const hg::Node mf = changeset ? changeset->manifest : hg::kNullNode;
  HG_ASSIGN_OR_RETURN(std::optional<TreeId> found, importedRoot(mf));
  if (found) return *found;

  auto start = std::chrono::steady_clock::now();
  std::optional<Import> imported;
  if (changeset) {
    if (progress) progress("applying the manifest delta", 0, 0);
    auto fromDelta = importFromDelta(*repo, rev, *changeset);
    if (fromDelta.ok()) {
      imported = std::move(fromDelta).value();
      ++deltaImports_;
    } else {
      log().debug("manifest {} of {}: imported from its full text: {}", mf.shortHex(), repo->root(),
                  fromDelta.error().message());
    }
  }
  if (!imported) {
    HG_ASSIGN_OR_RETURN(imported, importFromManifest(*repo, rev, mf, progress));
  }
  const BuiltTrees& built = imported->built;
  for (const auto& s : built.skipped) {
    log().error("manifest {} of {}: entry left out: {}", mf.shortHex(), repo->root(), s);
  }
  size_t total = built.trees.size();
  size_t done = 0;
  HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
    done = 0;
    for (const auto& [id, data] : built.trees) {
      HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(kTrees), id.view(), data, false));
      if (progress && (++done % 4096 == 0)) progress("storing trees", done, total);
    }
    if (imported->skipped) {
      HG_RETURN_IF_ERROR(
          LmdbEnv::put(txn, env_->dbi(kManifestSkips), mf.view(), encodeBe64(*imported->skipped)));
    } else {
      HG_RETURN_IF_ERROR(LmdbEnv::del(txn, env_->dbi(kManifestSkips), mf.view()));
    }
    return LmdbEnv::put(txn, env_->dbi(kManifestTrees), mf.view(), built.root.view());
  }));
  if (progress) progress("done", total, total);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  log().info("imported manifest {} ({}) in {:.1f} ms", mf.shortHex(), imported->how, ms);
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
  noteUse(node);
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
    queueWrite(kSizes, node, encodeBe64(content->size()));
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
  if (stored && stored->size() == 8) {
    sizeLmdbHits_.fetch_add(1, std::memory_order_relaxed);
    return be64At(*stored, 0);
  }
  HG_ASSIGN_OR_RETURN(hg::Filelog fl, repo()->filelog(path));
  HG_ASSIGN_OR_RETURN(uint64_t size, fl.size(node));
  sizeHgReads_.fetch_add(1, std::memory_order_relaxed);
  queueWrite(kSizes, node, encodeBe64(size));
  return size;
}

ObjectStoreStats ObjectStore::stats() const {
  ObjectStoreStats s;
  s.blobHgReads = blobHgReads_;
  s.blobLmdbHits = blobLmdbHits_;
  s.treeLmdbReads = treeLmdbReads_;
  s.deltaImports = deltaImports_;
  s.failedWrites = failedWrites_;
  auto trees = trees_->stats();
  auto blobs = blobs_->stats();
  s.treeCacheBytes = trees.bytes;
  s.blobCacheBytes = blobs.bytes;
  s.treeCacheHits = trees.hits;
  s.treeCacheMisses = trees.misses;
  s.blobCacheHits = blobs.hits;
  s.blobCacheMisses = blobs.misses;
  s.sizeLmdbHits = sizeLmdbHits_;
  s.sizeHgReads = sizeHgReads_;
  struct stat st;
  if (::stat((env_->path() + "/data.mdb").c_str(), &st) == 0) {
    s.lmdbFileBytes = static_cast<uint64_t>(st.st_blocks) * 512;
  }
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
