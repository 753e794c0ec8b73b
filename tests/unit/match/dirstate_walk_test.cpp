// WalkView (match/dirstate_walk.h) against `hg status PATTERNS` in a
// working copy made by the real hg.
//
// The test does what `hgvfs status` does with the daemon's answer, without
// a mount: it takes hg's complete status (`hg status -A`), filters it
// through a matcher and a WalkView, formats it as hg does, and compares the
// bytes with `hg status ARGS` run in the same directory, warnings included.

#include "match/dirstate_walk.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "match/matcher.h"
#include "match/paths.h"
#include "tests/support/test_support.h"

namespace hgvfs::match {
namespace {

namespace fs = std::filesystem;
using test::hg;
using test::TempDir;
using test::writeFile;

constexpr char kCategories[] = "MAR!?IC";

// A repository with every kind of status entry: modified, added, removed,
// deleted (a file, and an added one), unknown, ignored (by name and by
// directory), clean, a copy, a directory whose tracked files are all gone.
class WalkFixture {
 public:
  WalkFixture() {
    root_ = fs::canonical(dir_.path()).string() + "/repo";
    EXPECT_EQ(hg({"init", root_}).exitCode, 0);
    for (const char* f : {"Makefile", "a/t", "a/b/q.txt", "src/a.c", "src/lib/b.c", "docs/README",
                          "gone/one", "gone/two", "x.c"}) {
      make(f, "1\n");
    }
    make(".hgignore", "syntax: glob\n*.o\nbuild/\n");
    EXPECT_EQ(hg({"commit", "-q", "-A", "-m", "one"}, root_).exitCode, 0);
    make("src/a.c", "changed\n");
    fs::remove(root_ + "/docs/README");
    fs::remove_all(root_ + "/gone");
    EXPECT_EQ(hg({"rm", "-q", "a/b/q.txt"}, root_).exitCode, 0);
    make("a/added.txt", "a\n");
    make("a/gone.txt", "g\n");
    EXPECT_EQ(hg({"add", "-q", "a/added.txt", "a/gone.txt"}, root_).exitCode, 0);
    fs::remove(root_ + "/a/gone.txt");
    EXPECT_EQ(hg({"cp", "-q", "src/a.c", "src/copy.c"}, root_).exitCode, 0);
    for (const char* f : {"a/u", "a/b/u", "top.txt", "newdir/n.c", "newdir/deep/d.c", "a/z.o",
                          "build/out", "build/sub/x.c", "src/lib/new.c"}) {
      make(f, "u\n");
    }
    EXPECT_EQ(::mkfifo((root_ + "/pipe").c_str(), 0644), 0);
    auto all = hg({"status", "-A", "--print0"}, root_);
    EXPECT_EQ(all.exitCode, 0) << all.err;
    size_t pos = 0;
    while (pos < all.out.size()) {
      size_t end = all.out.find('\0', pos);
      std::string entry = all.out.substr(pos, end - pos);
      pos = end + 1;
      size_t category = std::string(kCategories).find(entry[0]);
      if (category != std::string::npos)
        lists_[category].push_back(entry.substr(2));  // not a copy source
    }
  }

  const std::string& root() const { return root_; }

  // hg's status lines for `args`, from the complete status.
  test::CommandResult ours(const std::string& cwd, const std::vector<std::string>& patterns,
                           const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude, bool listIgnored) const {
    test::CommandResult r;
    MatchOptions options;
    options.root = root_;
    options.cwd = cwd;
    auto m = buildMatcher(options, patterns, include, exclude, Kind::kRelpath);
    if (!m.ok()) {
      r.exitCode = 255;
      r.err = "abort: " + m.error().what + "\n";
      return r;
    }
    WalkView::Probe probe;
    probe.lstat = [&](const std::string& rel) {
      PathKind kind;
      struct stat st {};
      if (::lstat((root_ + "/" + rel).c_str(), &st) != 0) {
        kind.err = errno;
        return kind;
      }
      kind.mode = st.st_mode;
      kind.type = S_ISDIR(st.st_mode)                          ? PathKind::kDirectory
                  : S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) ? PathKind::kFile
                                                               : PathKind::kOther;
      return kind;
    };
    probe.inDirstate = [&](const std::string& rel) {
      for (int i : {0, 1, 2, 3, 6}) {
        if (std::count(lists_[i].begin(), lists_[i].end(), rel)) return true;
      }
      return false;
    };
    probe.dirstateHasDir = [&](const std::string& dir) {
      for (int i : {2, 3}) {
        for (const auto& p : lists_[i]) {
          if (p.rfind(dir + "/", 0) == 0) return true;
        }
      }
      return false;
    };
    WalkView walk(**m, probe);
    for (const auto& [path, message] : walk.bad()) {
      r.err += pathTo(cwd, path) + ": " + message + "\n";
    }
    std::string base = patterns.empty() ? "" : cwd;
    for (int i = 0; i < (listIgnored ? 6 : 5); ++i) {
      for (const auto& p : lists_[i]) {
        bool shown = i == 4 || i == 5 ? walk.showsUntracked(p) : walk.showsTracked(p);
        if (shown) r.out += std::string(1, kCategories[i]) + " " + pathTo(base, p) + "\n";
      }
    }
    r.exitCode = 0;
    return r;
  }

 private:
  void make(const std::string& rel, const std::string& content) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    writeFile(root_ + "/" + rel, content);
  }

