// FileSystem::checkout (fs/checkout.cpp) driven directly, without FUSE,
// over revisions the real hg made, with the actions a clean `hg update`
// computes (the difference of the two manifests: a get for every file
// added or changed, a remove for every file gone, an exec for a flag-only
// change).
//
// What is checked: after a checkout the mount holds exactly the target's
// files (names, kinds, exec bits, bytes, symlink targets), diff() against
// the target is empty, and a remount shows the same; an untouched mount
// takes the target's trees whole (nothing materialized, no overlay file);
// loaded directories keep their inode numbers, and a file replaced or
// removed under a holder keeps reading what it was; local changes outside
// the actions stay; what needs the other kind of entry at a path is left
// to the caller; materialized directories on changed paths are edited and
// given back to the revision when they equal it.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fs/file_system.h"
#include "hgbridge/repository.h"
#include "tests/support/test_support.h"

namespace hgvfs::fs {
namespace {

namespace stdfs = std::filesystem;
using test::TempDir;

void must(const test::CommandResult& r, const std::string& what) {
  if (r.exitCode != 0) throw std::runtime_error(what + ": " + r.err);
}

void write(const std::string& repo, const std::string& path, const std::string& bytes) {
  stdfs::create_directories(stdfs::path(repo + "/" + path).parent_path());
  test::writeFile(repo + "/" + path, bytes);
}

void setExec(const std::string& repo, const std::string& path, bool exec) {
  auto p = stdfs::perms::owner_exec | stdfs::perms::group_exec | stdfs::perms::others_exec;
  stdfs::permissions(repo + "/" + path, p,
                     exec ? stdfs::perm_options::add : stdfs::perm_options::remove);
}

// rev 0 → rev 1: a file changed, a directory removed whole (b), a file
// that becomes a directory (c) and a directory that becomes a file (d), a
// flag-only change (run.sh), a symlink that becomes a file (link), a new
// deep directory (e/new), a few changes in a wide directory (wide), and
// directories that do not change (same, a/sub). rev 2: from rev 1, back
// and further (d a directory again, b back with other content, wide
// changed elsewhere, run.sh a symlink).
void makeRepo(const std::string& repo) {
  must(test::hg({"init", repo}), "hg init");
  write(repo, "a/one.txt", "one\n");
  write(repo, "a/two.txt", "two\n");
  write(repo, "a/sub/deep.txt", "deep\n");
  write(repo, "b/x.txt", "x\n");
  write(repo, "b/y/z.txt", "z\n");
  write(repo, "c", "c is a file\n");
  write(repo, "d/f.txt", "in d\n");
  write(repo, "run.sh", "#!/bin/sh\n");
  stdfs::create_symlink("a/one.txt", repo + "/link");
  write(repo, "same/keep.txt", "keep\n");
  for (int i = 0; i < 40; ++i) write(repo, "wide/f" + std::to_string(i), std::to_string(i) + "\n");
  must(test::hg({"commit", "-A", "-q", "-m", "r0"}, repo), "commit r0");

  write(repo, "a/two.txt", "two, changed\n");
  stdfs::remove_all(repo + "/b");
  stdfs::remove(repo + "/c");
  write(repo, "c/inner.txt", "c is a directory\n");
  stdfs::remove_all(repo + "/d");
  write(repo, "d", "d is a file\n");
  setExec(repo, "run.sh", true);
  stdfs::remove(repo + "/link");
  write(repo, "link", "link is a file\n");
  write(repo, "e/new/n.txt", "new\n");
  write(repo, "wide/f3", "three\n");
  write(repo, "wide/f30", "thirty\n");
  stdfs::remove(repo + "/wide/f7");
  must(test::hg({"commit", "-A", "-q", "-m", "r1"}, repo), "commit r1");

  stdfs::remove(repo + "/d");
  write(repo, "d/g.txt", "d again\n");
  write(repo, "b/x.txt", "x, back\n");
  write(repo, "wide/f12", "twelve\n");
  write(repo, "wide/f41", "forty-one\n");
  stdfs::remove(repo + "/run.sh");
  stdfs::create_symlink("same/keep.txt", repo + "/run.sh");
  write(repo, "a/sub/deep.txt", "deeper\n");
  must(test::hg({"addremove", "-q"}, repo), "addremove r2");
  must(test::hg({"commit", "-q", "-m", "r2"}, repo), "commit r2");
}

struct File {
  Bytes node;  // hex
  char flag;   // ' ', '*' or '@'
};

std::map<Bytes, File> manifestOf(const std::string& repo, int rev) {
  auto r = test::hg({"manifest", "--debug", "-r", std::to_string(rev)}, repo);
  must(r, "hg manifest");
  std::map<Bytes, File> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) out[line.substr(47)] = {line.substr(0, 40), line[45]};
  return out;
}

// What a clean update from `a` to `b` asks for.
std::vector<CheckoutAction> updateActions(const std::map<Bytes, File>& a,
                                          const std::map<Bytes, File>& b) {
  std::vector<CheckoutAction> out;
  for (const auto& [path, f] : a) {
    if (!b.count(path)) out.push_back({path, CheckoutAction::Kind::kRemove});
  }
  for (const auto& [path, f] : b) {
    auto it = a.find(path);
    if (it == a.end() || it->second.node != f.node) {
      out.push_back({path, CheckoutAction::Kind::kGet});
    } else if (it->second.flag != f.flag) {
      out.push_back({path, CheckoutAction::Kind::kExec});
    }
  }
  return out;
}

using Files = std::map<Bytes, std::string>;  // path -> "f|x|l content"

// One line per file, for messages.
std::string render(const Files& files) {
  std::string lines;
  for (const auto& [path, what] : files) lines += path + " " + printable(what) + "\n";
  return lines;
}

// A revision's files, as `hg cat` gives them.
Files expectedTree(const std::string& repo, int rev, const std::string& scratch) {
  auto manifest = manifestOf(repo, rev);
  std::string out = scratch + "/cat-" + std::to_string(rev);
  std::vector<std::string> args = {"cat", "-r", std::to_string(rev), "-o", out + "/%p"};
  for (const auto& [path, f] : manifest) args.push_back(path);
  must(test::hg(args, repo), "hg cat");
  Files files;
  for (const auto& [path, f] : manifest) {
    std::string kind = f.flag == '@' ? "l" : f.flag == '*' ? "x" : "f";
    files[path] = kind + " " + test::readFile(out + "/" + path);
  }
  return files;
}

// The mount's files the same way (directories are implied by the paths).
void walk(FileSystem& fs, InodeNumber dir, const Bytes& path, std::map<Bytes, std::string>& out) {
  uint64_t after = 0;
  while (true) {
    auto page = fs.list(dir, after, 100);
    if (!page.ok()) throw std::runtime_error("list: " + page.error().message());
    if (page->empty()) return;
    for (const ListedEntry& e : *page) {
      after = e.cookie;
      Bytes child = path.empty() ? e.name : path + "/" + e.name;
      auto st = fs.lookup(dir, e.name);
      if (!st.ok()) throw std::runtime_error("lookup " + child + ": " + st.error().message());
      InodeNumber ino(st->st_ino);
      if (S_ISDIR(st->st_mode)) {
        walk(fs, ino, child, out);
      } else if (S_ISLNK(st->st_mode)) {
        auto target = fs.readlink(ino);
        if (!target.ok()) throw std::runtime_error("readlink " + child);
        out[child] = "l " + *target;
      } else {
        Bytes content(static_cast<size_t>(st->st_size), '\0');
        auto n = fs.read(ino, content.data(), content.size(), 0);
        if (!n.ok()) throw std::runtime_error("read " + child + ": " + n.error().message());
        content.resize(*n);
        out[child] = std::string((st->st_mode & 0100) ? "x " : "f ") + content;
      }
      fs.forget(ino, 1);
    }
  }
}

std::string mountTree(FileSystem& fs) {
  Files files;
  walk(fs, kRootInode, Bytes(), files);
  return render(files);
}

Result<struct stat> lookupPath(FileSystem& fs, ByteView path) {
  Result<struct stat> st = fs.getattr(kRootInode);
  size_t start = 0;
  while (start < path.size() && st.ok()) {
    size_t slash = path.find('/', start);
    if (slash == ByteView::npos) slash = path.size();
    st = fs.lookup(InodeNumber(st->st_ino), path.substr(start, slash - start));
    start = slash + 1;
  }
  return st;
}

InodeNumber inodeOf(FileSystem& fs, ByteView path) {
  auto st = lookupPath(fs, path);
  if (!st.ok()) throw std::runtime_error("lookup " + Bytes(path) + ": " + st.error().message());
  return InodeNumber(st->st_ino);
}

Bytes readAll(FileSystem& fs, InodeNumber ino) {
  Bytes out(1 << 16, '\0');
  auto n = fs.read(ino, out.data(), out.size(), 0);
  if (!n.ok()) throw std::runtime_error("read: " + n.error().message());
  out.resize(*n);
  return out;
}

void rewrite(FileSystem& fs, InodeNumber ino, ByteView bytes) {
  AttrChange truncate;
  truncate.size = 0;
  ASSERT_TRUE(fs.setattr(ino, truncate).ok());
  auto n = fs.write(ino, bytes.data(), bytes.size(), 0);
  ASSERT_TRUE(n.ok()) << n.error().message();
}

std::string diffOf(FileSystem& fs, const store::TreeId& rev) {
  auto d = fs.diff(rev, {});
  if (!d.ok()) return "<error " + d.error().message() + ">";
  std::string out;
  for (const auto& p : d->modified) out += "M " + p + "\n";
  for (const auto& p : d->added) out += "A " + p + "\n";
  for (const auto& p : d->removed) out += "R " + p + "\n";
  return out;
}

class CheckoutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    try {
      makeRepo(repoPath());
      for (int rev = 0; rev < 3; ++rev) {
        manifests_[rev] = manifestOf(repoPath(), rev);
        files_[rev] = expectedTree(repoPath(), rev, dir_->path());
        trees_[rev] = render(files_[rev]);
      }
    } catch (const std::exception& e) {
      error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete error_;
    dir_ = nullptr;
    error_ = nullptr;
  }
  static std::string repoPath() { return dir_->path() + "/repo"; }

