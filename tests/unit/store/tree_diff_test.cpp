// diffTrees (store/tree_diff.h) against flat manifests.
//
// Hand-written manifests reach the orderings a recursive walk gets wrong
// ("d.txt" < "d/x" < "d0" bytewise), file↔directory swaps, kind changes and
// the prefix form. On every fixture repository made by the real hg, the
// diff of the root trees of pairs of revisions (neighbours, against null,
// far apart) must be the diff of the two manifests read by hgbridge —
// restricted to the entries the trees hold — and, on two repositories, the
// answer of `hg status --rev A --rev B`. Every case also counts loads: only
// directories whose id differs are read.

#include "store/tree_diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "hgbridge/repository.h"
#include "hgbridge/sha1.h"
#include "store/log.h"
#include "store/object_store.h"
#include "store/tree_builder.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"

namespace hgvfs::store {
namespace {

using test::FixtureRepos;
using test::TempDir;

struct FlatFile {
  EntryKind kind;
  hg::Node id;
  friend bool operator==(const FlatFile&, const FlatFile&) = default;
};

// A tree walked back into files (path → entry) and directories (path → id).
struct Flat {
  std::map<Bytes, FlatFile> files;
  std::map<Bytes, TreeId> dirs;
};

Flat flatten(const TreeSource& load, const std::optional<TreeId>& root) {
  Flat out;
  if (!root) return out;
  std::vector<std::pair<Bytes, TreeId>> todo = {{"", *root}};
  while (!todo.empty()) {
    auto [dir, id] = todo.back();
    todo.pop_back();
    out.dirs[dir] = id;
    auto tree = load(id);
    if (!tree.ok()) throw std::runtime_error(tree.error().message());
    for (const auto& e : (*tree)->entries()) {
      Bytes path = dir.empty() ? e.name : dir + "/" + e.name;
      if (e.isDirectory()) {
        todo.emplace_back(path, e.treeId());
      } else {
        out.files[path] = {e.kind, e.id};
      }
    }
  }
  return out;
}

// "A path", "R path", "M path" lines, the way the expected diffs are written.
std::string line(char kind, const Bytes& path) { return std::string(1, kind) + " " + path; }

std::vector<std::string> flatDiff(const std::map<Bytes, FlatFile>& a,
                                  const std::map<Bytes, FlatFile>& b) {
  std::vector<std::string> out;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() || j != b.end()) {
    if (j == b.end() || (i != a.end() && i->first < j->first)) {
      out.push_back(line('R', (i++)->first));
    } else if (i == a.end() || j->first < i->first) {
      out.push_back(line('A', (j++)->first));
    } else {
      if (!(i->second == j->second)) out.push_back(line('M', i->first));
      ++i;
      ++j;
    }
  }
  return out;
}

struct Diffed {
  std::vector<std::string> lines;
  size_t loads = 0;
};

// diffTrees through a loader that counts, checking each change's entries.
Diffed runDiff(const TreeSource& load, const std::optional<TreeId>& a,
               const std::optional<TreeId>& b, ByteView prefix = {}) {
  Diffed d;
  TreeSource counting = [&](const TreeId& id) {
    ++d.loads;
    return load(id);
  };
  auto s = diffTrees(counting, a, b, prefix, [&](const TreeChange& c) {
    switch (c.kind) {
      case TreeChange::kAdded:
        EXPECT_TRUE(!c.before && c.after) << c.path;
        d.lines.push_back(line('A', c.path));
        break;
      case TreeChange::kRemoved:
        EXPECT_TRUE(c.before && !c.after) << c.path;
        d.lines.push_back(line('R', c.path));
        break;
      case TreeChange::kModified:
        EXPECT_TRUE(c.before && c.after) << c.path;
        if (c.before && c.after) {
          EXPECT_TRUE(c.before->kind != c.after->kind || c.before->id != c.after->id) << c.path;
          EXPECT_EQ(c.before->name, c.after->name);
        }
        d.lines.push_back(line('M', c.path));
        break;
    }
    const auto& e = c.after ? *c.after : *c.before;
    EXPECT_FALSE(e.isDirectory()) << c.path;
    EXPECT_TRUE(c.path.size() >= e.name.size() &&
                c.path.compare(c.path.size() - e.name.size(), e.name.size(), e.name) == 0)
        << c.path;
  });
  EXPECT_TRUE(s.ok()) << s.error().message();
  return d;
}

// The loads an ideal walk makes: each directory, on each side, whose id the
// other side does not have at the same path.
size_t expectedLoads(const Flat& a, const Flat& b) {
  size_t n = 0;
  for (const auto& [path, id] : a.dirs) {
    auto it = b.dirs.find(path);
    if (it == b.dirs.end() || !(it->second == id)) ++n;
  }
  for (const auto& [path, id] : b.dirs) {
    auto it = a.dirs.find(path);
    if (it == a.dirs.end() || !(it->second == id)) ++n;
  }
  return n;
}

void expectSorted(const std::vector<std::string>& lines) {
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_LT(lines[i - 1].substr(2), lines[i].substr(2)) << "not in manifest order";
  }
}

