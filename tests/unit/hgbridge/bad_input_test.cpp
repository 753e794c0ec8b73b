// hgbridge on damaged repositories: every kind of damage is a Result error
// of the right kind whose message names the revlog (and the revision where
// there is one), never a crash, never a wrong answer. Runs under ASan+UBSan
// in the sanitizer preset.
//
// Each test copies one repository made by make_repos.py, damages one file the
// way a disk, a bad copy or a newer Mercurial would, and reads it back.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "hgbridge/repository.h"
#include "hgbridge/verify.h"
#include "tests/support/fixture_repos.h"
#include "tests/support/test_support.h"

namespace hgvfs::hg {
namespace {

namespace fs = std::filesystem;
using test::FixtureRepos;
using test::readFile;
using test::TempDir;
using test::writeFile;

std::string errorText(const Error& e) {
  return std::string(errorKindName(e.kind)) + ": " + e.message();
}

// A private copy of fixture repositories, removed at the end of the test.
class Scratch {
 public:
  // Copies each named repository into one directory (so a relative share
  // still finds its source) and returns the first one's path.
  std::string copy(std::initializer_list<const char*> names) {
    std::string first;
    for (const char* name : names) {
      std::string to = tmp_.path() + "/" + name;
      test::copyTree(FixtureRepos::get().path(name), to);
      if (first.empty()) first = to;
    }
    return first;
  }

