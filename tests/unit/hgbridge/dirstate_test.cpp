// hgbridge/dirstate.h against Mercurial itself.
//
// Working copies are put into every dirstate state by the real hg — add,
// remove, forget, copy, rename, `hg cp -A -f` (a copy on an 'n' entry), an
// uncommitted merge (second parent, 'm', size -2 and 'r' -1/-2 entries),
// entries whose mtimes `hg status` recorded, names that are not UTF-8 — and
// .hg/dirstate is read both here and by tests/oracle/dirstate_dump.py
// (Mercurial's parser). Both must agree, and serializing what was parsed
// must give hg's bytes back. Truncated and damaged files are errors, never
// crashes. Finally a dirstate written here (every file 'n', mtime -1) is
// given to stock hg: `hg status` and `hg debugstate` must read it right.

#include "hgbridge/dirstate.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "hgbridge/repository.h"
#include "tests/support/test_support.h"

namespace hgvfs::hg {

void PrintTo(const DirstateEntry& e, std::ostream* os) {
  *os << e.state << " " << e.mode << " " << e.size << " " << e.mtime << " " << printable(e.path);
  if (e.copySource) *os << " <- " << printable(*e.copySource);
}

namespace {

namespace fs = std::filesystem;
using test::TempDir;

void check(const test::CommandResult& r, const std::string& what) {
  if (r.exitCode != 0) throw std::runtime_error(what + " failed: " + r.err + r.out);
}

void hgOk(const std::vector<std::string>& args, const std::string& cwd) {
  std::string what = "hg";
  for (const auto& a : args) what += " " + a;
  check(test::hg(args, cwd), what);
}

Bytes unhex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(hexDigitValue(hex[i]) * 16 + hexDigitValue(hex[i + 1])));
  }
  return out;
}

// ---- the oracle -------------------------------------------------------------

struct HgView {
  std::string error;  // the exception's class when hg refuses the file
  Node p1, p2;
  std::vector<DirstateEntry> entries;
  Bytes repack;  // pack_dirstate of what hg parsed
};

HgView hgParse(const Bytes& data) {
  TempDir tmp;
  std::string file = tmp.path() + "/dirstate";
  test::writeFile(file, data);
  auto r = test::run(
      {test::mercurialPython(), test::sourceDir() + "/tests/oracle/dirstate_dump.py", file});
  check(r, "dirstate_dump.py");
  HgView v;
  std::istringstream in(r.out);
  std::string kind;
  while (in >> kind) {
    if (kind == "error") {
      in >> v.error;
    } else if (kind == "parents") {
      std::string a, b;
      in >> a >> b;
      v.p1 = *Node::fromHex(a);
      v.p2 = *Node::fromHex(b);
    } else if (kind == "entry") {
      std::string state, path, copy;
      DirstateEntry e;
      in >> state >> e.mode >> e.size >> e.mtime >> path >> copy;
      e.state = state.at(0);
      e.path = unhex(path);
      if (copy != "-") e.copySource = unhex(copy);
      v.entries.push_back(std::move(e));
    } else if (kind == "repack") {
      std::string hex;
      in >> hex;
      v.repack = unhex(hex);
    } else {
      throw std::runtime_error("odd oracle output: " + r.out);
    }
  }
  return v;
}

std::string describe(const DirstateEntry& e) {
  return std::string(1, e.state) + " " + std::to_string(e.mode) + " " + std::to_string(e.size) +
         " " + std::to_string(e.mtime) + " " + printable(e.path) +
         (e.copySource ? " <- " + printable(*e.copySource) : "");
}

// Everything this file promises about a dirstate hg wrote: the same parse as
// hg's, the same bytes back, and a summary that is the non-normal entries.
Dirstate checkAgainstHg(const Bytes& data) {
  HgView hg = hgParse(data);
  EXPECT_EQ(hg.error, "");
  auto parsed = parseDirstateV1(data);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message();
  if (!parsed.ok()) return {};
  const Dirstate& d = *parsed;
  EXPECT_EQ(d.p1, hg.p1);
  EXPECT_EQ(d.p2, hg.p2);
  EXPECT_EQ(d.entries.size(), hg.entries.size());
  for (size_t i = 0; i < std::min(d.entries.size(), hg.entries.size()); ++i) {
    EXPECT_EQ(d.entries[i], hg.entries[i])
        << "ours: " << describe(d.entries[i]) << "\nhg's: " << describe(hg.entries[i]);
  }
  Bytes again = serializeDirstateV1(d);
  EXPECT_TRUE(again == data) << "parse → serialize changed the bytes";
  EXPECT_TRUE(again == hg.repack) << "hg packs the parsed entries differently";

  auto summary = parseDirstateNonNormal(data);
  EXPECT_TRUE(summary.ok()) << summary.error().message();
  if (summary.ok()) {
    EXPECT_EQ(summary->p1, d.p1);
    EXPECT_EQ(summary->p2, d.p2);
    EXPECT_EQ(summary->totalEntries, d.entries.size());
    std::vector<DirstateEntry> expected;
    for (const auto& e : d.entries) {
      if (e.isNonNormal()) expected.push_back(e);
    }
    EXPECT_EQ(summary->nonNormal, expected);
  }
  return d;
}