  void SetUp() override {
    ASSERT_EQ(error_, nullptr) << *error_;
    auto repo = hg::Repository::open(repoPath());
    ASSERT_TRUE(repo.ok()) << repo.error().message();
    auto store = store::ObjectStore::open(std::move(repo).value(), tmp_.path() + "/cache");
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(store).value();
    for (int rev = 0; rev < 3; ++rev) {
      auto t = store_->importCommit(hg::Revision(rev));
      ASSERT_TRUE(t.ok()) << t.error().message();
      rev_[rev] = *t;
    }
    mount();
  }

  void mount() {
    auto overlay = Overlay::open(tmp_.path() + "/overlay");
    ASSERT_TRUE(overlay.ok()) << overlay.error().message();
    FileSystemOptions o;
    o.uid = getuid();
    o.gid = getgid();
    fs_ = std::make_unique<FileSystem>(store_, rev_[0], std::move(overlay).value(), o);
    ASSERT_TRUE(fs_->start().ok());
  }
  void remount() {
    fs_.reset();
    mount();
  }

  CheckoutResult update(int from, int to, std::vector<CheckoutAction> actions = {}) {
    if (actions.empty()) actions = updateActions(manifests_[from], manifests_[to]);
    auto r = fs_->checkout(rev_[from], rev_[to], std::move(actions));
    if (!r.ok()) throw std::runtime_error("checkout: " + r.error().message());
    return *r;
  }