 private:
  TempDir tmp_;
};

// One index entry as stored (mercurial/revlogutils/constants.py INDEX_ENTRY_V1).
struct RawEntry {
  size_t entryPos = 0;  // where the 64-byte entry starts in the .i file
  size_t dataPos = 0;   // where its chunk starts (in the .i when inline, else the .d)
  uint32_t compressedLength = 0;
  int32_t base = 0;
};
constexpr size_t kBaseField = 16;
constexpr size_t kP1Field = 24;
constexpr size_t kNodeField = 32;

std::vector<RawEntry> rawEntries(const Bytes& index) {
  std::vector<RawEntry> out;
  if (index.size() < 4) return out;
  bool isInline = be32At(index, 0) & kFlagInlineData;
  size_t pos = 0;
  while (fits(index, pos, kIndexEntrySize)) {
    RawEntry e;
    e.entryPos = pos;
    uint64_t offset = out.empty() ? 0 : be64At(index, pos) >> 16;
    e.compressedLength = be32At(index, pos + 8);
    e.base = be32sAt(index, pos + kBaseField);
    e.dataPos = isInline ? pos + kIndexEntrySize : offset;
    pos += kIndexEntrySize + (isInline ? e.compressedLength : 0);
    out.push_back(e);
  }
  return out;
}

void putBe32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

std::string dataFileOf(const std::string& indexPath) {
  return indexPath.substr(0, indexPath.size() - 2) + ".d";
}

// The bytes of `r`'s chunk, read from whichever file holds them.
Bytes chunkBytes(const std::string& indexPath, const RawEntry& e) {
  Bytes index = readFile(indexPath);
  bool isInline = be32At(index, 0) & kFlagInlineData;
  Bytes data = isInline ? index : readFile(dataFileOf(indexPath));
  return data.substr(e.dataPos, e.compressedLength);
}

// Changes one byte of a revision's chunk, in whichever file holds it.
void editChunkByte(const std::string& indexPath, const RawEntry& e, size_t offsetInChunk,
                   const std::function<char(char)>& edit) {
  Bytes index = readFile(indexPath);
  bool isInline = be32At(index, 0) & kFlagInlineData;
  std::string file = isInline ? indexPath : dataFileOf(indexPath);
  Bytes data = isInline ? index : readFile(file);
  data[e.dataPos + offsetInChunk] = edit(data[e.dataPos + offsetInChunk]);
  writeFile(file, data);
}

void flipChunkByte(const std::string& indexPath, const RawEntry& e, size_t offsetInChunk) {
  editChunkByte(indexPath, e, offsetInChunk, [](char c) { return static_cast<char>(c ^ 0x5a); });
}

struct Found {
  std::string indexPath;  // absolute
  std::string name;       // store-relative, as hgbridge names it ("data/x.i")
  Bytes trackedPath;      // for filelogs
  int32_t rev = -1;
  RawEntry entry;
};

// Undoes store.py's encodefilename for the names the chosen repositories
// hold ("_r_e_a_d_m_e" -> "README", "~3a" -> ":"); no hashed or dir-encoded
// names are expected here.
Bytes decodeStoreName(ByteView s) {
  Bytes out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i + 1 < s.size()) {
      char c = s[++i];
      out += c == '_' ? '_' : static_cast<char>(c - 'a' + 'A');
    } else if (s[i] == '~' && i + 2 < s.size()) {
      out += static_cast<char>(hexDigitValue(s[i + 1]) * 16 + hexDigitValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The first revision (in sorted revlog order, then revision order) whose
// chunk satisfies `pred`. Filelogs only; hashed ("dh/") names are skipped.
std::optional<Found> findChunk(
    const std::string& repo,
    const std::function<bool(const Bytes& chunk, const RawEntry&, int32_t rev)>& pred) {
  std::string data = repo + "/.hg/store/data";
  std::vector<std::string> files;
  for (const auto& f : fs::recursive_directory_iterator(data)) {
    if (f.is_regular_file() && f.path().extension() == ".i") files.push_back(f.path().string());
  }
  std::string prefix = repo + "/.hg/store/data/";
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto entries = rawEntries(readFile(file));
    for (size_t i = 0; i < entries.size(); ++i) {
      if (pred(chunkBytes(file, entries[i]), entries[i], static_cast<int32_t>(i))) {
        Found f;
        f.indexPath = file;
        std::string encoded = file.substr(prefix.size(), file.size() - prefix.size() - 2);
        f.trackedPath = decodeStoreName(encoded);
        f.name = "data/" + f.trackedPath + ".i";
        f.rev = static_cast<int32_t>(i);
        f.entry = entries[i];
        return f;
      }
    }
  }
  return std::nullopt;
}

std::unique_ptr<Repository> openOk(const std::string& path) {
  auto repo = Repository::open(path);
  if (!repo.ok()) {
    ADD_FAILURE() << path << ": " << errorText(repo.error());
    return nullptr;
  }
  return std::move(repo).value();
}

// Checks an error's kind and that its message mentions every `part`.
void expectError(const Error& e, ErrorKind kind, std::initializer_list<std::string> parts,
                 const std::string& what) {
  EXPECT_EQ(e.kind, kind) << what << ": " << errorText(e);
  std::string msg = e.message();
  for (const auto& p : parts) {
    EXPECT_NE(msg.find(p), std::string::npos)
        << what << ": message does not mention \"" << p << "\": " << msg;
  }
}

void expectVerifyFails(const std::string& path, ErrorKind kind,
                       std::initializer_list<std::string> parts) {
  auto repo = Repository::open(path);
  if (!repo.ok()) {
    expectError(repo.error(), kind, parts, "open for verify");
    return;
  }
  auto stats = verifyRepository(**repo);
  ASSERT_FALSE(stats.ok()) << path << ": verify passed a damaged repository";
  expectError(stats.error(), kind, parts, "verify");
}

// Reads revision `rev` of filelog `path`, expecting `kind` naming the revlog
// and the revision. Opening the filelog may already fail (index damage).
void expectRevisionError(const std::string& repoPath, const Found& f, int32_t rev, ErrorKind kind) {
  auto repo = openOk(repoPath);
  ASSERT_TRUE(repo);
  auto fl = repo->filelog(f.trackedPath);
  if (!fl.ok()) {
    expectError(fl.error(), kind, {f.name}, "filelog open");
    return;
  }
  auto text = fl->revlog().rawText(Revision(rev));
  ASSERT_FALSE(text.ok()) << f.name << " revision " << rev << " read despite the damage";
  expectError(text.error(), kind, {f.name + " revision " + std::to_string(rev)}, "rawText");
}

// ---- truncation -------------------------------------------------------------

TEST(BadInput, InlineIndexCutMidEntry) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/data/src/main.c.i";
  Bytes index = readFile(file);
  auto entries = rawEntries(index);
  ASSERT_GE(entries.size(), 3u);
  writeFile(file, index.substr(0, entries.back().entryPos + 30));
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("src/main.c");
  ASSERT_FALSE(fl.ok()) << "a truncated index opened";
  expectError(fl.error(), ErrorKind::kCorrupt, {"data/src/main.c.i"}, "filelog open");
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/src/main.c.i"});
}

TEST(BadInput, InlineDataCut) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/data/src/main.c.i";
  Bytes index = readFile(file);
  auto entries = rawEntries(index);
  ASSERT_GT(entries.back().compressedLength, 4u);
  writeFile(file, index.substr(0, entries.back().dataPos + entries.back().compressedLength / 2));
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("src/main.c");
  ASSERT_FALSE(fl.ok()) << "inline revlog with cut data opened";
  expectError(fl.error(), ErrorKind::kCorrupt, {"data/src/main.c.i"}, "filelog open");
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/src/main.c.i"});
}

TEST(BadInput, ChangelogIndexCutMidEntry) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/00changelog.i";
  Bytes index = readFile(file);
  auto entries = rawEntries(index);
  ASSERT_GE(entries.size(), 2u);
  writeFile(file, index.substr(0, entries[1].entryPos + 17));
  auto r = Repository::open(repo);
  ASSERT_FALSE(r.ok()) << "opened with a truncated changelog";
  expectError(r.error(), ErrorKind::kCorrupt, {"00changelog.i"}, "open");
}

