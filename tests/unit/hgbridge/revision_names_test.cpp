// Revision names against the oracle: each spec resolved by
// hg::resolveRevision must name the changeset `hg log -r SPEC` names, and
// the plain names (., tip, numbers, hashes, bookmarks, tags, branches) must
// be answered natively.

#include "hgbridge/revision_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace hgvfs::hg {
namespace {

using test::hg;

void hgOk(const std::vector<std::string>& args, const std::string& cwd) {
  auto r = hg(args, cwd);
  ASSERT_EQ(r.exitCode, 0) << args[0] << ": " << r.err;
}

void commit(const std::string& repo, const std::string& file, const std::string& message,
            std::vector<std::string> extra = {}) {
  test::writeFile(repo + "/" + file, message + "\n");
  std::vector<std::string> args = {"commit", "-A", "-q", "-m", message};
  args.insert(args.end(), extra.begin(), extra.end());
  hgOk(args, repo);
}

class RevisionNamesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    std::string r = dir_->path() + "/repo";
    hgOk({"init", r}, {});
    commit(r, "a", "zero");                    // 0 default
    hgOk({"tag", "v1", "-r", "0"}, r);         // 1 default, .hgtags
    hgOk({"tag", "-l", "loc", "-r", "0"}, r);  // local tag
    hgOk({"branch", "-q", "stable"}, r);
    commit(r, "s", "s1");  // 2 stable
    commit(r, "s", "s2");  // 3 stable, open head
    hgOk({"update", "-q", "2"}, r);
    commit(r, "s", "s3");                      // 4 stable
    commit(r, "s", "s4", {"--close-branch"});  // 5 stable, closed head (tip-most)
    hgOk({"update", "-q", "1"}, r);
    hgOk({"branch", "-q", "old"}, r);
    commit(r, "o", "o1");                      // 6 old
    commit(r, "o", "o2", {"--close-branch"});  // 7 old, its only head, closed
    hgOk({"update", "-q", "1"}, r);
    commit(r, "b", "d1");                     // 8 default
    hgOk({"tag", "v2", "-r", "3"}, r);        // 9 default
    hgOk({"tag", "-r", "7", "shadowed"}, r);  // 10 default
    hgOk({"bookmark", "-r", "6", "@"}, r);
    hgOk({"bookmark", "-r", "2", "feature-x"}, r);
    hgOk({"bookmark", "-i", "-r", "3", "shadowed"}, r);  // a bookmark wins over a tag
    hgOk({"update", "-q", "8"}, r);                      // "." is 8
    auto opened = Repository::open(r);
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    repo_ = opened->release();
  }
  void SetUp() override { ASSERT_NE(repo_, nullptr) << "the fixture repository was not made"; }
  static void TearDownTestSuite() {
    delete repo_;
    delete dir_;
  }

  // hg's answer, as a node.
  static std::string oracle(const std::string& spec) {
    auto r = hg({"log", "-r", spec, "-T", "{node}\n"}, dir_->path() + "/repo");
    EXPECT_EQ(r.exitCode, 0) << spec << ": " << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') + 1);
  }

  static void expectSame(const std::string& spec, bool native) {
    auto resolved = resolveRevision(*repo_, spec);
    ASSERT_TRUE(resolved.ok()) << spec << ": " << resolved.error().message();
    EXPECT_EQ(repo_->changelog().revlog().node(resolved->rev).hex(), oracle(spec)) << spec;
    EXPECT_EQ(resolved->native, native) << spec;
  }

  static test::TempDir* dir_;
  static Repository* repo_;
};

test::TempDir* RevisionNamesTest::dir_ = nullptr;
Repository* RevisionNamesTest::repo_ = nullptr;

TEST_F(RevisionNamesTest, SpecialNamesAndNumbers) {
  for (const char* spec : {".", "tip", "null", "0", "3", "-1", "-3"}) expectSame(spec, true);
}

TEST_F(RevisionNamesTest, Hashes) {
  std::string node = oracle("4");
  expectSame(node, true);
  expectSame(node.substr(0, 8), true);
}

TEST_F(RevisionNamesTest, Bookmarks) {
  expectSame("@", true);
  expectSame("feature-x", true);
  expectSame("shadowed", true);  // the bookmark, not the tag
}

TEST_F(RevisionNamesTest, Tags) {
  expectSame("v1", true);
  expectSame("v2", true);
  expectSame("loc", true);
}

TEST_F(RevisionNamesTest, Branches) {
  expectSame("default", true);
  expectSame("old", true);     // every head closed: the tip-most of them
  expectSame("stable", true);  // an open head below a closed one: the open one
}

TEST_F(RevisionNamesTest, RevsetsGoThroughHg) {
  expectSame("max(all())", false);
  expectSame("v2~1", false);
  expectSame("all()", false);  // several: the last, like hg's single revision
}

TEST_F(RevisionNamesTest, UnknownNameIsOneLineError) {
  auto resolved = resolveRevision(*repo_, "nosuchname");
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.error().message(), "unknown revision 'nosuchname'");
  auto bad = resolveRevision(*repo_, "max(");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().find('\n'), std::string::npos);
  EXPECT_NE(bad.error().message().find("parse error"), std::string::npos) << bad.error().message();
  auto empty = resolveRevision(*repo_, "none()");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message(), "empty revision set 'none()'");
}

}  // namespace
}  // namespace hgvfs::hg