const DirstateEntry* findEntry(const Dirstate& d, ByteView path) {
  for (const auto& e : d.entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

void setMtime(const std::string& path, time_t when) {
  timespec times[2] = {{when, 0}, {when, 0}};
  if (utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    throw std::runtime_error("utimensat " + path);
  }
}

// A committed revision with every kind of file and names that are not UTF-8.
void makeBase(const std::string& repo) {
  hgOk({"init", repo}, {});
  fs::create_directories(repo + "/dir/sub");
  test::writeFile(repo + "/a.txt", "alpha\n");
  test::writeFile(repo + "/b.txt", "bravo\n");
  test::writeFile(repo + "/c.txt", "charlie\n");
  test::writeFile(repo + "/dir/sub/deep.txt", "deep\n");
  test::writeFile(repo + "/caf\xe9.txt", "latin-1 name\n");
  test::writeFile(repo + "/\xff\xfe-raw", "raw bytes name\n");
  test::writeFile(repo + "/exec.sh", "#!/bin/sh\n");
  fs::permissions(repo + "/exec.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_symlink("a.txt", repo + "/link");
  test::writeFile(repo + "/empty", "");
  hgOk({"commit", "-A", "-q", "-m", "base"}, repo);
}

// ---- dirstates written by hg ------------------------------------------------

TEST(DirstateTest, WorkingCopyChangesMatchHg) {
  TempDir tmp;
  std::string repo = tmp.path() + "/r";
  makeBase(repo);
  test::writeFile(repo + "/new.txt", "new\n");
  test::writeFile(repo + "/new-\xe9", "new latin-1\n");
  hgOk({"add", "new.txt", "new-\xe9"}, repo);
  hgOk({"remove", "b.txt"}, repo);
  hgOk({"forget", "c.txt"}, repo);
  hgOk({"copy", "a.txt", "copy-of-a.txt"}, repo);
  hgOk({"rename", "dir/sub/deep.txt", "moved.txt"}, repo);
  hgOk({"copy", "caf\xe9.txt", "copy-\xff"}, repo);
  test::writeFile(repo + "/a.txt", "alpha changed\n");

  Dirstate d = checkAgainstHg(test::readFile(repo + "/.hg/dirstate"));
  EXPECT_FALSE(d.p1.isNull());
  EXPECT_TRUE(d.p2.isNull());
  auto expectState = [&](ByteView path, char state, std::optional<Bytes> source = std::nullopt) {
    const DirstateEntry* e = findEntry(d, path);
    ASSERT_NE(e, nullptr) << printable(path);
    EXPECT_EQ(e->state, state) << printable(path);
    EXPECT_EQ(e->copySource, source) << printable(path);
  };
  expectState("b.txt", 'r');
  expectState("c.txt", 'r');  // forget is a removal in the dirstate
  expectState("new.txt", 'a');
  expectState("new-\xe9", 'a');
  expectState("copy-of-a.txt", 'a', "a.txt");
  expectState("moved.txt", 'a', "dir/sub/deep.txt");
  expectState("dir/sub/deep.txt", 'r');
  expectState("copy-\xff", 'a', "caf\xe9.txt");
  expectState("\xff\xfe-raw", 'n');
  EXPECT_EQ(findEntry(d, "new.txt")->size, kDirstateSizeNonNormal);
}

TEST(DirstateTest, CopyOnNormalEntryMatchesHg) {
  TempDir tmp;
  std::string repo = tmp.path() + "/r";
  makeBase(repo);
  hgOk({"copy", "--after", "--force", "a.txt", "b.txt"}, repo);
  Dirstate d = checkAgainstHg(test::readFile(repo + "/.hg/dirstate"));
  const DirstateEntry* b = findEntry(d, "b.txt");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->state, 'n');
  EXPECT_EQ(b->copySource, Bytes("a.txt"));
  EXPECT_TRUE(b->isNonNormal());
  EXPECT_EQ(test::hg({"status", "-C"}, repo).out, "M b.txt\n  a.txt\n");
}

TEST(DirstateTest, RecordedMtimesMatchHg) {
  TempDir tmp;
  std::string repo = tmp.path() + "/r";
  makeBase(repo);
  // Old mtimes are unambiguous, so `hg status` records them (set_clean).
  const time_t past = 978307200;  // 2001-01-01
  for (const char* f : {"a.txt", "b.txt", "c.txt", "exec.sh", "empty", "caf\xe9.txt", "link"}) {
    setMtime(repo + "/" + f, past);
  }
  hgOk({"debugrebuildstate"}, repo);
  hgOk({"status"}, repo);
  Dirstate d = checkAgainstHg(test::readFile(repo + "/.hg/dirstate"));
  const DirstateEntry* a = findEntry(d, "a.txt");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state, 'n');
  EXPECT_EQ(a->size, 6);
  EXPECT_EQ(a->mtime, past);
  EXPECT_EQ(a->mode & 0170000, 0100000);
  EXPECT_FALSE(a->isNonNormal());
  const DirstateEntry* x = findEntry(d, "exec.sh");
  ASSERT_NE(x, nullptr);
  EXPECT_NE(x->mode & 0100, 0);
  const DirstateEntry* l = findEntry(d, "link");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->mode & 0170000, 0120000);
  EXPECT_EQ(l->size, 5);  // the target's length
}