TEST(BadInput, SplitIndexCutMidEntry) {
  Scratch s;
  std::string repo = s.copy({"big"});
  std::string file = repo + "/.hg/store/data/big.txt.i";
  Bytes index = readFile(file);
  ASSERT_FALSE(be32At(index, 0) & kFlagInlineData) << "fixture: big.txt should be split";
  writeFile(file, index.substr(0, 2 * kIndexEntrySize + 20));
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("big.txt");
  ASSERT_FALSE(fl.ok()) << "a truncated index opened";
  expectError(fl.error(), ErrorKind::kCorrupt, {"data/big.txt.i"}, "filelog open");
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/big.txt.i"});
}

TEST(BadInput, DataFileCut) {
  Scratch s;
  std::string repo = s.copy({"big"});
  std::string file = repo + "/.hg/store/data/big.bin.i";
  auto entries = rawEntries(readFile(file));
  ASSERT_GE(entries.size(), 3u);
  Bytes data = readFile(dataFileOf(file));
  size_t cut = entries.back().dataPos + entries.back().compressedLength / 2;
  writeFile(dataFileOf(file), data.substr(0, cut));
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("big.bin");
  ASSERT_TRUE(fl.ok()) << errorText(fl.error());
  const Revlog& rl = fl->revlog();
  // Revisions whose whole chain lies before the cut still read; the others
  // are Corrupt and name themselves.
  int32_t last = static_cast<int32_t>(entries.size()) - 1;
  for (int32_t r = 0; r <= last; ++r) {
    auto chain = rl.deltaChain(Revision(r));
    ASSERT_TRUE(chain.ok()) << errorText(chain.error());
    bool damaged = std::any_of(chain->begin(), chain->end(), [&](Revision c) {
      const RawEntry& e = entries[c.value()];
      return e.dataPos + e.compressedLength > cut;
    });
    auto text = rl.rawText(Revision(r));
    if (!damaged) {
      EXPECT_TRUE(text.ok()) << "revision " << r << ": " << errorText(text.error());
    } else {
      ASSERT_FALSE(text.ok()) << "revision " << r << " read from a cut data file";
      expectError(text.error(), ErrorKind::kCorrupt, {"data/big.bin.i revision "}, "rawText");
    }
  }
  auto text = rl.rawText(Revision(last));
  ASSERT_FALSE(text.ok());
  expectError(text.error(), ErrorKind::kCorrupt,
              {"data/big.bin.i revision " + std::to_string(last)}, "rawText(last)");
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/big.bin.i"});
}