  // What the extension leaves to hg for a flag change on a file of its own
  // content: a chmod through the mount.
  void chmodLeft(const CheckoutResult& r, int to) {
    for (const Bytes& path : r.left) {
      const File& f = manifests_[to].at(path);
      AttrChange mode;
      mode.mode = f.flag == '*' ? 0755 : 0644;
      InodeNumber ino = inodeOf(*fs_, path);
      ASSERT_TRUE(fs_->setattr(ino, mode).ok()) << path;
      fs_->forget(ino, 1);
    }
  }

  size_t overlayFiles() const {
    size_t n = 0;
    std::string root = tmp_.path() + "/overlay/files";
    if (!stdfs::exists(root)) return 0;
    for (const auto& e : stdfs::recursive_directory_iterator(root)) n += e.is_regular_file();
    return n;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string* error_ = nullptr;
  static inline std::map<Bytes, File> manifests_[3];
  static inline Files files_[3];
  static inline std::string trees_[3];
  TempDir tmp_;
  std::shared_ptr<store::ObjectStore> store_;
  store::TreeId rev_[3];
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(CheckoutTest, AnUntouchedMountTakesTheTargetsTreesWhole) {
  ASSERT_EQ(mountTree(*fs_), trees_[0]);
  for (auto [from, to] : {std::pair{0, 1}, std::pair{1, 2}, std::pair{2, 0}, std::pair{0, 2},
                          std::pair{2, 1}, std::pair{1, 0}}) {
    SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to));
    CheckoutResult r = update(from, to);
    EXPECT_TRUE(r.left.empty());
    EXPECT_EQ(r.applied, updateActions(manifests_[from], manifests_[to]).size());
    EXPECT_EQ(r.directoriesMaterialized, 0u);
    EXPECT_GT(r.directoriesSwapped, 0u);
    EXPECT_EQ(overlayFiles(), 0u);
    EXPECT_EQ(diffOf(*fs_, rev_[to]), "");
    EXPECT_EQ(mountTree(*fs_), trees_[to]);
    remount();
    EXPECT_EQ(mountTree(*fs_), trees_[to]);
  }
}

