// hgbridge against Mercurial itself, on every repository make_repos.py makes.
//
// For each repository the oracle (tests/oracle/hg_dump.py, Mercurial's own
// Python code, spot-checked against the hg command line) dumps every
// changeset's `hg manifest --debug` text, every file's content, size and copy
// source at every changeset, every revision of every filelog, and what
// `hg -r SPEC` resolves for a set of revision specs. Each test here reads the
// same thing through hgbridge and compares byte for byte.

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "hgbridge/bulk.h"
#include "hgbridge/repository.h"
#include "hgbridge/verify.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"

namespace hgvfs::hg {
namespace {

using test::FixtureRepos;

// Every repository make_repos.py makes; RepoListIsCurrent keeps it honest.
const std::vector<std::string> kRepoNames = {
    "long",          "long-nogd",   "basic", "share",    "share-rel", "big",  "copies", "names",
    "names-fncache", "names-basic", "mixed", "censored", "zlib",      "none", "empty",
};

// ---- the oracle's dump ------------------------------------------------------

struct OracleCopy {
  Bytes path;
  Node node;
};

struct OracleFile {
  Bytes path;
  Node node;
  char flag = 0;  // 0, 'x', 'l'
  bool censored = false;
  Bytes content;
  uint64_t hgSize = 0;
  std::optional<OracleCopy> copy;     // filelog.renamed()
  std::optional<OracleCopy> ctxCopy;  // fctx.renamed()
};

struct OracleChangeset {
  Node node;
  Node manifest;
  Bytes manifestDebug;
  std::vector<OracleFile> files;
};

struct OracleFileRevision {
  Node node;
  int32_t linkRev = -1;
  Node p1, p2;
  bool censored = false;
  Bytes raw;
  Bytes content;
  std::optional<OracleCopy> copy;
};

struct OracleFilelog {
  Bytes path;
  std::vector<OracleFileRevision> revisions;
};

struct OracleLookup {
  Bytes spec;
  int32_t rev;  // -2 unknown, -3 ambiguous
};
constexpr int32_t kUnknown = -2;
constexpr int32_t kAmbiguous = -3;

struct Oracle {
  std::vector<OracleChangeset> changesets;
  std::vector<OracleFilelog> filelogs;
  std::vector<OracleLookup> lookups;
};

// Reads hg_dump.py's format (see its docstring). Throws on malformed input.
class DumpReader {
 public:
  explicit DumpReader(Bytes data) : data_(std::move(data)) {}

  Oracle read() {
    if (take(8) != "HGDUMP1\n") throw std::runtime_error("not an hg_dump file");
    Oracle o;
    o.changesets.resize(u32());
    for (auto& cs : o.changesets) {
      cs.node = node();
      cs.manifest = node();
      cs.manifestDebug = bytes();
      cs.files.resize(u32());
      for (auto& f : cs.files) {
        f.path = bytes();
        f.node = node();
        f.flag = static_cast<char>(u8());
        f.censored = u8() != 0;
        f.content = bytes();
        f.hgSize = u64();
        f.copy = copy();
        f.ctxCopy = copy();
      }
    }
    o.filelogs.resize(u32());
    for (auto& fl : o.filelogs) {
      fl.path = bytes();
      fl.revisions.resize(u32());
      for (auto& r : fl.revisions) {
        r.node = node();
        r.linkRev = static_cast<int32_t>(u32());
        r.p1 = node();
        r.p2 = node();
        r.censored = u8() != 0;
        r.raw = bytes();
        r.content = bytes();
        r.copy = copy();
      }
    }
    o.lookups.resize(u32());
    for (auto& l : o.lookups) {
      l.spec = bytes();
      l.rev = static_cast<int32_t>(u32());
    }
    if (pos_ != data_.size()) throw std::runtime_error("trailing bytes in hg_dump file");
    return o;
  }

