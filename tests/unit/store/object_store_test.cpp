// ObjectStore (store/object_store.h) on repositories made by the real hg,
// compared with what hg itself says: `hg manifest --debug` for the trees,
// `hg cat` for every blob and size — including a file whose content starts
// with "\1\n", copies (whose filelog text carries copy metadata), a
// symlink, an executable, an empty file and a file large enough for a
// separate .d data file. Also: importing twice is a lookup, the cache
// survives reopening (served without the filelogs), and damage — to a
// filelog or to the cache itself — is a kCorrupt error naming where.
//
// Importing from the manifest delta: commits made by hg (adds, edits,
// removals, exec bits, symlinks, new and emptied directories, a directory
// replaced by a file and back), each imported from its parent's trees,
// give the root a fresh full import gives; the cases that must not use the
// delta (a parent not imported, a merge, a delta against another revision,
// a parent whose trees leave entries out) fall back and are still right;
// and every revision of the fixture repositories, imported in order, has
// the root buildTrees gives for its manifest.

#include "store/object_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hgbridge/repository.h"
#include "hgbridge/sha1.h"
#include "store/tree_builder.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"

namespace hgvfs::store {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string binaryContent(size_t size) {
  std::string s(size, '\0');
  std::mt19937 rng(42);
  for (size_t i = 0; i < size; i += 3) s[i] = static_cast<char>(rng());  // NULs between
  return s;
}

// rev 0: a small tree with every kind of entry; rev 1: a change deep down,
// a copy, a rename, a copy of the "\1\n" file and an exec-bit change.
void makeRepo(const std::string& repo) {
  auto check = [](const test::CommandResult& r) {
    if (r.exitCode != 0) throw std::runtime_error("hg failed: " + r.err);
  };
  check(test::hg({"init", repo}));
  for (const char* d : {"src/lib/deep/x/y", "docs/a", "bin"})
    fs::create_directories(repo + "/" + d);
  test::writeFile(repo + "/README", "readme\n");
  test::writeFile(repo + "/src/main.c", "int main() { return 0; }\n");
  test::writeFile(repo + "/src/lib/util.c", "#include \"util.h\"\n");
  test::writeFile(repo + "/src/lib/util.h", "#pragma once\n");
  test::writeFile(repo + "/src/lib/deep/x/y/z.txt", "deep v1\n");
  test::writeFile(repo + "/docs/a.txt", "a\n");
  test::writeFile(repo + "/docs/a/b.txt", "b\n");
  test::writeFile(repo + "/bin/run.sh", "#!/bin/sh\necho run\n");
  fs::permissions(repo + "/bin/run.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_symlink("../README", repo + "/docs/readme-link");
  test::writeFile(repo + "/meta.txt", "\1\nthis content starts with the metadata marker\n");
  test::writeFile(repo + "/empty", "");
  test::writeFile(repo + "/big.bin", binaryContent(300 << 10));
  check(test::hg({"commit", "-A", "-q", "-m", "first"}, repo));

  test::writeFile(repo + "/src/lib/deep/x/y/z.txt", "deep v2\n");
  check(test::hg({"cp", "src/main.c", "src/main_copy.c"}, repo));
  check(test::hg({"mv", "docs/a.txt", "docs/renamed.txt"}, repo));
  check(test::hg({"cp", "meta.txt", "meta-copy.txt"}, repo));
  fs::permissions(repo + "/src/lib/util.h", fs::perms::owner_exec, fs::perm_options::add);
  check(test::hg({"commit", "-q", "-m", "second"}, repo));
}

struct HgEntry {
  std::string node;  // hex
  EntryKind kind;
};

// `hg manifest --debug -r REV`: "<hex> <mode> <' '|'*'|'@'> <path>".
std::map<std::string, HgEntry> hgManifest(const std::string& repo, int rev) {
  auto r = test::hg({"manifest", "--debug", "-r", std::to_string(rev)}, repo);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  std::map<std::string, HgEntry> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 48) {
      ADD_FAILURE() << "odd manifest line: " << line;
      continue;
    }
    char flag = line[45];
    out[line.substr(47)] = {line.substr(0, 40), flag == '*'   ? EntryKind::kExecutable
                                                : flag == '@' ? EntryKind::kSymlink
                                                              : EntryKind::kRegular};
  }
  return out;
}

