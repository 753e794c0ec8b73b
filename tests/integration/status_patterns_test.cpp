// `hgvfs status PATTERNS` on a real mount against `hg status PATTERNS` in a
// normal checkout made by stock hg: the same working-copy changes on both
// sides, then every pattern kind of `hg help patterns`, as positional
// patterns and as -I/-X, from the root and from subdirectories, including
// patterns that name nothing and patterns hg refuses. stdout must be the
// same bytes, stderr the same text (the two roots aside), the exit code the
// same.
//
// A stand-in `hg` first on PATH records every call, so the tests also see
// which answers came natively (no hg started) and which through stock hg
// (set: filesets).

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/support/mount_support.h"

namespace hgvfs::test {
namespace {

class StatusPatternsTest : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    realHg_ = shell("command -v hg").out;
    while (!realHg_.empty() && realHg_.back() == '\n') realHg_.pop_back();
    ASSERT_FALSE(realHg_.empty());
    // The stand-in hg: logs its arguments, then runs the real one.
    std::string bin = makeDir("bin");
    hgLog_ = path("hg-calls");
    writeFile(bin + "/hg", "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + q(hgLog_) + "\nexec " +
                               q(realHg_) + " \"$@\"\n");
    ::chmod((bin + "/hg").c_str(), 0755);
    pathWithStandIn_ = bin + ":" + std::string(std::getenv("PATH"));

    repo_ = path("repo");
    ASSERT_EQ(hg({"init", repo_}).exitCode, 0);
    CommandResult r =
        shell("cd " + q(repo_) +
              " && mkdir -p src/lib docs a/b gone && echo one > src/a.c && echo two > src/lib/b.c"
              " && echo r > docs/README && echo m > Makefile && echo t > a/t && echo q > a/b/q.txt"
              " && echo 1 > gone/one && echo 2 > gone/two && echo x > x.c"
              " && printf 'syntax: glob\\n*.o\\nbuild/\\n' > .hgignore"
              " && " +
              q(realHg_) + " -q commit -A -m one");
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    checkout_ = path("checkout");
    ASSERT_EQ(hg({"clone", "-q", repo_, checkout_}).exitCode, 0);
    mnt_ = mount(repo_, path("mnt"));
    // The same changes on both sides: every status category.
    for (const auto& root : {mnt_, checkout_}) {
      CommandResult c = shell(
          "export HGPLAIN=1 HGRCPATH= HGUSER=test; cd " + q(root) + " && hg() { " + q(realHg_) +
          " \"$@\"; }"
          " && echo more >> src/a.c && rm docs/README && rm -r gone && hg -q rm a/b/q.txt"
          " && echo a > a/added.txt && echo g > a/gone.txt && hg -q add a/added.txt a/gone.txt"
          " && rm a/gone.txt && hg -q cp src/a.c src/copy.c"
          " && mkdir -p newdir/deep build/sub a/b && echo u > a/u && echo u > a/b/u"
          " && echo u > top.txt && echo n > newdir/n.c && echo d > newdir/deep/d.c"
          " && echo o > a/z.o && echo b > build/out && echo s > build/sub/x.c"
          " && echo n > src/lib/new.c && echo M > MAKEFILE.bak"
          // Pattern files inside the working copy (include: is relative to the root).
          " && printf 'syntax: glob\\n*.c\\nrootglob:a/*\\nre:^MAKE\\n' > rules"
          " && printf 'syntax: glob\\nn.c\\n' > newdir/.rules"
          " && printf 'subinclude:newdir/.rules\\nre:^top\\n' > rules-sub");
      ASSERT_EQ(c.exitCode, 0) << describe(c);
    }
    // List files outside both working copies (listfile: is relative to the
    // current directory; these are absolute).
    writeFile(path("list"), "a/t\n\nglob:src/*.c\r\nre:.*\\.o$\nnothere\n");
    static constexpr char kList0[] = "docs/README\0path:a/b\0rootfilesin:newdir\0";
    writeFile(path("list0"), std::string(kList0, sizeof kList0 - 1));
  }