 private:
  ByteView take(size_t n) {
    if (!fits(data_, pos_, n)) throw std::runtime_error("hg_dump file truncated");
    ByteView v = ByteView(data_).substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint8_t u8() { return u8At(take(1), 0); }
  uint32_t u32() { return be32At(take(4), 0); }
  uint64_t u64() { return be64At(take(8), 0); }
  Bytes bytes() { return Bytes(take(u32())); }
  Node node() { return Node::fromRaw(take(Node::kSize).data()); }
  std::optional<OracleCopy> copy() {
    if (!u8()) return std::nullopt;
    OracleCopy c;
    c.path = bytes();
    c.node = node();
    return c;
  }

  Bytes data_;
  size_t pos_ = 0;
};

// ---- helpers ------------------------------------------------------------------

std::string show(ByteView path) { return "'" + printable(path) + "'"; }

// A short account of how two byte strings differ (contents can be large).
std::string describeDifference(ByteView want, ByteView got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  return "expected " + std::to_string(want.size()) + " bytes, got " + std::to_string(got.size()) +
         ", first difference at offset " + std::to_string(i) + " (expected \"" +
         printable(want.substr(i, 24)) + "\", got \"" + printable(got.substr(i, 24)) + "\")";
}

// `got` is often a temporary: bind it to a reference so it outlives the views.
#define EXPECT_BYTES_EQ(want, got, ctx)                                                   \
  do {                                                                                    \
    const auto& want_ref_ = (want);                                                       \
    const auto& got_ref_ = (got);                                                         \
    const ::hgvfs::ByteView want_(want_ref_), got_(got_ref_);                             \
    if (want_ != got_) ADD_FAILURE() << (ctx) << ": " << describeDifference(want_, got_); \
  } while (0)

// The line `hg manifest --debug` prints for one entry (mercurial/commands.py:
// hex, mode, "%1s" of '*' / '@' / '', path).
Bytes renderManifestDebug(const Manifest& m) {
  Bytes out;
  for (const ManifestEntry& e : m.entries()) {
    out += e.node.hex();
    out += e.kind == FileKind::kExecutable ? " 755 " : " 644 ";
    out += e.kind == FileKind::kExecutable ? '*' : e.kind == FileKind::kSymlink ? '@' : ' ';
    out += ' ';
    out += e.path;
    out += '\n';
  }
  return out;
}

std::string errorText(const Error& e) {
  return std::string(errorKindName(e.kind)) + ": " + e.message();
}

class DifferentialTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const FixtureRepos& repos = FixtureRepos::get();
    const std::string& name = GetParam();
    oracle_ = DumpReader(test::readFile(repos.dumpPath(name))).read();
    auto repo = Repository::open(repos.path(name));
    ASSERT_TRUE(repo.ok()) << name << ": " << errorText(repo.error());
    repo_ = std::move(repo).value();
  }

  // Filelogs are opened once per path and kept for the whole test.
  const Filelog* filelog(const Bytes& path) {
    auto it = filelogs_.find(path);
    if (it == filelogs_.end()) {
      auto fl = repo_->filelog(path);
      if (!fl.ok()) {
        ADD_FAILURE() << GetParam() << ": filelog(" << show(path) << "): " << errorText(fl.error());
        return nullptr;
      }
      it = filelogs_.emplace(path, std::move(fl).value()).first;
    }
    return &it->second;
  }

  Oracle oracle_;
  std::unique_ptr<Repository> repo_;
  std::map<Bytes, Filelog> filelogs_;
};

std::string paramName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  return s;
}

// ---- the tests ----------------------------------------------------------------

TEST(DifferentialFixtures, RepoListIsCurrent) {
  EXPECT_EQ(FixtureRepos::get().names(),
            std::vector<std::string>(kRepoNames.begin(), kRepoNames.end()))
      << "make_repos.py's repositories and kRepoNames differ: update kRepoNames";
}

