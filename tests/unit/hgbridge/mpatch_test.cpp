// Binary deltas (hgbridge/mpatch.h) against Mercurial's bdiff and mpatch.
//
// Hand-written deltas pin down the format and every way a delta can be
// malformed; tests/oracle/mpatch_cases.py supplies chains of real deltas made
// by mercurial.mdiff.textdiff, and damaged deltas together with what
// Mercurial's C mpatch makes of them.

#include "hgbridge/mpatch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace hgvfs::hg {
namespace {

using test::mercurialPython;
using test::run;
using test::sourceDir;
using test::TempDir;

std::string be32(uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  return std::string(b, 4);
}

// One hunk: replace base[start:end] with `data`.
std::string hunk(uint32_t start, uint32_t end, std::string_view data) {
  return be32(start) + be32(end) + be32(static_cast<uint32_t>(data.size())) + std::string(data);
}

// A hunk whose length field says `claimed` whatever data follows.
std::string hunkClaiming(uint32_t start, uint32_t end, uint32_t claimed, std::string_view data) {
  return be32(start) + be32(end) + be32(claimed) + std::string(data);
}

Result<Bytes> applyChain(std::string_view base, const std::vector<std::string>& deltas) {
  std::vector<ByteView> views(deltas.begin(), deltas.end());
  return applyDeltas(base, views);
}

std::string applied(std::string_view base, const std::vector<std::string>& deltas) {
  auto r = applyChain(base, deltas);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : std::string("<error>");
}

// ---------------------------------------------------------------------------
// Well-formed deltas.

TEST(MpatchTest, NoDeltasGiveTheBase) {
  EXPECT_EQ(applied("hello", {}), "hello");
  EXPECT_EQ(applied("", {}), "");
}

TEST(MpatchTest, EmptyDeltaChangesNothing) {
  EXPECT_EQ(applied("hello", {""}), "hello");
  EXPECT_EQ(applied("hello", {"", "", ""}), "hello");
  auto n = patchedLength(5, "");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
}

TEST(MpatchTest, SingleHunks) {
  const std::string base = "0123456789";
  EXPECT_EQ(applied(base, {hunk(0, 0, "ab")}), "ab0123456789");    // insert at start
  EXPECT_EQ(applied(base, {hunk(4, 4, "ab")}), "0123ab456789");    // insert inside
  EXPECT_EQ(applied(base, {hunk(10, 10, "ab")}), "0123456789ab");  // append
  EXPECT_EQ(applied(base, {hunk(2, 5, "")}), "0156789");           // delete
  EXPECT_EQ(applied(base, {hunk(2, 5, "XYZW")}), "01XYZW56789");   // replace, longer
  EXPECT_EQ(applied(base, {hunk(0, 10, "")}), "");                 // delete all
  EXPECT_EQ(applied(base, {hunk(0, 10, "new")}), "new");           // replace all
  EXPECT_EQ(applied(base, {hunk(3, 3, "")}), base);                // empty hunk
  EXPECT_EQ(applied("", {hunk(0, 0, "from nothing")}), "from nothing");
  EXPECT_EQ(applied(base, {hunk(9, 10, std::string("\0\xff", 2))}),
            std::string("012345678\0\xff", 11));
}

TEST(MpatchTest, SeveralHunks) {
  const std::string base = "0123456789";
  // Adjacent hunks (one ends where the next starts), two insertions at the
  // same offset (applied in order), and a hunk at the very end.
  const std::string delta =
      hunk(0, 2, "a") + hunk(2, 4, "b") + hunk(6, 6, "c") + hunk(6, 6, "d") + hunk(9, 10, "e");
  EXPECT_EQ(applied(base, {delta}), "ab45cd678e");
  auto n = patchedLength(base.size(), delta);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 10u);
}

TEST(MpatchTest, ChainAppliesInOrder) {
  // "one\ntwo\n" -> "one\n2\n" -> "zero\none\n2\n" -> "zero\n"
  const std::vector<std::string> chain = {hunk(4, 8, "2\n"), hunk(0, 0, "zero\n"), hunk(5, 11, "")};
  EXPECT_EQ(applied("one\ntwo\n", chain), "zero\n");
  EXPECT_EQ(applied("one\ntwo\n", {chain[0], chain[1]}), "zero\none\n2\n");
}

