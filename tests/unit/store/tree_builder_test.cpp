// buildTrees (store/tree_builder.h): directory trees from flat manifests.
//
// Manifests are written by hand (Manifest::parse of "path\0<40 hex>[x|l]\n"
// lines, sorted) to reach names stock hg never writes; a real repository
// made by `hg` checks that tree ids are content addressed across commits.
// Walking the built trees back into a flat list must give the manifest
// minus exactly the entries reported in `skipped`.
//
// applyTreeChanges is checked against buildTrees: random manifests edited
// at random (adds, changes, removals, kind changes, new deep directories,
// emptied directories, whole subtrees removed, a directory replaced by a
// file and back) give the root buildTrees gives for the edited manifest,
// and every case where buildTrees would leave something out is refused.

#include "store/tree_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hgbridge/repository.h"
#include "hgbridge/sha1.h"
#include "tests/support/test_support.h"

namespace hgvfs::store {
namespace {

using test::TempDir;

struct Line {
  std::string path;
  char flag = 0;             // 0, 'x' or 'l'
  std::string content = {};  // hashed into the node; defaults to the path
};

hg::Node nodeFor(const Line& l) { return hg::sha1Of(l.content.empty() ? l.path : l.content); }

hg::Manifest manifestOf(std::vector<Line> lines) {
  std::sort(lines.begin(), lines.end(),
            [](const Line& a, const Line& b) { return a.path < b.path; });
  Bytes text;
  for (const auto& l : lines) {
    text += l.path;
    text.push_back('\0');
    text += nodeFor(l).hex();
    if (l.flag) text.push_back(l.flag);
    text.push_back('\n');
  }
  auto m = hg::Manifest::parse(std::move(text));
  EXPECT_TRUE(m.ok()) << m.error().message();
  return std::move(m).value();
}

struct Flat {
  EntryKind kind;
  hg::Node id;
};

// The trees of `built` walked back into path → entry (files only) and
// directory path → tree id ("" is the root).
struct Walked {
  std::map<Bytes, Flat> files;
  std::map<Bytes, TreeId> dirs;
  std::map<Bytes, std::vector<Bytes>> names;  // directory → entry names in order
};

Walked walk(const BuiltTrees& built) {
  std::unordered_map<TreeId, Bytes> byId;
  for (const auto& [id, data] : built.trees) {
    EXPECT_EQ(hg::sha1Of(data), id.raw()) << "a tree's id is the hash of its bytes";
    byId.emplace(id, data);
  }
  Walked out;
  std::vector<std::pair<Bytes, TreeId>> todo = {{"", built.root}};
  while (!todo.empty()) {
    auto [dir, id] = todo.back();
    todo.pop_back();
    out.dirs[dir] = id;
    auto it = byId.find(id);
    if (it == byId.end()) {
      ADD_FAILURE() << "tree of '" << dir << "' not in the output";
      continue;
    }
    auto tree = Tree::deserialize(it->second);
    if (!tree.ok()) {
      ADD_FAILURE() << tree.error().message();
      continue;
    }
    auto& names = out.names[dir];
    for (const auto& e : tree->entries()) {
      names.push_back(e.name);
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

// Every line not in `dropped` is in the walk with its kind and node, and
// nothing else is; `skipped` names each dropped path exactly once.
void expectKeptAndSkipped(const std::vector<Line>& lines, const std::set<std::string>& dropped) {
  BuiltTrees built = buildTrees(manifestOf(lines));
  Walked w = walk(built);
  std::map<Bytes, Flat> want;
  for (const auto& l : lines) {
    if (dropped.count(l.path)) continue;
    want[l.path] = {entryKind(l.flag == 'x'   ? hg::FileKind::kExecutable
                              : l.flag == 'l' ? hg::FileKind::kSymlink
                                              : hg::FileKind::kRegular),
                    nodeFor(l)};
  }
  EXPECT_EQ(w.files.size(), want.size());
  for (const auto& [path, f] : want) {
    auto it = w.files.find(path);
    if (it == w.files.end()) {
      ADD_FAILURE() << "kept entry missing: " << printable(path);
      continue;
    }
    EXPECT_EQ(it->second.kind, f.kind) << path;
    EXPECT_EQ(it->second.id, f.id) << path;
  }
  for (const auto& [path, f] : w.files) {
    EXPECT_TRUE(want.count(path)) << "unexpected entry: " << printable(path);
  }
  ASSERT_EQ(built.skipped.size(), dropped.size()) << [&] {
    std::string all;
    for (const auto& s : built.skipped) all += s + "\n";
    return all;
  }();
  for (const auto& path : dropped) {
    std::string prefix = printable(path) + ": ";
    size_t n = std::count_if(built.skipped.begin(), built.skipped.end(),
                             [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
    EXPECT_EQ(n, 1u) << "skipped should name '" << prefix << "' once";
  }
}

TEST(TreeBuilderTest, EmptyManifestIsOneEmptyRoot) {
  BuiltTrees built = buildTrees(hg::Manifest());
  ASSERT_EQ(built.trees.size(), 1u);
  EXPECT_EQ(built.trees[0].first, built.root);
  EXPECT_EQ(built.root, Tree({}).computeId());
  EXPECT_TRUE(built.skipped.empty());
}

TEST(TreeBuilderTest, NestedDirectoriesChildrenFirstRootLast) {
  std::vector<Line> lines = {
      {"README"},
      {"src/main.c"},
      {"src/lib/util.c"},
      {"src/lib/util.h"},
      {"src/lib/deep/x/y/z.txt"},
      {"bin/run.sh", 'x'},
      {"link", 'l'},
      {"docs/guide/intro.md"},
  };
  expectKeptAndSkipped(lines, {});
  BuiltTrees built = buildTrees(manifestOf(lines));
  // One tree per directory: root, src, src/lib, deep, x, y, bin, docs, guide.
  EXPECT_EQ(built.trees.size(), 9u);
  ASSERT_FALSE(built.trees.empty());
  EXPECT_EQ(built.trees.back().first, built.root);
  std::unordered_set<TreeId> seen;
  for (const auto& [id, data] : built.trees) {
    auto tree = Tree::deserialize(data);
    ASSERT_TRUE(tree.ok());
    for (const auto& e : tree->entries()) {
      if (e.isDirectory()) {
        EXPECT_TRUE(seen.count(e.treeId())) << "child after its parent";
      }
    }
    seen.insert(id);
  }
  Walked w = walk(built);
  EXPECT_EQ(w.names[""], (std::vector<Bytes>{"README", "bin", "docs", "link", "src"}));
  EXPECT_EQ(w.names["src/lib"], (std::vector<Bytes>{"deep", "util.c", "util.h"}));
  EXPECT_EQ(w.files["bin/run.sh"].kind, EntryKind::kExecutable);
  EXPECT_EQ(w.files["link"].kind, EntryKind::kSymlink);
  EXPECT_EQ(w.files["README"].kind, EntryKind::kRegular);
}

TEST(TreeBuilderTest, TreeOrderIsByNameNotByManifestPath) {
  // Manifest order: a-b < a.txt < a/b < a0 < ab ('-' < '.' < '/' < '0');
  // in the tree the directory "a" sorts first.
  std::vector<Line> lines = {{"a-b"}, {"a.txt"},   {"a/b"},   {"a0"},
                             {"ab"},  {"a/c.d/e"}, {"a/c/f"}, {"a/c.d.e"}};
  expectKeptAndSkipped(lines, {});
  Walked w = walk(buildTrees(manifestOf(lines)));
  EXPECT_EQ(w.names[""], (std::vector<Bytes>{"a", "a-b", "a.txt", "a0", "ab"}));
  EXPECT_EQ(w.names["a"], (std::vector<Bytes>{"b", "c", "c.d", "c.d.e"}));
}

TEST(TreeBuilderTest, IdenticalDirectoriesShareOneId) {
  std::vector<Line> lines = {{"x/common/f", 0, "same"},
                             {"x/common/g", 'x', "same2"},
                             {"y/common/f", 0, "same"},
                             {"y/common/g", 'x', "same2"},
                             {"y/other"}};
  Walked w = walk(buildTrees(manifestOf(lines)));
  EXPECT_EQ(w.dirs["x/common"], w.dirs["y/common"]);
  EXPECT_NE(w.dirs["x"], w.dirs["y"]);
  // Same names and nodes but another kind: another id.
  lines[3].flag = 0;
  Walked w2 = walk(buildTrees(manifestOf(lines)));
  EXPECT_NE(w2.dirs["x/common"], w2.dirs["y/common"]);
}

TEST(TreeBuilderTest, Deterministic) {
  std::vector<Line> lines = {{"a/b/c"}, {"a/d"}, {"e", 'l'}, {"f", 'x'}};
  EXPECT_EQ(buildTrees(manifestOf(lines)).root, buildTrees(manifestOf(lines)).root);
}

TEST(TreeBuilderTest, ChangeDeepInTheTreeChangesOnlyItsPath) {
  std::vector<Line> lines = {{"a/b/c/d/file"}, {"a/b/c/other"}, {"a/b/sib/x"},
                             {"a/y"},          {"q/r/s"},       {"top"}};
  Walked before = walk(buildTrees(manifestOf(lines)));
  lines[0].content = "changed";
  Walked after = walk(buildTrees(manifestOf(lines)));
  ASSERT_EQ(before.dirs.size(), after.dirs.size());
  std::set<Bytes> onPath = {"", "a", "a/b", "a/b/c", "a/b/c/d"};
  for (const auto& [dir, id] : before.dirs) {
    if (onPath.count(dir)) {
      EXPECT_NE(after.dirs[dir], id) << "'" << dir << "' is on the changed path";
    } else {
      EXPECT_EQ(after.dirs[dir], id) << "'" << dir << "' did not change";
    }
  }
}

TEST(TreeBuilderTest, HostileNamesAreSkippedAndTheRestKept) {
  std::string longName(NAME_MAX + 1, 'L');
  std::string maxName(NAME_MAX, 'M');
  std::vector<Line> lines = {
      {"."},
      {".."},
      {".hg"},
      {".hg/hgrc"},
      {"sub/.hg/store/x"},
      {"sub/./x"},
      {"sub/../escape"},
      {"../up"},
      {"a//b"},
      {"/abs"},
      {"trail/"},
      {longName},
      {"dir/" + longName},
      {longName + "/inside"},
      {"ok/" + maxName},
      {maxName + "/ok"},
      {".hgignore"},
      {".hgtags"},
      {"..."},
      {"..a"},
      {"sub/.hg2"},
      {"sub/fine", 'x'},
      {"\xff\xfe/bytes"},
      {"zz/a", 'l'},
  };
  std::set<std::string> dropped = {".",
                                   "..",
                                   ".hg",
                                   ".hg/hgrc",
                                   "sub/.hg/store/x",
                                   "sub/./x",
                                   "sub/../escape",
                                   "../up",
                                   "a//b",
                                   "/abs",
                                   "trail/",
                                   longName,
                                   "dir/" + longName,
                                   longName + "/inside"};
  expectKeptAndSkipped(lines, dropped);
  BuiltTrees built = buildTrees(manifestOf(lines));
  for (const auto& [id, data] : built.trees) {
    auto tree = Tree::deserialize(data);
    ASSERT_TRUE(tree.ok()) << "every stored tree must read back: " << tree.error().message();
    for (const auto& e : tree->entries()) EXPECT_FALSE(invalidNameReason(e.name)) << e.name;
  }
}

TEST(TreeBuilderTest, FileAndDirectoryWithTheSameNameKeepTheDirectory) {
  std::vector<Line> lines = {{"a"}, {"a.txt"}, {"a/b"}, {"x/y/z"}, {"x/y/z/w"}, {"x/y/z.c"}};
  expectKeptAndSkipped(lines, {"a", "x/y/z"});
  Walked w = walk(buildTrees(manifestOf(lines)));
  EXPECT_EQ(w.names[""], (std::vector<Bytes>{"a", "a.txt", "x"}));
  EXPECT_TRUE(w.dirs.count("a"));
  EXPECT_TRUE(w.dirs.count("x/y/z"));
  EXPECT_EQ(w.names["x/y"], (std::vector<Bytes>{"z", "z.c"}));
}

TEST(TreeBuilderTest, ManyFilesInOneDirectory) {
  std::vector<Line> lines;
  for (int i = 0; i < 5000; ++i) lines.push_back({"big/f" + std::to_string(i)});
  lines.push_back({"big/sub/g"});
  expectKeptAndSkipped(lines, {});
  Walked w = walk(buildTrees(manifestOf(lines)));
  EXPECT_EQ(w.names["big"].size(), 5001u);
  EXPECT_TRUE(std::is_sorted(w.names["big"].begin(), w.names["big"].end()));
}

// With a real repository made by hg: an unchanged directory keeps its id in
// the next commit, and a change deep down changes exactly its ancestors.
TEST(TreeBuilderTest, RealRepositoryIdsAreContentAddressed) {
  TempDir tmp;
  std::string repo = tmp.path() + "/repo";
  ASSERT_EQ(test::hg({"init", repo}).exitCode, 0);
  namespace fs = std::filesystem;
  for (const char* d : {"src/lib/deep/x/y", "src/app", "docs/a", "tools"}) {
    fs::create_directories(repo + "/" + d);
  }
  test::writeFile(repo + "/README", "readme\n");
  test::writeFile(repo + "/src/lib/deep/x/y/z.txt", "deep v1\n");
  test::writeFile(repo + "/src/lib/deep/x/w.txt", "w\n");
  test::writeFile(repo + "/src/lib/util.c", "util\n");
  test::writeFile(repo + "/src/app/main.c", "main\n");
  test::writeFile(repo + "/docs/a.txt", "a\n");
  test::writeFile(repo + "/docs/a/b.txt", "b\n");
  test::writeFile(repo + "/tools/run.sh", "#!/bin/sh\n");
  fs::permissions(repo + "/tools/run.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_symlink("../README", repo + "/docs/readme-link");
  auto c0 = test::hg({"commit", "-A", "-m", "first"}, repo);
  ASSERT_EQ(c0.exitCode, 0) << c0.err;
  test::writeFile(repo + "/src/lib/deep/x/y/z.txt", "deep v2\n");
  auto c1 = test::hg({"commit", "-m", "second"}, repo);
  ASSERT_EQ(c1.exitCode, 0) << c1.err;

  auto r = hg::Repository::open(repo);
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto m0 = (*r)->manifestOf(hg::Revision(0));
  auto m1 = (*r)->manifestOf(hg::Revision(1));
  ASSERT_TRUE(m0.ok() && m1.ok());
  BuiltTrees b0 = buildTrees(*m0), b1 = buildTrees(*m1);
  EXPECT_TRUE(b0.skipped.empty());
  Walked w0 = walk(b0), w1 = walk(b1);
  EXPECT_EQ(w0.files.size(), m0->size());
  EXPECT_EQ(w0.files["tools/run.sh"].kind, EntryKind::kExecutable);
  EXPECT_EQ(w0.files["docs/readme-link"].kind, EntryKind::kSymlink);
  ASSERT_EQ(w0.dirs.size(), w1.dirs.size());
  std::set<Bytes> onPath = {
      "", "src", "src/lib", "src/lib/deep", "src/lib/deep/x", "src/lib/deep/x/y"};
  for (const auto& [dir, id] : w0.dirs) {
    ASSERT_TRUE(w1.dirs.count(dir)) << dir;
    if (onPath.count(dir)) {
      EXPECT_NE(w1.dirs[dir], id) << "'" << dir << "' holds the change";
    } else {
      EXPECT_EQ(w1.dirs[dir], id) << "'" << dir << "' is unchanged";
    }
  }
  // The ids depend on content only: the same manifest built again, and
  // another repository with the same history, give the same root.
  EXPECT_EQ(buildTrees(*m1).root, b1.root);
  std::string clone = tmp.path() + "/clone";
  ASSERT_EQ(test::hg({"clone", "-q", "-U", repo, clone}).exitCode, 0);
  auto rc = hg::Repository::open(clone);
  ASSERT_TRUE(rc.ok());
  auto mc = (*rc)->manifestOf(hg::Revision(1));
  ASSERT_TRUE(mc.ok());
  EXPECT_EQ(buildTrees(*mc).root, b1.root);
}

// ---- applyTreeChanges ----

// The trees of a base build, served to applyTreeChanges as an ObjectStore
// would; counts loads and can be told to fail one tree.
class TreeSource {
 public:
  explicit TreeSource(const BuiltTrees& built) {
    for (const auto& [id, data] : built.trees) {
      auto tree = Tree::deserialize(data);
      EXPECT_TRUE(tree.ok());
      if (tree.ok()) trees_[id] = std::make_shared<const Tree>(std::move(tree).value());
    }
  }
  TreeLoader loader() {
    return [this](const TreeId& id) -> std::shared_ptr<const Tree> {
      ++loads;
      if (id == failing) return nullptr;
      auto it = trees_.find(id);
      return it == trees_.end() ? nullptr : it->second;
    };
  }
  bool has(const TreeId& id) const { return trees_.count(id) > 0; }
  int loads = 0;
  TreeId failing;

 private:
  std::unordered_map<TreeId, std::shared_ptr<const Tree>> trees_;
};

using Files = std::map<std::string, Line>;  // path → line

std::vector<Line> linesOf(const Files& files) {
  std::vector<Line> out;
  for (const auto& [path, line] : files) out.push_back(line);
  return out;
}

EntryKind kindOf(char flag) {
  return flag == 'x'   ? EntryKind::kExecutable
         : flag == 'l' ? EntryKind::kSymlink
                       : EntryKind::kRegular;
}

FileChange fileAt(std::string path, const hg::Node& node, EntryKind kind = EntryKind::kRegular) {
  return {std::move(path), false, kind, node};
}
FileChange removal(std::string path) { return {std::move(path), true, EntryKind::kRegular, {}}; }

// Every path whose entry differs between `a` and `b`, as changes from a to b.
std::vector<FileChange> diff(const Files& a, const Files& b) {
  std::vector<FileChange> out;
  for (const auto& [path, line] : b) {
    auto it = a.find(path);
    if (it != a.end() && nodeFor(it->second) == nodeFor(line) && it->second.flag == line.flag) {
      continue;
    }
    out.push_back(fileAt(path, nodeFor(line), kindOf(line.flag)));
  }
  for (const auto& [path, line] : a) {
    if (!b.count(path)) out.push_back(removal(path));
  }
  return out;
}

// Applies a→b to the trees of `a` and checks the result against
// buildTrees(b): same root, and every tree of the full build that the base
// lacks is emitted, children before parents, each under its own hash.
void expectSameAsFullBuild(const Files& a, const Files& b, uint32_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  BuiltTrees base = buildTrees(manifestOf(linesOf(a)));
  ASSERT_TRUE(base.skipped.empty());
  BuiltTrees full = buildTrees(manifestOf(linesOf(b)));
  ASSERT_TRUE(full.skipped.empty());
  std::vector<FileChange> changes = diff(a, b);
  std::shuffle(changes.begin(), changes.end(), std::mt19937(seed));  // any order
  TreeSource source(base);
  auto applied = applyTreeChanges(base.root, changes, source.loader(), true);
  ASSERT_TRUE(applied.ok()) << applied.error().message();
  EXPECT_EQ(applied->root, full.root);
  EXPECT_TRUE(applied->skipped.empty());
  std::unordered_set<TreeId> emitted;
  for (const auto& [id, data] : applied->trees) {
    EXPECT_EQ(TreeId(hg::sha1Of(data)), id);
    auto tree = Tree::deserialize(data);
    ASSERT_TRUE(tree.ok()) << tree.error().message();
    EXPECT_EQ(tree->computeId(), id);
    for (const auto& e : tree->entries()) {
      if (e.isDirectory()) {
        EXPECT_TRUE(emitted.count(e.treeId()) || source.has(e.treeId()))
            << "a child neither emitted before its parent nor in the base";
      }
    }
    emitted.insert(id);
  }
  for (const auto& [id, data] : full.trees) {
    if (!source.has(id)) {
      EXPECT_TRUE(emitted.count(id)) << "a new tree is missing";
    }
  }
  if (changes.empty()) {
    EXPECT_TRUE(applied->trees.empty());
  }
}

// Random paths over few names, so that directories share prefixes, names
// sort around '/' ("a", "a-b", "a.txt", "a/...") and directories fill up
// and empty out.
class RandomFiles {
 public:
  explicit RandomFiles(uint32_t seed) : rng_(seed) {}

  std::string path() {
    static const char* kNames[] = {"a", "b", "a-b", "a.txt", "ab", "c0", "d", "e.c"};
    int depth = 1 + pick(4);
    std::string p;
    for (int i = 0; i < depth; ++i) {
      if (i) p += '/';
      p += kNames[pick(std::size(kNames))];
    }
    return p;
  }
  char flag() {
    int r = pick(10);
    return r == 0 ? 'x' : r == 1 ? 'l' : 0;
  }
  std::string content() { return "v" + std::to_string(rng_()); }
  // Whether `p` can join `files` without a file and a directory sharing a
  // name (what buildTrees would leave out).
  static bool fits(const Files& files, const std::string& p) {
    for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
      if (files.count(p.substr(0, slash))) return false;
    }
    auto it = files.lower_bound(p + "/");
    return it == files.end() || it->first.compare(0, p.size() + 1, p + "/") != 0;
  }
  Files manifest(int n) {
    Files files;
    for (int i = 0; i < n; ++i) add(files);
    return files;
  }
  void add(Files& files) {
    for (int tries = 0; tries < 20; ++tries) {
      std::string p = path();
      if (!files.count(p) && fits(files, p)) {
        files[p] = {p, flag(), content()};
        return;
      }
    }
  }
  // One random edit of `files`.
  void edit(Files& files) {
    if (files.empty()) return add(files);
    auto it = files.begin();
    std::advance(it, pick(files.size()));
    switch (pick(7)) {
      case 0:
        add(files);
        break;
      case 1:  // new content
        it->second.content = content();
        break;
      case 2:  // another kind, same node
        it->second.flag = it->second.flag == 'x' ? 'l' : it->second.flag == 'l' ? 0 : 'x';
        break;
      case 3:
        files.erase(it);
        break;
      case 4: {  // a whole subtree: every file below one of its directories
        size_t slash = it->first.find('/');
        if (slash == std::string::npos) break;
        std::string dir = it->first.substr(0, slash + 1);
        if (pick(2)) dir = it->first.substr(0, it->first.rfind('/') + 1);
        for (auto j = files.lower_bound(dir); j != files.end() && j->first.rfind(dir, 0) == 0;) {
          j = files.erase(j);
        }
        break;
      }
      case 5: {  // a deep new directory below an existing one
        size_t slash = it->first.rfind('/');
        std::string p = (slash == std::string::npos ? "" : it->first.substr(0, slash + 1)) + "new" +
                        std::to_string(pick(3)) + "/x/y/f" + std::to_string(pick(3));
        if (!files.count(p) && fits(files, p)) files[p] = {p, flag(), content()};
        break;
      }
      case 6: {  // a directory replaced by a file of its name, or a file by a directory
        size_t slash = it->first.find('/');
        if (slash != std::string::npos) {
          std::string dir = it->first.substr(0, slash);
          for (auto j = files.lower_bound(dir + "/");
               j != files.end() && j->first.rfind(dir + "/", 0) == 0;) {
            j = files.erase(j);
          }
          files[dir] = {dir, flag(), content()};
        } else {
          std::string p = it->first + "/inside";
          files.erase(it);
          files[p] = {p, flag(), content()};
        }
        break;
      }
    }
  }

 private:
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  std::mt19937 rng_;
};

TEST(ApplyTreeChangesTest, RandomEditsGiveTheFullBuild) {
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    RandomFiles random(seed);
    Files a = random.manifest(1 + static_cast<int>(seed % 60));
    Files b = a;
    int edits = 1 + static_cast<int>(seed % 7);
    for (int i = 0; i < edits; ++i) random.edit(b);
    expectSameAsFullBuild(a, b, seed);
    if (HasFatalFailure() || HasFailure()) return;
  }
}

TEST(ApplyTreeChangesTest, HandPickedEdits) {
  Files base;
  for (const char* p : {"README", "a/b/c/d/file", "a/b/c/other", "a/b/sib/x", "a/y", "a.txt", "a-b",
                        "q/r/s", "only/one", "bin/run.sh"}) {
    base[p] = {p};
  }
  auto edited = [&](auto&& edit) {
    Files b = base;
    edit(b);
    return b;
  };
  uint32_t n = 0;
  // Nothing changed: the base root, nothing emitted.
  expectSameAsFullBuild(base, base, ++n);
  // A content change deep down.
  expectSameAsFullBuild(base, edited([](Files& f) { f["a/b/c/d/file"].content = "new"; }), ++n);
  // Exec bit on, then a symlink: same node, another kind.
  expectSameAsFullBuild(base, edited([](Files& f) { f["bin/run.sh"].flag = 'x'; }), ++n);
  expectSameAsFullBuild(base, edited([](Files& f) { f["README"].flag = 'l'; }), ++n);
  // The last file of a directory: the directory goes, and its parent too.
  expectSameAsFullBuild(base, edited([](Files& f) { f.erase("only/one"); }), ++n);
  expectSameAsFullBuild(base, edited([](Files& f) { f.erase("q/r/s"); }), ++n);
  // A whole subtree.
  expectSameAsFullBuild(base, edited([](Files& f) {
                          for (const char* p : {"a/b/c/d/file", "a/b/c/other", "a/b/sib/x"}) {
                            f.erase(p);
                          }
                        }),
                        ++n);
  // New deep directories, at the top and below an existing one.
  expectSameAsFullBuild(base, edited([](Files& f) {
                          f["new/x/y/z"] = {"new/x/y/z"};
                          f["a/b/c/d/e/f/g"] = {"a/b/c/d/e/f/g", 'x'};
                        }),
                        ++n);
  // A directory replaced by a file of the same name, and the reverse.
  expectSameAsFullBuild(base, edited([](Files& f) {
                          f.erase("q/r/s");
                          f["q"] = {"q"};
                        }),
                        ++n);
  expectSameAsFullBuild(base, edited([](Files& f) {
                          f.erase("README");
                          f["README/inside"] = {"README/inside"};
                        }),
                        ++n);
  // Every file: an empty root, as for an empty manifest.
  expectSameAsFullBuild(base, {}, ++n);
}

struct Refusal {
  std::string what;
  std::vector<FileChange> changes;
  ErrorKind kind;
};

TEST(ApplyTreeChangesTest, RefusesWhatBuildTreesWouldLeaveOut) {
  std::vector<Line> lines = {{"README"}, {"a/b/c"}, {"a/d"}, {"only/one"}, {"x"}};
  BuiltTrees base = buildTrees(manifestOf(lines));
  hg::Node n = hg::sha1Of("new");
  std::vector<Refusal> cases = {
      {"an invalid name", {fileAt("a/../b", n)}, ErrorKind::kUnsupported},
      {".hg", {fileAt("sub/.hg/x", n)}, ErrorKind::kUnsupported},
      {"an empty name", {fileAt("a//b", n)}, ErrorKind::kUnsupported},
      {"a file where a directory stays", {fileAt("a", n)}, ErrorKind::kUnsupported},
      {"a directory where a file stays", {fileAt("x/y", n)}, ErrorKind::kUnsupported},
      {"a new file and directory of one name",
       {fileAt("new", n), fileAt("new/f", n)},
       ErrorKind::kUnsupported},
      {"removing what is not there", {removal("nothere")}, ErrorKind::kUnsupported},
      {"removing a directory as a file", {removal("a")}, ErrorKind::kUnsupported},
      {"removing below a file", {removal("x/y")}, ErrorKind::kUnsupported},
      {"a path changed twice", {fileAt("a/d", n), removal("a/d")}, ErrorKind::kInvalidArgument},
  };
  for (const auto& c : cases) {
    TreeSource source(base);
    auto applied = applyTreeChanges(base.root, c.changes, source.loader(), true);
    ASSERT_FALSE(applied.ok()) << c.what;
    EXPECT_EQ(applied.error().kind, c.kind) << c.what << ": " << applied.error().message();
  }
}

// A directory that becomes empty is dropped only when the base trees hold
// their whole manifest: otherwise it may hide a file of its own name, or
// hold entries buildTrees left out, that keep or replace it.
TEST(ApplyTreeChangesTest, EmptiedDirectoryNeedsACompleteBase) {
  std::vector<Line> lines = {{"a"}, {"a/b"}, {"c"}};  // the file "a" is left out
  BuiltTrees base = buildTrees(manifestOf(lines));
  ASSERT_EQ(base.skipped.size(), 1u);
  std::vector<FileChange> removeB = {removal("a/b")};
  TreeSource source(base);
  auto refused = applyTreeChanges(base.root, removeB, source.loader(), false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kUnsupported) << refused.error().message();
  // What buildTrees gives instead: the file comes back.
  EXPECT_NE(buildTrees(manifestOf({{"a"}, {"c"}})).root, buildTrees(manifestOf({{"c"}})).root);
  // Changes that empty nothing are fine with an incomplete base.
  std::vector<FileChange> changeC = {fileAt("c", hg::sha1Of("c2"), EntryKind::kExecutable)};
  auto applied = applyTreeChanges(base.root, changeC, source.loader(), false);
  ASSERT_TRUE(applied.ok()) << applied.error().message();
  EXPECT_EQ(applied->root, buildTrees(manifestOf({{"a"}, {"a/b"}, {"c", 'x', "c2"}})).root);
}

TEST(ApplyTreeChangesTest, LoadsOnlyTheChangedPathsAndReportsAMissingTree) {
  Files files;
  for (int d = 0; d < 20; ++d) {
    for (int f = 0; f < 5; ++f) {
      std::string p = "d" + std::to_string(d) + "/sub/f" + std::to_string(f);
      files[p] = {p};
    }
  }
  BuiltTrees base = buildTrees(manifestOf(linesOf(files)));
  std::vector<FileChange> changes = {fileAt("d7/sub/f2", hg::sha1Of("v2"))};
  TreeSource source(base);
  auto applied = applyTreeChanges(base.root, changes, source.loader(), true);
  ASSERT_TRUE(applied.ok()) << applied.error().message();
  EXPECT_EQ(source.loads, 3) << "root, d7, d7/sub";
  EXPECT_EQ(applied->trees.size(), 3u);

  Walked w = walk(base);
  source.failing = w.dirs.at("d7");
  auto missing = applyTreeChanges(base.root, changes, source.loader(), true);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound) << missing.error().message();
  EXPECT_NE(missing.error().message().find("'d7'"), std::string::npos) << missing.error().message();
}

}  // namespace
}  // namespace hgvfs::store