TEST_P(DifferentialTest, ChangelogAndManifests) {
  const Revlog& cl = repo_->changelog().revlog();
  ASSERT_EQ(cl.size(), oracle_.changesets.size());
  for (size_t i = 0; i < oracle_.changesets.size(); ++i) {
    const OracleChangeset& want = oracle_.changesets[i];
    Revision r(static_cast<int32_t>(i));
    std::string at = GetParam() + " changeset " + std::to_string(i);
    EXPECT_EQ(cl.node(r), want.node) << at;
    auto cs = repo_->changeset(r);
    ASSERT_TRUE(cs.ok()) << at << ": " << errorText(cs.error());
    EXPECT_EQ(cs->manifest, want.manifest) << at;
    auto m = repo_->manifestOf(r);
    ASSERT_TRUE(m.ok()) << at << ": " << errorText(m.error());
    EXPECT_BYTES_EQ(want.manifestDebug, renderManifestDebug(*m), at + " manifest --debug");
    auto byNode = repo_->manifest(want.manifest);
    ASSERT_TRUE(byNode.ok()) << at << ": " << errorText(byNode.error());
    EXPECT_EQ(byNode->text(), m->text()) << at;
  }
  auto null = repo_->manifestOf(kNullRevision);
  ASSERT_TRUE(null.ok()) << errorText(null.error());
  EXPECT_EQ(null->size(), 0u);
}

TEST_P(DifferentialTest, FilesAtEveryChangeset) {
  // A file revision reads the same at every changeset; read each once but
  // check every manifest entry.
  std::set<std::pair<Bytes, Node>> checked;
  for (size_t i = 0; i < oracle_.changesets.size(); ++i) {
    const OracleChangeset& cs = oracle_.changesets[i];
    auto m = repo_->manifestOf(Revision(static_cast<int32_t>(i)));
    ASSERT_TRUE(m.ok()) << errorText(m.error());
    ASSERT_EQ(m->size(), cs.files.size()) << GetParam() << " changeset " << i;
    for (const OracleFile& f : cs.files) {
      std::string at = GetParam() + " changeset " + std::to_string(i) + " " + show(f.path);
      const ManifestEntry* e = m->find(f.path);
      ASSERT_NE(e, nullptr) << at << ": not found in the manifest";
      EXPECT_EQ(e->node, f.node) << at;
      EXPECT_EQ(kindFlag(e->kind), f.flag) << at;
      if (!checked.emplace(f.path, f.node).second) continue;
      const Filelog* fl = filelog(f.path);
      if (!fl) continue;
      auto content = fl->read(f.node);
      auto withMeta = fl->readWithMetadata(f.node);
      auto size = fl->size(f.node);
      if (f.censored) {
        ASSERT_FALSE(content.ok()) << at << ": censored revision read as content";
        EXPECT_EQ(content.error().kind, ErrorKind::kCensored)
            << at << ": " << errorText(content.error());
        EXPECT_FALSE(withMeta.ok()) << at;
        continue;
      }
      ASSERT_TRUE(content.ok()) << at << ": " << errorText(content.error());
      EXPECT_BYTES_EQ(f.content, *content, at + " content");
      ASSERT_TRUE(withMeta.ok()) << at << ": " << errorText(withMeta.error());
      EXPECT_BYTES_EQ(f.content, withMeta->content, at + " readWithMetadata content");
      ASSERT_TRUE(size.ok()) << at << ": " << errorText(size.error());
      // The true content length; hg's own size() counts a "\1\n" header.
      EXPECT_EQ(*size, f.content.size()) << at << " (hg says " << f.hgSize << ")";
      const auto& copy = withMeta->metadata.copy;
      ASSERT_EQ(copy.has_value(), f.copy.has_value()) << at << ": copy source";
      if (copy) {
        EXPECT_EQ(copy->path, f.copy->path) << at;
        EXPECT_EQ(copy->node, f.copy->node) << at;
      }
    }
  }
}