// The walk before the update loads every inode, as a shell that looked
// around would have them.
TEST_F(CheckoutTest, LoadedEntriesFollowAndHeldFilesKeepWhatTheyWere) {
  ASSERT_EQ(mountTree(*fs_), trees_[0]);
  InodeNumber a = inodeOf(*fs_, "a");
  InodeNumber sub = inodeOf(*fs_, "a/sub");
  InodeNumber two = inodeOf(*fs_, "a/two.txt");
  InodeNumber one = inodeOf(*fs_, "a/one.txt");
  InodeNumber x = inodeOf(*fs_, "b/x.txt");
  InodeNumber b = inodeOf(*fs_, "b");
  InodeNumber f3 = inodeOf(*fs_, "wide/f3");
  update(0, 1);
  EXPECT_EQ(mountTree(*fs_), trees_[1]);
  EXPECT_EQ(diffOf(*fs_, rev_[1]), "");
  // Directories stay where they were; unchanged files too.
  EXPECT_EQ(inodeOf(*fs_, "a"), a);
  EXPECT_EQ(inodeOf(*fs_, "a/sub"), sub);
  EXPECT_EQ(inodeOf(*fs_, "a/one.txt"), one);
  // A changed file is a new inode; the old one reads what it was.
  InodeNumber twoNow = inodeOf(*fs_, "a/two.txt");
  EXPECT_NE(twoNow, two);
  EXPECT_EQ(readAll(*fs_, twoNow), "two, changed\n");
  EXPECT_EQ(readAll(*fs_, two), "two\n");
  EXPECT_EQ(readAll(*fs_, inodeOf(*fs_, "wide/f3")), "three\n");
  EXPECT_EQ(readAll(*fs_, f3), "3\n");
  // A removed directory is gone; what a holder had still reads.
  EXPECT_FALSE(lookupPath(*fs_, "b").ok());
  EXPECT_EQ(readAll(*fs_, x), "x\n");
  auto st = fs_->getattr(b);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_nlink, 0u);
  // Back, with everything loaded again.
  ASSERT_EQ(mountTree(*fs_), trees_[1]);
  update(1, 0);
  EXPECT_EQ(mountTree(*fs_), trees_[0]);
  EXPECT_EQ(inodeOf(*fs_, "a"), a);
  EXPECT_EQ(diffOf(*fs_, rev_[0]), "");
  EXPECT_EQ(overlayFiles(), 0u);
}

// Changes outside the update's actions stay as they were: an edit, an
// untracked file in a directory the update removes (which then stays, as
// hg leaves it), an untracked directory.
TEST_F(CheckoutTest, LocalChangesOutsideTheActionsStay) {
  rewrite(*fs_, inodeOf(*fs_, "same/keep.txt"), "kept, edited\n");
  auto made = fs_->create(inodeOf(*fs_, "b"), "untracked.txt", 0644, Caller{getuid(), getgid()});
  ASSERT_TRUE(made.ok()) << made.error().message();
  ASSERT_TRUE(fs_->mkdir(kRootInode, "mine", 0755, Caller{getuid(), getgid()}).ok());
  CheckoutResult r = update(0, 1);
  EXPECT_TRUE(r.left.empty());
  EXPECT_EQ(diffOf(*fs_, rev_[1]), "M same/keep.txt\nA b/untracked.txt\n");
  Files files = files_[1];
  files["b/untracked.txt"] = "f ";
  files["same/keep.txt"] = "f kept, edited\n";
  std::string want = render(files);
  EXPECT_EQ(mountTree(*fs_), want);
  remount();
  EXPECT_EQ(mountTree(*fs_), want);
  EXPECT_TRUE(lookupPath(*fs_, "mine").ok());
  // And back: b/x.txt and b/y/z.txt come back beside the untracked file.
  r = update(1, 0);
  EXPECT_TRUE(r.left.empty());
  EXPECT_EQ(diffOf(*fs_, rev_[0]), "M same/keep.txt\nA b/untracked.txt\n");
}

