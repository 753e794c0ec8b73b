// ObjectStore's cache maintenance: batch sizes for listings, prefetch, the
// record of blob uses and the bound on blob bytes (object_store.h).

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_set>

#include "store/log.h"
#include "store/object_store.h"

namespace hgvfs::store {
namespace {

Bytes be64(uint64_t v) {
  Bytes out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

uint64_t nowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Runs `work(i)` for every i < n on up to `threads` threads (the caller's
// among them); `work` returns false to stop every thread early.
void forEachParallel(size_t n, unsigned threads, const std::function<bool(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto loop = [&] {
    while (!stop) {
      size_t i = next++;
      if (i >= n) return;
      if (!work(i)) stop = true;
    }
  };
  size_t extra = std::min<size_t>(threads > 0 ? threads - 1 : 0, n > 0 ? n - 1 : 0);
  std::vector<std::thread> pool;
  pool.reserve(extra);
  for (size_t t = 0; t < extra; ++t) pool.emplace_back(loop);
  loop();
  for (auto& t : pool) t.join();
}

// Reading sizes and blobs is mostly waiting for the disk (a filelog index
// per file), so more threads than cores pay off on a cold page cache.
constexpr unsigned kSizeThreads = 8;
constexpr size_t kPrefetchBatchBytes = size_t{16} << 20;
constexpr size_t kPrefetchBatchFiles = 2048;

}  // namespace

void ObjectStore::noteUse(const hg::Node& node) {
  uint64_t now = nowMicros();
  MutexLock lock(usesMutex_);
  uses_[node] = now;
}

void ObjectStore::recordUses() {
  std::unordered_map<hg::Node, uint64_t> uses;
  {
    MutexLock lock(usesMutex_);
    uses.swap(uses_);
  }
  if (uses.empty()) return;
  Status status = env_->write([&](MDB_txn* txn) -> Status {
    for (const auto& [node, when] : uses) {
      HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(kUses), node.view(), be64(when)));
    }
    return okStatus();
  });
  if (!status.ok()) {
    log().warn("recording {} blob uses failed: {}", uses.size(), status.error().message());
  }
}

void ObjectStore::enforceLimit(uint64_t blobBytes) {
  if (maxBlobBytes_ == 0) return;
  if (!blobBytesEstimate_) {
    auto u = usage();
    if (!u.ok()) return;
    blobBytesEstimate_ = u->blobBytes;
  } else {
    *blobBytesEstimate_ += blobBytes;
  }
  if (*blobBytesEstimate_ <= maxBlobBytes_) return;
  auto gc = collectGarbage(maxBlobBytes_ / 10 * 9);
  if (!gc.ok()) {
    log().warn("trimming the blob cache failed: {}", gc.error().message());
    blobBytesEstimate_.reset();
    return;
  }
  blobBytesEstimate_ = gc->keptBytes;
  log().info("blob cache over {} bytes: dropped {} blobs ({} bytes), {} bytes kept", maxBlobBytes_,
             gc->droppedBlobs, gc->droppedBytes, gc->keptBytes);
}

Result<GcResult> ObjectStore::collectGarbage(uint64_t targetBytes) {
  recordUses();
  std::unordered_map<hg::Node, uint64_t> uses;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kUses), {}, [&](ByteView key, ByteView value) {
    if (key.size() == hg::Node::kSize && value.size() == 8) {
      uses.emplace(hg::Node::fromRaw(key.data()), be64At(value, 0));
    }
    return true;
  }));
  struct Candidate {
    uint64_t lastUse;
    hg::Node node;
    uint64_t bytes;
  };
  std::vector<Candidate> blobs;
  uint64_t total = 0;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kBlobs), {}, [&](ByteView key, ByteView value) {
    if (key.size() != hg::Node::kSize) return true;
    hg::Node node = hg::Node::fromRaw(key.data());
    auto it = uses.find(node);
    blobs.push_back({it == uses.end() ? 0 : it->second, node, value.size()});
    if (it != uses.end()) uses.erase(it);
    total += value.size();
    return true;
  }));
  // What is left in `uses` has no blob any more.
  std::vector<hg::Node> drop;
  for (const auto& [node, when] : uses) drop.push_back(node);
  GcResult result;
  if (total > targetBytes) {
    std::sort(blobs.begin(), blobs.end(),
              [](const Candidate& a, const Candidate& b) { return a.lastUse < b.lastUse; });
    uint64_t kept = total;
    for (const Candidate& c : blobs) {
      if (kept <= targetBytes) break;
      drop.push_back(c.node);
      kept -= c.bytes;
      ++result.droppedBlobs;
      result.droppedBytes += c.bytes;
    }
  }
  for (size_t start = 0; start < drop.size(); start += 4096) {
    size_t end = std::min(drop.size(), start + 4096);
    HG_RETURN_IF_ERROR(env_->write([&](MDB_txn* txn) -> Status {
      for (size_t i = start; i < end; ++i) {
        HG_RETURN_IF_ERROR(LmdbEnv::del(txn, env_->dbi(kBlobs), drop[i].view()));
        HG_RETURN_IF_ERROR(LmdbEnv::del(txn, env_->dbi(kUses), drop[i].view()));
      }
      return okStatus();
    }));
  }
  result.keptBlobs = blobs.size() - result.droppedBlobs;
  result.keptBytes = total - result.droppedBytes;
  return result;
}