TEST(MpatchTest, PatchedLength) {
  struct Case {
    size_t base;
    std::string delta;
    size_t expected;
  };
  const std::vector<Case> cases = {
      {10, hunk(0, 0, "ab"), 12},
      {10, hunk(2, 5, ""), 7},
      {10, hunk(0, 10, "x"), 1},
      {0, hunk(0, 0, "abc"), 3},
      {10, hunk(1, 2, "xyz") + hunk(5, 9, "") + hunk(10, 10, "q"), 9},
  };
  for (const Case& c : cases) {
    auto n = patchedLength(c.base, c.delta);
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_EQ(*n, c.expected);
  }
}

TEST(MpatchTest, TraceOffset) {
  // "0123456789" with [2,5) -> "XY" and an insertion at 8: "01XY567ab89"
  const std::string delta = hunk(2, 5, "XY") + hunk(8, 8, "ab");
  ASSERT_EQ(applied("0123456789", {delta}), "01XY567ab89");
  struct Expect {
    size_t offset;
    bool inDelta;
    size_t value;
  };
  const std::vector<Expect> expected = {
      {0, false, 0}, {1, false, 1},  {2, true, 'X'}, {3, true, 'Y'}, {4, false, 5},
      {6, false, 7}, {7, true, 'a'}, {8, true, 'b'}, {9, false, 8},  {10, false, 9},
  };
  for (const Expect& e : expected) {
    auto origin = traceOffset(delta, e.offset);
    ASSERT_TRUE(origin.ok()) << origin.error().message();
    EXPECT_EQ(origin->inDelta, e.inDelta) << "offset " << e.offset;
    EXPECT_EQ(origin->value, e.value) << "offset " << e.offset;
  }
  // With no hunks every offset maps to itself.
  auto same = traceOffset("", 42);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->inDelta);
  EXPECT_EQ(same->value, 42u);
}

// ---------------------------------------------------------------------------
// Malformed deltas: kCorrupt, never a crash.

struct BadCase {
  const char* what;
  std::string base;
  std::vector<std::string> deltas;
};

std::vector<BadCase> badCases() {
  const std::string base = "0123456789";
  const std::string good = hunk(1, 2, "x");
  return {
      {"header of 1 byte", base, {std::string(1, '\0')}},
      {"header of 11 bytes", base, {hunk(0, 0, "").substr(0, 11)}},
      {"good hunk then a partial header", base, {good + std::string(5, '\0')}},
      {"data shorter than its length", base, {hunkClaiming(0, 1, 10, "abcde")}},
      {"length one more than the data", base, {hunkClaiming(0, 1, 2, "a")}},
      {"start after end", base, {hunk(5, 4, "x")}},
      {"out of order", base, {hunk(5, 6, "a") + hunk(1, 2, "b")}},
      {"overlapping", base, {hunk(1, 5, "a") + hunk(4, 6, "b")}},
      {"end past the base", base, {hunk(9, 11, "")}},
      {"start and end past the base", base, {hunk(11, 11, "x")}},
      {"insertion into an empty base past its end", "", {hunk(1, 1, "x")}},
      {"huge length", base, {hunkClaiming(0, 0, 0xFFFFFFFF, "abc")}},
      {"length that wraps a 32-bit offset", base, {hunkClaiming(0, 0, 0xFFFFFFF4, "")}},
      {"huge start", base, {hunk(0xFFFFFFFF, 0xFFFFFFFF, "")}},
      {"start with the top bit set", base, {hunk(0x80000000, 0x80000001, "")}},
      {"huge end", base, {hunk(0, 0xFFFFFFFF, "")}},
      {"bad second delta", base, {good, hunk(3, 2, "")}},
      // The second delta is checked against the text the first one made, not
      // against the base: "0123456789" -> "01", then [3,4) is past the end.
      {"past the intermediate text", base, {hunk(2, 10, ""), hunk(3, 4, "z")}},
      {"bad delta after empty ones", base, {"", "", hunk(0, 1, "").substr(0, 7)}},
  };
}

TEST(MpatchTest, MalformedDeltasAreCorrupt) {
  for (const BadCase& c : badCases()) {
    SCOPED_TRACE(c.what);
    auto r = applyChain(c.base, c.deltas);
    ASSERT_FALSE(r.ok()) << "applied to " << printable(*r);
    EXPECT_EQ(r.error().kind, ErrorKind::kCorrupt) << r.error().message();
    EXPECT_FALSE(r.error().message().empty());
  }
}

