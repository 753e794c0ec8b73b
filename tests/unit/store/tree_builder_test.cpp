// buildTrees (store/tree_builder.h): directory trees from flat manifests.
//
// Manifests are written by hand (Manifest::parse of "path\0<40 hex>[x|l]\n"
// lines, sorted) to reach names stock hg never writes; a real repository
// made by `hg` checks that tree ids are content addressed across commits.
// Walking the built trees back into a flat list must give the manifest
// minus exactly the entries reported in `skipped`.

#include "store/tree_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <map>
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

}  // namespace
}  // namespace hgvfs::store