Result<CacheUsage> ObjectStore::usage() {
  CacheUsage u;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kBlobs), {}, [&](ByteView, ByteView value) {
    ++u.blobs;
    u.blobBytes += value.size();
    return true;
  }));
  HG_ASSIGN_OR_RETURN(LmdbEnv::DbUsage trees, env_->usage(env_->dbi(kTrees)));
  u.trees = trees.entries;
  u.treeBytes = trees.bytes;
  for (Db db : {kManifestTrees, kSizes, kManifestSkips, kUses}) {
    HG_ASSIGN_OR_RETURN(LmdbEnv::DbUsage d, env_->usage(env_->dbi(db)));
    if (db == kSizes) u.sizes = d.entries;
    u.otherBytes += d.bytes;
  }
  struct stat st {};
  if (::stat((env_->path() + "/data.mdb").c_str(), &st) == 0) {
    u.fileBytes = static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return u;
}

Status ObjectStore::warmSizes(const std::vector<FileRef>& files) {
  std::vector<const FileRef*> missing;
  for (const FileRef& f : files) {
    HG_ASSIGN_OR_RETURN(auto stored, env_->get(env_->dbi(kSizes), f.node.view()));
    if (!stored) missing.push_back(&f);
  }
  // One unknown size is what fileSize() does anyway.
  if (missing.size() < 2) return okStatus();
  std::shared_ptr<const hg::Repository> repo = this->repo();
  std::vector<std::optional<uint64_t>> sizes(missing.size());
  forEachParallel(missing.size(), kSizeThreads, [&](size_t i) {
    auto fl = repo->filelog(missing[i]->path);
    if (!fl.ok()) return true;  // fileSize() reports it when asked
    auto size = fl->size(missing[i]->node);
    if (size.ok()) sizes[i] = *size;
    return true;
  });
  return env_->write([&](MDB_txn* txn) -> Status {
    for (size_t i = 0; i < missing.size(); ++i) {
      if (!sizes[i]) continue;
      HG_RETURN_IF_ERROR(
          LmdbEnv::put(txn, env_->dbi(kSizes), missing[i]->node.view(), be64(*sizes[i]), false));
    }
    return okStatus();
  });
}

std::optional<uint64_t> ObjectStore::knownSize(const hg::Node& node) {
  auto stored = env_->get(env_->dbi(kSizes), node.view());
  if (!stored.ok() || !*stored || (*stored)->size() != 8) return std::nullopt;
  return be64At(**stored, 0);
}