// Every file of `rev` as `hg cat` writes it.
std::map<std::string, std::string> hgCatAll(const std::string& repo, int rev,
                                            const std::string& scratch) {
  std::string out = scratch + "/cat-" + std::to_string(rev);
  std::vector<std::string> args = {"cat", "-r", std::to_string(rev), "-o", out + "/%p"};
  auto manifest = hgManifest(repo, rev);
  for (const auto& [path, e] : manifest) args.push_back(path);
  auto r = test::hg(args, repo);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  std::map<std::string, std::string> files;
  for (const auto& [path, e] : manifest) files[path] = test::readFile(out + "/" + path);
  return files;
}

struct Opened {
  std::shared_ptr<const hg::Repository> repo;
  std::unique_ptr<ObjectStore> store;
};

Opened openStore(const std::string& repo, const std::string& cache,
                 ObjectStoreOptions options = {}) {
  Opened o;
  auto r = hg::Repository::open(repo);
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (!r.ok()) return o;
  o.repo = std::move(r).value();
  auto s = ObjectStore::open(o.repo, cache, options);
  EXPECT_TRUE(s.ok()) << s.error().message();
  if (s.ok()) o.store = std::move(s).value();
  return o;
}

// The trees under `root` as path → (node hex, kind), files only.
std::map<std::string, HgEntry> listAll(ObjectStore& store, const TreeId& root) {
  std::map<std::string, HgEntry> out;
  std::vector<std::pair<std::string, TreeId>> todo = {{"", root}};
  while (!todo.empty()) {
    auto [dir, id] = todo.back();
    todo.pop_back();
    auto tree = store.tree(id);
    if (!tree.ok()) {
      ADD_FAILURE() << "tree of '" << dir << "': " << tree.error().message();
      continue;
    }
    for (const auto& e : (*tree)->entries()) {
      std::string path = dir.empty() ? e.name : dir + "/" + e.name;
      if (e.isDirectory()) {
        todo.emplace_back(path, e.treeId());
      } else {
        out[path] = {e.id.hex(), e.kind};
      }
    }
  }
  return out;
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_.path() + "/repo";
    makeRepo(repo_);
  }
  std::string cache(const std::string& name = "cache") { return tmp_.path() + "/" + name; }
  hg::Node nodeOf(int rev, const std::string& path) {
    auto m = hgManifest(repo_, rev);
    auto n = hg::Node::fromHex(m.at(path).node);
    EXPECT_TRUE(n);
    return n.value_or(hg::Node());
  }

  TempDir tmp_;
  std::string repo_;
};

TEST_F(ObjectStoreTest, ImportingAgainIsALookup) {
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto before = o.store->isImported(hg::Revision(0));
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(*before);
  int progressCalls = 0;
  auto progress = [&](const char*, size_t, size_t) { ++progressCalls; };
  auto root = o.store->importCommit(hg::Revision(0), progress);
  ASSERT_TRUE(root.ok()) << root.error().message();
  EXPECT_GT(progressCalls, 0);
  auto after = o.store->isImported(hg::Revision(0));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(*after);
  EXPECT_FALSE(*o.store->isImported(hg::Revision(1)));

  progressCalls = 0;
  auto again = o.store->importCommit(hg::Revision(0), progress);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *root);
  EXPECT_EQ(progressCalls, 0) << "a second import does no work";

  // Content addressed: another cache of the same repository, same root.
  auto other = openStore(repo_, cache("other"));
  ASSERT_TRUE(other.store);
  auto otherRoot = other.store->importCommit(hg::Revision(0));
  ASSERT_TRUE(otherRoot.ok());
  EXPECT_EQ(*otherRoot, *root);
}

TEST_F(ObjectStoreTest, NullRevisionIsAnEmptyTree) {
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto root = o.store->importCommit(hg::Revision(-1));
  ASSERT_TRUE(root.ok()) << root.error().message();
  auto tree = o.store->tree(*root);
  ASSERT_TRUE(tree.ok()) << tree.error().message();
  EXPECT_TRUE((*tree)->entries().empty());
}