// ---- hand-written manifests -------------------------------------------------

struct Line {
  Bytes path;
  char flag = 0;  // 0, 'x' or 'l'
  Bytes content = {};
};

// Trees of hand-written manifests, kept in memory.
class MemoryTrees {
 public:
  TreeId add(std::vector<Line> lines) {
    std::sort(lines.begin(), lines.end(),
              [](const Line& a, const Line& b) { return a.path < b.path; });
    Bytes text;
    for (const auto& l : lines) {
      text += l.path;
      text.push_back('\0');
      text += hg::sha1Of(l.content.empty() ? l.path : l.content).hex();
      if (l.flag) text.push_back(l.flag);
      text.push_back('\n');
    }
    auto m = hg::Manifest::parse(std::move(text));
    EXPECT_TRUE(m.ok()) << m.error().message();
    BuiltTrees built = buildTrees(*m);
    EXPECT_TRUE(built.skipped.empty());
    for (auto& [id, data] : built.trees) {
      auto t = Tree::deserialize(data);
      EXPECT_TRUE(t.ok());
      trees_.emplace(id, std::make_shared<const Tree>(std::move(t).value()));
    }
    return built.root;
  }

  TreeSource source() const {
    return [this](const TreeId& id) -> Result<std::shared_ptr<const Tree>> {
      auto it = trees_.find(id);
      if (it == trees_.end()) return notFound("tree " + id.hex());
      return it->second;
    };
  }

 private:
  std::unordered_map<TreeId, std::shared_ptr<const Tree>> trees_;
};

TEST(TreeDiffTest, ManifestOrderAcrossDirectoriesAndFiles) {
  MemoryTrees m;
  TreeId a = m.add({{"d.txt"},
                    {"d/x"},
                    {"d/y"},
                    {"d0"},
                    {"e-"},
                    {"e/f"},
                    {"same/deep/file"},
                    {"swap"},
                    {"undir/inner/z"},
                    {"kind"},
                    {"kind2"},
                    {"z"}});
  TreeId b = m.add({{"d.txt", 0, "changed"},
                    {"d/x"},
                    {"d/y", 0, "changed"},
                    {"d/y.txt"},
                    {"d0", 0, "changed"},
                    {"e-", 'x'},
                    {"e/f", 'l'},
                    {"e/g"},
                    {"same/deep/file"},
                    {"swap/a"},
                    {"swap/b-"},
                    {"swap-file"},
                    {"undir"},
                    {"kind", 'x'},
                    {"kind2", 'l'}});
  Diffed d = runDiff(m.source(), a, b);
  std::vector<std::string> expected = {"M d.txt",   "M d/y",   "A d/y.txt",       "M d0",
                                       "M e-",      "M e/f",   "A e/g",           "M kind",
                                       "M kind2",   "R swap",  "A swap-file",     "A swap/a",
                                       "A swap/b-", "A undir", "R undir/inner/z", "R z"};
  EXPECT_EQ(d.lines, expected);
  expectSorted(d.lines);
  Flat fa = flatten(m.source(), a), fb = flatten(m.source(), b);
  EXPECT_EQ(d.lines, flatDiff(fa.files, fb.files));
  EXPECT_EQ(d.loads, expectedLoads(fa, fb));

  // The reverse swaps every addition and removal.
  Diffed r = runDiff(m.source(), b, a);
  EXPECT_EQ(r.lines, flatDiff(fb.files, fa.files));
  expectSorted(r.lines);
}