TEST(DirstateTest, UncommittedMergeMatchesHg) {
  TempDir tmp;
  std::string repo = tmp.path() + "/r";
  hgOk({"init", repo}, {});
  auto w = [&](const std::string& f, const std::string& s) { test::writeFile(repo + "/" + f, s); };
  w("both", "1\n2\n3\n4\n5\n6\n7\n");
  w("p2only", "a\n");
  w("p2removes", "r\n");
  w("keep", "k\n");
  w("keep2", "k2\n");
  hgOk({"commit", "-A", "-q", "-m", "base"}, repo);
  w("both", "1x\n2\n3\n4\n5\n6\n7\n");
  w("local", "l\n");
  hgOk({"commit", "-A", "-q", "-m", "local"}, repo);
  hgOk({"update", "-q", "0"}, repo);
  w("both", "1\n2\n3\n4\n5\n6\n7x\n");
  w("p2only", "b\n");
  hgOk({"remove", "-q", "p2removes"}, repo);
  w("p2new", "n\n");
  w("p2new2", "n2\n");
  hgOk({"add", "p2new", "p2new2"}, repo);
  hgOk({"rename", "keep", "moved"}, repo);
  hgOk({"commit", "-q", "-m", "other"}, repo);
  hgOk({"update", "-q", "1"}, repo);
  hgOk({"merge", "-q", "2"}, repo);

  Dirstate merged = checkAgainstHg(test::readFile(repo + "/.hg/dirstate"));
  EXPECT_FALSE(merged.p2.isNull());
  auto expect = [](const Dirstate& d, ByteView path, char state, int32_t size) {
    const DirstateEntry* e = findEntry(d, path);
    ASSERT_NE(e, nullptr) << printable(path);
    EXPECT_EQ(e->state, state) << printable(path);
    EXPECT_EQ(e->size, size) << printable(path);
  };
  expect(merged, "both", 'm', kDirstateSizeFromP2);
  expect(merged, "p2only", 'm', kDirstateSizeFromP2);
  expect(merged, "p2new", 'n', kDirstateSizeFromP2);
  expect(merged, "moved", 'n', kDirstateSizeFromP2);
  expect(merged, "p2removes", 'r', 0);

  // Removing a merged file and a file that came from p2.
  hgOk({"remove", "-f", "both", "p2new2"}, repo);
  Dirstate removed = checkAgainstHg(test::readFile(repo + "/.hg/dirstate"));
  expect(removed, "both", 'r', kDirstateSizeNonNormal);
  expect(removed, "p2new2", 'r', kDirstateSizeFromP2);
}

// ---- damaged input ----------------------------------------------------------