// What needs the other kind of entry at a path makes the whole checkout
// refused (the caller's own update handles it, or stops where hg stops); a
// flag change on a file with its own content is left to the caller.
TEST_F(CheckoutTest, PathsInTheWayRefuseTheCheckout) {
  Caller me{getuid(), getgid()};
  // An untracked file `e` where rev 1 has a directory e/new.
  ASSERT_TRUE(fs_->create(kRootInode, "e", 0644, me).ok());
  // An untracked file in d/, which rev 1 makes a file.
  ASSERT_TRUE(fs_->create(inodeOf(*fs_, "d"), "mine.txt", 0644, me).ok());
  // run.sh edited: its flag change keeps the edit (hg does the chmod).
  rewrite(*fs_, inodeOf(*fs_, "run.sh"), "#!/bin/sh\necho edited\n");
  std::string before = mountTree(*fs_);
  CheckoutResult r = update(0, 1);
  // Paths in the way: nothing is applied.
  EXPECT_EQ(r.refused, (std::vector<Bytes>{"d", "e/new/n.txt"}));
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(mountTree(*fs_), before);
  remount();
  EXPECT_EQ(mountTree(*fs_), before);
  // Without them, the flag change on the edited file is left, the rest done.
  ASSERT_TRUE(fs_->unlink(kRootInode, "e").ok());
  ASSERT_TRUE(fs_->unlink(inodeOf(*fs_, "d"), "mine.txt").ok());
  r = update(0, 1);
  EXPECT_TRUE(r.refused.empty());
  EXPECT_EQ(r.left, (std::vector<Bytes>{"run.sh"}));
  EXPECT_EQ(r.applied, updateActions(manifests_[0], manifests_[1]).size() - 1);
  EXPECT_EQ(diffOf(*fs_, rev_[1]), "M run.sh\n");
}

// Directories already materialized (equal to the source revision) and
// actions that are not a whole difference (a partial update): edited
// entry by entry, and given back to the revision when equal to it.
TEST_F(CheckoutTest, MaterializedDirectoriesAreEditedAndGivenBack) {
  std::mt19937 rng(11);
  int at = 0;
  size_t materialized = 0, dematerialized = 0, swapped = 0;
  auto count = [&](const CheckoutResult& r) {
    materialized += r.directoriesMaterialized;
    dematerialized += r.directoriesDematerialized;
    swapped += r.directoriesSwapped;
    return r;
  };
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Materialize a few files with their own bytes (equal to the revision).
    for (const auto& [path, f] : manifests_[at]) {
      if (f.flag == '@' || rng() % 4 != 0) continue;
      InodeNumber ino = inodeOf(*fs_, path);
      Bytes bytes = readAll(*fs_, ino);
      rewrite(*fs_, ino, bytes);
      fs_->forget(ino, 1);
    }
    ASSERT_EQ(diffOf(*fs_, rev_[at]), "");
    int to = static_cast<int>(rng() % 3);
    auto actions = updateActions(manifests_[at], manifests_[to]);
    if (round % 3 == 2 && actions.size() > 2) {
      // A partial update: half the actions, then the other half.
      std::vector<CheckoutAction> first(actions.begin(), actions.begin() + actions.size() / 2);
      std::vector<CheckoutAction> second(actions.begin() + actions.size() / 2, actions.end());
      chmodLeft(count(update(at, to, first)), to);
      chmodLeft(count(update(at, to, second)), to);
    } else if (!actions.empty()) {
      chmodLeft(count(update(at, to, actions)), to);
    }
    at = to;
    EXPECT_EQ(diffOf(*fs_, rev_[at]), "");
    EXPECT_EQ(mountTree(*fs_), trees_[at]);
    if (round % 4 == 3) {
      remount();
      EXPECT_EQ(mountTree(*fs_), trees_[at]);
    }
  }
  // Each way was taken.
  EXPECT_GT(materialized, 0u);
  EXPECT_GT(dematerialized, 0u);
  EXPECT_GT(swapped, 0u);
}

TEST_F(CheckoutTest, BadActionsAreRefusedAndChangeNothing) {
  for (const char* bad : {"", "/a", "a//b", "a/../b", ".hg/x", "a/./b", "a/"}) {
    auto r = fs_->checkout(rev_[0], rev_[1], {{bad, CheckoutAction::Kind::kGet}});
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto twice = fs_->checkout(
      rev_[0], rev_[1],
      {{"a/two.txt", CheckoutAction::Kind::kGet}, {"a/two.txt", CheckoutAction::Kind::kRemove}});
  EXPECT_FALSE(twice.ok());
  EXPECT_EQ(mountTree(*fs_), trees_[0]);
}

}  // namespace
}  // namespace hgvfs::fs