TEST(TreeDiffTest, AbsentTreesAndEqualIds) {
  MemoryTrees m;
  TreeId a = m.add({{"x/1"}, {"x/2"}, {"y"}});
  Diffed same = runDiff(m.source(), a, a);
  EXPECT_TRUE(same.lines.empty());
  EXPECT_EQ(same.loads, 0u);
  Diffed none = runDiff(m.source(), std::nullopt, std::nullopt);
  EXPECT_TRUE(none.lines.empty());
  EXPECT_EQ(runDiff(m.source(), std::nullopt, a).lines,
            (std::vector<std::string>{"A x/1", "A x/2", "A y"}));
  EXPECT_EQ(runDiff(m.source(), a, std::nullopt).lines,
            (std::vector<std::string>{"R x/1", "R x/2", "R y"}));
}

TEST(TreeDiffTest, PrefixNamesTheSubtree) {
  MemoryTrees m;
  TreeId a = m.add({{"src/lib/a.c"}, {"src/lib/b.c"}, {"top"}});
  TreeId b = m.add({{"src/lib/a.c", 0, "v2"}, {"src/lib/sub/c.c"}, {"top"}});
  auto lib = [&](const TreeId& root) {
    auto t = m.source()(root);
    auto src = m.source()((*t)->find("src")->treeId());
    return (*src)->find("lib")->treeId();
  };
  Diffed d = runDiff(m.source(), lib(a), lib(b), "src/lib");
  EXPECT_EQ(d.lines,
            (std::vector<std::string>{"M src/lib/a.c", "R src/lib/b.c", "A src/lib/sub/c.c"}));
}