TEST(MpatchTest, PatchedLengthRejectsMalformedDeltas) {
  for (const BadCase& c : badCases()) {
    if (c.deltas.size() != 1) continue;
    SCOPED_TRACE(c.what);
    auto n = patchedLength(c.base.size(), c.deltas[0]);
    ASSERT_FALSE(n.ok()) << "length " << *n;
    EXPECT_EQ(n.error().kind, ErrorKind::kCorrupt);
  }
}

TEST(MpatchTest, ParseDeltaGivesTheHunks) {
  const std::string delta = hunk(0, 2, "a") + hunk(2, 2, "") + hunk(6, 9, "xyz\n");
  auto hunks = parseDelta(delta, 10);
  ASSERT_TRUE(hunks.ok()) << hunks.error().message();
  ASSERT_EQ(hunks->size(), 3u);
  EXPECT_EQ((*hunks)[0].start, 0u);
  EXPECT_EQ((*hunks)[0].end, 2u);
  EXPECT_EQ((*hunks)[0].data, "a");
  EXPECT_EQ((*hunks)[1].data, "");
  EXPECT_EQ((*hunks)[2].start, 6u);
  EXPECT_EQ((*hunks)[2].end, 9u);
  EXPECT_EQ((*hunks)[2].data, "xyz\n");
  EXPECT_EQ((*hunks)[2].data.data(), delta.data() + delta.size() - 4) << "a view into the delta";
  auto none = parseDelta("", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Past the end of a known base; the same delta with the length unknown.
  auto past = parseDelta(hunk(0, 11, ""), 10);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().kind, ErrorKind::kCorrupt);
  EXPECT_TRUE(parseDelta(hunk(0, 11, ""), SIZE_MAX).ok());
  for (const BadCase& c : badCases()) {
    if (c.deltas.size() != 1) continue;
    SCOPED_TRACE(c.what);
    auto r = parseDelta(c.deltas[0], c.base.size());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::kCorrupt);
  }
}

TEST(MpatchTest, TraceOffsetRejectsMalformedDeltas) {
  // traceOffset does not know the base's length, so "past the end" cannot
  // be seen; everything about the delta's own shape can, once the offset
  // asked for lies beyond the damage.
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"partial header", std::string(7, '\0')},
      {"truncated data", hunkClaiming(0, 1, 10, "abc")},
      {"start after end", hunk(5, 4, "x")},
      {"out of order", hunk(5, 6, "a") + hunk(1, 2, "b")},
      {"huge length", hunk(0, 1, "a") + hunkClaiming(2, 3, 0xFFFFFFFF, "")},
  };
  for (const auto& [what, delta] : cases) {
    SCOPED_TRACE(what);
    auto origin = traceOffset(delta, 1000);
    ASSERT_FALSE(origin.ok());
    EXPECT_EQ(origin.error().kind, ErrorKind::kCorrupt);
  }
}

TEST(MpatchTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(4242);
  auto byte = [&] { return static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng)); };
  auto small = [&](uint32_t max) { return std::uniform_int_distribution<uint32_t>(0, max)(rng); };
  const std::string base = "the quick brown fox jumps over the lazy dog\n";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> chain;
    const int n = 1 + small(3);
    for (int d = 0; d < n; ++d) {
      std::string delta;
      if (small(1) == 0) {
        // Pure noise.
        const uint32_t len = small(40);
        for (uint32_t k = 0; k < len; ++k) delta.push_back(byte());
      } else {
        // Plausible hunks with small random fields, sometimes cut short.
        const uint32_t hunks = small(4);
        for (uint32_t h = 0; h < hunks; ++h) {
          std::string data(small(6), 'd');
          delta += hunkClaiming(small(50), small(50),
                                small(9) == 0 ? small(0xFFFFFFFF) : data.size(), data);
        }
        if (!delta.empty() && small(3) == 0) delta.resize(small(delta.size() - 1));
      }
      chain.push_back(delta);
    }
    auto r = applyChain(base, chain);
    if (r.ok()) {
      ++accepted;
      if (chain.size() == 1) {
        auto len = patchedLength(base.size(), chain[0]);
        ASSERT_TRUE(len.ok());
        EXPECT_EQ(*len, r->size());
      }
    } else {
      ASSERT_EQ(r.error().kind, ErrorKind::kCorrupt);
    }
    auto origin = traceOffset(chain[0], small(60));
    if (!origin.ok()) {
      ASSERT_EQ(origin.error().kind, ErrorKind::kCorrupt);
    }
  }
  EXPECT_GT(accepted, 100);  // the generator also makes valid deltas
}