Bytes sampleDirstate() {
  Dirstate d;
  d.p1 = Node::fromRaw("0123456789abcdefghij");
  d.entries.push_back({'n', 0100644, 6, 1000, "a.txt", std::nullopt});
  d.entries.push_back({'a', 0, -1, -1, "copy", Bytes("a.txt")});
  d.entries.push_back({'r', 0, 0, 0, "gone/\xff", std::nullopt});
  d.entries.push_back({'m', 0, -2, -1, "merged", std::nullopt});
  return serializeDirstateV1(d);
}

TEST(DirstateTest, EveryTruncationIsAnErrorOrAnEntryBoundary) {
  Bytes data = sampleDirstate();
  std::vector<size_t> boundaries = {0, 40};
  auto visited = visitDirstateV1(data, [&](const DirstateEntryView& v) {
    boundaries.push_back(v.offset + kDirstateEntryHeaderSize + v.path.size() +
                         (v.copySource ? 1 + v.copySource->size() : 0));
  });
  ASSERT_TRUE(visited.ok());
  for (size_t len = 0; len < data.size(); ++len) {
    ByteView prefix(data.data(), len);
    auto d = parseDirstateV1(prefix);
    auto s = parseDirstateNonNormal(prefix);
    bool boundary = std::count(boundaries.begin(), boundaries.end(), len) > 0;
    EXPECT_EQ(d.ok(), boundary) << "length " << len;
    EXPECT_EQ(s.ok(), boundary) << "length " << len;
    if (!d.ok()) {
      EXPECT_EQ(d.error().kind, ErrorKind::kCorrupt);
      EXPECT_EQ(d.error().where, "dirstate");
      if (len > 40) {
        EXPECT_NE(d.error().what.find("offset"), std::string::npos) << d.error().what;
      }
    } else if (len > 0) {
      EXPECT_TRUE(serializeDirstateV1(*d) == prefix) << "length " << len;
    }
  }
  // hg refuses the same truncations (its C parser; the pure one is laxer).
  for (size_t len : {size_t{1}, size_t{39}, size_t{45}, boundaries[2] + 20, data.size() - 1}) {
    EXPECT_NE(hgParse(data.substr(0, len)).error, "") << "length " << len;
  }
  EXPECT_EQ(hgParse(data.substr(0, boundaries[2])).error, "");
}

TEST(DirstateTest, EmptyFileIsNullParents) {
  auto d = parseDirstateV1("");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->p1.isNull());
  EXPECT_TRUE(d->p2.isNull());
  EXPECT_TRUE(d->entries.empty());
  HgView hg = hgParse("");
  EXPECT_TRUE(serializeDirstateV1(*d) == hg.repack);
}

TEST(DirstateTest, UnknownStateAndHugeLengthsAreCorrupt) {
  Bytes data = sampleDirstate();
  Bytes badState = data;
  badState[40] = 'x';
  auto d = parseDirstateV1(badState, ".hg/dirstate");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kCorrupt);
  EXPECT_EQ(d.error().where, ".hg/dirstate");
  EXPECT_NE(d.error().what.find("offset 40"), std::string::npos) << d.error().what;
  EXPECT_EQ(hgParse(badState).error, "RuntimeError");

  Bytes huge = data;
  for (int i = 0; i < 4; ++i) huge[40 + 13 + i] = '\xff';  // name length 0xffffffff
  EXPECT_FALSE(parseDirstateV1(huge).ok());
  EXPECT_FALSE(parseDirstateNonNormal(huge).ok());
  EXPECT_EQ(hgParse(huge).error, "ValueError");
}

TEST(DirstateTest, RandomDamageNeverCrashes) {
  Bytes data = sampleDirstate();
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    Bytes damaged = data;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) damaged[rng() % damaged.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) damaged.resize(rng() % (damaged.size() + 1));
    auto d = parseDirstateV1(damaged);
    auto s = parseDirstateNonNormal(damaged);
    ASSERT_EQ(d.ok(), s.ok());
    if (d.ok() && !damaged.empty()) {
      ASSERT_TRUE(serializeDirstateV1(*d) == damaged);
      ASSERT_EQ(s->totalEntries, d->entries.size());
    }
  }
}

// ---- dirstates written here, read by hg --------------------------------------