TEST(TreeDiffTest, LoadErrorsStopTheDiff) {
  MemoryTrees m;
  TreeId a = m.add({{"a/1"}, {"b/2"}});
  TreeId b = m.add({{"a/1", 0, "v2"}, {"b/2", 0, "v2"}});
  auto inner = m.source();
  TreeSource failing = [&](const TreeId& id) -> Result<std::shared_ptr<const Tree>> {
    if (id == a || id == b) return inner(id);
    return corrupt("damaged", "tree " + id.hex());
  };
  std::vector<Bytes> seen;
  auto s = diffTrees(failing, a, b, {}, [&](const TreeChange& c) { seen.push_back(c.path); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().kind, ErrorKind::kCorrupt);
  EXPECT_TRUE(seen.empty());
  auto missing =
      diffTrees(failing, std::nullopt, TreeId(hg::sha1Of("nowhere")), {}, [](const TreeChange&) {});
  EXPECT_FALSE(missing.ok());
}

// Random manifests over names that collide in every way bytewise order
// allows ("a" as file and directory, "a.b", "a-", "a0"), each mutated a
// little: the diff must be the flat diff and load only changed directories.
std::vector<Line> withoutFileDirConflicts(std::map<Bytes, Line> byPath) {
  std::vector<Line> out;
  for (const auto& [path, l] : byPath) {
    auto next = byPath.lower_bound(path + "/");
    if (next != byPath.end() && next->first.compare(0, path.size() + 1, path + "/") == 0) continue;
    out.push_back(l);
  }
  return out;
}

TEST(TreeDiffTest, RandomManifestsMatchFlatDiffs) {
  const char* names[] = {"a", "a.b", "a-", "a0", "b", "B", "\xff"};
  std::mt19937 rng(11);
  auto randomPath = [&] {
    Bytes p;
    int depth = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < depth; ++i) {
      if (i) p.push_back('/');
      p += names[rng() % std::size(names)];
    }
    return p;
  };
  const char flags[] = {0, 0, 0, 'x', 'l'};
  size_t totalLoads = 0, totalDirs = 0;
  for (int round = 0; round < 200; ++round) {
    std::map<Bytes, Line> base;
    for (int i = 0; i < 60; ++i) {
      Bytes p = randomPath();
      base[p] = {p, flags[rng() % 5], "v0"};
    }
    std::map<Bytes, Line> changed = base;
    int edits = static_cast<int>(rng() % 6);
    for (int i = 0; i < edits; ++i) {
      auto it = changed.begin();
      std::advance(it, rng() % changed.size());
      switch (rng() % 4) {
        case 0:
          it->second.content = "v" + std::to_string(rng());
          break;
        case 1:
          it->second.flag = flags[rng() % 5];
          break;
        case 2:
          changed.erase(it);
          break;
        default: {
          Bytes p = randomPath();
          changed[p] = {p, 0, "new"};
        }
      }
    }
    MemoryTrees m;
    TreeId a = m.add(withoutFileDirConflicts(base));
    TreeId b = m.add(withoutFileDirConflicts(changed));
    Flat fa = flatten(m.source(), a), fb = flatten(m.source(), b);
    Diffed d = runDiff(m.source(), a, b);
    ASSERT_EQ(d.lines, flatDiff(fa.files, fb.files)) << "round " << round;
    ASSERT_EQ(d.loads, expectedLoads(fa, fb)) << "round " << round;
    totalLoads += d.loads;
    totalDirs += fa.dirs.size() + fb.dirs.size();
  }
  EXPECT_LT(totalLoads, totalDirs / 2) << "unchanged directories were loaded";
}

// ---- fixture repositories ---------------------------------------------------

struct Imported {
  std::shared_ptr<const hg::Repository> repo;
  std::unique_ptr<ObjectStore> store;
  std::vector<TreeId> roots;  // by revision
};

Imported importAll(const std::string& path, const std::string& cache) {
  log().set_level(spdlog::level::warn);  // one info line per imported commit
  Imported out;
  auto repo = hg::Repository::open(path);
  if (!repo.ok()) throw std::runtime_error(repo.error().message());
  out.repo = std::move(repo).value();
  auto store = ObjectStore::open(out.repo, cache);
  if (!store.ok()) throw std::runtime_error(store.error().message());
  out.store = std::move(store).value();
  size_t n = out.repo->changelog().revlog().size();
  for (size_t r = 0; r < n; ++r) {
    auto root = out.store->importCommit(hg::Revision(static_cast<int32_t>(r)));
    if (!root.ok()) throw std::runtime_error(root.error().message());
    out.roots.push_back(*root);
  }
  return out;
}

// The diff of two manifests read by hgbridge, keeping only the entries the
// trees hold (buildTrees leaves out names it cannot present, and says so).
std::vector<std::string> manifestDiff(const hg::Repository& repo, hg::Revision ra, hg::Revision rb,
                                      const Flat& fa, const Flat& fb) {
  auto files = [&](hg::Revision r, const Flat& flat) {
    auto m = repo.manifestOf(r);
    if (!m.ok()) throw std::runtime_error(m.error().message());
    std::map<Bytes, FlatFile> out;
    for (const auto& e : m->entries()) {
      if (flat.files.count(Bytes(e.path))) out[Bytes(e.path)] = {entryKind(e.kind), e.node};
    }
    EXPECT_EQ(m->size() - out.size(), buildTrees(*m).skipped.size()) << "rev " << r.value();
    EXPECT_EQ(out, flat.files) << "rev " << r.value();
    return out;
  };
  return flatDiff(files(ra, fa), files(rb, fb));
}