// ---------------------------------------------------------------------------
// Against Mercurial.

class OracleData {
 public:
  explicit OracleData(std::string data) : data_(std::move(data)) {}
  bool done() const { return pos_ == data_.size(); }
  bool ok() const { return ok_; }
  uint32_t u32() {
    if (!fits(data_, pos_, 4)) return fail();
    const uint32_t v = be32At(data_, pos_);
    pos_ += 4;
    return v;
  }
  uint8_t u8() {
    if (!fits(data_, pos_, 1)) return fail();
    return u8At(data_, pos_++);
  }
  ByteView blob() {
    const uint32_t len = u32();
    if (!fits(data_, pos_, len)) {
      fail();
      return {};
    }
    const ByteView v = ByteView(data_).substr(pos_, len);
    pos_ += len;
    return v;
  }

 private:
  uint32_t fail() {
    ok_ = false;
    pos_ = data_.size();
    return 0;
  }
  std::string data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::string runOracle(const std::string& mode, int seed, int count) {
  TempDir dir;
  const std::string out = dir.path() + "/cases";
  const auto result = run({mercurialPython(), sourceDir() + "/tests/oracle/mpatch_cases.py", mode,
                           std::to_string(seed), std::to_string(count), out});
  EXPECT_EQ(result.exitCode, 0) << result.err;
  return result.exitCode == 0 ? test::readFile(out) : std::string();
}

struct Chain {
  std::vector<ByteView> texts;   // text0 .. textN
  std::vector<ByteView> deltas;  // deltas[k] turns texts[k] into texts[k + 1]
};

std::vector<Chain> parseChains(OracleData& in) {
  std::vector<Chain> chains;
  while (!in.done()) {
    Chain c;
    const uint32_t n = in.u32();
    for (uint32_t i = 0; i < n && in.ok(); ++i) c.texts.push_back(in.blob());
    for (uint32_t i = 0; i + 1 < n && in.ok(); ++i) c.deltas.push_back(in.blob());
    if (in.ok()) chains.push_back(std::move(c));
  }
  EXPECT_TRUE(in.ok()) << "oracle output is truncated";
  return chains;
}

class MpatchOracleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    chainData_ = new OracleData(runOracle("chains", 1, 150));
    chains_ = new std::vector<Chain>(parseChains(*chainData_));
  }
  static void TearDownTestSuite() {
    delete chains_;
    delete chainData_;
  }
  static OracleData* chainData_;
  static std::vector<Chain>* chains_;
};

OracleData* MpatchOracleTest::chainData_ = nullptr;
std::vector<Chain>* MpatchOracleTest::chains_ = nullptr;

TEST_F(MpatchOracleTest, ChainsGiveMercurialsText) {
  ASSERT_EQ(chains_->size(), 150u);
  size_t deltas = 0, longest = 0;
  for (size_t ci = 0; ci < chains_->size(); ++ci) {
    const Chain& c = (*chains_)[ci];
    SCOPED_TRACE("chain " + std::to_string(ci));
    deltas += c.deltas.size();
    longest = std::max(longest, c.deltas.size());
    auto whole = applyDeltas(c.texts[0], c.deltas);
    ASSERT_TRUE(whole.ok()) << whole.error().message();
    EXPECT_EQ(*whole, c.texts.back());
    // Every prefix of the chain, and the chain from a midpoint.
    for (size_t k = 1; k < c.texts.size(); ++k) {
      auto prefix = applyDeltas(c.texts[0], std::span(c.deltas).first(k));
      ASSERT_TRUE(prefix.ok()) << prefix.error().message();
      ASSERT_EQ(*prefix, c.texts[k]) << "after " << k << " deltas";
    }
    const size_t mid = c.deltas.size() / 2;
    auto tail = applyDeltas(c.texts[mid], std::span(c.deltas).subspan(mid));
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, c.texts.back());
  }
  EXPECT_EQ(longest, 50u);
  std::printf("%zu chains, %zu deltas\n", chains_->size(), deltas);
}