TEST_F(ObjectStoreTest, UnknownTreeIsNotFound) {
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto tree = o.store->tree(TreeId(hg::sha1Of("no such tree")));
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.error().kind, ErrorKind::kNotFound);
}

TEST_F(ObjectStoreTest, TreeListingEqualsTheManifest) {
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  for (int rev : {0, 1}) {
    auto root = o.store->importCommit(hg::Revision(rev));
    ASSERT_TRUE(root.ok()) << root.error().message();
    auto want = hgManifest(repo_, rev);
    auto have = listAll(*o.store, *root);
    ASSERT_EQ(have.size(), want.size()) << "rev " << rev;
    for (const auto& [path, e] : want) {
      auto it = have.find(path);
      ASSERT_NE(it, have.end()) << path;
      EXPECT_EQ(it->second.node, e.node) << path;
      EXPECT_EQ(it->second.kind, e.kind) << path;
    }
  }
}

TEST_F(ObjectStoreTest, ChangedDirectoriesAreTheOnlyNewTrees) {
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto r0 = o.store->importCommit(hg::Revision(0));
  auto r1 = o.store->importCommit(hg::Revision(1));
  ASSERT_TRUE(r0.ok() && r1.ok());
  EXPECT_NE(*r0, *r1);
  auto child = [&](const TreeId& dir, const char* name) {
    auto tree = o.store->tree(dir);
    EXPECT_TRUE(tree.ok());
    const TreeEntry* e = tree.ok() ? (*tree)->find(name) : nullptr;
    EXPECT_NE(e, nullptr) << name;
    return e ? e->treeId() : TreeId();
  };
  // bin/ and docs/a/ did not change; src/lib/deep/x/y did.
  EXPECT_EQ(child(*r0, "bin"), child(*r1, "bin"));
  EXPECT_EQ(child(child(*r0, "docs"), "a"), child(child(*r1, "docs"), "a"));
  EXPECT_NE(child(*r0, "docs"), child(*r1, "docs"));
  TreeId x0 = child(child(child(child(*r0, "src"), "lib"), "deep"), "x");
  TreeId x1 = child(child(child(child(*r1, "src"), "lib"), "deep"), "x");
  EXPECT_NE(x0, x1);
  EXPECT_NE(child(x0, "y"), child(x1, "y"));
}

// blob() and fileSize() give exactly what hg cat gives, in either order
// (a size first comes from the filelog index, a size after the blob from
// the cache).
TEST_F(ObjectStoreTest, BlobsAndSizesEqualHgCat) {
  for (int rev : {0, 1}) {
    auto want = hgCatAll(repo_, rev, tmp_.path());
    auto manifest = hgManifest(repo_, rev);
    ASSERT_FALSE(want.empty());
    auto sizeFirst = openStore(repo_, cache("size-first-" + std::to_string(rev)));
    auto blobFirst = openStore(repo_, cache("blob-first-" + std::to_string(rev)));
    ASSERT_TRUE(sizeFirst.store && blobFirst.store);
    for (const auto& [path, content] : want) {
      auto node = hg::Node::fromHex(manifest.at(path).node);
      ASSERT_TRUE(node);
      auto size = sizeFirst.store->fileSize(path, *node);
      ASSERT_TRUE(size.ok()) << path << ": " << size.error().message();
      EXPECT_EQ(*size, content.size()) << path;
      auto blob = sizeFirst.store->blob(path, *node);
      ASSERT_TRUE(blob.ok()) << path << ": " << blob.error().message();
      EXPECT_TRUE(**blob == content) << path << " differs from hg cat";

      auto blob2 = blobFirst.store->blob(path, *node);
      ASSERT_TRUE(blob2.ok()) << path << ": " << blob2.error().message();
      EXPECT_TRUE(**blob2 == content) << path << " differs from hg cat";
      auto size2 = blobFirst.store->fileSize(path, *node);
      ASSERT_TRUE(size2.ok());
      EXPECT_EQ(*size2, content.size()) << path;
    }
    EXPECT_EQ(want.at("meta.txt").substr(0, 2), "\1\n") << "the fixture has its edge case";
    if (rev == 1) {
      EXPECT_EQ(want.at("meta-copy.txt"), want.at("meta.txt"));
    }
    EXPECT_EQ(want.at("docs/readme-link"), "../README");
    EXPECT_EQ(blobFirst.store->stats().failedWrites, 0u);
  }
}