std::vector<std::pair<int, int>> revisionPairs(int n) {
  std::vector<std::pair<int, int>> pairs;
  for (int r = 0; r < n; ++r) {
    pairs.emplace_back(r - 1, r);  // r - 1 == -1: against null
    if (r == n - 1 || r % 7 == 3) pairs.emplace_back(r, -1);
  }
  if (n > 2) {
    pairs.emplace_back(0, n - 1);
    pairs.emplace_back(n - 1, 0);
    pairs.emplace_back(n / 2, n - 1);
  }
  return pairs;
}

TEST(TreeDiffTest, FixtureRepositoriesMatchManifestDiffs) {
  const FixtureRepos& fixtures = FixtureRepos::get();
  size_t pairsChecked = 0, skippedLoads = 0;
  for (const auto& name : fixtures.names()) {
    SCOPED_TRACE(name);
    TempDir cache;
    Imported im = importAll(fixtures.path(name), cache.path());
    TreeSource load = [&](const TreeId& id) { return im.store->tree(id); };
    int n = static_cast<int>(im.roots.size());
    std::vector<Flat> flat;
    for (const auto& root : im.roots) flat.push_back(flatten(load, root));
    Flat empty;
    for (auto [ra, rb] : revisionPairs(n)) {
      SCOPED_TRACE("revisions " + std::to_string(ra) + " → " + std::to_string(rb));
      std::optional<TreeId> a, b;
      if (ra >= 0) a = im.roots[ra];
      if (rb >= 0) b = im.roots[rb];
      const Flat& fa = ra >= 0 ? flat[ra] : empty;
      const Flat& fb = rb >= 0 ? flat[rb] : empty;
      Diffed d = runDiff(load, a, b);
      EXPECT_EQ(d.lines, manifestDiff(*im.repo, hg::Revision(ra), hg::Revision(rb), fa, fb));
      EXPECT_EQ(d.loads, expectedLoads(fa, fb));
      skippedLoads += fa.dirs.size() + fb.dirs.size() - d.loads;
      ++pairsChecked;
    }
  }
  EXPECT_GT(pairsChecked, 100u);
  EXPECT_GT(skippedLoads, 0u) << "no pair shared a directory";
}

// `hg status --rev A --rev B` ("M path" lines, then A, then R) as a sorted
// list of "X path" lines.
std::vector<std::string> hgStatus(const std::string& repo, int ra, int rb) {
  auto r = test::hg({"status", "--rev", std::to_string(ra), "--rev", std::to_string(rb)}, repo);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  std::vector<std::string> out;
  std::istringstream in(r.out);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  std::sort(out.begin(), out.end(),
            [](const std::string& x, const std::string& y) { return x.substr(2) < y.substr(2); });
  return out;
}

TEST(TreeDiffTest, MatchesHgStatusBetweenRevisions) {
  const FixtureRepos& fixtures = FixtureRepos::get();
  for (const char* name : {"copies", "names"}) {
    SCOPED_TRACE(name);
    TempDir cache;
    Imported im = importAll(fixtures.path(name), cache.path());
    int n = static_cast<int>(im.roots.size());
    for (auto [ra, rb] : revisionPairs(n)) {
      if (ra < 0 || rb < 0 || (rb != ra + 1 && n > 12)) continue;  // hg is slow; neighbours
      SCOPED_TRACE("revisions " + std::to_string(ra) + " → " + std::to_string(rb));
      Diffed d =
          runDiff([&](const TreeId& id) { return im.store->tree(id); }, im.roots[ra], im.roots[rb]);
      EXPECT_EQ(d.lines, hgStatus(fixtures.path(name), ra, rb));
    }
  }
}

}  // namespace
}  // namespace hgvfs::store
