// Revlog reading on hand-built revlogs: the cases a repository made by hg
// cannot produce (hostile chunk headers), built in memory byte by byte.

#include "hgbridge/revlog.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace hgvfs::hg {
namespace {

void putBe32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xFF));
}

// One inline index entry (and its chunk): `header` is written over rev 0's
// offset, as in a real index.
std::string inlineEntry(uint32_t header, const std::string& chunk, int32_t textLength,
                        int32_t base = 0, int32_t p1 = -1) {
  std::string index;
  putBe32(index, header);  // header over offset (rev 0), else the offset's high bits
  putBe32(index, 0);       // offset low + flags
  putBe32(index, static_cast<uint32_t>(chunk.size()));
  putBe32(index, static_cast<uint32_t>(textLength));
  putBe32(index, static_cast<uint32_t>(base));
  putBe32(index, 0);  // link
  putBe32(index, static_cast<uint32_t>(p1));
  putBe32(index, 0xFFFFFFFF);  // p2
  index.append(32, '\x11');    // node + padding
  return index + chunk;
}

// One inline revision whose chunk is `chunk`, claiming `textLength`.
std::string inlineRevlog(const std::string& chunk, int32_t textLength) {
  return inlineEntry(kRevlogV1 | kFlagInlineData | kFlagGeneralDelta, chunk, textLength);
}

TEST(RevlogTest, ZstdFrameClaimingAHugeSizeIsCorruptWithoutAllocatingIt) {
  // A zstd frame: magic, descriptor (8-byte content size, single segment),
  // content size 3,000,000,000, then one raw last block of one byte.
  std::string frame("\x28\xb5\x2f\xfd\xe0", 5);
  uint64_t claimed = 3000000000ULL;
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<char>((claimed >> (8 * i)) & 0xFF));
  frame += std::string(
      "\x09\x00\x00"
      "a",
      4);
  auto revlog = Revlog::fromBytes(inlineRevlog(frame, 1), {}, "hostile.i");
  ASSERT_TRUE(revlog.ok()) << revlog.error().message();
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.error().kind, ErrorKind::kCorrupt);
  EXPECT_NE(chunk.error().message().find("hostile.i revision 0"), std::string::npos);
  auto text = (*revlog)->rawText(Revision(0));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().kind, ErrorKind::kCorrupt);
}

TEST(RevlogTest, StoredChunksAndNodeCheck) {
  std::string content = "hello\n";
  // 'u' drops its marker byte; the node check then fails (node is 0x11...).
  auto revlog = Revlog::fromBytes(inlineRevlog("u" + content, 6), {}, "plain.i");
  ASSERT_TRUE(revlog.ok());
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(*chunk, content);
  auto checked = (*revlog)->rawText(Revision(0));
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().kind, ErrorKind::kCorrupt);
  EXPECT_NE(checked.error().what.find("integrity"), std::string::npos);
  auto unchecked = (*revlog)->rawText(Revision(0), VerifyHash::kNo);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_EQ(*unchecked, content);
}

TEST(RevlogTest, UnknownChunkHeaderIsUnsupported) {
  auto revlog = Revlog::fromBytes(inlineRevlog("Zabc", 3), {}, "odd.i");
  ASSERT_TRUE(revlog.ok());
  auto chunk = (*revlog)->chunk(Revision(0));
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.error().kind, ErrorKind::kUnsupported);
}

TEST(RevlogTest, TruncatedInlineDataIsCorrupt) {
  std::string bytes = inlineRevlog("uhello", 5);
  bytes.resize(bytes.size() - 2);
  auto revlog = Revlog::fromBytes(bytes, {}, "cut.i");
  ASSERT_FALSE(revlog.ok());
  EXPECT_EQ(revlog.error().kind, ErrorKind::kCorrupt);
}

// deltaBase: nullopt for a full text; the entry's base with generaldelta,
// the previous revision without it, whatever the base field says.
TEST(RevlogTest, DeltaBase) {
  std::string hunk;  // "one\n" -> "two\n"
  putBe32(hunk, 0);
  putBe32(hunk, 4);
  putBe32(hunk, 4);
  hunk += "two\n";
  for (bool general : {true, false}) {
    SCOPED_TRACE(general ? "generaldelta" : "no generaldelta");
    uint32_t header = kRevlogV1 | kFlagInlineData | (general ? kFlagGeneralDelta : 0);
    std::string bytes = inlineEntry(header, "uone\n", 4) +     // 0: full text
                        inlineEntry(0, "uthree\n", 6, 1, 0) +  // 1: full text
                        inlineEntry(0, hunk, 4, 0, 0);         // 2: a delta (NUL first: stored)
    auto revlog = Revlog::fromBytes(bytes, {}, "deltas.i");
    ASSERT_TRUE(revlog.ok()) << revlog.error().message();
    EXPECT_EQ((*revlog)->deltaBase(Revision(0)), std::nullopt);
    EXPECT_EQ((*revlog)->deltaBase(Revision(1)), std::nullopt);
    // With generaldelta rev 2 patches rev 0 (its base field); without, the
    // field names the chain's start and the delta is against rev 1.
    EXPECT_EQ((*revlog)->deltaBase(Revision(2)), Revision(general ? 0 : 1));
    auto chunk = (*revlog)->chunk(Revision(2));
    ASSERT_TRUE(chunk.ok()) << chunk.error().message();
    EXPECT_EQ(*chunk, hunk) << "the decoded chunk is the delta itself";
    auto chain = (*revlog)->deltaChain(Revision(2));
    ASSERT_TRUE(chain.ok()) << chain.error().message();
    EXPECT_EQ(*chain, (std::vector<Revision>{Revision(general ? 0 : 1), Revision(2)}));
  }
}

}  // namespace
}  // namespace hgvfs::hg