TEST_F(ObjectStoreTest, ManyThreadsReadingAtOnce) {
  auto want = hgCatAll(repo_, 1, tmp_.path());
  auto manifest = hgManifest(repo_, 1);
  ObjectStoreOptions small;
  small.blobCacheBytes = 64 << 10;  // big.bin does not fit: every read of it misses
  auto o = openStore(repo_, cache(), small);
  ASSERT_TRUE(o.store);
  std::atomic<bool> wrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (const auto& [path, content] : want) {
          auto node = hg::Node::fromHex(manifest.at(path).node);
          if ((t + round) % 2) {
            auto blob = o.store->blob(path, *node);
            if (!blob.ok() || **blob != content) wrong = true;
          }
          auto size = o.store->fileSize(path, *node);
          if (!size.ok() || *size != content.size()) wrong = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(wrong);
  o.store->flush();
  auto stats = o.store->stats();
  EXPECT_EQ(stats.pendingWrites, 0u);
  EXPECT_EQ(stats.failedWrites, 0u);
}

// What was imported and read is still there after a close and a reopen:
// the trees need no import, and blobs and sizes come from LMDB even with
// the filelogs gone.
TEST_F(ObjectStoreTest, SurvivesReopening) {
  auto want = hgCatAll(repo_, 1, tmp_.path());
  auto manifest = hgManifest(repo_, 1);
  TreeId root;
  {
    auto o = openStore(repo_, cache());
    ASSERT_TRUE(o.store);
    auto r = o.store->importCommit(hg::Revision(1));
    ASSERT_TRUE(r.ok());
    root = *r;
    for (const auto& [path, content] : want) {
      auto blob = o.store->blob(path, *hg::Node::fromHex(manifest.at(path).node));
      ASSERT_TRUE(blob.ok()) << blob.error().message();
    }
    EXPECT_EQ(o.store->stats().blobHgReads, want.size());
    o.store->flush();
    EXPECT_EQ(o.store->stats().pendingWrites, 0u);
  }
  fs::rename(repo_ + "/.hg/store/data", repo_ + "/.hg/store/data-moved-away");
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto imported = o.store->isImported(hg::Revision(1));
  ASSERT_TRUE(imported.ok());
  EXPECT_TRUE(*imported);
  auto r = o.store->importCommit(hg::Revision(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, root);
  auto listed = listAll(*o.store, root);
  EXPECT_EQ(listed.size(), manifest.size());
  for (const auto& [path, content] : want) {
    hg::Node node = *hg::Node::fromHex(manifest.at(path).node);
    auto size = o.store->fileSize(path, node);
    ASSERT_TRUE(size.ok()) << path << ": " << size.error().message();
    EXPECT_EQ(*size, content.size()) << path;
    auto blob = o.store->blob(path, node);
    ASSERT_TRUE(blob.ok()) << path << ": " << blob.error().message();
    EXPECT_TRUE(**blob == content) << path;
  }
  auto stats = o.store->stats();
  EXPECT_EQ(stats.blobHgReads, 0u);
  EXPECT_EQ(stats.blobLmdbHits, want.size());
  EXPECT_GT(stats.treeLmdbReads, 0u);
}

// A damaged filelog: blob() is kCorrupt and names the revlog; other files
// still read, and nothing is cached for the damaged one.
TEST_F(ObjectStoreTest, CorruptFilelogIsCorruptNamingTheRevlog) {
  std::string index = repo_ + "/.hg/store/data/src/main.c.i";
  ASSERT_TRUE(fs::exists(index));
  std::string bytes = test::readFile(index);
  ASSERT_GT(bytes.size(), 64u + 10u);
  // Inline revlog: the first chunk follows the 64-byte index entry. Flip
  // its last byte (stored text or zlib stream alike: the text changes or
  // does not decode).
  size_t chunkLen = (static_cast<uint8_t>(bytes[8]) << 24) |
                    (static_cast<uint8_t>(bytes[9]) << 16) |
                    (static_cast<uint8_t>(bytes[10]) << 8) | static_cast<uint8_t>(bytes[11]);
  ASSERT_GT(chunkLen, 1u);
  bytes[64 + chunkLen - 1] ^= 0x20;
  test::writeFile(index, bytes);

  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  hg::Node node = nodeOf(0, "src/main.c");
  auto blob = o.store->blob("src/main.c", node);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().kind, ErrorKind::kCorrupt) << blob.error().message();
  EXPECT_NE(blob.error().message().find("data/src/main.c.i"), std::string::npos)
      << blob.error().message();
  // Asking again gives the same answer (no bad cache entry was made).
  auto again = o.store->blob("src/main.c", node);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kCorrupt);
  auto fine = o.store->blob("README", nodeOf(0, "README"));
  ASSERT_TRUE(fine.ok()) << fine.error().message();
  EXPECT_EQ(**fine, "readme\n");
  o.store->flush();
  EXPECT_EQ(o.store->stats().failedWrites, 0u);
}