TEST(BadInput, DataFileMissing) {
  Scratch s;
  std::string repo = s.copy({"big"});
  std::string file = repo + "/.hg/store/data/big.bin.i";
  ASSERT_EQ(unlink(dataFileOf(file).c_str()), 0);
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("big.bin");
  if (fl.ok()) {
    auto text = fl->revlog().rawText(Revision(0));
    ASSERT_FALSE(text.ok());
    expectError(text.error(), ErrorKind::kCorrupt, {"data/big.bin"}, "rawText");
  } else {
    expectError(fl.error(), ErrorKind::kCorrupt, {"data/big.bin"}, "filelog open");
  }
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/big.bin"});
}

// ---- damaged chunks -----------------------------------------------------------

// Flips a byte in the middle of the first chunk led by `header` (at least
// `minLength` long) in `repoName`, then expects Corrupt for that revision.
void flipInChunk(const char* repoName, char header, size_t minLength, size_t offsetInChunk = 0) {
  Scratch s;
  std::string repo = s.copy({repoName});
  auto f = findChunk(repo, [&](const Bytes& chunk, const RawEntry&, int32_t) {
    return chunk.size() >= minLength && chunk[0] == header;
  });
  ASSERT_TRUE(f) << "fixture: no chunk led by '" << printable(ByteView(&header, 1)) << "' in "
                 << repoName;
  size_t at = offsetInChunk ? offsetInChunk : f->entry.compressedLength / 2;
  flipChunkByte(f->indexPath, f->entry, at);
  SCOPED_TRACE(f->name + " revision " + std::to_string(f->rev) + ", byte " + std::to_string(at));
  expectRevisionError(repo, *f, f->rev, ErrorKind::kCorrupt);
  // Unverified reads may return garbage or an error, but never crash.
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog(f->trackedPath);
  ASSERT_TRUE(fl.ok()) << errorText(fl.error());
  for (size_t i = 0; i < fl->revlog().size(); ++i) {
    auto t = fl->revlog().rawText(Revision(static_cast<int32_t>(i)), VerifyHash::kNo);
    if (!t.ok()) {
      EXPECT_EQ(t.error().kind, ErrorKind::kCorrupt) << errorText(t.error());
    }
  }
  expectVerifyFails(repo, ErrorKind::kCorrupt, {f->name});
}

TEST(BadInput, FlippedByteInZlibChunk) { flipInChunk("zlib", 'x', 200); }
TEST(BadInput, FlippedZlibHeader) { flipInChunk("zlib", 'x', 200, 1); }
TEST(BadInput, FlippedByteInZstdChunk) { flipInChunk("basic", '(', 200); }
TEST(BadInput, FlippedZstdMagic) { flipInChunk("basic", '(', 200, 2); }
TEST(BadInput, FlippedByteInMixedRevlogZstdChunk) { flipInChunk("mixed", '(', 200); }
TEST(BadInput, FlippedByteInStoredChunk) { flipInChunk("copies", 'u', 8); }

TEST(BadInput, FlippedByteInStoredFullTextIsANodeMismatch) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  auto f = findChunk(repo, [](const Bytes& chunk, const RawEntry& e, int32_t rev) {
    return chunk.size() > 4 && chunk[0] == 'u' && e.base == rev;
  });
  ASSERT_TRUE(f) << "fixture: no stored full text in basic";
  flipChunkByte(f->indexPath, f->entry, f->entry.compressedLength - 1);
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog(f->trackedPath);
  ASSERT_TRUE(fl.ok()) << errorText(fl.error());
  auto text = fl->revlog().rawText(Revision(f->rev));
  ASSERT_FALSE(text.ok()) << f->name << " revision " << f->rev << " passed its hash check";
  expectError(text.error(), ErrorKind::kCorrupt, {f->name + " revision " + std::to_string(f->rev)},
              "rawText");
  auto node = fl->revlog().node(Revision(f->rev));
  auto content = fl->read(node);
  ASSERT_FALSE(content.ok());
  EXPECT_EQ(content.error().kind, ErrorKind::kCorrupt) << errorText(content.error());
  // Unchecked, the damage shows: one byte differs from the stored chunk.
  auto raw = fl->revlog().rawText(Revision(f->rev), VerifyHash::kNo);
  ASSERT_TRUE(raw.ok()) << errorText(raw.error());
  Bytes chunk = chunkBytes(f->indexPath, f->entry);
  EXPECT_EQ(*raw, chunk.substr(1));
  expectVerifyFails(repo, ErrorKind::kCorrupt, {f->name});
}