TEST_F(MpatchOracleTest, PatchedLengthMatches) {
  for (const Chain& c : *chains_) {
    for (size_t k = 0; k < c.deltas.size(); ++k) {
      auto n = patchedLength(c.texts[k].size(), c.deltas[k]);
      ASSERT_TRUE(n.ok()) << n.error().message();
      EXPECT_EQ(*n, c.texts[k + 1].size());
    }
  }
}

TEST_F(MpatchOracleTest, TraceOffsetAgreesWithEveryByte) {
  size_t checked = 0;
  for (size_t ci = 0; ci < 20 && ci < chains_->size(); ++ci) {
    const Chain& c = (*chains_)[ci];
    for (size_t k = 0; k < c.deltas.size(); ++k) {
      const ByteView before = c.texts[k], after = c.texts[k + 1];
      for (size_t off = 0; off < after.size(); ++off) {
        auto origin = traceOffset(c.deltas[k], off);
        ASSERT_TRUE(origin.ok()) << origin.error().message();
        const uint8_t actual = static_cast<uint8_t>(after[off]);
        if (origin->inDelta) {
          ASSERT_EQ(origin->value, actual) << "chain " << ci << " delta " << k << " off " << off;
        } else {
          ASSERT_LT(origin->value, before.size());
          ASSERT_EQ(static_cast<uint8_t>(before[origin->value]), actual)
              << "chain " << ci << " delta " << k << " off " << off;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10000u);
}

// Mercurial 6.3's C mpatch (decode() in mercurial/mpatch.c) keeps its read
// position in an int: when a delta ends with a hunk header whose length makes
// that position overflow, the overflow check stops decoding right after the
// header, the position equals the delta's size, and the hunk is silently
// dropped instead of rejected. We call such a delta corrupt.
bool endsWithOverflowingHunk(ByteView delta) {
  size_t pos = 0;
  while (fits(delta, pos, 12)) {
    const uint64_t next = uint64_t{pos} + 12 + be32At(delta, pos + 8);
    if (next > INT32_MAX) return pos + 12 == delta.size();
    pos = static_cast<size_t>(next);
  }
  return false;
}

TEST(MpatchDamagedTest, SameVerdictAsMercurial) {
  constexpr int kCases = 3000;
  OracleData in(runOracle("single", 2, kCases));
  int cases = 0, accepted = 0, mismatches = 0, quirks = 0;
  while (!in.done() && in.ok()) {
    const ByteView base = in.blob();
    const ByteView delta = in.blob();
    const bool hgAccepts = in.u8() == 1;
    const ByteView expected = hgAccepts ? in.blob() : ByteView();
    if (!in.ok()) break;
    ++cases;
    const std::vector<ByteView> chain = {delta};
    auto ours = applyDeltas(base, chain);
    auto length = patchedLength(base.size(), delta);
    if (hgAccepts && endsWithOverflowingHunk(delta)) {
      ++quirks;
      EXPECT_FALSE(ours.ok());
      EXPECT_FALSE(length.ok());
    } else if (hgAccepts) {
      ++accepted;
      if (!ours.ok() || *ours != expected || !length.ok() || *length != expected.size()) {
        if (++mismatches <= 10) {
          ADD_FAILURE() << "Mercurial applies delta " << printable(delta.substr(0, 64))
                        << " but we say " << (ours.ok() ? "other text" : ours.error().message());
        }
      }
    } else {
      if (ours.ok() || ours.error().kind != ErrorKind::kCorrupt || length.ok()) {
        if (++mismatches <= 10) {
          ADD_FAILURE() << "Mercurial rejects delta " << printable(delta.substr(0, 64)) << " (base "
                        << base.size() << " bytes) but we "
                        << (ours.ok() ? "apply it" : "say " + ours.error().message())
                        << (length.ok() ? ", patchedLength accepts it" : "");
        }
      }
    }
  }
  EXPECT_TRUE(in.ok()) << "oracle output is truncated";
  EXPECT_EQ(cases, kCases);
  EXPECT_EQ(mismatches, 0);
  // Both verdicts must be well represented.
  EXPECT_GT(accepted, kCases / 10);
  EXPECT_GT(cases - accepted, kCases / 10);
  std::printf("%d damaged deltas, %d accepted by Mercurial, %d dropped by its overflow quirk\n",
              cases, accepted, quirks);
}

}  // namespace
}  // namespace hgvfs::hg