TEST_F(ObjectStoreTest, TruncatedFilelogIsCorruptForBlobAndSize) {
  std::string index = repo_ + "/.hg/store/data/src/lib/util.c.i";
  std::string bytes = test::readFile(index);
  test::writeFile(index, bytes.substr(0, 40));  // inside the first index entry
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  hg::Node node = nodeOf(0, "src/lib/util.c");
  auto size = o.store->fileSize("src/lib/util.c", node);
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error().kind, ErrorKind::kCorrupt) << size.error().message();
  EXPECT_NE(size.error().message().find("data/src/lib/util.c.i"), std::string::npos)
      << size.error().message();
  auto blob = o.store->blob("src/lib/util.c", node);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().kind, ErrorKind::kCorrupt) << blob.error().message();
  EXPECT_NE(blob.error().message().find("data/src/lib/util.c.i"), std::string::npos)
      << blob.error().message();
}

// Damage to the cache itself (a tree record overwritten) is kCorrupt naming
// the tree, not a crash and not a wrong listing.
TEST_F(ObjectStoreTest, CorruptTreeInTheCacheIsCorrupt) {
  TreeId root;
  {
    auto o = openStore(repo_, cache());
    ASSERT_TRUE(o.store);
    auto r = o.store->importCommit(hg::Revision(0));
    ASSERT_TRUE(r.ok());
    root = *r;
  }
  {
    auto env = LmdbEnv::open(cache(), {"trees", "manifest-trees", "blobs", "sizes"});
    ASSERT_TRUE(env.ok()) << env.error().message();
    ASSERT_TRUE((*env)
                    ->write([&](MDB_txn* txn) {
                      return LmdbEnv::put(txn, (*env)->dbi(0), root.view(), "\x01garbage");
                    })
                    .ok());
  }
  auto o = openStore(repo_, cache());
  ASSERT_TRUE(o.store);
  auto tree = o.store->tree(root);
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.error().kind, ErrorKind::kCorrupt) << tree.error().message();
  EXPECT_NE(tree.error().message().find(root.hex()), std::string::npos) << tree.error().message();
}

// ---- importing from the manifest delta ----

void hgOk(const std::vector<std::string>& args, const std::string& cwd = {}) {
  auto r = test::hg(args, cwd);
  if (r.exitCode != 0) throw std::runtime_error("hg failed: " + r.err);
}

// Commits with everything in the working copy (adds and removes too).
void commitAll(const std::string& repo, const std::string& message) {
  hgOk({"commit", "-A", "-q", "-m", message}, repo);
}

int tipRev(const std::string& repo) {
  auto r = test::hg({"log", "-r", "tip", "-T", "{rev}"}, repo);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  return std::stoi(r.out);
}

