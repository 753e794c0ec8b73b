// base/hgrc.h against Mercurial's own config parser: the same files read by
// `hg config` (through HGRCPATH) must give the same values.

#include "base/hgrc.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/test_support.h"

namespace hgvfs {
namespace {

// The value `hg config ITEM` prints with only `hgrc` read (it shows a
// newline inside a value as "\n").
std::string hgConfig(const std::string& hgrc, const std::string& item) {
  auto r = test::run({"env", "HGRCPATH=" + hgrc, "HGPLAIN=1", "/usr/bin/hg", "config", item});
  std::string out = r.out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  for (size_t at; (at = out.find("\\n")) != std::string::npos;) out.replace(at, 2, "\n");
  return out;
}

class HgrcTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::string path = tmp_.path() + "/" + name;
    test::writeFile(path, text);
    return path;
  }
  test::TempDir tmp_;
};

TEST_F(HgrcTest, ValuesEqualHgConfig) {
  write("inc.rc", "[ui]\nignore.inc = included\n[hgvfs]\nsocket = /from/include\n");
  std::string rc = write("hgrc",
                         "# comment\n; another\n[ui]\nignore = first\nignore.b = spaced value  \n"
                         "username = a\n  continued line\n\n[hgvfs]\nsocket=/tmp/s\n"
                         "%include inc.rc\n[ui]\nignore = second\n%unset username\n"
                         "[ empty ]\nx = 1\n");
  auto parsed = Hgrc::read(rc);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  for (auto [section, key] : {std::pair{"ui", "ignore"},
                              {"ui", "ignore.b"},
                              {"ui", "ignore.inc"},
                              {"hgvfs", "socket"},
                              {"ui", "username"},
                              {"empty", "x"}}) {
    std::string want = hgConfig(rc, std::string(section) + "." + key);
    auto got = parsed->get(section, key);
    EXPECT_EQ(got.value_or(""), want) << section << "." << key;
  }
  EXPECT_FALSE(parsed->get("ui", "username").has_value());
  // First-appearance order, later values winning.
  auto items = parsed->items("ui");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (std::pair<std::string, std::string>{"ignore", "second"}));
  EXPECT_EQ(items[1].first, "ignore.b");
  EXPECT_EQ(items[2].first, "ignore.inc");
}

TEST_F(HgrcTest, ContinuationLinesJoinWithNewlines) {
  std::string rc = write("hgrc", "[a]\nk = one\n  two\n\tthree\n");
  auto parsed = Hgrc::read(rc);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->get("a", "k").value_or(""), "one\ntwo\nthree");
  EXPECT_EQ(parsed->get("a", "k").value_or(""), hgConfig(rc, "a.k"));
}

TEST_F(HgrcTest, MissingFileIsEmptyAndIncludeLoopsAreErrors) {
  auto missing = Hgrc::read(tmp_.path() + "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->get("ui", "ignore").has_value());
  std::string rc = write("loop.rc", "[s]\nk = v\n%include loop.rc\n");
  EXPECT_FALSE(Hgrc::read(rc).ok());
}

TEST_F(HgrcTest, LinesHgRejectsAreErrorsNamingTheLine) {
  for (const char* text : {"[ui]\nnot an item\n", " leading = space\n", "[ui]\n=value\n"}) {
    std::string rc = write("bad.rc", text);
    auto parsed = Hgrc::read(rc);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().kind, ErrorKind::kCorrupt);
    EXPECT_NE(parsed.error().where.find("bad.rc:"), std::string::npos) << parsed.error().message();
    // hg refuses the same file.
    auto r = test::run({"env", "HGRCPATH=" + rc, "HGPLAIN=1", "/usr/bin/hg", "config", "ui"});
    EXPECT_NE(r.exitCode, 0) << text;
  }
}

TEST_F(HgrcTest, CommentsInsideAContinuationKeepIt) {
  std::string rc = write("hgrc", "[a]\nk = one\n# note\n  two\n[b]\n[c] trailing\nx = 1\n");
  auto parsed = Hgrc::read(rc);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->get("a", "k").value_or(""), hgConfig(rc, "a.k"));
  EXPECT_EQ(parsed->get("c", "x").value_or(""), hgConfig(rc, "c.x"));
}

}  // namespace
}  // namespace hgvfs