  // `hg status ARGS` in the checkout vs `hgvfs status ARGS` in the mount, in
  // `sub` of each. "%ROOT%" in an argument is the side's own root.
  void expectSame(const std::string& sub, const std::vector<std::string>& args) {
    auto command = [&](const std::string& root, const std::string& program) {
      std::string s = "export HGPLAIN=1 HGRCPATH=; cd " + q(root + (sub.empty() ? "" : "/" + sub)) +
                      " && " + program + " status";
      for (const auto& a : args) {
        std::string arg = a;
        for (size_t p; (p = arg.find("%ROOT%")) != std::string::npos;) arg.replace(p, 6, root);
        s += " " + q(arg);
      }
      return s;
    };
    CommandResult want = shell(command(checkout_, q(realHg_)));
    CommandResult mine =
        shell("export PATH=" + q(pathWithStandIn_) + "; " + command(mnt_, q(kHgvfs)));
    std::string what = "in '" + sub + "': status";
    for (const auto& a : args) what += " " + a;
    EXPECT_EQ(printableBytes(mine.out), printableBytes(want.out)) << what;
    EXPECT_EQ(withRoot(mine.err, mnt_), withRoot(want.err, checkout_)) << what;
    EXPECT_EQ(mine.exitCode, want.exitCode) << what << "\n" << mine.err;
  }

  static std::string withRoot(std::string text, const std::string& root) {
    for (size_t p; (p = text.find(root)) != std::string::npos;)
      text.replace(p, root.size(), "ROOT");
    return text;
  }

  // The calls the stand-in hg saw since the last look.
  std::string hgCalls() {
    std::string calls;
    if (auto text = readWhole(hgLog_)) calls = *text;
    ::unlink(hgLog_.c_str());
    return calls;
  }

  std::string realHg_, hgLog_, pathWithStandIn_, repo_, checkout_, mnt_;
};

TEST_F(StatusPatternsTest, PathsAndGlobs) {
  expectSame("", {"-A", "path:a"});
  expectSame("", {"-A", "path:src/lib", "path:x.c"});
  expectSame("", {"-A", "relpath:a/b"});
  expectSame("", {"-A", "a", "src/a.c"});
  expectSame("", {"-A", "glob:*.c"});
  expectSame("", {"-A", "glob:**.c"});
  expectSame("", {"-A", "glob:a/**"});
  expectSame("", {"-A", "glob:**/u"});
  expectSame("", {"-A", "glob:{a,src}/*"});
  expectSame("", {"-A", "glob:a/[!t]"});
  expectSame("", {"-A", "glob:a/[!t]*", "glob:src/{lib,x}/*.c"});
  expectSame("", {"-A", "relglob:*.c"});
  expectSame("", {"-A", "relglob:u"});
  expectSame("", {"-A", "rootglob:a/*"});
  expectSame("", {"-A", "rootglob:*.txt"});
  expectSame("", {"-A", "rootfilesin:a"});  // hg walks nothing: no ? or I
  expectSame("", {"-A", "rootfilesin:a", "glob:src/*"});
  expectSame("", {"-A", "rootfilesin:.", "path:newdir"});
  expectSame("", {"-A", "."});
  expectSame("", {"-A", "path:"});
  expectSame("", {"-A", ""});
  expectSame("", {"-mardui", "build", "a/z.o"});
  expectSame("", {"build/out", "a/z.o"});
  expectSame("", {"-i", "glob:build/*"});
  expectSame("", {"-A", "-C", "src"});
  expectSame("", {"-A", "-0", "glob:**"});
  expectSame("", {"-A", "-T", "json", "glob:a/*"});
  expectSame("", {"-n", "-mardu", "glob:*"});
  EXPECT_EQ(hgCalls(), "");  // all of it native
}