// Every file of the working copy's revision as 'n' with mtime -1: the
// dirstate a mount writes. `knownSizes` false writes size -1 instead.
Bytes writeMountDirstate(const std::string& repoPath, bool knownSizes, size_t chunkBytes) {
  auto repo = Repository::open(repoPath);
  if (!repo.ok()) throw std::runtime_error(repo.error().message());
  auto rev = (*repo)->lookup("tip");
  auto manifest = (*repo)->manifestOf(*rev);
  if (!manifest.ok()) throw std::runtime_error(manifest.error().message());
  Node p1 = (*repo)->changelog().revlog().node(*rev);
  Bytes out;
  DirstateV1Writer writer(
      p1, kNullNode,
      [&](ByteView chunk) -> Status {
        EXPECT_LE(chunk.size(), chunkBytes + 4096);
        out.append(chunk);
        return okStatus();
      },
      chunkBytes);
  for (const auto& e : manifest->entries()) {
    int32_t mode = e.kind == FileKind::kExecutable ? kDirstateModeExecutable
                   : e.kind == FileKind::kSymlink  ? kDirstateModeSymlink
                                                   : kDirstateModeRegular;
    int32_t size = kDirstateSizeNonNormal;
    // hg keeps no mode for an 'n' entry without a size and writes 0.
    if (!knownSizes) mode = 0;
    if (knownSizes) {
      struct stat st;
      if (lstat((repoPath + "/" + Bytes(e.path)).c_str(), &st) != 0)
        throw std::runtime_error("lstat");
      size = dirstateRange(static_cast<uint64_t>(st.st_size));
    }
    Status s = writer.add('n', mode, size, kDirstateMtimeUnset, e.path);
    if (!s.ok()) throw std::runtime_error(s.error().message());
  }
  Status s = writer.finish();
  if (!s.ok()) throw std::runtime_error(s.error().message());
  EXPECT_EQ(writer.entriesWritten(), manifest->size());
  return out;
}

TEST(DirstateTest, StockHgReadsAWrittenDirstate) {
  TempDir tmp;
  std::string repo = tmp.path() + "/r";
  makeBase(repo);
  for (bool knownSizes : {true, false}) {
    SCOPED_TRACE(knownSizes ? "sizes known" : "sizes -1");
    Bytes ours = writeMountDirstate(repo, knownSizes, 64);
    // Chunking does not change the bytes; hg parses and repacks them as is.
    Dirstate d = checkAgainstHg(ours);
    EXPECT_TRUE(writeMountDirstate(repo, knownSizes, 1 << 20) == ours);
    ASSERT_EQ(d.entries.size(), 9u);
    // Size -1 is non-normal: nothing cached, the content is always compared.
    for (const auto& e : d.entries) EXPECT_EQ(e.isNonNormal(), !knownSizes) << describe(e);

    auto install = [&] { test::writeFile(repo + "/.hg/dirstate", ours); };
    install();
    auto st = test::hg({"status"}, repo);
    EXPECT_EQ(st.exitCode, 0) << st.err;
    EXPECT_EQ(st.out, "");
    install();
    auto ds = test::hg({"debugstate", "--no-dates"}, repo);
    EXPECT_EQ(ds.exitCode, 0) << ds.err;
    std::istringstream lines(ds.out);
    std::string line;
    std::vector<Bytes> names;
    while (std::getline(lines, line)) {
      ASSERT_GE(line.size(), 38u) << line;
      EXPECT_EQ(line[0], 'n') << line;
      EXPECT_EQ(line.substr(17, 20), "unset               ") << line;
      names.push_back(line.substr(37));
    }
    std::vector<Bytes> expected;
    for (const auto& e : d.entries) expected.push_back(e.path);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(names, expected);

    // The same size with other content is found by comparing content; a new
    // size, an exec bit and a missing file without.
    install();
    test::writeFile(repo + "/a.txt", "ALPHA\n");
    EXPECT_EQ(test::hg({"status"}, repo).out, "M a.txt\n");
    install();
    test::writeFile(repo + "/a.txt", "alpha, longer\n");
    fs::permissions(repo + "/c.txt", fs::perms::owner_exec, fs::perm_options::add);
    fs::remove(repo + "/empty");
    EXPECT_EQ(test::hg({"status"}, repo).out, "M a.txt\nM c.txt\n! empty\n");
    hgOk({"revert", "-q", "--all", "--no-backup"}, repo);
  }
}