class DeltaImportTest : public ObjectStoreTest {
 protected:
  // Imports `rev` of `repo` into `inc` (on a new snapshot of the
  // repository, as the daemon does after a commit) and, to compare, from
  // scratch into a cache of its own; the two roots must be equal and list
  // what `hg manifest` lists but `leftOut`. Returns whether `inc` used the
  // delta.
  bool importAndCompare(Opened& inc, int rev, const std::string& repo,
                        const std::set<std::string>& leftOut = {}) {
    SCOPED_TRACE("rev " + std::to_string(rev));
    auto snapshot = hg::Repository::open(repo);
    EXPECT_TRUE(snapshot.ok()) << snapshot.error().message();
    if (!snapshot.ok()) return false;
    inc.store->setRepository(std::move(snapshot).value());
    uint64_t before = inc.store->stats().deltaImports;
    auto root = inc.store->importCommit(hg::Revision(rev));
    EXPECT_TRUE(root.ok()) << root.error().message();
    if (!root.ok()) return false;
    bool fromDelta = inc.store->stats().deltaImports == before + 1;

    auto fresh = openStore(repo, cache("fresh-" + std::to_string(++freshCaches_)));
    EXPECT_TRUE(fresh.store);
    if (!fresh.store) return false;
    auto want = fresh.store->importCommit(hg::Revision(rev));
    EXPECT_TRUE(want.ok()) << want.error().message();
    EXPECT_EQ(fresh.store->stats().deltaImports, 0u) << "a fresh cache has no parent to use";
    if (want.ok()) {
      EXPECT_EQ(root->hex(), want->hex()) << "not the root of a full import";
    }

    auto have = listAll(*inc.store, *root);
    auto manifest = hgManifest(repo, rev);
    for (const auto& path : leftOut) EXPECT_EQ(manifest.erase(path), 1u) << path;
    EXPECT_EQ(have.size(), manifest.size());
    for (const auto& [path, e] : manifest) {
      auto it = have.find(path);
      if (it == have.end()) {
        ADD_FAILURE() << path << " is missing";
        continue;
      }
      EXPECT_EQ(it->second.node, e.node) << path;
      EXPECT_EQ(it->second.kind, e.kind) << path;
    }
    return fromDelta;
  }
  bool importAndCompare(Opened& inc, int rev) { return importAndCompare(inc, rev, repo_); }

  // A commit made in-process by Mercurial (memctx): `files` maps each
  // changed path to its content, or to nullopt to remove it. Reaches
  // manifests the working copy cannot (a file and a directory of one name).
  void memCommit(const std::string& repo, const std::string& parent,
                 const std::map<std::string, std::optional<std::string>>& files) {
    std::string script = tmp_.path() + "/memcommit.py";
    test::writeFile(script, R"(import sys
from mercurial import context, hg, scmutil, ui as uimod, node as hgnode
repo = hg.repository(uimod.ui.load(), sys.argv[1].encode())
files = {}
for arg in sys.argv[3:]:
    path, _, content = arg.partition('=')
    files[path.encode()] = None if content == '-' else content.encode()
def filectxfn(repo_, mctx, path):
    c = files[path]
    return None if c is None else context.memfilectx(repo_, mctx, path, c)
with repo.wlock(), repo.lock():
    p = scmutil.revsingle(repo, sys.argv[2].encode()).node()
    mctx = context.memctx(repo, (p, hgnode.nullid), b"memcommit", sorted(files), filectxfn,
                          user=b"test <test@example.com>", date=(0, 0))
    mctx.commit()
)");
    std::vector<std::string> argv = {test::mercurialPython(), script, repo, parent};
    for (const auto& [path, content] : files) argv.push_back(path + "=" + content.value_or("-"));
    auto r = test::run(argv);
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  int freshCaches_ = 0;
};

// A line of commits, each imported from the delta against its parent.
TEST_F(DeltaImportTest, CommitsImportFromTheManifestDelta) {
  auto inc = openStore(repo_, cache("incremental"));
  ASSERT_TRUE(inc.store);
  ASSERT_TRUE(inc.store->importCommit(hg::Revision(0)).ok());
  EXPECT_EQ(inc.store->stats().deltaImports, 0u) << "rev 0 has no parent";
  // makeRepo's rev 1: a deep change, a copy, a rename, an exec bit.
  EXPECT_TRUE(importAndCompare(inc, 1));

  auto w = [&](const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(repo_ + "/" + path).parent_path());
    test::writeFile(repo_ + "/" + path, content);
  };
  auto rm = [&](const std::string& path) { fs::remove_all(repo_ + "/" + path); };
  auto exec = [&](const std::string& path, bool on) {
    fs::permissions(repo_ + "/" + path, fs::perms::owner_exec | fs::perms::group_exec,
                    on ? fs::perm_options::add : fs::perm_options::remove);
  };
  struct Step {
    const char* what;
    std::function<void()> change;
  };
  std::vector<Step> steps = {
      {"edits and new deep directories",
       [&] {
         w("README", "readme v2\n");
         w("new/deep/dir/f.c", "f\n");
         w("src/lib/deep/x/new.txt", "new\n");
         w("a-top.txt", "sorts between directories\n");
       }},
      {"a file removed, its directory stays", [&] { rm("src/lib/util.c"); }},
      {"exec bits off and on, a file made a symlink",
       [&] {
         exec("bin/run.sh", false);
         exec("src/main.c", true);
         rm("empty");
         fs::create_symlink("README", repo_ + "/empty");
       }},
      {"only an exec bit", [&] { exec("README", true); }},
      {"the last file of a directory, and a whole subtree",
       [&] {
         rm("docs/a/b.txt");
         rm("src/lib/deep");
       }},
      {"a directory replaced by a file of its name",
       [&] {
         rm("bin");
         w("bin", "now a file\n");
       }},
      {"a file replaced by a directory of its name",
       [&] {
         rm("empty");
         w("empty/inside", "inside\n");
       }},
      {"many changes in many directories",
       [&] {
         for (int i = 0; i < 40; ++i)
           w("many/d" + std::to_string(i % 7) + "/f" + std::to_string(i), "x");
         w("src/main.c", "int main() { return 1; }\n");
         rm("docs/readme-link");
       }},
      {"everything below one top directory removed",
       [&] {
         rm("src");
         w("zzz/a/b/c.txt", "last\n");
       }},
  };
  for (const auto& step : steps) {
    SCOPED_TRACE(step.what);
    step.change();
    commitAll(repo_, step.what);
    EXPECT_TRUE(importAndCompare(inc, tipRev(repo_))) << "not imported from the delta";
  }
  EXPECT_EQ(inc.store->stats().deltaImports, 1 + steps.size());
}