TEST_F(StatusPatternsTest, RegularExpressions) {
  expectSame("", {"-A", "re:(?i)MAKEFILE"});
  expectSame("", {"-A", "re:(?i)makefile$"});
  expectSame("", {"-A", "re:a/.*"});
  expectSame("", {"-A", "re:.*\\.c$"});
  expectSame("", {"-A", "re:(?x) a / t  # verbose"});
  expectSame("", {"-A", "re:(src|docs)/(?!lib)"});
  expectSame("", {"-A", "relre:(?i)T$"});
  expectSame("", {"-A", "relre:^a"});
  expectSame("", {"-A", "relre:b/u"});
  expectSame("", {"-A", "relre:(?i)X\\.C"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, FromASubdirectory) {
  expectSame("a", {"-A", "glob:*"});
  expectSame("a", {"-A", "re:.*"});
  expectSame("a", {"-A", "b", "../src"});
  expectSame("a", {"-A", "glob:../*"});
  expectSame("a", {"-A", "relglob:*.c"});
  expectSame("a", {"-A", "rootglob:a/*"});
  expectSame("a", {"-A", "."});
  expectSame("a", {"-A", ".."});
  expectSame("a", {"-A", "-I", "glob:**"});  // -I/-X alone: paths stay root-relative
  expectSame("a/b", {"-A", "../../src", "../gone.txt"});
  expectSame("newdir", {"-A", "deep", "rootfilesin:newdir"});
  expectSame("src/lib", {"-A", "path:src"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, IncludeAndExcludeOfEachKind) {
  expectSame("", {"-A", "-I", "path:a"});
  expectSame("", {"-A", "-I", "relpath:a/b"});
  expectSame("", {"-A", "-I", "glob:a/*.txt"});
  expectSame("", {"-A", "-I", "*.c"});
  expectSame("", {"-A", "-I", "relglob:*.c"});
  expectSame("", {"-A", "-I", "rootglob:*.txt"});
  expectSame("", {"-A", "-I", "rootfilesin:a"});
  expectSame("", {"-A", "-I", "re:.*u$"});
  expectSame("", {"-A", "-I", "relre:(?i)MAKE"});
  expectSame("", {"-A", "-I", "listfile:" + path("list")});
  expectSame("", {"-A", "-I", "include:rules"});
  expectSame("", {"-A", "-X", "path:a"});
  expectSame("", {"-A", "-X", "glob:a/**"});
  expectSame("", {"-A", "-X", "relglob:*.c"});
  expectSame("", {"-A", "-X", "rootfilesin:src"});
  expectSame("", {"-A", "-X", "re:.*\\.c$"});
  expectSame("", {"-A", "-X", "include:rules"});
  expectSame("", {"-A", "-I", "path:a", "-X", "re:.*u$"});
  expectSame("", {"-A", "-I", "path:src", "-I", "path:a", "-X", "rootfilesin:a"});
  expectSame("", {"-A", "src", "-X", "rootfilesin:src"});
  expectSame("", {"-A", "path:a/b", "-I", "rootfilesin:a"});
  expectSame("", {"-A", "a", "-I", "glob:**.txt", "-X", "a/added.txt"});
  expectSame("a", {"-A", "-I", "*", "-X", "b"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, PatternFiles) {
  expectSame("", {"-A", "listfile:" + path("list")});
  expectSame("a", {"-A", "listfile:" + path("list")});
  expectSame("", {"-A", "listfile0:" + path("list0")});
  expectSame("", {"-A", "listfile:/dev/null"});
  expectSame("", {"-A", "include:rules"});
  expectSame("a", {"-A", "include:rules"});
  expectSame("", {"-A", "include:no-such-rules"});
  expectSame("", {"-A", "include:%ROOT%/rules-sub"});  // subinclude from an absolute include
  expectSame("", {"-A", "-I", "include:%ROOT%/rules-sub"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, PatternsThatNameNothing) {
  expectSame("", {"nothere", "nothere"});
  expectSame("", {"-A", "re:x", "nothere"});  // a pattern rooted at "" stats nothing
  expectSame("", {"glob:nope/*.c"});
  expectSame("", {"-A", "rootglob:nope/x", "relglob:nope/x", "rootfilesin:nope"});
  expectSame("", {"-A", "path:nothere", "docs/README", "gone", "gone/three"});
  expectSame("a", {"../nonexist", "path:nonexist", "glob:nope/x"});
  expectSame("a", {"-I", "../nonexist"});
  expectSame("", {"-A", "glob:*.nothing"});
  expectSame("", {"-A", "re:^$"});
  expectSame("", {"-d", "a/gone.txt", "nothere"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, PatternsHgRefuses) {
  expectSame("", {"re:("});
  expectSame("", {"-I", "relre:a)"});
  expectSame("", {"-X", "re:a", "-I", "re:("});
  expectSame("", {"glob:[z-a]"});
  expectSame("", {"re:(?P<n>a)", "re:(?P<n>b)"});
  expectSame("", {"re:" + std::string(20001, 'x')});
  expectSame("", {"../x"});
  expectSame("", {"glob:.."});
  expectSame("", {"/elsewhere"});
  expectSame("", {".hg/x"});
  expectSame("", {"listfile:" + path("no-such-list")});
  expectSame("a", {"../../x"});
  EXPECT_EQ(hgCalls(), "");
}

TEST_F(StatusPatternsTest, FilesetsGoThroughStockHg) {
  expectSame("", {"-A", "set:added()"});
  EXPECT_EQ(hgCalls(), "status -A set:added()\n");
  expectSame("", {"-A", "set:**.c"});
  expectSame("", {"-A", "set:modified() or unknown()"});
  expectSame("a", {"-A", "set:**", "-X", "re:.*u$"});
  expectSame("", {"-A", "-I", "set:ignored()"});
  expectSame("", {"set:bogus("});
  EXPECT_EQ(hgCalls(),
            "status -A set:**.c\nstatus -A set:modified() or unknown()\n"
            "status -A set:** -X re:.*u$\nstatus -A -I set:ignored()\nstatus set:bogus(\n");
}

// A broken .hgignore: hg prints its warnings before the walk's own when it
// lists unknown files, after them (and only if it meets an untracked file)
// when it lists ignored ones.
TEST_F(StatusPatternsTest, IgnoreFileWarningsInHgsOrder) {
  for (const auto& root : {mnt_, checkout_}) {
    writeFile(root + "/.hgignore", "syntax: glob\n*.o\nbuild/\nsyntax: bogus\n");
  }
  expectSame("", {"nothere"});
  expectSame("", {"-i", "nothere"});
  expectSame("", {"-A", "nothere", "a"});
  expectSame("", {"-A", "nothere"});
  expectSame("", {"-mardi", "glob:src/*"});
  expectSame("", {"-mi", "glob:src/lib/*"});
  expectSame("", {"-i"});
  expectSame("", {"-m", "nothere"});
  EXPECT_EQ(hgCalls(), "");
  // A named untracked file makes hg read them even for -m.
  expectSame("", {"-m", "a/u", "nothere"});
  EXPECT_EQ(hgCalls(), "");
  // A named file that may be clean or ignored: stock hg answers.
  expectSame("", {"-m", "Makefile"});
  EXPECT_EQ(hgCalls(), "status -m Makefile\n");
}

// Patterns with --rev are answered by stock hg too (its own comparison of
// manifests decides what patterns select there).
TEST_F(StatusPatternsTest, RevisionWithPatternsGoesThroughStockHg) {
  expectSame("", {"--rev", "0", "glob:*"});
  expectSame("", {"--rev", "0", "-I", "path:src"});
  EXPECT_EQ(hgCalls(), "status --rev 0 glob:*\nstatus --rev 0 -I path:src\n");
}

}  // namespace
}  // namespace hgvfs::test