TEST(BadInput, NodeChangedInIndex) {
  Scratch s;
  std::string repo = s.copy({"copies"});
  std::string file = repo + "/.hg/store/data/a-copy.txt.i";
  Bytes index = readFile(file);
  auto entries = rawEntries(index);
  ASSERT_GE(entries.size(), 2u);
  Node original = Node::fromRaw(index.data() + entries[1].entryPos + kNodeField);
  index[entries[1].entryPos + kNodeField + 7] ^= 1;
  writeFile(file, index);
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog("a-copy.txt");
  ASSERT_TRUE(fl.ok()) << errorText(fl.error());
  auto text = fl->revlog().rawText(Revision(1));
  ASSERT_FALSE(text.ok()) << "a revision whose node was changed passed its hash check";
  expectError(text.error(), ErrorKind::kCorrupt, {"data/a-copy.txt.i revision 1"}, "rawText");
  auto byNode = fl->read(original);
  ASSERT_FALSE(byNode.ok());
  EXPECT_EQ(byNode.error().kind, ErrorKind::kNotFound) << errorText(byNode.error());
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"data/a-copy.txt.i"});
}

TEST(BadInput, FlippedByteInManifest) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/00manifest.i";
  auto entries = rawEntries(readFile(file));
  ASSERT_GE(entries.size(), 1u);
  flipChunkByte(file, entries[0], entries[0].compressedLength - 3);
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto m = r->manifestOf(Revision(0));
  ASSERT_FALSE(m.ok()) << "a damaged manifest parsed";
  expectError(m.error(), ErrorKind::kCorrupt, {"00manifest.i"}, "manifestOf");
  expectVerifyFails(repo, ErrorKind::kCorrupt, {"00manifest.i"});
}

TEST(BadInput, UnknownChunkHeader) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  auto f = findChunk(repo, [](const Bytes& chunk, const RawEntry& e, int32_t rev) {
    return chunk.size() > 4 && chunk[0] == 'u' && e.base == rev;
  });
  ASSERT_TRUE(f);
  editChunkByte(f->indexPath, f->entry, 0, [](char) { return 'Q'; });
  auto r = openOk(repo);
  ASSERT_TRUE(r);
  auto fl = r->filelog(f->trackedPath);
  ASSERT_TRUE(fl.ok()) << errorText(fl.error());
  auto text = fl->revlog().rawText(Revision(f->rev), VerifyHash::kNo);
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(text.error().kind == ErrorKind::kCorrupt ||
              text.error().kind == ErrorKind::kUnsupported)
      << errorText(text.error());
  EXPECT_NE(text.error().message().find(f->name + " revision " + std::to_string(f->rev)),
            std::string::npos)
      << errorText(text.error());
}

// ---- damaged index fields -------------------------------------------------------

// Sets a 32-bit field of revision `rev` in an index and expects Corrupt from
// opening the filelog or reading that revision.
void damageField(const char* repoName, const std::string& tracked, int32_t rev, size_t field,
                 uint32_t value) {
  Scratch s;
  std::string repo = s.copy({repoName});
  Found f;
  f.indexPath = repo + "/.hg/store/data/" + tracked + ".i";
  f.name = "data/" + tracked + ".i";
  f.trackedPath = tracked;
  Bytes index = readFile(f.indexPath);
  auto entries = rawEntries(index);
  ASSERT_LT(static_cast<size_t>(rev), entries.size());
  putBe32(index, entries[rev].entryPos + field, value);
  writeFile(f.indexPath, index);
  SCOPED_TRACE(f.name + " revision " + std::to_string(rev) + " field " + std::to_string(field) +
               " = " + std::to_string(static_cast<int32_t>(value)));
  expectRevisionError(repo, f, rev, ErrorKind::kCorrupt);
  expectVerifyFails(repo, ErrorKind::kCorrupt, {f.name});
}