TEST_P(DifferentialTest, EveryFilelogRevision) {
  for (const OracleFilelog& want : oracle_.filelogs) {
    const Filelog* fl = filelog(want.path);
    if (!fl) continue;
    const Revlog& rl = fl->revlog();
    ASSERT_EQ(rl.size(), want.revisions.size()) << GetParam() << " " << show(want.path);
    for (size_t i = 0; i < want.revisions.size(); ++i) {
      const OracleFileRevision& w = want.revisions[i];
      Revision r(static_cast<int32_t>(i));
      std::string at = GetParam() + " " + show(want.path) + " revision " + std::to_string(i);
      EXPECT_EQ(rl.node(r), w.node) << at;
      const IndexEntry& e = rl.entry(r);
      EXPECT_EQ(e.linkRev.value(), w.linkRev) << at;
      EXPECT_EQ(rl.node(e.p1), w.p1) << at;
      EXPECT_EQ(rl.node(e.p2), w.p2) << at;
      auto back = rl.rev(w.node);
      ASSERT_TRUE(back.ok()) << at;
      EXPECT_EQ(*back, r) << at;
      EXPECT_EQ(rl.isCensored(r), w.censored) << at;
      auto chain = rl.deltaChain(r);
      ASSERT_TRUE(chain.ok()) << at << ": " << errorText(chain.error());
      ASSERT_FALSE(chain->empty()) << at;
      EXPECT_EQ(chain->back(), r) << at;
      auto raw = rl.rawText(r);
      if (w.censored) {
        ASSERT_FALSE(raw.ok()) << at << ": censored revision read";
        EXPECT_EQ(raw.error().kind, ErrorKind::kCensored) << at << ": " << errorText(raw.error());
        continue;
      }
      ASSERT_TRUE(raw.ok()) << at << ": " << errorText(raw.error());
      EXPECT_BYTES_EQ(w.raw, *raw, at + " rawText");
      auto unchecked = rl.rawText(r, VerifyHash::kNo);
      ASSERT_TRUE(unchecked.ok()) << at << ": " << errorText(unchecked.error());
      EXPECT_EQ(*unchecked, *raw) << at;
      auto rawSize = rl.rawSize(r);
      ASSERT_TRUE(rawSize.ok()) << at << ": " << errorText(rawSize.error());
      EXPECT_EQ(*rawSize, w.raw.size()) << at;
      for (ByteView prefix : {ByteView("\1\n", 2), ByteView("\1", 1), ByteView()}) {
        auto starts = rl.rawTextStartsWith(r, prefix);
        ASSERT_TRUE(starts.ok()) << at << ": " << errorText(starts.error());
        EXPECT_EQ(*starts, ByteView(w.raw).substr(0, prefix.size()) == prefix)
            << at << " prefix " << printable(prefix);
      }
      EXPECT_EQ(Revlog::hashRevision(w.raw, w.p1, w.p2), w.node) << at;
      auto text = fl->readWithMetadata(w.node);
      ASSERT_TRUE(text.ok()) << at << ": " << errorText(text.error());
      EXPECT_BYTES_EQ(w.content, text->content, at + " content");
      EXPECT_EQ(text->metadata.headerLength, w.raw.size() - w.content.size()) << at;
      ASSERT_EQ(text->metadata.copy.has_value(), w.copy.has_value()) << at << ": copy source";
      if (w.copy) {
        EXPECT_EQ(text->metadata.copy->path, w.copy->path) << at;
        EXPECT_EQ(text->metadata.copy->node, w.copy->node) << at;
      }
    }
  }
}

TEST_P(DifferentialTest, FilelogPaths) {
  auto paths = repo_->filelogPaths();
  ASSERT_TRUE(paths.ok()) << errorText(paths.error());
  std::vector<Bytes> want;
  for (const OracleFilelog& fl : oracle_.filelogs) want.push_back(fl.path);
  EXPECT_EQ(*paths, want);
}