Result<PrefetchResult> ObjectStore::prefetch(const std::vector<FileRef>& files, unsigned threads,
                                             const PrefetchProgress& progress,
                                             const std::atomic<bool>* cancel) {
  PrefetchResult result;
  std::unordered_set<hg::Node> stored;
  HG_RETURN_IF_ERROR(env_->scan(env_->dbi(kBlobs), {}, [&](ByteView key, ByteView) {
    if (key.size() == hg::Node::kSize) stored.insert(hg::Node::fromRaw(key.data()));
    return true;
  }));
  std::vector<const FileRef*> todo;
  std::unordered_set<hg::Node> queued;
  for (const FileRef& f : files) {
    if (stored.count(f.node)) {
      ++result.cached;
    } else if (queued.insert(f.node).second) {
      todo.push_back(&f);
    }
  }
  std::shared_ptr<const hg::Repository> repo = this->repo();

  struct Shared {
    Mutex mutex;  // a leaf: held to add to or take the batch, never while writing it
    std::vector<std::pair<hg::Node, Bytes>> batch GUARDED_BY(mutex);
    size_t batchBytes GUARDED_BY(mutex) = 0;
    std::optional<Error> error GUARDED_BY(mutex);
  } shared;
  std::atomic<uint64_t> done{0}, bytes{0};
  auto writeBatch = [&](std::vector<std::pair<hg::Node, Bytes>> batch) -> Status {
    if (batch.empty()) return okStatus();
    Bytes when = be64(nowMicros());
    return env_->write([&](MDB_txn* txn) -> Status {
      for (const auto& [node, content] : batch) {
        HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(kBlobs), node.view(), content, false));
        HG_RETURN_IF_ERROR(
            LmdbEnv::put(txn, env_->dbi(kSizes), node.view(), be64(content.size()), false));
        HG_RETURN_IF_ERROR(LmdbEnv::put(txn, env_->dbi(kUses), node.view(), when));
      }
      return okStatus();
    });
  };
  auto fail = [&](Error e) {
    MutexLock lock(shared.mutex);
    if (!shared.error) shared.error = std::move(e);
    return false;
  };
  std::atomic<bool> finished{false};
  std::thread workers([&] {
    forEachParallel(todo.size(), std::max(1u, threads), [&](size_t i) {
      if (cancel && cancel->load()) return false;
      auto fl = repo->filelog(todo[i]->path);
      if (!fl.ok()) return fail(std::move(fl).takeError());
      auto text = fl->read(todo[i]->node);
      if (!text.ok()) return fail(std::move(text).takeError());
      uint64_t n = text->size();
      std::vector<std::pair<hg::Node, Bytes>> full;
      {
        MutexLock lock(shared.mutex);
        shared.batchBytes += n;
        shared.batch.emplace_back(todo[i]->node, std::move(text).value());
        if (shared.batchBytes >= kPrefetchBatchBytes ||
            shared.batch.size() >= kPrefetchBatchFiles) {
          full.swap(shared.batch);
          shared.batchBytes = 0;
        }
      }
      Status written = writeBatch(std::move(full));
      if (!written.ok()) return fail(written.error());
      ++done;
      bytes += n;
      return true;
    });
    finished = true;
  });
  while (!finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (progress) progress(done, todo.size(), bytes);
  }
  workers.join();
  std::vector<std::pair<hg::Node, Bytes>> rest;
  {
    MutexLock lock(shared.mutex);
    rest.swap(shared.batch);
    if (shared.error) return *shared.error;
  }
  HG_RETURN_IF_ERROR(writeBatch(std::move(rest)));
  if (progress) progress(done, todo.size(), bytes);
  result.files = done;
  result.bytes = bytes;
  result.interrupted = cancel && cancel->load() && done < todo.size();
  if (maxBlobBytes_ != 0) {
    HG_ASSIGN_OR_RETURN(CacheUsage u, usage());
    if (u.blobBytes > maxBlobBytes_) HG_RETURN_IF_ERROR(collectGarbage(maxBlobBytes_));
  }
  return result;
}

Status ObjectStore::listFileRefs(const TreeId& root, const Bytes& prefix,
                                 std::vector<FileRef>& out) {
  HG_ASSIGN_OR_RETURN(auto t, tree(root));
  for (const auto& e : t->entries()) {
    Bytes child = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.isDirectory()) {
      HG_RETURN_IF_ERROR(listFileRefs(e.treeId(), child, out));
    } else {
      out.push_back({std::move(child), e.id});
    }
  }
  return okStatus();
}

}  // namespace hgvfs::store