TEST(DirstateTest, WriterRefusesBadPathsAndKeepsSinkErrors) {
  Bytes out;
  DirstateV1Writer w(kNullNode, kNullNode, [&](ByteView b) -> Status {
    out.append(b);
    return okStatus();
  });
  EXPECT_EQ(w.add('n', 0, 0, 0, "").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(w.add('n', 0, 0, 0, Bytes("a\0b", 3)).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(w.add('?', 0, 0, 0, "a").error().kind, ErrorKind::kInvalidArgument);
  ASSERT_TRUE(w.add('a', 0, -1, -1, "b", ByteView("a")).ok());
  ASSERT_TRUE(w.finish().ok());
  EXPECT_EQ(w.entriesWritten(), 1u);
  auto d = parseDirstateV1(out);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->entries.size(), 1u);
  EXPECT_EQ(d->entries[0].copySource, Bytes("a"));

  int calls = 0;
  DirstateV1Writer failing(
      kNullNode, kNullNode,
      [&](ByteView) -> Status {
        ++calls;
        return ioError(ENOSPC, "write", "dirstate");
      },
      16);
  auto first = failing.add('n', 0, 0, 0, "file");
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().err, ENOSPC);
  EXPECT_EQ(failing.add('n', 0, 0, 0, "other").error().err, ENOSPC);
  EXPECT_EQ(failing.finish().error().err, ENOSPC);
  EXPECT_EQ(calls, 1);
}

// The mount's format (docs/DIRSTATE.md): v1 plus 'u' entries, which only a
// parse that asks for it accepts; plain v1 keeps refusing them as hg does.
TEST(DirstateTest, HgvfsFormatReadsAndWritesUntrackedEntries) {
  Node p1 = *Node::fromHex("0123456789abcdef0123456789abcdef01234567");
  Bytes out;
  DirstateV1Writer w(
      p1, kNullNode,
      [&](ByteView b) -> Status {
        out.append(b);
        return okStatus();
      },
      size_t{1} << 16, DirstateFormat::kHgvfs);
  ASSERT_TRUE(w.add('a', 0, -1, -1, "new", ByteView("old")).ok());
  ASSERT_TRUE(w.addUntracked("dir/gone").ok());
  EXPECT_EQ(w.add('u', 0, 0, 0, "copied", ByteView("src")).error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(w.add('u', 0100644, -1, -1, "sized").error().kind, ErrorKind::kInvalidArgument);
  ASSERT_TRUE(w.finish().ok());
  EXPECT_EQ(w.entriesWritten(), 2u);

  auto v1 = parseDirstateV1(out, "d");
  ASSERT_FALSE(v1.ok());
  EXPECT_EQ(v1.error().kind, ErrorKind::kCorrupt);
  EXPECT_NE(v1.error().what.find("unknown state u at offset 64"), std::string::npos)
      << v1.error().what;
  EXPECT_FALSE(parseDirstateNonNormal(out).ok());

  auto d = parseDirstateV1(out, "d", DirstateFormat::kHgvfs);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->p1, p1);
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->entries[1], (DirstateEntry{'u', 0, 0, 0, "dir/gone", std::nullopt}));
  EXPECT_TRUE(serializeDirstateV1(*d) == out);

  // A v1 writer writes no 'u'.
  DirstateV1Writer plain(kNullNode, kNullNode, [](ByteView) { return okStatus(); });
  EXPECT_EQ(plain.addUntracked("x").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(plain.entriesWritten(), 0u);
}

TEST(DirstateTest, UntrackedEntryWithACopySourceIsCorrupt) {
  Dirstate d;
  d.entries.push_back({'n', 0, -1, -1, "kept", std::nullopt});
  d.entries.push_back({'u', 0, 0, 0, "dest", Bytes("source")});
  Bytes data = serializeDirstateV1(d);
  auto parsed = parseDirstateV1(data, "clients/x/dot-hg/dirstate", DirstateFormat::kHgvfs);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().kind, ErrorKind::kCorrupt);
  EXPECT_EQ(parsed.error().where, "clients/x/dot-hg/dirstate");
  EXPECT_NE(parsed.error().what.find("untracked entry with a copy source at offset 61"),
            std::string::npos)
      << parsed.error().what;
  // Unknown states stay unknown in the mount's format too.
  Bytes bad = data;
  bad[40] = 'x';
  EXPECT_EQ(parseDirstateV1(bad, "d", DirstateFormat::kHgvfs).error().kind, ErrorKind::kCorrupt);
}

}  // namespace
}  // namespace hgvfs::hg