// A parent not imported, a branch, and a merge (whose files need not name
// what comes from the other parent): from the delta only the branch.
TEST_F(DeltaImportTest, FallsBackWhenTheParentIsNotImportedAndForMerges) {
  auto inc = openStore(repo_, cache("incremental"));
  ASSERT_TRUE(inc.store);
  ASSERT_TRUE(inc.store->importCommit(hg::Revision(0)).ok());
  test::writeFile(repo_ + "/README", "two\n");
  commitAll(repo_, "2");
  test::writeFile(repo_ + "/README", "three\n");
  commitAll(repo_, "3");
  // rev 3's parent (2) is not imported: the full manifest is read.
  EXPECT_FALSE(importAndCompare(inc, 3));
  // A commit on a branch from rev 1 (imported now), then a merge.
  EXPECT_TRUE(importAndCompare(inc, 1));
  hgOk({"update", "-q", "1"}, repo_);
  test::writeFile(repo_ + "/branch.txt", "on the branch\n");
  fs::remove(repo_ + "/docs/renamed.txt");
  commitAll(repo_, "4 on a branch");
  EXPECT_TRUE(importAndCompare(inc, 4)) << "a branch's delta is against its parent too";
  hgOk({"merge", "-q", "3"}, repo_);
  commitAll(repo_, "5 merge");
  EXPECT_FALSE(importAndCompare(inc, 5));
}

// Without generaldelta a delta is against the previous revision: used when
// that is the parent's manifest, not when it is another branch's.
TEST_F(DeltaImportTest, WithoutGeneralDeltaOnlyAParentsDeltaIsUsed) {
  std::string repo = tmp_.path() + "/nogd";
  hgOk({"init", "--config", "format.usegeneraldelta=false", "--config", "format.generaldelta=false",
        "--config", "format.sparse-revlog=false", repo});
  ASSERT_EQ(test::readFile(repo + "/.hg/store/requires").find("generaldelta"), std::string::npos);
  fs::create_directories(repo + "/d/e");
  test::writeFile(repo + "/d/e/f", "f\n");
  test::writeFile(repo + "/g", "g\n");
  commitAll(repo, "0");
  test::writeFile(repo + "/d/e/f", "f1\n");
  commitAll(repo, "1");
  hgOk({"update", "-q", "0"}, repo);
  test::writeFile(repo + "/g", "g2\n");
  commitAll(repo, "2 from 0");

  auto inc = openStore(repo, cache("incremental"));
  ASSERT_TRUE(inc.store);
  ASSERT_TRUE(inc.store->importCommit(hg::Revision(0)).ok());
  EXPECT_TRUE(importAndCompare(inc, 1, repo)) << "rev 1's delta is against rev 0, its parent";
  EXPECT_FALSE(importAndCompare(inc, 2, repo)) << "rev 2's delta is against rev 1's manifest";
}