TEST_P(DifferentialTest, Lookup) {
  for (const OracleLookup& l : oracle_.lookups) {
    std::string at = GetParam() + " lookup(\"" + printable(l.spec) + "\")";
    auto r = repo_->lookup(l.spec);
    if (l.rev >= -1) {
      if (!r.ok()) {
        ADD_FAILURE() << at << ": hg says " << l.rev << ", hgbridge " << errorText(r.error());
      } else {
        EXPECT_EQ(r->value(), l.rev) << at;
      }
    } else if (l.rev == kAmbiguous) {
      if (r.ok()) {
        ADD_FAILURE() << at << ": hg says ambiguous, hgbridge " << r->value();
      } else {
        EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument)
            << at << ": " << errorText(r.error());
      }
    } else {
      ASSERT_EQ(l.rev, kUnknown);
      if (r.ok()) {
        ADD_FAILURE() << at << ": hg says unknown, hgbridge " << r->value();
      } else {
        EXPECT_TRUE(r.error().kind == ErrorKind::kNotFound ||
                    r.error().kind == ErrorKind::kInvalidArgument)
            << at << ": " << errorText(r.error());
      }
    }
  }
}

TEST_P(DifferentialTest, BulkReadMatchesOracle) {
  // Every changeset in small repositories, the last few in large ones.
  size_t n = oracle_.changesets.size();
  size_t first = n > 40 ? n - 8 : 0;
  for (size_t i = first; i < n; ++i) {
    const OracleChangeset& cs = oracle_.changesets[i];
    auto m = repo_->manifestOf(Revision(static_cast<int32_t>(i)));
    ASSERT_TRUE(m.ok()) << errorText(m.error());
    std::mutex mu;
    std::map<Bytes, Bytes> got;
    Status st = readAllFiles(*repo_, *m, [&](const ManifestEntry& e, ByteView content) {
      std::lock_guard<std::mutex> lock(mu);
      got.emplace(Bytes(e.path), Bytes(content));
      return okStatus();
    });
    bool anyCensored = false;
    for (const OracleFile& f : cs.files) anyCensored |= f.censored;
    std::string at = GetParam() + " changeset " + std::to_string(i);
    if (anyCensored) {
      ASSERT_FALSE(st.ok()) << at << ": censored file read in bulk";
      EXPECT_EQ(st.error().kind, ErrorKind::kCensored) << at << ": " << errorText(st.error());
      continue;
    }
    ASSERT_TRUE(st.ok()) << at << ": " << errorText(st.error());
    ASSERT_EQ(got.size(), cs.files.size()) << at;
    for (const OracleFile& f : cs.files) {
      EXPECT_BYTES_EQ(f.content, got[f.path], at + " " + show(f.path));
    }
  }
}

TEST_P(DifferentialTest, VerifyCountsEverything) {
  auto stats = verifyRepository(*repo_);
  ASSERT_TRUE(stats.ok()) << GetParam() << ": " << errorText(stats.error());
  size_t censored = 0, revisions = 0;
  for (const OracleFilelog& fl : oracle_.filelogs) {
    for (const auto& r : fl.revisions) (r.censored ? censored : revisions) += 1;
  }
  EXPECT_EQ(stats->changesets, oracle_.changesets.size());
  EXPECT_EQ(stats->filelogs, oracle_.filelogs.size());
  EXPECT_EQ(stats->fileRevisions, revisions) << censored << " censored revisions";
}

INSTANTIATE_TEST_SUITE_P(Repos, DifferentialTest, ::testing::ValuesIn(kRepoNames), paramName);

// Opening the same store through both kinds of share gives the source's
// answers, and the share's own paths.
TEST(DifferentialShares, ReadThroughSharedPath) {
  const FixtureRepos& repos = FixtureRepos::get();
  auto source = Repository::open(repos.path("basic"));
  ASSERT_TRUE(source.ok()) << errorText(source.error());
  for (const char* name : {"share", "share-rel"}) {
    auto share = Repository::open(repos.path(name));
    ASSERT_TRUE(share.ok()) << name << ": " << errorText(share.error());
    EXPECT_EQ((*share)->storePath(), (*source)->storePath()) << name;
    EXPECT_EQ((*share)->sharedDotHg(), (*source)->dotHg()) << name;
    EXPECT_NE((*share)->dotHg(), (*source)->dotHg()) << name;
    EXPECT_EQ((*share)->changelog().revlog().size(), (*source)->changelog().revlog().size());
  }
}

}  // namespace
}  // namespace hgvfs::hg