  TempDir dir_;
  std::string root_;
  std::vector<std::string> lists_[7];
};

struct Case {
  std::string cwd;
  std::vector<std::string> patterns, include, exclude;
  bool ignored = true;  // -mardui; otherwise plain `hg status` (-mardu)
};

Case make(std::string cwd, std::vector<std::string> patterns, std::vector<std::string> include = {},
          std::vector<std::string> exclude = {}, bool ignored = true) {
  Case c;
  c.cwd = std::move(cwd);
  c.patterns = std::move(patterns);
  c.include = std::move(include);
  c.exclude = std::move(exclude);
  c.ignored = ignored;
  return c;
}

std::string describe(const Case& c) {
  std::string s = "in '" + c.cwd + "': hg status" + (c.ignored ? " -mardui" : "");
  for (const auto& p : c.include) s += " -I '" + p + "'";
  for (const auto& p : c.exclude) s += " -X '" + p + "'";
  for (const auto& p : c.patterns) s += " '" + p + "'";
  return s;
}

int check(const WalkFixture& fx, const Case& c) {
  std::vector<std::string> args{"status"};
  if (c.ignored) args.push_back("-mardui");
  for (const auto& p : c.include) args.insert(args.end(), {"-I", p});
  for (const auto& p : c.exclude) args.insert(args.end(), {"-X", p});
  args.insert(args.end(), c.patterns.begin(), c.patterns.end());
  auto want = hg(args, fx.root() + (c.cwd.empty() ? "" : "/" + c.cwd));
  auto got = fx.ours(c.cwd, c.patterns, c.include, c.exclude, c.ignored);
  EXPECT_EQ(got.exitCode, want.exitCode) << describe(c) << "\n" << want.err;
  EXPECT_EQ(got.out, want.out) << describe(c);
  EXPECT_EQ(got.err, want.err) << describe(c);
  return got.out == want.out && got.err == want.err && got.exitCode == want.exitCode ? 0 : 1;
}

TEST(WalkView, HandPickedAgainstHgStatus) {
  WalkFixture fx;
  std::vector<Case> cases = {
      make("", {"a"}),
      make("", {"a/u", "a/gone.txt", "a/b/q.txt", "nothere", "nothere"}),
      make("", {"gone"}),
      make("", {"gone/one", "gone/three"}),
      make("", {"docs"}),
      make("", {"pipe", "path:pipe"}),
      make("", {"build"}),
      make("", {"build/out", "a/z.o"}),
      make("", {"build"}, {}, {}, false),
      make("", {"glob:build/*"}),
      make("", {"rootfilesin:a"}),
      make("", {"rootfilesin:a", "glob:src/*"}),
      make("", {"rootfilesin:.", "path:newdir"}),
      make("", {"re:.*\\.c$", "nothere"}),
      make("", {"glob:nope/*.c"}),
      make("", {"rootglob:nope/x", "relglob:nope/x"}),
      make("", {"glob:**/u"}),
      make("", {"glob:{a,src}/*"}),
      make("", {"glob:a/[!t]"}),
      make("", {"path:src/lib"}),
      make("", {"path:Makefile", "path:x.c"}),
      make("", {"relre:(?i)MAKE"}),
      make("", {}, {"rootfilesin:a"}),
      make("", {}, {"path:newdir/deep"}),
      make("", {}, {"glob:a/*.txt"}),
      make("", {}, {}, {"path:a"}),
      make("", {}, {"path:a"}, {"re:.*u$"}),
      make("", {"src"}, {}, {"rootfilesin:src"}),
      make("", {"path:a/b"}, {"rootfilesin:a"}),
      make("a", {"."}),
      make("a", {"..", "nothere"}),
      make("a", {"glob:*"}),
      make("a", {"glob:../*"}),
      make("a", {"path:nothere"}),
      make("a", {}, {"glob:**"}),
      make("a/b", {"../../src", "../gone.txt"}),
      make("newdir", {"deep", "rootfilesin:newdir"}),
      make("", {"re:("}),
      make("", {"../x"}),
      make("", {"listfile:/dev/null"}),
  };
  int bad = 0;
  for (const Case& c : cases) bad += check(fx, c);
  EXPECT_EQ(bad, 0);
}

TEST(WalkView, GeneratedAgainstHgStatus) {
  WalkFixture fx;
  std::mt19937 rng(77);
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  const std::vector<std::string> kinds = {
      "", "glob:", "path:", "rootglob:", "relglob:", "rootfilesin:", "relpath:", "re:"};
  const std::vector<std::string> bodies = {
      "a",   "a/b", "src",  "src/lib", "newdir", "newdir/deep", "gone", "build", "*",   "**",
      "*.c", "a/*", "**/u", "{a,src}", ".",      "nothere",     "x.c",  "pipe",  "a/u", "docs"};
  const std::vector<std::string> cwds = {"", "", "a", "src", "newdir"};
  int bad = 0;
  for (int i = 0; i < 40 && bad < 10; ++i) {
    Case c;
    c.cwd = pick(cwds);
    c.ignored = i % 3 != 0;
    int n = std::uniform_int_distribution<int>(0, 2)(rng);
    for (int j = 0; j < n; ++j) c.patterns.push_back(pick(kinds) + pick(bodies));
    if (i % 4 == 1) c.include.push_back(pick(kinds) + pick(bodies));
    if (i % 5 == 2) c.exclude.push_back(pick(kinds) + pick(bodies));
    bad += check(fx, c);
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace hgvfs::match
