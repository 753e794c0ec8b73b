// ObjectStore's cache maintenance (store/cache_maintenance.cpp) on a
// repository made by the real hg: the blob bound drops the least recently
// used blobs first, keeps trees and sizes, and a blob dropped is read again
// from the repository with hg's bytes; batch sizes equal `hg cat`'s lengths
// (files with copy metadata, a content starting with "\1\n", empty files,
// a symlink); prefetch stores every blob so a fresh store reads none from
// the repository, and a cancelled prefetch fetches nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hgbridge/repository.h"
#include "store/object_store.h"
#include "tests/support/test_support.h"

namespace hgvfs::store {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

void check(const test::CommandResult& r) { ASSERT_EQ(r.exitCode, 0) << r.err; }

// Ten files of 10,000 bytes f0..f9 (distinct contents), plus the cases
// sizes must get right. Revision 1 copies and renames.
void makeRepo(const std::string& repo) {
  check(test::hg({"init", repo}));
  fs::create_directories(repo + "/sub/deep");
  for (int i = 0; i < 10; ++i) {
    test::writeFile(repo + "/f" + std::to_string(i),
                    std::string(10000, static_cast<char>('a' + i)));
  }
  test::writeFile(repo + "/empty", "");
  test::writeFile(repo + "/sub/meta", "\1\nnot metadata\1\nbody\n");
  test::writeFile(repo + "/sub/metaonly", "\1\n");
  test::writeFile(repo + "/sub/deep/text", "some text\n");
  fs::create_symlink("sub/deep/text", repo + "/link");
  check(test::hg({"add", "-q"}, repo));
  check(test::hg({"commit", "-q", "-m", "zero"}, repo));
  check(test::hg({"cp", "sub/deep/text", "copied"}, repo));
  check(test::hg({"cp", "sub/meta", "sub/meta-copy"}, repo));
  check(test::hg({"mv", "empty", "sub/empty-moved"}, repo));
  check(test::hg({"commit", "-q", "-m", "one"}, repo));
}

struct Fixture {
  TempDir tmp;
  std::string repoPath = tmp.path() + "/repo";
  std::string cache = tmp.path() + "/cache";
  std::shared_ptr<const hg::Repository> repo;