// A parent whose trees leave an entry out (the file "a" beside the
// directory "a/"): a change that empties "a/" must not use the delta, as
// the file comes back; later changes elsewhere still can.
TEST_F(DeltaImportTest, ParentWithEntriesLeftOut) {
  std::string repo = tmp_.path() + "/conflict";
  hgOk({"init", repo});
  // Enough other files that hg stores the later manifests as deltas.
  std::map<std::string, std::optional<std::string>> first = {
      {"a", "file a\n"}, {"a/b", "b\n"}, {"c", "c\n"}, {"d/e", "e\n"}};
  for (int i = 0; i < 30; ++i) first["filler/f" + std::to_string(i)] = std::to_string(i);
  memCommit(repo, "null", first);
  memCommit(repo, "0", {{"a/b", std::nullopt}});
  memCommit(repo, "1", {{"c", "c2\n"}, {"d/e", std::nullopt}});
  memCommit(repo, "2", {{"c", "c3\n"}, {"a/x", "x\n"}});

  auto inc = openStore(repo, cache("incremental"));
  ASSERT_TRUE(inc.store);
  auto root0 = inc.store->importCommit(hg::Revision(0));
  ASSERT_TRUE(root0.ok());
  auto a0 = inc.store->findEntry(*root0, "a");
  ASSERT_TRUE(a0.ok() && a0->has_value());
  EXPECT_TRUE((*a0)->isDirectory()) << "the file a is left out";
  EXPECT_FALSE(importAndCompare(inc, 1, repo)) << "emptying a/ brings the file a back";
  auto root1 = inc.store->importCommit(hg::Revision(1));
  ASSERT_TRUE(root1.ok());
  auto a = inc.store->findEntry(*root1, "a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->kind, EntryKind::kRegular);
  // rev 1's trees hold all of its manifest, and rev 2 empties d/.
  EXPECT_TRUE(importAndCompare(inc, 2, repo));
  // A directory "a/" beside the file "a": left out again, so not from the delta.
  EXPECT_FALSE(importAndCompare(inc, 3, repo, {"a"}));
}

// Every revision of every fixture repository (made by hg: branches,
// merges, kind changes, long histories, no generaldelta), imported in
// revision order into one cache: each root is buildTrees' for its manifest.
TEST(DeltaImportFixtureTest, EveryFixtureRevisionImportsToTheFullBuild) {
  const auto& fixtures = test::FixtureRepos::get();
  uint64_t fromDelta = 0, total = 0;
  for (const std::string& name : fixtures.names()) {
    SCOPED_TRACE(name);
    TempDir tmp;
    auto o = openStore(fixtures.path(name), tmp.path() + "/cache");
    ASSERT_TRUE(o.store);
    for (size_t r = 0; r < o.repo->changelog().revlog().size(); ++r) {
      hg::Revision rev(static_cast<int32_t>(r));
      auto root = o.store->importCommit(rev);
      ASSERT_TRUE(root.ok()) << "rev " << r << ": " << root.error().message();
      auto manifest = o.repo->manifestOf(rev);
      ASSERT_TRUE(manifest.ok()) << manifest.error().message();
      ASSERT_EQ(root->hex(), buildTrees(*manifest).root.hex()) << "rev " << r;
      ++total;
    }
    fromDelta += o.store->stats().deltaImports;
  }
  // Many of the long histories' small manifests are stored as full texts.
  EXPECT_GT(fromDelta, total / 4) << "commits are imported from their delta";
  std::cout << fromDelta << " of " << total << " revisions imported from the delta\n";
}

}  // namespace
}  // namespace hgvfs::store