TEST(BadInput, DeltaBaseInTheFuture) { damageField("basic", "src/main.c", 1, kBaseField, 2); }
TEST(BadInput, DeltaBasePastTheEnd) { damageField("basic", "src/main.c", 1, kBaseField, 100000); }
TEST(BadInput, DeltaBaseNegative) {
  damageField("basic", "src/main.c", 1, kBaseField, static_cast<uint32_t>(-7));
}
TEST(BadInput, DeltaBaseInTheFutureWithoutGeneralDelta) {
  damageField("long-nogd", "mf", 10, kBaseField, 11);
}
TEST(BadInput, DeltaBasePastTheEndSplitRevlog) {
  damageField("big", "big.txt", 1, kBaseField, 1000);
}
TEST(BadInput, ParentPastTheEnd) { damageField("basic", "src/main.c", 1, kP1Field, 5000); }

TEST(BadInput, UnknownRevlogVersion) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/00changelog.i";
  Bytes index = readFile(file);
  putBe32(index, 0, (be32At(index, 0) & 0xffff0000u) | 3);
  writeFile(file, index);
  auto r = Repository::open(repo);
  ASSERT_FALSE(r.ok()) << "opened a changelog of revlog version 3";
  expectError(r.error(), ErrorKind::kUnsupported, {"00changelog.i"}, "open");
}

TEST(BadInput, UnknownRevlogFlags) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/.hg/store/00manifest.i";
  Bytes index = readFile(file);
  putBe32(index, 0, be32At(index, 0) | (1u << 20));
  writeFile(file, index);
  auto r = Repository::open(repo);
  ASSERT_FALSE(r.ok()) << "opened a manifest with unknown revlog flags";
  expectError(r.error(), ErrorKind::kUnsupported, {"00manifest.i"}, "open");
}

// ---- requirements -----------------------------------------------------------------

struct RequirementCase {
  const char* requirement;
  const char* file;  // relative to the repository root
};

class UnsupportedRequirement : public ::testing::TestWithParam<RequirementCase> {};

TEST_P(UnsupportedRequirement, RefusedNamingIt) {
  Scratch s;
  std::string repo = s.copy({"basic"});
  std::string file = repo + "/" + GetParam().file;
  writeFile(file, readFile(file) + GetParam().requirement + "\n");
  auto r = Repository::open(repo);
  ASSERT_FALSE(r.ok()) << "opened a repository requiring " << GetParam().requirement;
  expectError(r.error(), ErrorKind::kUnsupported, {GetParam().requirement}, "open");
}

INSTANTIATE_TEST_SUITE_P(
    Requirements, UnsupportedRequirement,
    ::testing::Values(RequirementCase{"treemanifest", ".hg/store/requires"},
                      RequirementCase{"revlogv2", ".hg/store/requires"},
                      RequirementCase{"exp-revlogv2.2", ".hg/store/requires"},
                      RequirementCase{"changelogv2", ".hg/store/requires"},
                      RequirementCase{"largefiles", ".hg/requires"},
                      RequirementCase{"lfs", ".hg/store/requires"},
                      RequirementCase{"narrowhg-experimental", ".hg/store/requires"},
                      RequirementCase{"exp-sparse", ".hg/requires"},
                      RequirementCase{"treemanifest", ".hg/requires"},
                      RequirementCase{"some-future-requirement", ".hg/requires"},
                      RequirementCase{"revlog-compression-lz4", ".hg/store/requires"}),
    [](const ::testing::TestParamInfo<RequirementCase>& info) {
      std::string s =
          std::string(info.param.requirement) +
          (std::string(info.param.file).find("store") != std::string::npos ? "_in_store"
                                                                           : "_in_working");
      for (char& c : s) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return s;
    });

TEST(BadInput, ShareOfAStoreWithAnUnsupportedRequirement) {
  Scratch s;
  std::string share = s.copy({"share-rel", "basic"});
  std::string source = fs::path(share).parent_path().string() + "/basic";
  std::string file = source + "/.hg/store/requires";
  writeFile(file, readFile(file) + "treemanifest\n");
  auto r = Repository::open(share);
  ASSERT_FALSE(r.ok()) << "opened a share whose store requires treemanifest";
  expectError(r.error(), ErrorKind::kUnsupported, {"treemanifest"}, "open");
}