  Fixture() {
    makeRepo(repoPath);
    auto r = hg::Repository::open(repoPath);
    if (!r.ok()) throw std::runtime_error(r.error().message());
    repo = std::move(r).value();
  }
  std::unique_ptr<ObjectStore> open(uint64_t maxBlobBytes = 0) {
    ObjectStoreOptions options;
    options.maxBlobBytes = maxBlobBytes;
    auto s = ObjectStore::open(repo, cache, options);
    if (!s.ok()) throw std::runtime_error(s.error().message());
    return std::move(s).value();
  }
  std::vector<FileRef> files(ObjectStore& store, int rev) {
    auto root = store.importCommit(hg::Revision(rev));
    EXPECT_TRUE(root.ok()) << root.error().message();
    std::vector<FileRef> out;
    EXPECT_TRUE(store.listFileRefs(*root, {}, out).ok());
    return out;
  }
  std::string hgCat(int rev, const std::string& path) {
    auto r = test::hg({"cat", "-r", std::to_string(rev), path}, repoPath);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return r.out;
  }
};

const FileRef& named(const std::vector<FileRef>& files, const std::string& path) {
  for (const FileRef& f : files) {
    if (f.path == path) return f;
  }
  throw std::runtime_error("no file " + path);
}

TEST(CacheMaintenance, GcDropsLeastRecentlyUsedAndKeepsTreesAndSizes) {
  Fixture fx;
  std::vector<FileRef> files;
  CacheUsage before;
  {
    auto store = fx.open();
    files = fx.files(*store, 0);
    for (int i = 0; i < 10; ++i) {
      auto b = store->blob(named(files, "f" + std::to_string(i)).path,
                           named(files, "f" + std::to_string(i)).node);
      ASSERT_TRUE(b.ok()) << b.error().message();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    // f0 again: now the most recent.
    ASSERT_TRUE(store->blob(named(files, "f0").path, named(files, "f0").node).ok());
    store->flush();
    auto u = store->usage();
    ASSERT_TRUE(u.ok());
    before = *u;
    EXPECT_EQ(before.blobs, 10u);
    EXPECT_EQ(before.blobBytes, 100000u);
    auto gc = store->collectGarbage(35000);
    ASSERT_TRUE(gc.ok()) << gc.error().message();
    EXPECT_EQ(gc->droppedBlobs, 7u);
    EXPECT_EQ(gc->keptBytes, 30000u);
    auto after = store->usage();
    ASSERT_TRUE(after.ok());
    EXPECT_LE(after->blobBytes, 35000u);
    EXPECT_EQ(after->trees, before.trees);
    EXPECT_EQ(after->sizes, before.sizes);
  }
  // A fresh store (empty memory): f0, f8, f9 come from LMDB, the others
  // from the repository again, with hg's bytes.
  auto store = fx.open();
  for (int i = 0; i < 10; ++i) {
    const FileRef& f = named(files, "f" + std::to_string(i));
    uint64_t hgReads = store->stats().blobHgReads;
    auto b = store->blob(f.path, f.node);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(**b, fx.hgCat(0, f.path)) << f.path;
    bool fromRepo = store->stats().blobHgReads > hgReads;
    EXPECT_EQ(fromRepo, !(i == 0 || i == 8 || i == 9)) << f.path;
  }
}

TEST(CacheMaintenance, WriterKeepsBlobsUnderTheBound) {
  Fixture fx;
  auto store = fx.open(/*maxBlobBytes=*/50000);
  auto files = fx.files(*store, 0);
  for (int i = 0; i < 10; ++i) {
    const FileRef& f = named(files, "f" + std::to_string(i));
    ASSERT_TRUE(store->blob(f.path, f.node).ok());
    store->flush();  // one batch each, so the bound is checked as blobs arrive
  }
  auto u = store->usage();
  ASSERT_TRUE(u.ok());
  EXPECT_LE(u->blobBytes, 50000u);
  EXPECT_GT(u->blobs, 0u);
  // The last read is the most recent: kept.
  auto fresh = fx.open(50000);
  const FileRef& last = named(files, "f9");
  ASSERT_TRUE(fresh->blob(last.path, last.node).ok());
  EXPECT_EQ(fresh->stats().blobHgReads, 0u);
}

TEST(CacheMaintenance, WarmSizesEqualHgCat) {
  Fixture fx;
  for (int rev : {0, 1}) {
    std::string cache = fx.tmp.path() + "/cache-sizes-" + std::to_string(rev);
    fs::create_directories(cache);
    auto s = ObjectStore::open(fx.repo, cache);
    ASSERT_TRUE(s.ok());
    auto& store = *s;
    auto files = fx.files(*store, rev);
    ASSERT_TRUE(store->warmSizes(files).ok());
    std::set<std::string> nodes;
    for (const FileRef& f : files) nodes.insert(f.node.hex());
    // Every size stored by the batch itself (fileSize() below would only
    // queue them).
    auto u = store->usage();
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->sizes, nodes.size());
    for (const FileRef& f : files) {
      auto size = store->fileSize(f.path, f.node);
      ASSERT_TRUE(size.ok()) << f.path;
      // hg cat of a symlink prints its target, as the blob holds it.
      EXPECT_EQ(*size, fx.hgCat(rev, f.path).size()) << f.path << " at " << rev;
    }
  }
}

TEST(CacheMaintenance, PrefetchStoresEveryBlobAndCancelStopsIt) {
  Fixture fx;
  std::vector<FileRef> files;
  {
    auto store = fx.open();
    files = fx.files(*store, 1);
    std::atomic<bool> cancel{true};
    auto none = store->prefetch(files, 4, {}, &cancel);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->files, 0u);
    EXPECT_TRUE(none->interrupted);
    cancel = false;
    uint64_t lastDone = 0;
    auto all = store->prefetch(
        files, 4, [&](uint64_t done, uint64_t, uint64_t) { lastDone = done; }, &cancel);
    ASSERT_TRUE(all.ok()) << all.error().message();
    EXPECT_FALSE(all->interrupted);
    EXPECT_EQ(lastDone, all->files);
    auto again = store->prefetch(files, 4, {}, nullptr);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->files, 0u);
    EXPECT_EQ(again->cached, files.size());
    std::set<std::string> nodes;
    for (const FileRef& f : files) nodes.insert(f.node.hex());
    EXPECT_EQ(all->files, nodes.size());
  }
  auto store = fx.open();
  for (const FileRef& f : files) {
    auto b = store->blob(f.path, f.node);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(**b, fx.hgCat(1, f.path)) << f.path;
  }
  EXPECT_EQ(store->stats().blobHgReads, 0u);
  EXPECT_GT(store->stats().blobLmdbHits, 0u);
}

}  // namespace
}  // namespace hgvfs::store