TEST(BadInput, ShareWithoutItsSource) {
  Scratch s;
  std::string share = s.copy({"share-rel"});
  auto r = Repository::open(share);
  ASSERT_FALSE(r.ok()) << "opened a share whose source is gone";
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound) << errorText(r.error());
}

// ---- seeded random damage, in memory --------------------------------------------

// Reading a damaged revlog either fails with a typed error or, when the hash
// is checked, returns exactly the original text. Many seeded mutations of
// real revlogs (inline and split, zlib, zstd, stored, generaldelta or not).
TEST(BadInput, RandomDamageNeverCrashesOrLies) {
  struct Source {
    const char* repo;
    const char* revlog;  // store-relative
  };
  const Source sources[] = {
      {"basic", "data/src/main.c.i"}, {"zlib", "data/text.txt.i"}, {"mixed", "data/f.txt.i"},
      {"long-nogd", "data/mf.i"},     {"big", "data/big.txt.i"},   {"copies", "data/meta1.i"},
      {"basic", "00changelog.i"},     {"long", "00manifest.i"},
  };
  std::mt19937 rng(20240501);
  for (const Source& src : sources) {
    std::string indexPath = FixtureRepos::get().path(src.repo) + "/.hg/store/" + src.revlog;
    Bytes index = readFile(indexPath);
    bool isInline = be32At(index, 0) & kFlagInlineData;
    Bytes data = isInline ? Bytes() : readFile(dataFileOf(indexPath));
    auto good = Revlog::fromBytes(index, data, src.revlog);
    ASSERT_TRUE(good.ok()) << errorText(good.error());
    std::vector<Bytes> originals;
    for (size_t i = 0; i < (*good)->size(); ++i) {
      auto t = (*good)->rawText(Revision(static_cast<int32_t>(i)));
      ASSERT_TRUE(t.ok()) << errorText(t.error());
      originals.push_back(*t);
    }
    for (int round = 0; round < 60; ++round) {
      Bytes idx = index, dat = data;
      Bytes& target = (isInline || rng() % 3 == 0) ? idx : dat;
      if (target.empty()) continue;
      int kind = static_cast<int>(rng() % 4);
      if (kind == 0) {
        target.resize(rng() % target.size());  // truncate
      } else {
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) {
          size_t at = rng() % target.size();
          target[at] = static_cast<char>(kind == 1 ? target[at] ^ (1 << (rng() % 8)) : rng());
        }
      }
      SCOPED_TRACE(std::string(src.repo) + "/" + src.revlog + " round " + std::to_string(round));
      auto rl = Revlog::fromBytes(idx, dat, src.revlog);
      if (!rl.ok()) {
        EXPECT_TRUE(rl.error().kind == ErrorKind::kCorrupt ||
                    rl.error().kind == ErrorKind::kUnsupported)
            << errorText(rl.error());
        EXPECT_NE(rl.error().message().find(src.revlog), std::string::npos)
            << errorText(rl.error());
        continue;
      }
      for (size_t i = 0; i < (*rl)->size(); ++i) {
        Revision r(static_cast<int32_t>(i));
        auto unchecked = (*rl)->rawText(r, VerifyHash::kNo);  // may be garbage; must not crash
        (void)unchecked;
        (void)(*rl)->rawSize(r);
        (void)(*rl)->rawTextStartsWith(r, ByteView("\1\n", 2));
        auto t = (*rl)->rawText(r);
        if (t.ok()) {
          // The node check passed: only the original text can do that
          // (unless the node itself was damaged along with the text).
          if (i < originals.size() && (*rl)->node(r) == (*good)->node(r)) {
            EXPECT_EQ(*t, originals[i]) << "revision " << i << " returned a wrong text";
          }
        } else {
          EXPECT_TRUE(t.error().kind == ErrorKind::kCorrupt ||
                      t.error().kind == ErrorKind::kUnsupported ||
                      t.error().kind == ErrorKind::kCensored)
              << errorText(t.error());
          EXPECT_NE(t.error().message().find(src.revlog), std::string::npos)
              << errorText(t.error());
        }
      }
    }
  }
}

}  // namespace
}  // namespace hgvfs::hg
